"""Window-size buckets: every center once, its exact reduced window, and the same step as a padded batch."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from w2v_jax import buckets, sampling
from w2v_jax import step as step_lib
from w2v_jax.batches import context_offsets
from w2v_jax.types import Batch
from tests.helpers import random_params, jax_step

V, W, B, K = 40, 3, 20, 2
make = jax.jit(buckets.make_bucketed_batch, static_argnames=("batch_size", "window", "neg"))


def _data(rng, n=60):
  tokens = rng.integers(0, V, n).astype(np.int32)
  sent = np.repeat(np.arange(n // 7 + 1), 7)[:n].astype(np.int32)      # sentences of 7 words
  sent[-5:] = -1                                                        # padding at the end of the epoch
  noise = sampling.noise_alias(np.arange(1, V + 1))
  return jnp.asarray(tokens), jnp.asarray(sent), jax.tree.map(jnp.asarray, noise)


def _groups(start=10, seed=0):
  tokens, sent, noise = _data(np.random.default_rng(seed))
  groups = make(tokens, sent, start, jax.random.PRNGKey(seed), noise,
                                       batch_size=B, window=W, neg=K)
  return np.asarray(tokens), np.asarray(sent), groups


def test_each_center_once_with_its_exact_window():
  tokens, sent, groups = _groups()
  assert [g.center.shape[0] for g in groups] == buckets.group_sizes(B, W) == [7, 7, 6]
  n = len(tokens)
  seen = []
  for g_index, g in enumerate(groups):
    b = g_index + 1
    assert g.context.shape == g.mask.shape == (g.center.shape[0], 2 * b)
    for i in range(g.center.shape[0]):
      # recover the center's position: the one whose window matches (tokens are random, so unique)
      matches = [p for p in range(10, 10 + B) if p not in seen and
                 all((0 <= p + o < n and sent[p + o] == sent[p] >= 0) == bool(g.mask[i, j]) and
                     (not g.mask[i, j] or tokens[p + o] == g.context[i, j])
                     for j, o in enumerate([*range(-b, 0), *range(1, b + 1)]))
                 and (tokens[p] if sent[p] >= 0 else 0) == g.center[i]]
      assert matches, (b, i)
      seen.append(matches[0])
  assert sorted(seen) == list(range(10, 10 + B))


def test_window_sizes_are_uniform_over_many_steps():
  tokens, sent, noise = _data(np.random.default_rng(1))
  first_group = []
  for step in range(200):
    groups = make(tokens, sent, 0, jax.random.PRNGKey(step), noise,
                                         batch_size=B, window=W, neg=K)
    first_group.append(np.asarray(groups[0].center))
  # position 0's center is token[0]; it lands in group b=1 about 1/W of the time
  hits = np.mean([tokens[0] in g for g in first_group])
  assert 0.2 < hits < 0.5


@pytest.mark.parametrize("name", ["sgram_neg", "cbow_neg", "sgram"])
def test_bucketed_step_equals_the_padded_batch_step(name):
  _, _, groups = _groups(seed=2)
  offsets = list(context_offsets(W))
  center, context, mask, negs = [], [], [], []
  for g_index, g in enumerate(groups):
    b = g_index + 1
    slots = [offsets.index(o) for o in [*range(-b, 0), *range(1, b + 1)]]
    ctx = np.zeros((g.center.shape[0], 2 * W), np.int32)
    m = np.zeros((g.center.shape[0], 2 * W))
    ctx[:, slots], m[:, slots] = g.context, g.mask
    center.append(g.center), context.append(ctx), mask.append(m), negs.append(g.negatives)
  padded = Batch(jnp.concatenate(center), jnp.asarray(np.concatenate(context)), jnp.asarray(np.concatenate(mask)),
                 jnp.concatenate(negs))
  groups64 = tuple(g._replace(mask=g.mask.astype(jnp.float64)) for g in groups)
  params = random_params(np.random.default_rng(3), V, 4)
  bucketed = jax_step(name, "buckets").step(step_lib.TrainState(params), groups64, 0.05)
  plain = jax_step(name, "batch").step(step_lib.TrainState(params), padded, 0.05)
  for a, c in zip(bucketed[0].params, plain[0].params):
    np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(bucketed[1].loss_sum, plain[1].loss_sum, rtol=1e-6)
