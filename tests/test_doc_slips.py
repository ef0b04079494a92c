"""Where the source documents' derivations are wrong, and exactly in which case they are."""
import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import Batch, losses, models
from tests.helpers import random_params


def _batch(rng, V, B, C, K, mask):
  return Batch(jnp.asarray(rng.integers(0, V, B), jnp.int32), jnp.asarray(rng.integers(0, V, (B, C)), jnp.int32),
               jnp.asarray(mask, jnp.float64), jnp.asarray(rng.integers(0, V, (B, K)), jnp.int32))


def test_doc001_center_gradient_drops_C():
  """Doc 001's ∂J/∂v_center = W2ᵀ(ŷ − y) is right with one context word, wrong with more."""
  rng = np.random.default_rng(0)
  V, D, B, C = 9, 2, 5, 2
  params = random_params(rng, V, D)
  auto = jax.grad(models.get("sgram").loss)
  one = _batch(rng, V, B, C, 0, np.tile([1.0, 0.0], (B, 1)))          # C = Σ y = 1: the case it covers
  np.testing.assert_allclose(losses.doc001_center_grad(params, one), auto(params, one).W_in, rtol=1e-10)
  two = one._replace(mask=jnp.ones((B, C)))                            # C = 2: the case it misses
  assert not np.allclose(losses.doc001_center_grad(params, two), auto(params, two).W_in, rtol=1e-3)
  np.testing.assert_allclose(models.get("sgram").grad(params, two).W_in, auto(params, two).W_in, rtol=1e-10)


def _doc002_cbow_context_grad(params, batch):
  """Doc 002's CBOW rule as printed: ∂L/∂h divided by `window − 1`, the number of context slots."""
  _, rg = losses.cbow_neg_row_grads(params, batch, cbow_context_grad="sum")
  C = batch.context.shape[1]
  return jnp.zeros_like(params.W_in).at[rg.in_idx].add(rg.in_rows / C) / batch.center.shape[0]


def test_doc002_cbow_division_is_right_only_for_a_full_window():
  rng = np.random.default_rng(1)
  V, D, B, C, K = 12, 4, 6, 4, 3
  params = random_params(rng, V, D)
  auto = jax.grad(models.get("cbow_neg").loss)
  full = _batch(rng, V, B, C, K, np.ones((B, C)))
  np.testing.assert_allclose(_doc002_cbow_context_grad(params, full), auto(params, full).W_in, rtol=1e-10)
  padded = full._replace(mask=jnp.asarray(np.tile([1.0, 1.0, 0.0, 0.0], (B, 1))))   # n = 2 < C = 4
  doc = _doc002_cbow_context_grad(params, padded)
  true = auto(params, padded).W_in
  assert not np.allclose(doc, true, rtol=1e-3)
  np.testing.assert_allclose(doc * 2.0, true, rtol=1e-10)   # too small by exactly n / (window − 1)


def test_doc002_alternative_loss_form_is_wrong():
  """Doc 002: "−log σ(c_pos·h) + Σ log σ(c_neg·h) − 1" is not −log σ(c_pos·h) − Σ log σ(−c_neg·h)."""
  x = np.array([-2.0, 0.0, 3.0])
  true = -np.log(1.0 / (1.0 + np.exp(x)))           # −log σ(−x)
  doc = np.log(1.0 / (1.0 + np.exp(-x))) - 1.0      # log σ(x) − 1
  assert not np.allclose(true, doc, atol=0.1)


def test_word2vec_cbow_rule_is_n_times_the_exact_context_gradient():
  """word2vec.c / gensim (cbow_mean=1) give each context word all of ∂L/∂h, not ∂L/∂h / n."""
  rng = np.random.default_rng(2)
  V, D, B, C, K = 15, 3, 5, 6, 2
  params = random_params(rng, V, D)
  mask = (rng.random((B, C)) < 0.6).astype(float)
  mask[:, 0] = 1.0
  batch = _batch(rng, V, B, C, K, mask)
  for name in ("cbow", "cbow_neg"):
    row_grads = models.get(name).row_grads
    _, exact = row_grads(params, batch, cbow_context_grad="mean")
    _, w2v = row_grads(params, batch, cbow_context_grad="sum")
    n = np.repeat(mask.sum(1), C)[:, None]
    np.testing.assert_allclose(w2v.in_rows, n * exact.in_rows, rtol=1e-12)
    np.testing.assert_allclose(w2v.out_rows, exact.out_rows, rtol=1e-12)   # W_out is unaffected
