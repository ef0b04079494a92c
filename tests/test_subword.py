"""The subword models (subword.py, ngrams.py): gensim's bucket ids, the closed forms, the engine's tables,
a user's subword loss, and what training on the shipped corpus learns, with gensim's vectors for new words."""
import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gensim.models.fasttext import FastTextKeyedVectors, ft_hash_bytes, ft_ngram_hashes

import w2v_jax  # noqa: F401  (registers the models)
from w2v_jax import api, engine, models, native, ngrams, subword, vectors
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from w2v_jax.types import Params

NON_ASCII = ["café", "naïve", "straße", "日本語", "😀x", "Ωmega", "façade", "ü", "ñandú"]
OFF = native.Status(False, "off in this test")


def corpus_words(limit=None):
  """The shipped corpus's distinct tokens, in order of first use."""
  seen = {}
  with gzip.open(api.DEFAULT_CORPUS, "rt", encoding="utf-8") as f:
    for line in f:
      for w in line.split():
        seen.setdefault(w, None)
  return list(seen)[:limit]


@pytest.mark.parametrize("min_n,max_n,buckets", [(3, 6, 2_000_000), (1, 4, 1009), (2, 8, 20_000)])
def test_bucket_ids_are_gensims(min_n, max_n, buckets):
  words = corpus_words() + NON_ASCII + ["a", "<>", "ab", "abab"]
  ids, offsets = ngrams.vocab_hashes(words, min_n, max_n, buckets)
  for i, w in enumerate(words):
    assert ids[offsets[i]:offsets[i + 1]].tolist() == list(ft_ngram_hashes(w, min_n, max_n, buckets)), w


def test_fnv1a_sign_extends_bytes_as_fasttext():
  for data in (b"<the>", "<café>".encode(), "日本".encode()):
    assert ngrams.fnv1a(data) == ft_hash_bytes(data)
  plain = (2166136261 ^ 0xC3) * 16777619 % 2**32     # the textbook FNV-1a of one byte 0xC3
  assert ngrams.fnv1a(b"\xc3") != plain


def test_bag_table_holds_the_word_and_its_ngrams():
  words = ["walk", "walked", "a"]
  rows, weight = ngrams.bag_table(*ngrams.vocab_hashes(words, 3, 6, 50), 3)
  for v, w in enumerate(words):
    want = [v] + [3 + h for h in ft_ngram_hashes(w, 3, 6, 50)]
    assert rows[v, :len(want)].tolist() == want and weight[v].sum() == len(want)
    assert np.all(rows[v, len(want):] == v) and np.all(weight[v, len(want):] == 0)


def test_bad_ngram_settings_are_one_line():
  for kw in ({"min_n": 0}, {"min_n": 4, "max_n": 3}, {"buckets": 0}):
    with pytest.raises(W2VError, match="min_n|buckets"):
      TrainConfig(model="sgram_subword_neg", **kw).validate()


@pytest.mark.parametrize("name", ["sgram_subword_neg", "cbow_subword_neg"])
def test_closed_forms_match_autodiff(name):
  assert models.check_gradients(name, buckets=7) < 1e-12                    # shared rows: many collisions
  assert models.check_gradients(name, buckets=1000, min_n=1, max_n=2, vocab_size=16, window=3) < 1e-12


@pytest.mark.parametrize("name", ["sgram_subword_neg", "cbow_subword_neg"])
def test_fasttext_rule_is_not_the_gradient(name):
  """train_rows ("sum": every bag row gets the whole ∂L/∂h) differs from the gradient by the bag sizes: the
  checker would catch it, so it can fail."""
  model = models.get(name).configure(words=list(models.CHECK_WORDS), buckets=7, neg=2)
  rng = np.random.default_rng(1)
  V = len(models.CHECK_WORDS)
  params = Params(jnp.asarray(rng.normal(size=(V + 7, 4))), jnp.asarray(rng.normal(size=(V, 4))))
  batch = models.random_check_batch(rng, V, 6, 4, 8 if model.negatives_per_slot else 2)
  exact, rule = (models.Model.grad.fget(model._replace(row_grads=f))(params, batch)
                 for f in (model.row_grads, model.train_rows))
  np.testing.assert_allclose(rule.W_out, exact.W_out, rtol=1e-12)
  assert np.max(np.abs(rule.W_in - exact.W_in)) > 0.1 * np.max(np.abs(exact.W_in))


def test_without_ngrams_it_steps_as_sgram_neg_pairs():
  V, N = 40, 9
  words, counts = [f"w{i}" for i in range(V)], np.arange(V, 0, -1)
  sub = engine.select_step(TrainConfig(model="sgram_subword_neg", layout="batch", max_dup=None, min_n=40,
                                       max_n=40, buckets=N), backend_status=OFF, counts=counts, words=words)
  ref = engine.select_step(TrainConfig(model="sgram_neg", sgram_neg_form="pairs", layout="batch", max_dup=None),
                           backend_status=OFF, counts=counts, words=words)
  rng = np.random.default_rng(0)
  W_in, W_out = rng.normal(size=(V + N, 8)), rng.normal(size=(V, 8))
  batch = models.random_check_batch(rng, V, 16, 4, 4 * 5)
  a, _ = sub.step(sub.init(Params(jnp.asarray(W_in), jnp.asarray(W_out))), batch, 0.1)
  b, _ = ref.step(ref.init(Params(jnp.asarray(W_in[:V]), jnp.asarray(W_out))), batch, 0.1)
  np.testing.assert_allclose(a.params.W_in[:V], b.params.W_in, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(a.params.W_out, b.params.W_out, rtol=1e-12, atol=1e-12)
  np.testing.assert_array_equal(a.params.W_in[V:], W_in[V:])
  assert sub.model.extra_in_rows == N


def _user_loss(table, params, ex):
  """A user's subword loss: cbow_subword_neg's, written with the public helpers only."""
  s, c = subword.bag_sum(table, params.W_in, ex.context)
  N = jnp.sum(ex.mask * c)
  h = jnp.sum(ex.mask[:, None] * s, axis=0) / jnp.maximum(N, 1.0)
  loss = jax.nn.softplus(-params.W_out[ex.center] @ h) + jnp.sum(jax.nn.softplus(params.W_out[ex.negatives] @ h))
  return jnp.where(N > 0, loss, 0.0)


def test_a_users_subword_loss_trains_by_autodiff_on_its_rows():
  """subword.register without a closed form: autodiff on the bag rows gives the closed form's gradient."""
  subword.register("test_user_subword", _user_loss, per_pair=False)
  words = list(models.CHECK_WORDS)
  mine = models.get("test_user_subword").configure(words=words, buckets=7)
  ref = models.get("cbow_subword_neg").configure(words=words, buckets=7)
  rng = np.random.default_rng(2)
  V = len(words)
  params = Params(jnp.asarray(rng.normal(size=(V + 7, 4))), jnp.asarray(rng.normal(size=(V, 4))))
  batch = models.random_check_batch(rng, V, 8, 4, 3)
  got = models.Model.grad.fget(mine._replace(row_grads=mine.train_rows))(params, batch)
  want = ref.grad(params, batch)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
  assert mine.extra_in_rows == 7


def test_mesh_is_refused_in_one_line():
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
  with pytest.raises(W2VError, match="drop --mesh"):
    engine.select_step(TrainConfig(model="sgram_subword_neg", buckets=50), mesh, backend_status=OFF,
                       counts=np.ones(3), words=["a", "b", "c"])


def test_training_learns_and_new_words_get_gensims_vectors(tmp_path):
  """One epoch of the shipped corpus: the syntactic analogies (the n-grams' part) above a floor; a
  misspelt word's neighbours find the word; vectors.txt = gensim's adjust_vectors of our rows, and a word
  outside the vocabulary = gensim's get_vector from subwords.npz."""
  cfg = TrainConfig(model="sgram_subword_neg", buckets=20_000, epochs=1)
  result = api.train(cfg, None, tmp_path / "run", cache_dir=tmp_path / "cache", log_every_s=0.0)
  assert result.evaluation["analogy"]["syntactic"] > 0.08   # sgram_neg after one epoch: 0.06%
  kv = vectors.load(tmp_path / "run" / "vectors.txt")
  assert isinstance(kv, vectors.SubwordVectors)
  for typo, word in (("governmnet", "government"), ("presidnet", "president")):
    assert typo not in kv and word in kv   # its n-grams find the word's family (governor, govern, ...)
    assert sum(w.startswith(word[:4]) for w, _ in kv.most_similar(typo, topn=10)) >= 3, typo
  V = len(kv)
  W_in = np.asarray(result.params.W_in, np.float32)
  assert W_in.shape == (V + cfg.buckets, cfg.dim)
  ft = FastTextKeyedVectors(cfg.dim, cfg.min_n, cfg.max_n, cfg.buckets)
  ft.add_vectors(kv.words, np.zeros((V, cfg.dim), np.float32))
  ft.vectors_vocab, ft.vectors_ngrams = W_in[:V], W_in[V:]
  ft.recalc_char_ngram_buckets()
  ft.adjust_vectors()
  np.testing.assert_allclose(kv.vectors, ft.vectors, rtol=1e-5, atol=1e-6)
  for word in ("governmnet", "unpresidential", "café", "zzzz"):
    np.testing.assert_allclose(kv[word], ft.get_vector(word), rtol=1e-5, atol=1e-7)
  assert kv.similarity("presidnet", "president") == pytest.approx(
      float(np.dot(ft.get_vector("presidnet", norm=True), ft.get_vector("president", norm=True))), abs=1e-5)
