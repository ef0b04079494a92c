"""Applying gradient rows to the tables in pure JAX: the duplicate cap and the scatter-add.

This is the definition of every fast step's update; native's row kernels reproduce it bit for bit, and its
fused steps to float rounding (tests/test_native.py).
"""
import jax.numpy as jnp

from w2v_jax.types import unslots


def damp_duplicates(idx, rows, num_rows: int, max_dup: float):
  """Rows of a word met m > max_dup times in one step, scaled by max_dup / m.

  A minibatch step sums the m updates of a frequent word, all computed from the same stale vector;
  word2vec.c applies them one by one, each seeing the last. With B = 1024 windows and K = 15, "the"
  is drawn as a negative hundreds of times per step and the sum overshoots until the loss diverges
  (measured: sgram_neg, dim 50, K 15, lr 0.025 on the dev corpus). Capping a word's step at max_dup
  of its updates keeps rare words' SGD exact and bounds the frequent ones'. An all-zero row (padding)
  is not an update and does not count; ids outside 0..num_rows-1 count for no word.
  """
  real = jnp.any(rows != 0, axis=1).astype(rows.dtype)
  count = jnp.zeros((num_rows,), rows.dtype).at[idx].add(real)
  return rows * jnp.minimum(1.0, max_dup / jnp.maximum(count[idx], 1.0))[:, None]


def apply_rows_reference(table, parts, scale, max_dup: float | None):
  """table + scale · damp(rows) at idx, for parts [(idx [N], rows [N, D]), ...]: `damp_duplicates` over
  all parts together, then one scatter-add."""
  idx = jnp.concatenate([i.reshape(-1) for i, _ in parts])
  rows = jnp.concatenate([r.reshape(-1, table.shape[1]) for _, r in parts])
  if max_dup is not None:
    rows = damp_duplicates(idx, rows, table.shape[0], max_dup)
  return table.at[idx].add((scale * rows).astype(table.dtype))


def apply_span_rows_reference(table, tokens, coef, vecs, scale, max_dup: float | None):
  """CBOW's input side on a SpanBatch: slot (b, j) receives coef[b, j] · vecs[b], each of the B + 2W span
  positions sums its slots (types.unslots), and the B + 2W position rows are applied."""
  rows = unslots(coef[:, :, None] * vecs[:, None, :], coef.shape[1] // 2)
  return apply_rows_reference(table, [(tokens, rows)], scale, max_dup)
