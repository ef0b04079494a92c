"""The training-step contract and its implementations; engine.py picks one of them for a run.

The contract: `step(state, batch, lr) -> (state, metrics)`, with `state = TrainState(params, opt_state)`
and `metrics = Metrics(...)` of summed (not averaged) quantities, so they add across steps and devices.

  fast step      `make_fast_step(rows, update)`: a model's row gradients of the summed batch loss
                 (`Model.update_rows`, or `Model.span_rows` on a SpanBatch), scatter-added into the tables:
                 word2vec's SGD with a per-example learning rate. No dense [V, D] gradient exists, so for
                 the negative-sampling models a step's cost does not depend on V.
  fused step     `make_fused_step(kernel, ...)`: the same update as one native CPU kernel on a SpanBatch;
                 `make_fused_steps` runs a chunk's S steps in one call of it (no XLA between steps).
  research step  `make_research_step(model, optax.adam)`: jax.value_and_grad of the model's mean loss over
                 the whole Params pytree, then any optax optimizer (optax.inject_hyperparams, so `lr` is
                 set per step). Dense: O(V·D) per step.

With the same batch, the fast step at lr equals the research step with optax.sgd at lr · B: word2vec
applies lr to every example, the research loss averages over B (tests/test_train.py checks this).
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from w2v_jax.types import Batch, Params, RowGrads, SpanBatch


class TrainState(NamedTuple):
  params: Params
  opt_state: optax.OptState = ()   # () on the fast path


class Metrics(NamedTuple):
  loss_sum: jax.Array     # Σ over examples of the example loss
  examples: jax.Array     # examples with at least one real context word
  pairs: jax.Array        # real (center, context) pairs
  predictions: jax.Array  # what the loss sums over: pairs (skip-gram) or examples (CBOW)


def metrics(example_loss, mask, per_pair: bool) -> Metrics:
  """The step's summed metrics from its per-example losses [B] and mask [B, C]."""
  n = jnp.sum(mask, axis=1)
  example_loss = jnp.where(n > 0, example_loss, 0.0)   # an empty example counts 0, whatever its ids
  examples = jnp.sum(n > 0).astype(jnp.float32)
  pairs = jnp.sum(n).astype(jnp.float32)
  return Metrics(jnp.sum(example_loss).astype(jnp.float32), examples, pairs, pairs if per_pair else examples)


def _groups(batch) -> tuple:
  """A step's batch as a tuple of groups: a Batch, a SpanBatch, or buckets.py's tuple of Batches."""
  return (batch,) if isinstance(batch, (Batch, SpanBatch)) else tuple(batch)


def make_rows(row_grads: Callable, per_pair: bool) -> Callable:
  """rows(params, batch) -> ([RowGrads per group], Metrics): `row_grads` on each group of the batch."""
  def rows(params: Params, batch):
    groups = _groups(batch)
    results = [row_grads(params, g) for g in groups]
    ms = [metrics(loss, g.mask, per_pair) for (loss, _), g in zip(results, groups)]
    return [rg for _, rg in results], jax.tree.map(lambda *m: sum(m), *ms)
  return rows


def join(rgs: list[RowGrads]) -> RowGrads:
  """Several RowGrads as one (their rows concatenated)."""
  return RowGrads(*(jnp.concatenate(fields) for fields in zip(*rgs)))


def make_update(apply_rows: Callable, max_dup: float | None) -> Callable:
  """update(state, rgs, lr) -> state with params − lr · rows, for a RowGrads or a list of them, each table
  through apply_rows(table, [(idx, rows), ...], scale, max_dup): rows.apply_rows_reference or the native
  kernel. (row_optimizers.make gives the same contract with an optimiser's state.)"""
  def update(state: TrainState, rgs, lr) -> TrainState:
    rgs = [rgs] if isinstance(rgs, RowGrads) else rgs
    params = state.params
    return state._replace(params=Params(
        apply_rows(params.W_in, [(r.in_idx, r.in_rows) for r in rgs], -lr, max_dup),
        apply_rows(params.W_out, [(r.out_idx, r.out_rows) for r in rgs], -lr, max_dup)))
  return update


def make_fast_step(rows: Callable, update: Callable) -> Callable:
  """step(state, batch, lr) = update(state, rows(batch)): sparse SGD, or an optimiser on rows."""
  def step(state: TrainState, batch, lr) -> tuple[TrainState, Metrics]:
    rgs, ms = rows(state.params, batch)
    return update(state, rgs, lr), ms
  return step


def make_fused_step(kernel: Callable, options: dict, max_dup: float | None, per_pair: bool) -> Callable:
  """step(state, span, lr) by one fused kernel: kernel(params, span, lr, max_dup, **options) -> (params,
  loss [B])."""
  def step(state: TrainState, span: SpanBatch, lr) -> tuple[TrainState, Metrics]:
    params, loss = kernel(state.params, span, lr, max_dup, **options)
    return state._replace(params=params), metrics(loss, span.mask, per_pair)
  return step


def make_fused_steps(kernel: Callable, options: dict, max_dup: float | None, per_pair: bool) -> Callable:
  """steps(state, spans, lrs) -> (state, summed Metrics): S steps of `make_fused_step`, their SpanBatches
  stacked on a leading axis and their lrs [S], in one call of the kernel, in order: the same tables as S
  calls, without XLA's work between two kernels (docs/performance.md, "Where the time goes")."""
  def steps(state: TrainState, spans: SpanBatch, lrs) -> tuple[TrainState, Metrics]:
    params, loss = kernel(state.params, spans, lrs, max_dup, **options)
    return (state._replace(params=params),
            metrics(loss.reshape(-1), spans.mask.reshape(-1, spans.mask.shape[-1]), per_pair))
  return steps


def make_research_step(example_loss: Callable, per_pair: bool, optimizer_factory=optax.sgd,
                       **optimizer_kwargs):
  """(init, step): autodiff of the mean loss over the whole tables plus any optax optimizer that takes
  `learning_rate`."""
  opt = optax.inject_hyperparams(optimizer_factory)(learning_rate=0.0, **optimizer_kwargs)
  per_example = jax.vmap(example_loss, in_axes=(None, 0))

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
    return (TrainState(optax.apply_updates(state.params, updates), opt_state),
            metrics(losses, batch.mask, per_pair))
  return init, step


def linear_lr(lr: float, min_ratio: float, progress):
  """word2vec.c's schedule: lr · (1 − progress), floored at lr · min_ratio."""
  return lr * jnp.maximum(1.0 - progress, min_ratio)


def step_lrs(data, first_step, num_steps: int, *, lr: float, min_lr_ratio: float, epochs: int):
  """The lr of steps first_step + i, i < num_steps, of the epoch `data` (batches.EpochData): [num_steps]."""
  progress = (data.epoch + (first_step + jnp.arange(num_steps)) / data.steps) / epochs
  return linear_lr(lr, min_lr_ratio, progress)


def scan_steps(step: Callable, state: TrainState, stacked, data, first_step, *, lr: float,
               min_lr_ratio: float, epochs: int, steps: Callable | None = None) -> tuple[TrainState, Metrics]:
  """`step` over the S batches stacked on the leading axis of `stacked`, under lax.scan, with word2vec's
  linear lr schedule; returns the state and the summed metrics. `data` is the epoch's batches.EpochData.
  `steps` (make_fused_steps), where given, runs all S in one call instead: the same update."""
  S = jax.tree.leaves(stacked)[0].shape[0]
  lrs = step_lrs(data, first_step, S, lr=lr, min_lr_ratio=min_lr_ratio, epochs=epochs)
  if steps is not None:
    return steps(state, stacked, lrs)
  state, ms = jax.lax.scan(lambda state, xs: step(state, *xs), state, (stacked, lrs))
  return state, jax.tree.map(jnp.sum, ms)
