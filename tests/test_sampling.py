"""word2vec.c's sampling: the subsampling rate, the noise distribution of negatives, the random bits."""
import jax
import numpy as np
import pytest
from scipy import stats

from w2v_jax import corpus, sampling
from w2v_jax.errors import W2VError

COUNTS = np.array([5000, 2000, 900, 400, 300, 120, 60, 30, 10, 5, 5, 1], dtype=np.int64)


def _encoded(tokens, offsets):
  return corpus.EncodedCorpus(np.asarray(tokens, np.int32), np.asarray(offsets, np.int64),
                              corpus.CorpusStats(1, len(tokens), 0))


def test_keep_probs_is_word2vec_c_formula():
  counts = np.array([1000, 10, 1], dtype=np.int64)
  sample, train_words = 1e-3, 1011
  expected = [min(1.0, (np.sqrt(cn / (sample * train_words)) + 1) * (sample * train_words) / cn)
              for cn in counts]
  np.testing.assert_allclose(sampling.keep_probs(counts, sample), expected, rtol=1e-12)
  assert expected[0] < 0.1 and expected[2] == 1.0
  np.testing.assert_array_equal(sampling.keep_probs(counts, 0.0), 1.0)
  with pytest.raises(W2VError, match='sample'):
    sampling.keep_probs(counts, -1e-3)


def test_subsampling_keeps_each_word_at_the_formula_rate():
  counts = (40_000 / np.arange(1, 21)).astype(np.int64)  # [20] Zipf
  tokens = np.random.default_rng(0).permutation(np.repeat(np.arange(20), counts))
  enc = _encoded(tokens, [0, 1000, len(tokens)])
  keep = sampling.keep_probs(counts, 1e-2)
  assert keep.min() < 0.3 and keep.max() == 1.0
  kept, _ = sampling.subsample(enc, keep, seed=0, epoch=0)
  n_kept = np.bincount(kept, minlength=20)
  sd = np.sqrt(counts * keep * (1 - keep))
  assert np.all(np.abs(n_kept - counts * keep) <= 5 * sd + 1e-9)


@pytest.mark.parametrize("mode", ["dirty", "clean"])
def test_subsample_draws_in_blocks_what_one_draw_would_keep(monkeypatch, mode):
  """subsample draws its keep decisions in blocks (to bound its memory): the kept tokens must be those of
  one draw of N uniforms against keep_prob[token], whatever the block size (ragged last block included)."""
  rng = np.random.default_rng(2)
  tokens = rng.integers(0, len(COUNTS), size=10_007)
  enc = _encoded(tokens, [0, 5000, len(tokens)])
  keep = sampling.keep_probs(COUNTS, 1e-2)
  one = np.random.Generator(np.random.PCG64([5, 3])).random(len(tokens), dtype=np.float32) < keep[tokens]
  sent = np.repeat([0, 1], [5000, len(tokens) - 5000]).astype(np.int32)
  expect = (tokens[one], sent[one]) if mode == "dirty" else (tokens, np.where(one, sent, -1))
  for block in (1000, 4096, 1 << 20):
    monkeypatch.setattr(sampling, "_SUBSAMPLE_BLOCK", block)
    got = sampling.subsample(enc, keep, seed=5, epoch=3, mode=mode)
    for g, e in zip(got, expect):
      np.testing.assert_array_equal(g, e)
  assert 0 < one.sum() < len(tokens)


def test_subsample_is_a_pure_function_of_seed_and_epoch_and_tracks_sentences():
  rng = np.random.default_rng(1)
  lengths = rng.integers(1, 30, size=300)
  offsets = np.concatenate([[0], np.cumsum(lengths)])
  tokens = rng.integers(0, len(COUNTS), size=offsets[-1])
  enc = _encoded(tokens, offsets)
  keep = sampling.keep_probs(COUNTS, 1e-2)
  a_tok, a_sent = sampling.subsample(enc, keep, seed=3, epoch=1)
  b_tok, b_sent = sampling.subsample(enc, keep, seed=3, epoch=1)
  np.testing.assert_array_equal(a_tok, b_tok)
  np.testing.assert_array_equal(a_sent, b_sent)
  assert a_tok.dtype == np.int32 and a_sent.dtype == np.int32 and len(a_tok) < len(tokens)
  assert not np.array_equal(sampling.subsample(enc, keep, seed=3, epoch=2)[0], a_tok)
  assert not np.array_equal(sampling.subsample(enc, keep, seed=4, epoch=1)[0], a_tok)
  all_tok, all_sent = sampling.subsample(enc, np.ones(len(COUNTS)), seed=3, epoch=1)
  np.testing.assert_array_equal(all_tok, tokens)
  np.testing.assert_array_equal(all_sent, np.repeat(np.arange(300), lengths))
  assert np.all(np.diff(a_sent) >= 0)


def test_noise_cdf_ends_exactly_at_one():
  cdf = sampling.noise_cdf(COUNTS)
  assert cdf.dtype == np.float64 and cdf[-1] == 1.0 and np.all(np.diff(cdf) > 0)
  np.testing.assert_allclose(np.diff(cdf, prepend=0), COUNTS ** 0.75 / np.sum(COUNTS ** 0.75))


def test_the_alias_table_is_exact_to_2_pow_minus_32():
  counts = np.random.default_rng(2).zipf(1.5, size=3000).astype(np.int64)
  table = sampling.noise_alias(counts)
  assert table.alias.shape == table.accept.shape == (4096,)  # columns: the power of two >= V
  assert table.alias.max() < 3000 and np.all(table.accept[3000:] == 0)
  column, accept = 1 / 4096, table.accept / 2 ** 32
  implied = (np.bincount(np.arange(4096), column * accept, 4096)
             + np.bincount(table.alias, column * (1 - accept), 4096))
  np.testing.assert_allclose(implied[:3000], sampling.noise_probs(counts), rtol=0, atol=2.0 ** -32)
  assert np.abs(implied[:3000] - sampling.noise_probs(counts)).sum() <= 2.0 ** -32


def _chi2_pvalue(draws, probs):
  observed = np.bincount(draws, minlength=len(probs))
  return stats.chisquare(observed, probs * len(draws)).pvalue


@pytest.mark.parametrize('backend', ['jax', 'numpy'])
def test_negatives_follow_counts_pow_0_75_and_the_test_rejects_1_0(backend):
  n = 200_000
  if backend == 'jax':
    draws = sampling.negatives(jax.random.PRNGKey(0), sampling.noise_alias(COUNTS), (n,))
  else:
    draws = sampling.negatives_np(np.random.default_rng(0), sampling.noise_cdf(COUNTS), (n,))
  draws = np.asarray(draws)
  assert draws.dtype == np.int32 and draws.min() >= 0 and draws.max() < len(COUNTS)
  assert _chi2_pvalue(draws, sampling.noise_probs(COUNTS, 0.75)) > 1e-3
  assert _chi2_pvalue(draws, sampling.noise_probs(COUNTS, 1.0)) < 1e-12
  assert _chi2_pvalue(draws, sampling.noise_probs(COUNTS, 0.70)) < 1e-6


def test_random_bits_are_uniform_and_keyed():
  key = jax.random.PRNGKey(7)
  bits = np.asarray(sampling.random_bits(key, (1 << 18,)))
  assert bits.dtype == np.uint32
  for byte in (bits >> 24, bits & 0xFF, (bits >> 11) & 0xFF):
    assert stats.chisquare(np.bincount(byte, minlength=256)).pvalue > 1e-3
  pairs = (bits[:-1] >> 28) * 16 + (bits[1:] >> 28)  # neighbours independent: uniform over 16 x 16
  assert stats.chisquare(np.bincount(pairs, minlength=256)).pvalue > 1e-3
  np.testing.assert_array_equal(sampling.random_bits(key, (1 << 18,)), bits)
  other = np.asarray(sampling.random_bits(jax.random.fold_in(key, 1), (1 << 18,)))
  assert np.mean(other == bits) < 1e-3
  assert sampling.random_bits(key, (3, 4)).shape == (3, 4)


def test_clean_subsampling_drops_the_same_words_but_keeps_their_positions():
  from w2v_jax.corpus import CorpusStats, EncodedCorpus
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 20, 500).astype(np.int32)
  corpus = EncodedCorpus(tokens, np.array([0, 120, 300, 500]), CorpusStats(1, 500, 0))
  keep = sampling.keep_probs(np.bincount(tokens, minlength=20) + 1, 1e-2)
  dirty_tok, dirty_sent = sampling.subsample(corpus, keep, 3, 1, "dirty")
  clean_tok, clean_sent = sampling.subsample(corpus, keep, 3, 1, "clean")
  assert np.array_equal(clean_tok, tokens)                                  # every position stays
  kept = clean_sent >= 0
  assert 0 < kept.sum() < len(tokens)                                       # some words were dropped
  assert np.array_equal(clean_tok[kept], dirty_tok) and np.array_equal(clean_sent[kept], dirty_sent)
