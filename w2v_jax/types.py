"""The pytrees every model and step share: `Params` (the tables), `Batch` (one minibatch), `SpanBatch` (the
same minibatch as corpus positions) and `RowGrads` (a gradient as table rows).

Shape letters, used the same way throughout the package:
  B batch, V vocabulary, D embedding dim, C context slots (= 2 * window), K negatives, W window.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Params(NamedTuple):
  """The two embedding tables of word2vec.

  Row w of `W_in` is v_w, the input ("center") vector of word w: word2vec.c's `syn0`,
  gensim's `wv.vectors`. Row w of `W_out` is u_w, the output ("context") vector: word2vec.c's
  `syn1neg` (negative sampling), `syn1` (hierarchical softmax: row i is inner node i) or the softmax
  weights (full softmax).
  """
  W_in: jax.Array   # [V, D]
  W_out: jax.Array  # [V, D]


class Batch(NamedTuple):
  """One fixed-shape minibatch; the same format feeds every model.

  Padding is a mask, never a shape change, so a step is traced once.
  """
  center: jax.Array     # int32 [B]     the center word of each example
  context: jax.Array    # int32 [B, C]  its window, C = 2 * window slots (padding slots hold any valid id)
  mask: jax.Array       # float [B, C]  1.0 = real context word, 0.0 = padding
  negatives: jax.Array  # int32 [B, K]  noise words; ignored by the softmax models


class SpanBatch(NamedTuple):
  """The same minibatch as positions: B consecutive centers and the W words either side of them.

  `batches.to_batch` turns it into the `Batch` it stands for: center[b] = tokens[W + b] and
  context[b, j] = tokens[W + b + offset_j], offsets `context_offsets(W)`. Span rewrites (rewrites.py)
  read it to gather each position's row once instead of once per window it falls in.
  """
  tokens: jax.Array     # int32 [B+2W]  0 outside the corpus and on padding
  mask: jax.Array       # float [B, C]
  negatives: jax.Array  # int32 [B, K]


class RowGrads(NamedTuple):
  """A gradient (or an update) of the *summed* batch loss, as rows to scatter-add into the tables.

  Ids may repeat (their rows add); an all-zero row is padding and counts as no update."""
  in_idx: jax.Array    # int32 [M_in]       rows of W_in
  in_rows: jax.Array   # [M_in, D]
  out_idx: jax.Array   # int32 [M_out]      rows of W_out
  out_rows: jax.Array  # [M_out, D]


def context_offsets(window: int) -> np.ndarray:
  """int32 [C]: the slot order of `Batch.context`, -W..-1 then 1..W."""
  return np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)]).astype(np.int32)


# A span's rows by context slot and back (the span layout's two reshapes; rewrites.py and rows.py use them).
def slots(rows, B: int, window: int):
  """[B+2W, D] per-position rows -> [B, C, D]: row of context slot j of center b = rows[W + b + o_j]."""
  return jnp.stack([rows[window + o:window + o + B] for o in context_offsets(window)], axis=1)


def unslots(grads, window: int):
  """[B, C, D] per-slot gradients -> [B+2W, D] per position: the transpose of `slots`."""
  return sum(jnp.pad(grads[:, j], ((window + o, window - o), (0, 0)))
             for j, o in enumerate(context_offsets(window)))
