"""One training-step contract, two implementations, and the jitted chunk of steps the trainer calls.

The contract: `step(state, batch, lr) -> (state, metrics)`, with `state = TrainState(params, opt_state)`
and `metrics = Metrics(...)` of summed (not averaged) quantities, so they add across steps.

  research path  `make_research_step(name, optax.adam)`: jax.value_and_grad of `models.get(name).loss`
                 over the whole Params pytree, then any optax optimizer (built with
                 optax.inject_hyperparams so `lr` is set per step). The loss is a batch *mean*.
  fast path      `make_fast_step(name)`: the model's closed-form gradient with respect to the rows the
                 batch touches (`models.<name>_row_grads`), scatter-added into the tables: word2vec's
                 SGD with a per-example learning rate. No dense [V, D] gradient exists, so for the
                 negative-sampling models a step's cost does not depend on V.

With the same batch, `fast(lr)` equals `research(optax.sgd, lr * B)`: word2vec applies lr to every
example, the research loss averages over B (tests/test_step.py checks this).
"""
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from w2v_jax import batches, kernels, models, native, sampling
from w2v_jax.types import Batch, Params, SpanBatch


class TrainState(NamedTuple):
  params: Params
  opt_state: optax.OptState = ()   # () on the fast path


class Metrics(NamedTuple):
  loss_sum: jax.Array   # Σ over examples of the example loss
  examples: jax.Array   # examples with at least one real context word
  pairs: jax.Array      # real (center, context) pairs


def _metrics(example_loss, mask) -> Metrics:
  n = jnp.sum(mask, axis=1)
  example_loss = jnp.where(n > 0, example_loss, 0.0)   # an empty example counts 0, whatever its ids
  return Metrics(jnp.sum(example_loss).astype(jnp.float32), jnp.sum(n > 0).astype(jnp.float32),
                 jnp.sum(n).astype(jnp.float32))


SGRAM_NEG_FORMS = ("swapped", "shared", "pairs")


def damp_duplicates(idx, rows, num_rows: int, max_dup: float):
  """Rows of a word met m > max_dup times in one step, scaled by max_dup / m.

  A minibatch step sums the m updates of a frequent word, all computed from the same stale vector;
  word2vec.c applies them one by one, each seeing the last. With B = 1024 windows and K = 15, "the"
  is drawn as a negative hundreds of times per step and the sum overshoots until the loss diverges
  (measured: sgram_neg, dim 50, K 15, lr 0.025 on the dev corpus). Capping a word's step at max_dup
  of its updates keeps rare words' SGD exact and bounds the frequent ones'.
  """
  # Padding slots carry id 0 and an all-zero row: they are not updates and must not count.
  real = jnp.any(rows != 0, axis=1).astype(rows.dtype)
  count = jnp.zeros((num_rows,), rows.dtype).at[idx].add(real)
  return rows * jnp.minimum(1.0, max_dup / jnp.maximum(count[idx], 1.0))[:, None]


def make_fast_step(name: str, cbow_context_grad: str = "sum", sgram_neg_form: str = "swapped",
                   span: bool = False, buckets: bool = False, max_dup: float | None = None,
                   native_scatter: bool = False) -> Callable:
  """word2vec's sparse SGD: params += −lr · (row gradients of the summed loss).

  For sgram_neg, `sgram_neg_form` picks how a window's negatives are used (see kernels.py):
    "swapped"  word2vec.c's orientation, K negatives shared by the window (Ji et al.'s HogBatch);
               sgram_neg's loss on kernels.swap_pairs(batch). The default: it matches gensim.
    "shared"   the model as defined: h = v_center, K negatives shared by its context words.
    "pairs"    K negatives per (center, context) pair: the batch is built with C·K negatives and
               split by `per_pair` into B·C one-context examples. Slowest; word2vec.c's exact sampling.
  With span=True, the negative-sampling kernels read `SpanBatch`es (kernels.py: each position's input
  row is gathered and scattered once, not once per window); `step.layout` tells the caller which to build.
  With native_scatter the whole span step is one fused CPU kernel (native.cbow_neg_span_step,
  native.sgram_neg_span_step: both cores, equal to this JAX step to float rounding), the fastest form on
  the CPU (train.make_step picks it, with TrainConfig.span_inputs): at B = 1024 on the dev corpus cbow_neg
  about 1.0-1.2 ms a step against 3.1 ms bucketed, sgram_neg about 2.1-2.5 ms against 4.5. Under XLA
  alone the span layout is slower than buckets (cbow_neg's per-position sum ran at 2.3 ms a step).
  With buckets=True the step expects buckets.py's per-window-size groups (a tuple of Batches).
  max_dup: see damp_duplicates. The step exposes `rows` and `update`, which distributed.py calls
  around its all-gather.
  native_scatter: use native.py's CPU kernels: the fused span steps, and for other layouts the row
  kernel (the same bits as XLA's scatter, and no copy to join the buckets' rows); ignored where
  they are not available. Single-device only: under a mesh the tables may be sharded.
  """
  row_grads = models.get(name).row_grads
  if name.startswith("cbow"):
    row_grads = functools.partial(row_grads, cbow_context_grad=cbow_context_grad)
  if name == "sgram_neg" and sgram_neg_form == "swapped":
    row_grads = kernels.sgram_neg_swapped_row_grads
  span_kernels = {"sgram_neg": kernels.sgram_neg_swapped_span_row_grads if sgram_neg_form == "swapped"
                  else None,
                  "cbow_neg": functools.partial(kernels.cbow_neg_span_row_grads,
                                                cbow_context_grad=cbow_context_grad)}
  use_span = span and span_kernels.get(name) is not None
  if use_span:
    row_grads = span_kernels[name]

  def parts(params: Params, batch) -> tuple[list[models.RowGrads], Metrics]:
    """The step's gradient rows, one RowGrads per group of the batch (a Batch, a SpanBatch, or the
    tuple of Batches of buckets.py that make one step), and the summed metrics."""
    groups = (batch,) if isinstance(batch, (Batch, SpanBatch)) else batch
    results = [row_grads(params, g) for g in groups]
    metrics = [_metrics(loss, g.mask) for (loss, _), g in zip(results, groups)]
    return [rg for _, rg in results], jax.tree.map(lambda *m: sum(m), *metrics)

  def rows(params: Params, batch) -> tuple[models.RowGrads, Metrics]:
    """`parts` joined into one RowGrads: distributed.py all-gathers these between rows and update."""
    rgs, metrics = parts(params, batch)
    return models.RowGrads(*(jnp.concatenate(fields) for fields in zip(*rgs))), metrics

  def update(params: Params, rg, lr) -> Params:
    """params − lr · rows for a RowGrads or a list of them, with a frequent word's rows capped
    (damp_duplicates) when max_dup is set: native.apply_rows on each table."""
    rgs = [rg] if isinstance(rg, models.RowGrads) else rg
    apply = functools.partial(native.apply_rows, scale=-lr, max_dup=max_dup, native=native_scatter)
    return Params(apply(params.W_in, [(r.in_idx, r.in_rows) for r in rgs]),
                  apply(params.W_out, [(r.out_idx, r.out_rows) for r in rgs]))

  def step(state: TrainState, batch, lr) -> tuple[TrainState, Metrics]:
    if use_span:
      # update(rows(...)) as one fused kernel where it runs (native.py), else in JAX (for cbow_neg with the
      # [B+2W, D] position rows summed by apply_span_rows instead of by XLA: slow, see above).
      if name == "cbow_neg":
        params, loss = native.cbow_neg_span_step(state.params, batch, lr, cbow_context_grad, max_dup,
                                                 native=native_scatter)
      else:
        params, loss = native.sgram_neg_span_step(state.params, batch, lr, max_dup, native=native_scatter)
      return state._replace(params=params), _metrics(loss, batch.mask)
    rgs, metrics = parts(state.params, batch)
    return state._replace(params=update(state.params, rgs, lr)), metrics
  step.rows, step.update = rows, update
  step.layout = "span" if use_span else ("buckets" if buckets else "batch")
  return step


def make_research_step(name: str, optimizer_factory=optax.sgd, **optimizer_kwargs):
  """(init, step): autodiff of the mean loss plus any optax optimizer taking `learning_rate`."""
  model = models.get(name)
  opt = optax.inject_hyperparams(optimizer_factory)(learning_rate=0.0, **optimizer_kwargs)
  per_example = jax.vmap(model.example_loss, in_axes=(None, 0))

  def init(params: Params) -> TrainState:
    return TrainState(params, opt.init(params))

  def step(state: TrainState, batch: Batch, lr) -> tuple[TrainState, Metrics]:
    def mean_loss(p):
      losses = per_example(p, batch)
      return jnp.mean(losses), losses
    (_, losses), grads = jax.value_and_grad(mean_loss, has_aux=True)(state.params)
    opt_state = state.opt_state
    opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, opt_state.hyperparams["learning_rate"].dtype)
    updates, opt_state = opt.update(grads, opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state), _metrics(losses, batch.mask)
  return init, step


def linear_lr(lr: float, min_ratio: float, progress):
  """word2vec.c's schedule: lr · (1 − progress), floored at lr · min_ratio."""
  return lr * jnp.maximum(1.0 - progress, min_ratio)


class EpochData(NamedTuple):
  """What a chunk of steps reads on the device: the epoch's kept tokens, padded to a fixed length."""
  tokens: jax.Array     # int32 [N]  kept tokens, then padding
  sent: jax.Array       # int32 [N]  sentence id, -1 on padding (masks it out of every window)
  noise: sampling.AliasTable
  key: jax.Array        # the epoch's key, batches.epoch_key(seed, epoch)
  steps: jax.Array      # int32 []   real steps in this epoch (the lr schedule's denominator)
  epoch: jax.Array      # int32 []


def per_pair(batch: Batch, neg: int) -> Batch:
  """[B] examples with C·K negatives -> [B·C] one-context examples with K negatives each.

  For sgram_neg this gives every (center, context) pair its own negatives, as word2vec.c draws them.
  """
  B, C = batch.context.shape
  return Batch(jnp.repeat(batch.center, C), batch.context.reshape(B * C, 1), batch.mask.reshape(B * C, 1),
               batch.negatives.reshape(B * C, neg))


def make_train_chunk(step: Callable, *, steps_per_call: int, batch_size: int, window: int, neg: int,
                     reduced_window: bool, lr: float, min_lr_ratio: float, epochs: int,
                     pair_negatives: bool = False) -> Callable:
  """chunk(state, data, first_step) -> (state, Metrics): `steps_per_call` steps under one lax.scan.

  Batches are built on the device from explicit keys (batches.make_batches), so nothing crosses from
  the host per step. Steps past the epoch's end see all-padding batches: zero loss, zero update.
  With `pair_negatives`, batches carry C·K negatives and are split into pairs (`per_pair`).
  Jit it once at the call site with the state donated.
  """
  def chunk(state: TrainState, data: EpochData, first_step) -> tuple[TrainState, Metrics]:
    stacked = batches.make_batches(data.tokens, data.sent, data.key, first_step, data.noise,
                                   num_steps=steps_per_call, batch_size=batch_size, window=window,
                                   neg=neg * 2 * window if pair_negatives else neg,
                                   reduced_window=reduced_window, layout=getattr(step, "layout", "batch"))
    if pair_negatives:
      stacked = jax.vmap(per_pair, in_axes=(0, None))(stacked, neg)
    return scan_steps(step, state, stacked, data, first_step, lr=lr, min_lr_ratio=min_lr_ratio,
                      epochs=epochs)
  return chunk


def scan_steps(step: Callable, state: TrainState, stacked, data: EpochData, first_step, *, lr: float,
               min_lr_ratio: float, epochs: int) -> tuple[TrainState, Metrics]:
  """`step` over the S batches stacked on the leading axis of `stacked`, under lax.scan, with word2vec's
  linear lr schedule; returns the state and the summed metrics. Shared by every chunk (distributed.py)."""
  S = jax.tree.leaves(stacked)[0].shape[0]

  def body(state, xs):
    i, batch = xs
    progress = (data.epoch + (first_step + i) / data.steps) / epochs
    return step(state, batch, linear_lr(lr, min_lr_ratio, progress))

  state, ms = jax.lax.scan(body, state, (jnp.arange(S), stacked))
  return state, jax.tree.map(jnp.sum, ms)
