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
               native kernel runs, else buckets (under XLA alone the span layout is slower; docs/training.md);
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
            "dup_cap": self.dup_cap, **(built or {"march": None, "march_resolved": None, "vector_bits": None})}


def configured_model(cfg: TrainConfig, counts=None, words=None) -> models.Model:
  """cfg.model under the run's options (cbow_context_grad, sgram_neg_form, neg, min_n, max_n, buckets) and
  its vocabulary's counts [V] and words [V] (hierarchical softmax builds its tree from the counts, the
  subword models their n-gram rows from the words; None where no vocabulary is known yet)."""
  return models.get(cfg.model).configure(cbow_context_grad=cfg.cbow_context_grad,
                                         sgram_neg_form=cfg.sgram_neg_form, neg=cfg.neg, counts=counts,
                                         softmax_prior=cfg.softmax_prior, words=words, min_n=cfg.min_n,
                                         max_n=cfg.max_n, buckets=cfg.buckets)


def _rows_kind(model: models.Model) -> str:
  if model.train_rows is not None:
    return "training-rule rows"
  return "closed-form rows" if model.row_grads is not None else "autodiff rows"


def select_step(cfg: TrainConfig, mesh=None, backend_status: native.Status | None = None,
                counts=None, words=None) -> StepSpec:
  """The step for (config, model, devices). `mesh`: None for one device, else the run's jax Mesh; `counts`,
  `words`: the vocabulary's word counts and words [V], for models that need them (Model.configure).

  Three decisions, in turn: the layout (`_layout`), the update (`_update`: word2vec's SGD or an
  optimiser on rows), and the backend (`_backend`: the fused kernel, XLA rows with the native row kernel,
  or XLA alone). The research path (--optimizer_on=tables) is a step of its own (`_research_step`)."""
  model = configured_model(cfg, counts, words)
  if mesh is not None and model.extra_in_rows:
    raise W2VError(f"--model={model.name} trains on one device: a mesh does not shard its {model.extra_in_rows:,} "
                   "extra rows of W_in yet; drop --mesh")
  where = "one device" if mesh is None else "mesh " + ",".join(f"{k}:{v}" for k, v in mesh.shape.items())
  if cfg.optimizer != "word2vec" and cfg.optimizer_on == "tables":
    return _research_step(cfg, model, where)
  status = backend_status or native.status()
  if cfg.optimizer != "word2vec":   # an optimiser on rows: the native kernels do SGD only
    status = native.Status(False, f"--optimizer={cfg.optimizer} runs on rows in JAX (the native kernels do "
                                  "word2vec's SGD)")
  fused = native.FUSED_STEPS.get(model.native_step) if model.span_rows is not None else None
  layout, why, said_status = _layout(cfg, model, fused is not None, status)
  rows_fn = step_lib.make_rows(model.span_rows if layout == "span" else model.update_rows, model.per_pair)
  init, update = _update(cfg)
  use_native = status.available and mesh is None
  fused_here = use_native and layout == "span" and fused is not None
  _check_hogwild(cfg, model, mesh, status, layout, fused_here)
  backend = _backend(cfg, model, fused if fused_here else None, use_native, rows_fn, update)
  how = backend.how if backend.how is not None else (
      "the native kernels run on one device only; the mesh splits the one-device batches" if mesh is not None
      else "XLA does the whole step" if said_status else status.reason)
  cap = None if cfg.hogwild or cfg.optimizer != "word2vec" else cfg.dup_cap
  if cap is not None:
    how += f"; duplicate cap {cap:g}" + (" (--max_dup=auto: 32 · min(1, 6 / (K + 1)))"
                                         if cfg.max_dup == "auto" else "")
  elif not cfg.hogwild and cfg.optimizer == "word2vec":
    how += "; no duplicate cap (--max_dup=0)"
  neg_draws = (cfg.neg * 2 * cfg.window if model.negatives_per_slot else cfg.neg) if model.uses_negatives else 0
  return StepSpec(name=f"{model.name}: {layout} layout, {backend.name}", layout=layout,
                  native=use_native, reason=f"{why}; {how}; {where}", init=init,
                  step=backend.step, rows=rows_fn, update=update, neg_draws=neg_draws, model=model, dup_cap=cap,
                  steps=backend.steps)


def _research_step(cfg: TrainConfig, model: models.Model, where: str) -> StepSpec:
  """--optimizer_on=tables: jax.grad of the mean loss over the whole tables and optax, on [B, 2W] batches."""
  if cfg.layout not in ("auto", "batch"):
    raise W2VError(f"--optimizer={cfg.optimizer} trains on [B, 2W] batches: drop --layout={cfg.layout}")
  init, step = step_lib.make_research_step(model.example_loss, model.per_pair, OPTIMIZERS[cfg.optimizer])
  return StepSpec(name=f"{model.name}: research path, jax.grad + optax.{cfg.optimizer}, batch layout, XLA",
                  layout="batch", native=False,
                  reason=f"--optimizer={cfg.optimizer}: autodiff of the mean loss over the whole [V, D] tables "
                         f"(O(V·D) a step), {where}",
                  init=init, step=step, rows=None, update=None, neg_draws=cfg.neg if model.uses_negatives else 0,
                  model=model, dup_cap=None)


def _layout(cfg: TrainConfig, model: models.Model, has_fused: bool, status: native.Status) -> tuple[str, str, bool]:
  """(layout, why, whether `why` already says why the native kernels do not run)."""
  layout = cfg.layout
  if layout == "auto":
    if has_fused and status.available:
      return "span", f"auto layout: {model.name} has a fused native kernel on the span layout", False
    if cfg.reduced_window:
      return "buckets", ("auto layout: buckets (no padded context slots), the fastest under XLA" +
                         (f"; {model.name} has a fused kernel, but {status.reason}" if has_fused else "")), has_fused
    return "batch", "auto layout: batch (--noreduced_window leaves no window sizes to bucket)", False
  if layout == "span" and model.span_rows is None:
    raise W2VError(f"--layout=span: {model.name} (with these options) has no span form; use --layout=buckets "
                   "or auto")
  if layout == "buckets" and not cfg.reduced_window:
    raise W2VError("--layout=buckets groups centers by their drawn window size: it needs --reduced_window")
  if layout == "span" and model.negatives_per_slot:
    raise W2VError("--layout=span cannot carry K negatives per pair; use --layout=buckets")
  return layout, f"--layout={layout}", False


def _update(cfg: TrainConfig) -> tuple[Callable, Callable]:
  """(init, update) in JAX: word2vec's SGD on the rows (with the duplicate cap), or an optimiser on rows."""
  if cfg.optimizer != "word2vec":
    return row_optimizers.make(cfg.optimizer, cfg.batch_size)
  return step_lib.TrainState, step_lib.make_update(rows.apply_rows_reference, cfg.dup_cap)


class _Backend(NamedTuple):
  """The step's name and maker, as `_backend` chose them."""
  name: str
  how: str | None               # why, in a clause; None: the caller says why XLA runs alone
  step: Callable
  steps: Callable | None = None   # a chunk's steps in one call (the fused kernels)


def _backend(cfg: TrainConfig, model: models.Model, fused: Callable | None, use_native: bool,
             rows_fn: Callable, update: Callable) -> _Backend:
  """Who does the step: the model's fused kernel (`fused`: given on the span layout where the kernels run
  here), XLA's rows applied by the native row kernel, or XLA alone."""
  if fused is not None:
    options = dict(model.native_options, **({"hogwild": True} if cfg.hogwild else {}))
    step = step_lib.make_fused_step(fused, options, cfg.dup_cap, model.per_pair)
    steps = step_lib.make_fused_steps(fused, options, cfg.dup_cap, model.per_pair)
    if cfg.hogwild:
      return _Backend("fused native CPU kernel, Hogwild",
                      "--hogwild: each window's rows are updated at once by threads that never wait for one another "
                      "(word2vec.c's update; no duplicate cap): faster, but the same seed no longer gives the same "
                      "bytes", step, steps)
    return _Backend("fused native CPU kernel", "the fused kernel does the forward pass, gradient and update",
                    step, steps)
  if use_native:
    return _Backend(f"XLA {_rows_kind(model)} + native row kernel", "XLA computes the rows, the row kernel applies them",
                    step_lib.make_fast_step(rows_fn, step_lib.make_update(native.apply_rows, cfg.dup_cap)))
  if cfg.optimizer != "word2vec":
    return _Backend(f"XLA {_rows_kind(model)} + lazy {cfg.optimizer} on the touched rows",
                    f"--optimizer={cfg.optimizer} --optimizer_on=rows: O(rows) a step, not O(V·D)",
                    step_lib.make_fast_step(rows_fn, update))
  return _Backend(f"XLA {_rows_kind(model)} + XLA scatter-add", None, step_lib.make_fast_step(rows_fn, update))


def _check_hogwild(cfg: TrainConfig, model: models.Model, mesh, status: native.Status, layout: str,
                   fused_here: bool) -> None:
  """--hogwild runs only in a fused kernel that has a Hogwild form (native.HOGWILD_STEPS)."""
  if not cfg.hogwild or (fused_here and model.native_step in native.HOGWILD_STEPS):
    return
  here = ("a mesh is given" if mesh is not None else status.reason if not status.available
          else f"{model.name} on the {layout} layout has " + ("a fused kernel without a Hogwild form"
                                                               if fused_here else "none"))
  raise W2VError("--hogwild runs in the fused native CPU kernels (cbow_neg, sgram_neg; one device, span "
                 f"layout): here {here}; drop --hogwild")


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
