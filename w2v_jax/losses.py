"""The four models of the source documents: per-example losses, and each one's closed-form gradient beside it.

Notation (per example; a batch loss is the mean over the B examples of a `Batch`):
  v_w = W_in[w] (input / "center" vector),  u_w = W_out[w] (output / "context" vector),
  m_j = mask[j],  n = Σ_j m_j (number of real context words),  σ = logistic function,
  −log σ(x) = softplus(−x).  An example with n = 0 has loss 0 and gradient 0.

  cbow       h = Σ_j m_j v_{context_j} / n          L = −log softmax(W_out h)[center]
  sgram      h = v_center, ŷ = softmax(W_out h)     L = −Σ_j m_j log ŷ[context_j]
  cbow_neg   h as in cbow                           L = −log σ(u_center·h) − Σ_k log σ(−u_{neg_k}·h)
  sgram_neg  h = v_center                           L = Σ_j m_j [−log σ(u_{context_j}·h) − Σ_k log σ(−u_{neg_k}·h)]

How the source documents' matrices map onto `Params` (they disagree on orientation):
  doc 000 (CBOW, numpy):     A1 = X W1, A2 = A1 W2 with X a row one-hot.  W1 = W_in, W2 = W_outᵀ.
  doc 001 (skip-gram):       v = W1 x, W2 v with x a column one-hot.       W1 = W_inᵀ, W2 = W_out.
  doc 002 (negative sampl.): h is a *column* of W1, c_pos/c_neg *rows* of W2.  W1 = W_inᵀ, W2 = W_out.
  doc 003 (notes):           h = W1 x, s = W2 h.                            W1 = W_inᵀ, W2 = W_out.

Each gradient is one function per model, `<model>_row_grads(params, batch) -> (loss [B], RowGrads)`: the
gradient of the summed batch loss with respect to the rows the batch touches. models.py registers them,
`Model.grad` scatters them into dense [V, D] arrays for the tests, and the training step scatter-adds
them into the tables: the code the tests check against `jax.grad` is the code that trains.
"""
import jax
import jax.numpy as jnp

from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, Params, RowGrads

CBOW_CONTEXT_GRADS = ("mean", "sum")


# ----------------------------------------------------------------------------- losses (one example)

def _context_mean(params: Params, context, mask):
  """h = Σ_j m_j v_{context_j} / n, and n; h = 0 when n = 0."""
  n = jnp.sum(mask)
  h = jnp.sum(mask[:, None] * params.W_in[context], axis=0) / jnp.maximum(n, 1.0)
  return h, n


def _logits(W_out, h, log_prior):
  """W_out h (+ the fixed log-unigram prior b, see `log_unigram_prior`)."""
  z = W_out @ h if h.ndim == 1 else h @ W_out.T
  return z if log_prior is None else z + log_prior.astype(z.dtype)


def log_unigram_prior(counts) -> jax.Array:
  """b_w = log(count_w / Σ count) [V]: the fixed output bias the full-softmax models train with.

  Why. −log softmax(W_out h)[w] is minimised at u_w·h = log p(w | context) + const, and
  log p(w | c) = PMI(w, c) + log p(w). Without a bias the log p(w) term, the same for every context,
  must come from the vectors themselves: every h grows a shared component a with u_w·a ≈ log p(w). On
  the dev corpus that component dominates: after an epoch all input vectors point the same way (mean
  pairwise cosine 0.96-0.99 over the 2,000 most frequent words, for exact sequential SGD as well as for
  the minibatch step), so cosine similarity sees only noise, and the loss sits at the unigram entropy
  (7.7 nats on the shipped corpus; ln V = 9.0). With b_w = log p(w) added to the logits the vectors
  only have to carry PMI(w, c), the quantity negative sampling's optimum (PMI − log k) carries and the
  one analogies and word similarity read. The loss is still the negative log-likelihood of a softmax
  over the V words: the documents' model with a fixed output bias. The gradients are the documents'
  with ŷ = softmax(W_out h + b). `softmax_prior="none"` trains the documents' model as written.
  """
  counts = jnp.asarray(counts, jnp.float32)
  return jnp.log(counts / jnp.sum(counts))


def cbow_example_loss(params: Params, ex: Batch, log_prior=None) -> jax.Array:
  """−log softmax(W_out h + b)[center], h the mean of the context's input vectors (doc 000; b = 0 there,
  or the fixed prior of `log_unigram_prior`)."""
  h, n = _context_mean(params, ex.context, ex.mask)
  loss = -jax.nn.log_softmax(_logits(params.W_out, h, log_prior))[ex.center]
  return jnp.where(n > 0, loss, 0.0)


def sgram_example_loss(params: Params, ex: Batch, log_prior=None) -> jax.Array:
  """−Σ_j m_j log softmax(W_out v_center + b)[context_j] = −yᵀ log ŷ of doc 001 (b = 0 there)."""
  log_y_hat = jax.nn.log_softmax(_logits(params.W_out, params.W_in[ex.center], log_prior))
  return -jnp.sum(ex.mask * log_y_hat[ex.context])


def cbow_neg_example_loss(params: Params, ex: Batch) -> jax.Array:
  """−log σ(u_center·h) − Σ_k log σ(−u_{neg_k}·h), h the context mean (doc 002)."""
  h, n = _context_mean(params, ex.context, ex.mask)
  loss = (jax.nn.softplus(-params.W_out[ex.center] @ h)
          + jnp.sum(jax.nn.softplus(params.W_out[ex.negatives] @ h)))
  return jnp.where(n > 0, loss, 0.0)


def sgram_neg_example_loss(params: Params, ex: Batch) -> jax.Array:
  """Σ_j m_j [−log σ(u_{context_j}·h) − Σ_k log σ(−u_{neg_k}·h)], h = v_center (doc 002)."""
  h = params.W_in[ex.center]
  pos = jax.nn.softplus(-params.W_out[ex.context] @ h)                   # [C]
  neg = jnp.sum(jax.nn.softplus(params.W_out[ex.negatives] @ h))         # shared by the C slots
  return jnp.sum(ex.mask * (pos + neg))


# ----------------------------------------------------------------------------- closed-form gradients

def check_context_grad(cbow_context_grad: str) -> None:
  if cbow_context_grad not in CBOW_CONTEXT_GRADS:
    raise W2VError(f"cbow_context_grad must be one of {', '.join(CBOW_CONTEXT_GRADS)}, got {cbow_context_grad!r}")


def context_scale(mask, n, cbow_context_grad: str):
  """[B, C] factor of ∂L/∂h that each context slot receives (see `_scatter_context`)."""
  check_context_grad(cbow_context_grad)
  return mask if cbow_context_grad == "sum" else mask / jnp.maximum(n, 1.0)[:, None]


def _scatter_context(batch: Batch, dh, n, cbow_context_grad: str):
  """Rows of W_in for a CBOW context: ∂L/∂v_{context_j} = m_j ∂L/∂h / n.

  `cbow_context_grad="mean"` is that exact gradient of the mean. `"sum"` is the rule of word2vec.c
  (`syn0[..] += neu1e`) and gensim with its default cbow_mean=1 (`fast_sentence_cbow_neg` scales the
  error by 1/count only when cbow_mean=0): the forward pass averages, but every context word receives
  the *whole* ∂L/∂h, i.e. n times the true gradient of the mean.
  """
  scale = context_scale(batch.mask, n, cbow_context_grad)
  rows = scale[:, :, None] * dh[:, None, :]                                  # [B, C, D]
  return batch.context.reshape(-1), rows.reshape(-1, dh.shape[-1])


def weighted_rows(w, rows):
  """Σ_j w[b, j] rows[b, j, :] -> [B, D], the einsum "bj,bjd->bd" written out over j (XLA:CPU ran that
  batched dot as a slow loop when this was written; with jax 0.10.2 at B = 1024, C = 10, D = 100 the two
  forms took 87-132 µs alike, jitted alone)."""
  return sum(w[:, j, None] * rows[:, j] for j in range(rows.shape[1]))


def row_dots(rows, h):
  """rows[b, j, :] · h[b, :] -> [B, J], the einsum "bjd,bd->bj" as a fused multiply and sum."""
  return jnp.sum(rows * h[:, None, :], axis=-1)


def _batch_h(params: Params, batch: Batch):
  n = jnp.sum(batch.mask, axis=1)                                            # [B]
  h = jnp.einsum("bc,bcd->bd", batch.mask, params.W_in[batch.context]) / jnp.maximum(n, 1.0)[:, None]
  return h, n


def cbow_row_grads(params: Params, batch: Batch, cbow_context_grad: str, log_prior=None):
  """Closed form of doc 000, generalised to a masked context mean.

  With z = W_out h, p = softmax(z) and e = p − onehot(center) (doc 000's `da2 = Z − y`):
    ∂L/∂u_w = e_w h            (doc 000: dw2 = a1ᵀ da2, transposed since W2 = W_outᵀ)
    ∂L/∂h   = W_outᵀ e         (doc 000: da1 = da2 W2ᵀ)
    ∂L/∂v_{context_j} = m_j ∂L/∂h / n.
  Doc 000's `dw1 = Xᵀ da1` is right when X is the *averaged* context one-hot; fed a single context
  word (its "one of the context words" pairs) it trains skip-gram-like pairs, not the CBOW mean.
  Doc 000 also writes the objective without its minus sign ("1/T Σ log P") and with the skip-gram
  conditional P(w_{t+j}|w_t); the loss minimised here is −log P(center | context).
  """
  h, n = _batch_h(params, batch)
  valid = (n > 0).astype(h.dtype)
  logits = _logits(params.W_out, h, log_prior)                               # [B, V]
  loss = valid * (jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(
      logits, batch.center[:, None], axis=1)[:, 0])
  e = valid[:, None] * (jax.nn.softmax(logits, axis=1)
                        - jax.nn.one_hot(batch.center, logits.shape[1], dtype=h.dtype))
  in_idx, in_rows = _scatter_context(batch, e @ params.W_out, n, cbow_context_grad)
  V = params.W_out.shape[0]
  return loss, RowGrads(in_idx, in_rows, jnp.arange(V), e.T @ h)


def sgram_row_grads(params: Params, batch: Batch, log_prior=None):
  """Closed form of doc 001, with its slip in ∂J/∂v_center corrected.

  y = Σ_j m_j onehot(context_j) (repeats add), C = Σ_w y_w = n, ŷ = softmax(W_out v_center):
    ∂J/∂u_w      = (C ŷ_w − y_w) v_center        (doc 001: ∂J/∂W2 = (Cŷ − y) v_centerᵀ; correct)
    ∂J/∂v_center = W_outᵀ (C ŷ − y)              (doc 001 writes W2ᵀ(ŷ − y): it drops C)
  Doc 001's ∂J/∂v_center is right only when the window holds exactly one context word (C = 1).
  Its own line above, −Σ y u + Σ u ŷ, silently took Σ_w y_w = 1; the ŷ term appears once per
  context word, so it is C Σ_w u_w ŷ_w. `doc001_center_grad` keeps the document's version for the test.
  """
  h = params.W_in[batch.center]                                              # [B, D]
  n = jnp.sum(batch.mask, axis=1)
  logits = _logits(params.W_out, h, log_prior)                               # [B, V]
  V = logits.shape[1]
  y = jnp.zeros_like(logits).at[jnp.arange(logits.shape[0])[:, None], batch.context].add(batch.mask)
  loss = n * jax.nn.logsumexp(logits, axis=1) - jnp.sum(y * logits, axis=1)
  e = n[:, None] * jax.nn.softmax(logits, axis=1) - y                        # C ŷ − y
  return loss, RowGrads(batch.center, e @ params.W_out, jnp.arange(V), e.T @ h)


def doc001_center_grad(params: Params, batch: Batch) -> jax.Array:
  """Doc 001's ∂J/∂W1 as printed, W2ᵀ(ŷ − y) xᵀ, mapped to W_in: kept only to test the slip."""
  h = params.W_in[batch.center]
  logits = h @ params.W_out.T
  y = jnp.zeros_like(logits).at[jnp.arange(logits.shape[0])[:, None], batch.context].add(batch.mask)
  rows = (jax.nn.softmax(logits, axis=1) - y) @ params.W_out
  return jnp.zeros_like(params.W_in).at[batch.center].add(rows) / batch.center.shape[0]


def cbow_neg_row_grads(params: Params, batch: Batch, cbow_context_grad: str):
  """Closed form of doc 002 for CBOW, with its slip in the context division corrected.

  With s₊ = u_center·h, s_k = u_{neg_k}·h, g₊ = σ(s₊) − 1 and g_k = σ(s_k) = 1 − σ(−s_k):
    ∂L/∂u_center = g₊ h,   ∂L/∂u_{neg_k} = g_k h,   ∂L/∂h = g₊ u_center + Σ_k g_k u_{neg_k}
  (doc 002, correct), and ∂L/∂v_{context_j} = m_j ∂L/∂h / n.
  Doc 002 divides ∂L/∂h by `window − 1`, the number of context *slots*. That equals n only when
  every slot holds a real word; at a sentence edge, or under word2vec's reduced window, n is smaller
  and the document's gradient is too small by n/(window−1). Its alternative form of the loss,
  −log σ(c_pos·h) + Σ log σ(c_neg·h) − 1, is also wrong: log σ(−x) = log(1 − σ(x)), not log σ(x) − 1.
  A negative equal to the center (or repeated) simply adds its rows: both are scatter-adds.
  """
  h, n = _batch_h(params, batch)
  loss, dh, out_parts = cbow_neg_head(params, h, n, batch.center, batch.negatives)
  out_idx, out_rows = (jnp.concatenate(x) for x in zip(*out_parts))
  in_idx, in_rows = _scatter_context(batch, dh, n, cbow_context_grad)
  return loss, RowGrads(in_idx, in_rows, out_idx, out_rows)


def cbow_neg_head(params: Params, h, n, center, negatives):
  """cbow_neg from the hidden vector on: (loss [B], ∂L/∂h [B, D], W_out rows as two parts).

  The parts are (center ids [B], their rows) and (negative ids [B·K], their rows): the step hands both to
  the row kernel as they are, without the copy that joining them costs; RowGrads joins them."""
  valid = (n > 0).astype(h.dtype)
  u_pos = params.W_out[center]                                               # [B, D]
  u_neg = params.W_out[negatives]                                            # [B, K, D]
  s_pos = jnp.sum(u_pos * h, axis=1)                                         # [B]
  s_neg = row_dots(u_neg, h)                                                 # [B, K]
  loss = valid * (jax.nn.softplus(-s_pos) + jnp.sum(jax.nn.softplus(s_neg), axis=1))
  g_pos = valid * (jax.nn.sigmoid(s_pos) - 1.0)
  g_neg = valid[:, None] * jax.nn.sigmoid(s_neg)
  dh = g_pos[:, None] * u_pos + weighted_rows(g_neg, u_neg)
  return loss, dh, [(center, g_pos[:, None] * h),
                    (negatives.reshape(-1), (g_neg[:, :, None] * h[:, None, :]).reshape(-1, h.shape[1]))]


def sgram_neg_row_grads(params: Params, batch: Batch):
  """Closed form of doc 002 for skip-gram, with the K negatives shared by the n context words.

  With h = v_center, s_j = u_{context_j}·h, s_k = u_{neg_k}·h:
    ∂L/∂u_{context_j} = m_j (σ(s_j) − 1) h
    ∂L/∂u_{neg_k}     = n σ(s_k) h               (doc 002 gives σ(s_k) h per positive word; a shared
                                                   negative meets all n positives, hence the factor n)
    ∂L/∂v_center      = Σ_j m_j (σ(s_j) − 1) u_{context_j} + n Σ_k σ(s_k) u_{neg_k}
  """
  h = params.W_in[batch.center]                                              # [B, D]
  n = jnp.sum(batch.mask, axis=1)
  u_ctx = params.W_out[batch.context]                                        # [B, C, D]
  u_neg = params.W_out[batch.negatives]                                      # [B, K, D]
  s_ctx = jnp.einsum("bcd,bd->bc", u_ctx, h)
  s_neg = jnp.einsum("bkd,bd->bk", u_neg, h)
  loss = (jnp.sum(batch.mask * jax.nn.softplus(-s_ctx), axis=1)
          + n * jnp.sum(jax.nn.softplus(s_neg), axis=1))
  g_ctx = batch.mask * (jax.nn.sigmoid(s_ctx) - 1.0)                         # [B, C]
  g_neg = n[:, None] * jax.nn.sigmoid(s_neg)                                 # [B, K]
  dh = jnp.einsum("bc,bcd->bd", g_ctx, u_ctx) + jnp.einsum("bk,bkd->bd", g_neg, u_neg)
  out_idx = jnp.concatenate([batch.context, batch.negatives], axis=1).reshape(-1)   # [B*(C+K)]
  g_out = jnp.concatenate([g_ctx, g_neg], axis=1)                            # [B, C+K]
  out_rows = (g_out[:, :, None] * h[:, None, :]).reshape(-1, h.shape[1])
  return loss, RowGrads(batch.center, dh, out_idx, out_rows)


def apply_rows(params: Params, rg: RowGrads, scale) -> Params:
  """params + scale · (rows scattered into their tables): how `Model.grad` makes its dense gradient."""
  return Params(params.W_in.at[rg.in_idx].add((scale * rg.in_rows).astype(params.W_in.dtype)),
                params.W_out.at[rg.out_idx].add((scale * rg.out_rows).astype(params.W_out.dtype)))
