"""Row-gradient rewrites equal a model's loss on a re-arranged batch, gradients included (float64)."""
import jax
import numpy as np
import pytest

from w2v_jax import losses, models, rewrites

from tests.helpers import awkward_batch, random_params


def _dense(params, rg, scale):
  return losses.apply_rows(jax.tree.map(jax.numpy.zeros_like, params), rg, scale)


@pytest.mark.parametrize("shape", [(7, 3, 6, 2, 1), (23, 8, 16, 10, 5)])
def test_swapped_kernel_is_sgram_neg_on_swapped_pairs(shape):
  V, D, B, C, K = shape
  rng = np.random.default_rng(5)
  params, batch = random_params(rng, V, D), awkward_batch(rng, V, B, C, K)
  loss, rg = jax.jit(rewrites.sgram_neg_swapped_row_grads)(params, batch)
  pairs = rewrites.swap_pairs(batch)
  model = models.get("sgram_neg")
  np.testing.assert_allclose(np.sum(loss) / (B * C), model.loss(params, pairs), rtol=1e-12)
  auto = jax.jit(jax.grad(model.loss))(params, pairs)
  for a, c in zip(auto, _dense(params, rg, 1.0 / (B * C))):
    np.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-13)


def test_swapped_pairs_hold_the_same_pairs():
  """Skip-gram's pair set is symmetric: swapping roles keeps every real (word, word) pair."""
  rng = np.random.default_rng(6)
  batch = awkward_batch(rng, 30, 8, 6, 2)
  pairs = rewrites.swap_pairs(batch)
  real = np.asarray(batch.mask) > 0
  fwd = sorted(zip(np.repeat(batch.center, 6)[real.ravel()], np.asarray(batch.context)[real]))
  back = sorted(zip(np.asarray(pairs.context)[:, 0][real.ravel()], np.asarray(pairs.center)[real.ravel()]))
  assert fwd == back


def _span(rng, V, B, window, K):
  from w2v_jax.types import SpanBatch
  C = 2 * window
  mask = (rng.random((B, C)) < 0.6).astype(np.float64)
  mask[0] = 0.0
  return SpanBatch(jax.numpy.asarray(rng.integers(0, min(V, 5), B + C), jax.numpy.int32),   # many repeats
                   jax.numpy.asarray(mask), jax.numpy.asarray(rng.integers(0, V, (B, K)), jax.numpy.int32))


@pytest.mark.parametrize("window", [1, 3])
def test_span_kernels_equal_their_batch_forms(window):
  from w2v_jax.batches import to_batch
  rng = np.random.default_rng(7)
  V, D, B, K = 9, 4, 10, 3
  params, span = random_params(rng, V, D), _span(rng, V, B, window, K)
  batch = to_batch(span)
  cases = [(rewrites.sgram_neg_swapped_span_row_grads, rewrites.sgram_neg_swapped_row_grads, {})]
  for rule in ("sum", "mean"):
    cases.append((rewrites.cbow_neg_span_row_grads, losses.cbow_neg_row_grads, {"cbow_context_grad": rule}))
  for span_fn, batch_fn, kw in cases:
    l1, r1 = span_fn(params, span, **kw)
    l2, r2 = batch_fn(params, batch, **kw)
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    for a, b in zip(_dense(params, r1, 1.0), _dense(params, r2, 1.0)):
      np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
  # and the exact rule is the gradient of the model's loss
  _, rg = rewrites.cbow_neg_span_row_grads(params, span, cbow_context_grad="mean")
  auto = jax.grad(models.get("cbow_neg").loss)(params, batch)
  for a, c in zip(auto, _dense(params, rg, 1.0 / B)):
    np.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-13)
