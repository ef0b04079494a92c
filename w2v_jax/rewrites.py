"""Row-gradient rewrites in JAX: each equals a model's gradient on a re-arranged batch (tested in float64).

They are what the engine trains with when a layout or a rule asks for them: word2vec.c's swapped skip-gram,
the span layout, and K negatives per pair.

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
the [B·C]-example batch; tests/test_rewrites.py checks it against jax.grad of
models.get("sgram_neg").loss on swap_pairs(batch).
"""
import jax
import jax.numpy as jnp

from w2v_jax.losses import cbow_neg_head, context_scale, sgram_neg_row_grads
from w2v_jax.types import Batch, Params, RowGrads, SpanBatch, context_offsets, slots, unslots  # noqa: F401


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
  loss, dh, out_idx, out_rows = _swapped(params, params.W_in[batch.context], batch.center,
                                         batch.negatives, batch.mask)
  return loss, RowGrads(batch.context.reshape(-1), dh.reshape(-1, dh.shape[-1]), out_idx, out_rows)


def _swapped(params: Params, h, center, negatives, mask):
  """The swapped-form maths on gathered context rows h [B, C, D]; returns ∂L/∂h as [B, C, D]."""
  targets = params.W_out[jnp.concatenate([center[:, None], negatives], axis=1)]  # [B, 1+K, D]
  s = jnp.einsum("bcd,btd->bct", h, targets)                                   # [B, C, 1+K]
  sign = jnp.concatenate([-jnp.ones((1,), s.dtype), jnp.ones((s.shape[-1] - 1,), s.dtype)])
  m = mask[:, :, None]
  loss = jnp.sum(m * jax.nn.softplus(sign * s), axis=(1, 2))                   # [B]
  label = (sign < 0).astype(s.dtype)                                           # 1 for the positive
  g = m * (jax.nn.sigmoid(s) - label)                                          # [B, C, 1+K]
  dh = sum(g[:, :, t, None] * targets[:, None, t, :] for t in range(targets.shape[1]))   # [B, C, D]
  # Σ over the C slots written out: XLA:CPU runs this much faster than the batched dot of the einsum.
  dt = sum(g[:, c, :, None] * h[:, c, None, :] for c in range(h.shape[1]))    # [B, 1+K, D]
  out_idx = jnp.concatenate([center[:, None], negatives], axis=1).reshape(-1)
  return loss, dh, out_idx, dt.reshape(-1, h.shape[-1])


# ----------------------------------------------------------------------------- span kernels
# A batch of B consecutive centers touches only B + 2W positions. Gathering W_in once per position
# (not once per window slot: B·C rows) and summing each slot's gradient back onto its position with
# static shifted slices cuts the input-side gathers and scatter-adds by about C = 2W times.

def sgram_neg_swapped_span_row_grads(params: Params, span: SpanBatch):
  """`sgram_neg_swapped_row_grads` of batches.to_batch(span), from B+2W input rows: the W_in side as one
  row per span position (in_idx = span.tokens), the sum of what its context slots receive."""
  B, C = span.mask.shape
  window = C // 2
  h = slots(params.W_in[span.tokens], B, window)                   # [B, C, D]
  center = span.tokens[window:window + B]
  loss, dh, out_idx, out_rows = _swapped(params, h, center, span.negatives, span.mask)
  return loss, RowGrads(span.tokens, unslots(dh, window), out_idx, out_rows)


def cbow_neg_span_parts(params: Params, span: SpanBatch, cbow_context_grad: str):
  """cbow_neg on a SpanBatch from B+2W input rows: (loss [B], coef [B, C], ∂L/∂h [B, D], W_out parts as
  models.cbow_neg_head gives them). Context slot (b, j) receives coef[b, j] · ∂L/∂h_b
  (losses.context_scale); native.apply_span_rows sums those per position and writes B+2W rows, where
  `cbow_neg_span_row_grads` writes them out."""
  h, n = span_context_mean(params, span)
  window = span.mask.shape[1] // 2
  loss, dh, out_parts = cbow_neg_head(params, h, n, span.tokens[window:window + h.shape[0]], span.negatives)
  return loss, context_scale(span.mask, n, cbow_context_grad), dh, out_parts


def span_context_mean(params: Params, span: SpanBatch):
  """CBOW's hidden vectors on a SpanBatch, from B+2W input rows: h_b = Σ_j m_bj v(slot b, j) / max(n_b, 1)
  [B, D], and n_b = Σ_j m_bj [B]."""
  B, C = span.mask.shape
  window = C // 2
  rows = params.W_in[span.tokens]                                  # [B+2W, D]: each position once
  n = jnp.sum(span.mask, axis=1)
  # Σ_j m_bj · row[b + W + o_j], over static shifted slices: no [B, C, D] array is formed.
  h = sum(span.mask[:, j, None] * rows[window + o:window + o + B]
          for j, o in enumerate(context_offsets(window))) / jnp.maximum(n, 1.0)[:, None]
  return h, n


def cbow_neg_span_row_grads(params: Params, span: SpanBatch, cbow_context_grad: str):
  """`losses.cbow_neg_row_grads` of batches.to_batch(span), from B+2W input rows: the W_in side as one row
  per span position (in_idx = span.tokens), the sum of what its context slots receive."""
  loss, coef, dh, out_parts = cbow_neg_span_parts(params, span, cbow_context_grad)
  out_idx, out_rows = (jnp.concatenate(x) for x in zip(*out_parts))
  return loss, RowGrads(span.tokens, unslots(coef[:, :, None] * dh[:, None, :], coef.shape[1] // 2),
                        out_idx, out_rows)


# ----------------------------------------------------------------------------- K negatives per pair

def per_pair(batch: Batch, neg: int) -> Batch:
  """[B] examples with ≥ C·K negatives -> [B·C] one-context examples with K negatives each.

  For sgram_neg this gives every (center, context) pair its own negatives, as word2vec.c draws them. A
  batch of buckets.py has C = 2b < 2W slots: it uses the first C·K of its negatives."""
  B, C = batch.context.shape
  return Batch(jnp.repeat(batch.center, C), batch.context.reshape(B * C, 1), batch.mask.reshape(B * C, 1),
               batch.negatives[:, :C * neg].reshape(B * C, neg))


def sgram_neg_pairs_row_grads(params: Params, batch: Batch, neg: int):
  """sgram_neg with K negatives per (center, context) pair: the model's gradient on per_pair(batch), its
  loss summed back per window ([B])."""
  B, C = batch.context.shape
  loss, rg = sgram_neg_row_grads(params, per_pair(batch, neg))
  return loss.reshape(B, C).sum(axis=1), rg
