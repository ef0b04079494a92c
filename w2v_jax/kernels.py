"""Fast row-gradient kernels, each equal to a model's loss on a re-arranged batch (tested in float64).

`sgram_neg` as the issue defines it (h = v_center, K negatives shared by the window's context words)
learns measurably worse analogies than word2vec.c at equal settings: every shared negative receives n
copies of the same update n σ(u_k·h) h. word2vec.c instead draws K negatives per (center, context)
pair, which costs (K+1) output rows per *pair*. Ji et al. (2016, "Parallelizing Word2Vec in Shared
and Distributed Memory", pWord2Vec / HogBatch) keep word2vec.c's orientation, where the input vector
is the *context* word's, v_{context_j}, and the output rows are the center's and the negatives', and
share the K negatives across the window: one [n, D] x [D, 1+K] product per window. Each negative now
meets n different input vectors, and a window costs n + 1 + K rows, as the shared form does.

That objective is exactly sgram_neg's loss on the *swapped pairs* of the batch:
    swap_pairs(batch)[b·C + j] = (center = context[b, j], context = [center[b]], mask = [mask[b, j]],
                                  negatives = negatives[b])
since skip-gram's pair set is symmetric, it is the same skip-gram model trained on the same pairs.
`sgram_neg_swapped_row_grads(params, batch)` computes that loss and its row gradients without building
the [B·C]-example batch; tests/test_kernels.py checks it against jax.grad of
models.get("sgram_neg").loss on swap_pairs(batch).
"""
import jax
import jax.numpy as jnp

from w2v_jax.models import RowGrads
from w2v_jax.types import Batch, Params


def swap_pairs(batch: Batch) -> Batch:
  """[B] windows -> [B·C] one-context examples whose center is a context word and context the center."""
  B, C = batch.context.shape
  return Batch(center=batch.context.reshape(B * C), context=jnp.repeat(batch.center, C)[:, None],
               mask=batch.mask.reshape(B * C, 1), negatives=jnp.repeat(batch.negatives, C, axis=0))


def sgram_neg_swapped_row_grads(params: Params, batch: Batch):
  """(loss [B], RowGrads) of sgram_neg summed over swap_pairs(batch), per window b.

  With h_j = v_{context_j} [C, D], targets T = (u_center, u_{neg_1..K}) [1+K, D], s = h Tᵀ [C, 1+K]:
    L   = Σ_j m_j [softplus(−s_{j0}) + Σ_{k≥1} softplus(s_{jk})]
    G   = m ⊙ (σ(s) − [1, 0, .., 0])                       [C, 1+K]
    ∂L/∂h_j = Σ_t G_{jt} T_t   (G T)      ∂L/∂T_t = Σ_j G_{jt} h_j   (Gᵀ h)
  Both are small matrix products per window: no per-pair gather of the center or the negatives.
  """
  h = params.W_in[batch.context]                                              # [B, C, D]
  targets = params.W_out[jnp.concatenate([batch.center[:, None], batch.negatives], axis=1)]  # [B, 1+K, D]
  s = jnp.einsum("bcd,btd->bct", h, targets)                                   # [B, C, 1+K]
  sign = jnp.concatenate([-jnp.ones((1,), s.dtype), jnp.ones((s.shape[-1] - 1,), s.dtype)])
  m = batch.mask[:, :, None]
  loss = jnp.sum(m * jax.nn.softplus(sign * s), axis=(1, 2))                   # [B]
  label = (sign < 0).astype(s.dtype)                                           # 1 for the positive
  g = m * (jax.nn.sigmoid(s) - label)                                          # [B, C, 1+K]
  dh = jnp.einsum("bct,btd->bcd", g, targets)
  dt = jnp.einsum("bct,bcd->btd", g, h)
  D = h.shape[-1]
  out_idx = jnp.concatenate([batch.center[:, None], batch.negatives], axis=1).reshape(-1)
  return loss, RowGrads(batch.context.reshape(-1), dh.reshape(-1, D), out_idx, dt.reshape(-1, D))
