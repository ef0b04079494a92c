"""The vocabulary: order, cut-offs, the TSV file, and its errors."""
import numpy as np
import pytest

from w2v_jax.errors import W2VError
from w2v_jax.vocab import Vocab

COUNTS = {'b': 3, 'a': 3, 'the': 9, 'rare': 1, 'c': 3, 'of': 5}


def test_sorted_by_count_descending_ties_alphabetical():
  vocab = Vocab.from_counts(COUNTS, min_count=1)
  assert vocab.words == ['the', 'of', 'a', 'b', 'c', 'rare']
  np.testing.assert_array_equal(vocab.counts, [9, 5, 3, 3, 3, 1])
  assert vocab.counts.dtype == np.int64
  assert vocab.index == {w: i for i, w in enumerate(vocab.words)}
  assert len(vocab) == 6 and vocab.total == 24


def test_min_count_and_max_vocab_size():
  assert Vocab.from_counts(COUNTS, min_count=3).words == ['the', 'of', 'a', 'b', 'c']
  assert Vocab.from_counts(COUNTS, min_count=3, max_vocab_size=3).words == ['the', 'of', 'a']
  assert Vocab.from_counts(COUNTS, min_count=3, max_vocab_size=100).total == 23


def test_every_word_below_min_count_names_the_top_count_and_a_fix():
  with pytest.raises(W2VError, match=r'min_count=10 .*occurs 9 times.*--min_count to 9'):
    Vocab.from_counts(COUNTS, min_count=10)


@pytest.mark.parametrize('kwargs', [dict(min_count=0), dict(min_count=1, max_vocab_size=0)])
def test_bad_settings(kwargs):
  with pytest.raises(W2VError):
    Vocab.from_counts(COUNTS, **kwargs)


def test_save_load_round_trip_is_human_readable(tmp_path):
  vocab = Vocab.from_counts({**COUNTS, 'café': 4, 'naïve': 2}, min_count=1)
  path = tmp_path / 'vocab.tsv'
  vocab.save(path)
  assert path.read_text(encoding='utf-8').splitlines()[:2] == ['the\t9', 'of\t5']
  loaded = Vocab.load(path)
  assert loaded.words == vocab.words
  np.testing.assert_array_equal(loaded.counts, vocab.counts)
  assert loaded.fingerprint() == vocab.fingerprint()
  assert Vocab.from_counts(COUNTS, min_count=2).fingerprint() != vocab.fingerprint()


@pytest.mark.parametrize('text', ['the 9\n', 'the\tmany\n', '', 'the\t9\nthe\t3\n'])
def test_a_malformed_file_raises(tmp_path, text):
  path = tmp_path / 'bad.tsv'
  path.write_text(text)
  with pytest.raises(W2VError):
    Vocab.load(path)


def test_a_missing_file_raises(tmp_path):
  with pytest.raises(W2VError, match='not found'):
    Vocab.load(tmp_path / 'nope.tsv')
