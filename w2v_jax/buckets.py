"""Batches grouped by window size, so no slot is spent on a word the reduced window excludes.

Under word2vec's reduced window a center keeps the 2b words within b of it, b uniform in 1..W, so a
`Batch` of C = 2W slots is on average (W−1)/(2W) padding (40% at W = 5) before sentence edges: padding
that every kernel gathers, multiplies and scatters. Here the B centers of a step are split by a random
permutation into W groups of B/W, and group g gets b = g + 1 and exactly C_g = 2b slots: B(W+1) slots
in all instead of 2BW. Each center's b is still uniform over 1..W (the permutation is uniform); what
changes is that every step holds each b exactly B/W times (a stratified draw), where make_batch draws
them independently. Each group is an ordinary `Batch`, so every model and kernel applies unchanged, and
the step's gradient is the sum over groups: the same minibatch step.
"""
import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import sampling
from w2v_jax.types import Batch

_WINDOW_SALT, _NEGATIVES_SALT = 1, 2   # as in batches.py: the same key gives the same negatives


def group_sizes(batch_size: int, window: int) -> list[int]:
  """Centers per group b = 1..W: B // W each, the first B % W groups one more."""
  return [batch_size // window + (g < batch_size % window) for g in range(window)]


def random_permutation(key: jax.Array, n: int) -> jax.Array:
  """int32 [n]: a uniformly random permutation, the order of n random keys.

  Each key packs random bits above the position's bits (ties, rare, fall to the position), so one
  single-operand sort does it: several times faster on XLA:CPU than argsort's key-value sort, which had
  been a visible share of a cbow_neg step. Past n = 2**16 too few random bits would remain, and it falls
  back to argsort.
  """
  bits = sampling.random_bits(key, (n,))
  shift = max(n - 1, 1).bit_length()
  if shift > 16:
    return jnp.argsort(bits).astype(jnp.int32)
  low = jnp.uint32((1 << shift) - 1)
  return (jnp.sort((bits & ~low) | jnp.arange(n, dtype=jnp.uint32)) & low).astype(jnp.int32)


def make_bucketed_batch(tokens: jax.Array, sent: jax.Array, start, key: jax.Array,
                        noise: sampling.AliasTable, *, batch_size: int, window: int, neg: int
                        ) -> tuple[Batch, ...]:
  """W `Batch`es for centers start..start+B-1: group g has the centers with b = g+1 and 2(g+1) slots.

  tokens, sent: int32 [N] kept tokens and sentence ids (-1 on padding), as batches.make_batch reads.
  """
  n = tokens.shape[0]
  start = jnp.asarray(start, jnp.int32)
  perm = random_permutation(jax.random.fold_in(key, _WINDOW_SALT), batch_size)                  # [B]
  negs = sampling.negatives(jax.random.fold_in(key, _NEGATIVES_SALT), noise, (batch_size, neg))   # [B, K]
  groups, first = [], 0
  for g, size in enumerate(group_sizes(batch_size, window)):
    b = g + 1
    members = perm[first:first + size]                                         # [S] batch positions
    first += size
    pos = start + members                                                      # [S]
    offsets = np.concatenate([np.arange(-b, 0), np.arange(1, b + 1)])          # [2b] static
    ctx_pos = pos[:, None] + offsets                                           # [S, 2b]
    inside = lambda p: (p >= 0) & (p < n)
    center_sent = jnp.where(inside(pos), sent[jnp.clip(pos, 0, n - 1)], -1)    # [S]
    ctx_sent = jnp.where(inside(ctx_pos), sent[jnp.clip(ctx_pos, 0, n - 1)], -1)
    ok = (ctx_sent == center_sent[:, None]) & (center_sent >= 0)[:, None]      # [S, 2b]
    groups.append(Batch(center=jnp.where(center_sent >= 0, tokens[jnp.clip(pos, 0, n - 1)], 0),
                        context=jnp.where(ok, tokens[jnp.clip(ctx_pos, 0, n - 1)], 0),
                        mask=ok.astype(jnp.float32), negatives=negs[members]))
  return tuple(groups)
