"""Optimisers on rows: sgd and adagrad give optax's tables exactly, adam is lazy, and a run learns."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from w2v_jax import engine, models, row_optimizers
from w2v_jax import step as step_lib
from w2v_jax.config import TrainConfig
from tests.helpers import awkward_batch, group_purity, planted_corpus, random_params


def _steps(optimizer: str, on: str, params, batches, lr):
  cfg = TrainConfig(model="sgram_neg", sgram_neg_form="shared", optimizer=optimizer, optimizer_on=on,
                    layout="batch", batch_size=batches[0].center.shape[0])
  spec = engine.select_step(cfg)
  state = spec.init(params)
  for b in batches:
    state, _ = jax.jit(spec.step)(state, b, lr)
  return spec, state


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_sgd_and_adagrad_on_rows_equal_optax_on_the_tables(optimizer):
  """An untouched row has a zero gradient: optax's sgd and adagrad leave it alone too, so the lazy forms
  are exact (three steps, repeated ids, padding, a fully masked example)."""
  rng = np.random.default_rng(0)
  V, B = 13, 8
  params = random_params(rng, V, 5)
  batches = [awkward_batch(rng, V, B, 4, 3) for _ in range(3)]
  spec, rows = _steps(optimizer, "rows", params, batches, 0.1)
  assert "lazy" in spec.name and spec.rows is not None
  _, tables = _steps(optimizer, "tables", params, batches, 0.1)
  for a, b in zip(rows.params, tables.params):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
  assert not np.allclose(rows.params.W_in, params.W_in)


def test_lazy_adam_leaves_untouched_rows_alone_and_dense_adam_does_not():
  rng = np.random.default_rng(1)
  V, B = 40, 4
  params = random_params(rng, V, 3)
  first = awkward_batch(rng, V, B, 2, 2)
  second = first._replace(center=jnp.zeros_like(first.center), context=jnp.zeros_like(first.context),
                          negatives=jnp.ones_like(first.negatives))   # touches words 0 and 1 only
  touched_first = set(np.unique(np.concatenate([np.asarray(x).ravel() for x in
                                                (first.center, first.context, first.negatives)])))
  _, lazy = _steps("adam", "rows", params, [first, second], 0.01)
  _, dense = _steps("adam", "tables", params, [first, second], 0.01)
  after_first = _steps("adam", "rows", params, [first], 0.01)[1]
  other = sorted(touched_first - {0, 1})
  # Lazy: rows touched only by the first step do not move in the second; dense Adam moves them again.
  np.testing.assert_array_equal(np.asarray(lazy.params.W_out)[other], np.asarray(after_first.params.W_out)[other])
  assert not np.allclose(np.asarray(dense.params.W_out)[other], np.asarray(after_first.params.W_out)[other])


def test_unique_rows_sums_duplicates():
  ids, g = row_optimizers.unique_rows(jnp.asarray([3, 1, 3, 3]), jnp.ones((4, 2)), 5)
  assert list(np.asarray(ids)) == [1, 3, 5, 5]
  np.testing.assert_allclose(np.asarray(g)[:2, 0], [1.0, 3.0])


def test_adam_on_rows_learns_the_planted_groups(tmp_path):
  from w2v_jax import corpus, loop
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(dim=16, window=2, neg=3, epochs=3, min_count=1, sample=0.0, batch_size=64, steps_per_call=4,
                    model="sgram_neg", optimizer="adam", lr=0.01)
  vocab, enc = corpus.prepare([path], cfg.min_count, cache_dir=tmp_path / "cache")
  result = loop.fit(cfg, vocab, enc)
  assert "lazy adam" in result.engine["step"]
  assert group_purity(vocab.words, np.asarray(result.params.W_in)) > 0.9
