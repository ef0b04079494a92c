"""The one place that decides how a run trains: `select_step(cfg, mesh)` returns a named `StepSpec`.

Everything that varies between runs of the same model is decided here and nowhere else:
  the update   word2vec's sparse SGD on the model's rows (`Model.update_rows`: its closed form, its
               word2vec rule, or autodiff on the rows its batch names); with --optimizer, that optimiser
               on the touched rows (row_optimizers.py, --optimizer_on=rows, the default) or jax.grad of
               the mean loss over the whole tables and optax (--optimizer_on=tables, the research path);
  the layout   how a step's B centers reach the step (batches.step_batch):
                 span     one SpanBatch of B + 2W positions: each input row gathered and updated once
                          (models with `span_rows`);
                 buckets  buckets.py's groups by drawn window size: no padded context slot;
                 batch    one [B, 2W] Batch;
               "auto" takes the fastest one measured for the backend: span where the model's fused
               native kernel runs, else buckets (under XLA alone the span layout is slower; README);
  the backend  the native CPU kernels (native/) on one CPU device when they are built, else XLA;
  the devices  one, or a mesh: distributed.shard_chunk then splits the very batches one device builds
               (the same layout), so a mesh run gives the one-device vectors up to summation order.

The spec's name, layout, native flag and reason go to the run's first line and to summary["engine"].
"""
from typing import Callable, NamedTuple

import optax

from w2v_jax import batches, models, native, row_optimizers, rows, step as step_lib
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError

OPTIMIZERS = {"sgd": optax.sgd, "adam": optax.adam, "adagrad": optax.adagrad, "rmsprop": optax.rmsprop}


class StepSpec(NamedTuple):
  """A run's training step, named and inspectable."""
  name: str          # e.g. "sgram_neg: span layout, fused native CPU kernel"
  layout: str        # "span" | "buckets" | "batch"
  native: bool       # the native CPU kernels run in this step
  reason: str        # why this step, in a sentence
  init: Callable     # Params -> step.TrainState
  step: Callable     # (state, batch, lr) -> (state, Metrics), on one device
  rows: Callable | None    # (params, batch) -> ([RowGrads], Metrics) in JAX: a mesh's per-shard half
  update: Callable | None  # (state, RowGrads, lr) -> state in JAX: a mesh's replicated half
  neg_draws: int     # negatives drawn per example (K, or C·K with K per pair)
  model: models.Model
  dup_cap: float | None = None   # the duplicate cap this step applies (cfg.dup_cap), None where none does
  steps: Callable | None = None  # (state, stacked batches, lrs [S]) -> (state, Metrics): a chunk's steps in
                                 # one call (the fused kernels); None: lax.scan over `step`

  def describe(self) -> dict:
    """summary.json's "engine" record; with the native kernels, the -march they were built for and what
    the compiler resolved it to (native.build_record)."""
    built = native.build_record() if self.native else None
    return {"step": self.name, "layout": self.layout, "native": self.native, "reason": self.reason,
            "dup_cap": self.dup_cap, **(built or {"march": None, "march_resolved": None})}


def configured_model(cfg: TrainConfig, counts=None) -> models.Model:
  """cfg.model under the run's options (cbow_context_grad, sgram_neg_form, neg) and its vocabulary's
  counts [V] (hierarchical softmax builds its tree from them; None where no vocabulary is known yet)."""
  return models.get(cfg.model).configure(cbow_context_grad=cfg.cbow_context_grad,
                                         sgram_neg_form=cfg.sgram_neg_form, neg=cfg.neg, counts=counts,
                                         softmax_prior=cfg.softmax_prior)


def _rows_kind(model: models.Model) -> str:
  if model.train_rows is not None:
    return "training-rule rows"
  return "closed-form rows" if model.row_grads is not None else "autodiff rows"


def select_step(cfg: TrainConfig, mesh=None, backend_status: native.Status | None = None,
                counts=None) -> StepSpec:
  """The step for (config, model, devices). `mesh`: None for one device, else the run's jax Mesh; `counts`:
  the vocabulary's word counts [V], for models that need them (Model.configure)."""
  cfg.validate()
  model = configured_model(cfg, counts)
  where = "one device" if mesh is None else "mesh " + ",".join(f"{k}:{v}" for k, v in mesh.shape.items())
  if cfg.optimizer != "word2vec" and cfg.optimizer_on == "tables":
    if cfg.layout not in ("auto", "batch"):
      raise W2VError(f"--optimizer={cfg.optimizer} trains on [B, 2W] batches: drop --layout={cfg.layout}")
    init, step = step_lib.make_research_step(model.example_loss, model.per_pair, OPTIMIZERS[cfg.optimizer])
    return StepSpec(f"{model.name}: research path, jax.grad + optax.{cfg.optimizer}, batch layout, XLA",
                    "batch", False, f"--optimizer={cfg.optimizer}: autodiff of the mean loss over the whole "
                    f"[V, D] tables (O(V·D) a step), {where}", init, step, None, None,
                    cfg.neg if model.uses_negatives else 0, model, None)

  status = backend_status or native.status()
  if cfg.optimizer != "word2vec":   # an optimiser on rows: the native kernels do SGD only
    status = native.Status(False, f"--optimizer={cfg.optimizer} runs on rows in JAX (the native kernels do "
                                  "word2vec's SGD)")
  fused = native.FUSED_STEPS.get(model.native_step) if model.span_rows is not None else None
  layout = cfg.layout
  if layout == "auto":
    if fused is not None and status.available:
      layout, why = "span", f"auto layout: {model.name} has a fused native kernel on the span layout"
    elif cfg.reduced_window:
      layout, why = "buckets", ("auto layout: buckets (no padded context slots), the fastest under XLA" +
                                (f"; {model.name} has a fused kernel, but {status.reason}" if fused else ""))
    else:
      layout, why = "batch", "auto layout: batch (--noreduced_window leaves no window sizes to bucket)"
  else:
    why = f"--layout={layout}"
    if layout == "span" and model.span_rows is None:
      raise W2VError(f"--layout=span: {model.name} (with these options) has no span form; use --layout=buckets "
                     "or auto")
    if layout == "buckets" and not cfg.reduced_window:
      raise W2VError("--layout=buckets groups centers by their drawn window size: it needs --reduced_window")
  if layout == "span" and model.negatives_per_slot:
    raise W2VError("--layout=span cannot carry K negatives per pair; use --layout=buckets")

  rows_fn = step_lib.make_rows(model.span_rows if layout == "span" else model.update_rows, model.per_pair)
  init, update = step_lib.TrainState, step_lib.make_update(rows.apply_rows_reference, cfg.dup_cap)
  if cfg.optimizer != "word2vec":
    init, update = row_optimizers.make(cfg.optimizer, cfg.batch_size)
  neg_draws = (cfg.neg * 2 * cfg.window if model.negatives_per_slot else cfg.neg) if model.uses_negatives else 0
  use_native = status.available and mesh is None
  fused_here = use_native and layout == "span" and fused is not None
  if cfg.hogwild and not (fused_here and model.native_step in native.HOGWILD_STEPS):
    here = ("a mesh is given" if mesh is not None else status.reason if not status.available
            else f"{model.name} on the {layout} layout has " + ("a fused kernel without a Hogwild form"
                                                                 if fused_here else "none"))
    raise W2VError("--hogwild runs in the fused native CPU kernels (cbow_neg, sgram_neg; one device, span "
                   f"layout): here {here}; drop --hogwild")
  if fused_here:
    options = dict(model.native_options, **({"hogwild": True} if cfg.hogwild else {}))
    step = step_lib.make_fused_step(fused, options, cfg.dup_cap, model.per_pair)
    steps = step_lib.make_fused_steps(fused, options, cfg.dup_cap, model.per_pair)
    name, how = "fused native CPU kernel", "the fused kernel does the forward pass, gradient and update"
    if cfg.hogwild:
      name += ", Hogwild"
      how = ("--hogwild: each window's rows are updated at once by threads that never wait for one another "
             "(word2vec.c's update; no duplicate cap): faster, but the same seed no longer gives the same bytes")
  elif use_native:
    step = step_lib.make_fast_step(rows_fn, step_lib.make_update(native.apply_rows, cfg.dup_cap))
    name, how = f"XLA {_rows_kind(model)} + native row kernel", "XLA computes the rows, the row kernel applies them"
  elif cfg.optimizer != "word2vec":
    step = step_lib.make_fast_step(rows_fn, update)
    name = f"XLA {_rows_kind(model)} + lazy {cfg.optimizer} on the touched rows"
    how = f"--optimizer={cfg.optimizer} --optimizer_on=rows: O(rows) a step, not O(V·D)"
  else:
    step = step_lib.make_fast_step(rows_fn, update)
    name = f"XLA {_rows_kind(model)} + XLA scatter-add"
    how = ("the native kernels run on one device only; the mesh splits the one-device batches" if mesh is not None
           else "XLA does the whole step" if status.reason in why else status.reason)
  cap = None if cfg.hogwild or cfg.optimizer != "word2vec" else cfg.dup_cap
  if cap is not None:
    how += f"; duplicate cap {cap:g}" + (" (--max_dup=auto: 32 · min(1, 6 / (K + 1)))"
                                         if cfg.max_dup == "auto" else "")
  elif not cfg.hogwild and cfg.optimizer == "word2vec":
    how += "; no duplicate cap (--max_dup=0)"
  return StepSpec(f"{model.name}: {layout} layout, {name}", layout, use_native, f"{why}; {how}; {where}",
                  init, step, rows_fn, update, neg_draws, model, cap, steps if fused_here else None)


def make_chunk(spec: StepSpec, cfg: TrainConfig) -> Callable:
  """chunk(state, data, first_step) -> (state, Metrics): cfg.steps_per_call steps of `spec` on one device.

  The batches are built on the device from explicit keys (batches.make_batches), so nothing crosses from
  the host per step; steps past the epoch's end see all-padding batches: zero loss, zero update. Jit it
  once at the call site with the state donated. distributed.shard_chunk is its mesh twin."""
  def chunk(state, data: batches.EpochData, first_step):
    stacked = batches.make_batches(data.tokens, data.sent, data.key, first_step, data.noise,
                                   num_steps=cfg.steps_per_call, batch_size=cfg.batch_size, window=cfg.window,
                                   neg=spec.neg_draws, reduced_window=cfg.reduced_window, layout=spec.layout)
    return step_lib.scan_steps(spec.step, state, stacked, data, first_step, lr=cfg.learning_rate,
                               min_lr_ratio=cfg.min_lr_ratio, epochs=cfg.epochs, steps=spec.steps)
  return chunk
