"""The two pytrees every model shares: `Params` (the tables) and `Batch` (one minibatch).

Shape letters, used the same way throughout the package:
  B batch, V vocabulary, D embedding dim, C context slots (= 2 * window), K negatives.
"""
from typing import NamedTuple

import jax


class Params(NamedTuple):
  """The two embedding tables of word2vec.

  Row w of `W_in` is v_w, the input ("center") vector of word w: word2vec.c's `syn0`,
  gensim's `wv.vectors`. Row w of `W_out` is u_w, the output ("context") vector: word2vec.c's
  `syn1neg` (negative sampling) or the softmax weights (full softmax), gensim's `syn1neg`.
  """
  W_in: jax.Array   # [V, D]
  W_out: jax.Array  # [V, D]


class Batch(NamedTuple):
  """One fixed-shape minibatch; the same format feeds all four models.

  Padding is a mask, never a shape change, so a step is traced once.
  """
  center: jax.Array     # int32 [B]     the center word of each example
  context: jax.Array    # int32 [B, C]  its window, C = 2 * window slots (padding slots hold any valid id)
  mask: jax.Array       # float [B, C]  1.0 = real context word, 0.0 = padding
  negatives: jax.Array  # int32 [B, K]  noise words; ignored by the softmax models


class SpanBatch(NamedTuple):
  """The same minibatch as positions: B consecutive centers and the W words either side of them.

  `batches.to_batch` turns it into the `Batch` it stands for: center[b] = tokens[W + b] and
  context[b, j] = tokens[W + b + offset_j], offsets -W..-1, 1..W. Fast kernels read it to gather
  each position's row once instead of once per window it falls in (kernels.py).
  """
  tokens: jax.Array     # int32 [B+2W]  0 outside the corpus and on padding
  mask: jax.Array       # float [B, C]
  negatives: jax.Array  # int32 [B, K]
