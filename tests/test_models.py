"""The four losses against plain numpy loops, and their closed-form gradients against jax.grad."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from w2v_jax import Params, models
from tests.helpers import awkward_batch, random_params

SHAPES = [  # V, D, B, C, K
    (7, 3, 6, 2, 1),
    (11, 5, 9, 4, 3),
    (23, 8, 16, 10, 5),
    (5, 2, 7, 6, 0),
]


def _softplus(x):
  return np.logaddexp(0.0, x)


def numpy_loss(name, params, batch):
  """Straight from the formulas in the issue, one example at a time."""
  W_in, W_out = (np.asarray(p) for p in params)
  total = 0.0
  for i in range(len(batch.center)):
    c, ctx, m, neg = (np.asarray(a[i]) for a in batch)
    n = m.sum()
    if name in ("cbow", "cbow_neg"):
      if n == 0:
        continue
      h = sum(m[j] * W_in[ctx[j]] for j in range(len(ctx))) / n
      if name == "cbow":
        z = W_out @ h
        total += -(z[c] - np.log(np.exp(z).sum()))
      else:
        total += _softplus(-W_out[c] @ h) + sum(_softplus(W_out[k] @ h) for k in neg)
    else:
      h = W_in[c]
      if name == "sgram":
        z = W_out @ h
        log_y_hat = z - np.log(np.exp(z).sum())
        total += -sum(m[j] * log_y_hat[ctx[j]] for j in range(len(ctx)))
      else:
        total += sum(m[j] * (_softplus(-W_out[ctx[j]] @ h) + sum(_softplus(W_out[k] @ h) for k in neg))
                     for j in range(len(ctx)))
  return total / len(batch.center)


@pytest.mark.parametrize("name", models.NAMES)
@pytest.mark.parametrize("shape", SHAPES)
def test_loss_matches_numpy_loop(name, shape):
  V, D, B, C, K = shape
  rng = np.random.default_rng(0)
  params, batch = random_params(rng, V, D), awkward_batch(rng, V, B, C, K)
  np.testing.assert_allclose(jax.jit(models.get(name).loss)(params, batch), numpy_loss(name, params, batch),
                             rtol=1e-12)


@pytest.mark.parametrize("name", models.NAMES)
@pytest.mark.parametrize("shape", SHAPES)
def test_closed_form_grad_equals_autodiff(name, shape):
  V, D, B, C, K = shape
  rng = np.random.default_rng(1)
  params, batch = random_params(rng, V, D), awkward_batch(rng, V, B, C, K)
  model = models.get(name)
  auto = jax.jit(jax.grad(model.loss))(params, batch)
  closed = jax.jit(model.grad)(params, batch)
  assert isinstance(closed, Params)
  for a, c in zip(auto, closed):
    assert a.dtype == c.dtype == jnp.float64 and a.shape == c.shape == (V, D)
    np.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", models.NAMES)
def test_autodiff_is_checked_numerically(name):
  """A second, independent check: jax.grad of the loss against finite differences."""
  rng = np.random.default_rng(2)
  params, batch = random_params(rng, 9, 4), awkward_batch(rng, 9, 6, 4, 3)
  check_grads(lambda p: models.get(name).loss(p, batch), (params,), order=2, modes=("rev",))


@pytest.mark.parametrize("name", models.NAMES)
def test_empty_example_gives_zero_loss_and_grad(name):
  rng = np.random.default_rng(3)
  params, batch = random_params(rng, 8, 3), awkward_batch(rng, 8, 4, 4, 2)
  empty = batch._replace(mask=jnp.zeros_like(batch.mask))
  model = models.get(name)
  assert jax.jit(model.loss)(params, empty) == 0.0
  for g in jax.jit(model.grad)(params, empty):
    assert not np.any(np.asarray(g)) and np.all(np.isfinite(g))


@pytest.mark.parametrize("name", models.NAMES)
def test_jit_and_vmap(name):
  rng = np.random.default_rng(4)
  params, batch = random_params(rng, 10, 4), awkward_batch(rng, 10, 8, 6, 3)
  model = models.get(name)
  np.testing.assert_allclose(jax.jit(model.loss)(params, batch), model.loss(params, batch), rtol=1e-12)
  per_example = [model.example_loss(params, jax.tree.map(lambda a: a[i], batch)) for i in range(8)]
  np.testing.assert_allclose(model.loss(params, batch), np.mean(per_example), rtol=1e-12)
  vmapped = jax.vmap(model.example_loss, in_axes=(None, 0))(params, batch)
  np.testing.assert_allclose(vmapped, per_example, rtol=1e-12)
  for a, b in zip(jax.jit(model.grad)(params, batch), model.grad(params, batch)):
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_unknown_model_is_a_clear_error():
  with pytest.raises(models.W2VError, match="unknown model 'skipgram'.*cbow, cbow_neg, sgram, sgram_neg"):
    models.get("skipgram")


def test_names_and_init():
  assert models.NAMES == ("cbow", "cbow_neg", "sgram", "sgram_neg")
  p = models.init(jax.random.PRNGKey(0), 1000, 50)
  assert p.W_in.shape == p.W_out.shape == (1000, 50)
  assert not np.any(np.asarray(p.W_out))
  w = np.asarray(p.W_in) * 50
  assert w.min() >= -0.5 and w.max() < 0.5 and abs(w.mean()) < 0.01 and w.std() > 0.28  # U[-.5,.5): sd .289


def test_init_is_seeded_and_draws_every_row_in_blocks():
  a = np.asarray(models.init(jax.random.PRNGKey(3), 100_003, 64).W_in)   # 2 blocks, the last overlapping
  assert np.array_equal(a, np.asarray(models.init(jax.random.PRNGKey(3), 100_003, 64).W_in))
  assert not np.array_equal(a, np.asarray(models.init(jax.random.PRNGKey(4), 100_003, 64).W_in))
  assert len(np.unique(a[:, 0])) > 99_000                     # no block repeated, no row left at zero
  assert np.all(np.abs(a).max(axis=1) > 0) and abs((a * 64).std() - 0.2887) < 0.002


def test_init_peak_memory_is_the_tables_and_one_block():
  # An eager jax.random.uniform of [V, D] peaked at about 4 tables' worth above the tables (bits, floats,
  # two elementwise results): at V = 1M, D = 100 that was the run's peak RSS. Measured in a fresh process.
  code = ("import resource, jax; from w2v_jax import models\n"
          "jax.block_until_ready(models.init(jax.random.PRNGKey(0), 10, 4))\n"
          "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
          "jax.block_until_ready(models.init(jax.random.PRNGKey(0), 600_000, 100))\n"
          "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)")
  import subprocess, sys
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  tables_mb = 2 * 600_000 * 100 * 4 / 2**20                     # 458 MB
  assert float(out.stdout.split()[-1]) < tables_mb + 150, out.stdout
