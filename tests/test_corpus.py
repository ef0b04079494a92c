"""Reading corpora: chunked streaming, sentence boundaries, decoding errors, the encoded cache."""
import gzip
import os

import numpy as np
import pytest

from w2v_jax import corpus
from w2v_jax.errors import W2VError
from w2v_jax.vocab import Vocab

WORDS = ['the', 'cat', 'sat', 'on', 'mat', 'café', 'naïve', 'über', 'x', 'zebra']


def _write(path, text, gz=False):
  data = text.encode('utf-8') if isinstance(text, str) else text
  if gz:
    with gzip.open(path, 'wb') as f:
      f.write(data)
  else:
    path.write_bytes(data)
  return path


def _expected(text, vocab):
  """Tokens and offsets the way the issue defines them: split() per line, OOV and empty lines dropped."""
  tokens, offsets = [], [0]
  for line in text.split('\n'):
    ids = [vocab.index[w] for w in line.split() if w in vocab.index]
    if ids:
      tokens += ids
      offsets.append(len(tokens))
  return np.array(tokens), np.array(offsets)


def _messy_text(rng, lines=200):
  """Multibyte words, tabs, runs of spaces, CRLF, blank lines, and no final newline."""
  seps = [' ', '  ', '\t', ' \t ']
  out = []
  for _ in range(lines):
    n = rng.integers(0, 12)
    out.append(''.join(WORDS[rng.integers(len(WORDS))] + seps[rng.integers(len(seps))] for _ in range(n)))
  return '\n'.join(out[:50]) + '\r\n' + '\n'.join(out[50:])


@pytest.mark.parametrize('chunk_bytes', [1, 3, 7, 64, 1 << 20])
def test_chunked_reading_gives_the_tokens_of_split(tmp_path, chunk_bytes):
  text = _messy_text(np.random.default_rng(0))
  path = _write(tmp_path / 'c.txt', text)
  counts, stats = corpus.count_words(path, chunk_bytes=chunk_bytes)
  assert counts == {w: text.split().count(w) for w in set(text.split())}
  assert stats.raw_words == len(text.split()) and stats.replaced_chars == 0
  vocab = Vocab.from_counts(counts, min_count=1)
  enc = corpus.encode_corpus(path, vocab, chunk_bytes=chunk_bytes)
  tokens, offsets = _expected(text, vocab)
  np.testing.assert_array_equal(enc.tokens, tokens)
  np.testing.assert_array_equal(enc.offsets, offsets)
  assert enc.tokens.dtype == np.int32 and enc.offsets.dtype == np.int64


def test_a_text8_style_line_is_one_sentence_and_loses_no_word(tmp_path):
  rng = np.random.default_rng(1)
  words = [WORDS[i] for i in rng.integers(len(WORDS), size=50_000)]
  path = _write(tmp_path / 'text8', ' '.join(words), gz=True)  # no newline at all, gzip without suffix
  vocab, enc = corpus.prepare(path, min_count=1, chunk_bytes=997)
  np.testing.assert_array_equal(enc.tokens, [vocab.index[w] for w in words])
  np.testing.assert_array_equal(enc.offsets, [0, 50_000])
  assert enc.raw_words == 50_000 and enc.num_sentences == 1


def test_gzip_and_plain_text_read_the_same(tmp_path):
  text = _messy_text(np.random.default_rng(2))
  plain = corpus.count_words(_write(tmp_path / 'a.txt', text))
  zipped = corpus.count_words(_write(tmp_path / 'a.txt.gz', text, gz=True))
  assert plain == zipped


def test_a_directory_reads_its_files_in_name_order_and_files_end_sentences(tmp_path):
  _write(tmp_path / 'b.txt', 'cat sat')
  _write(tmp_path / 'a.txt', 'the cat\non')  # no final newline: 'on' must not join 'cat sat'
  _write(tmp_path / '.hidden', 'zebra')
  vocab, enc = corpus.prepare(tmp_path, min_count=1)
  assert [vocab.words[i] for i in enc.tokens] == ['the', 'cat', 'on', 'cat', 'sat']
  np.testing.assert_array_equal(enc.offsets, [0, 2, 3, 5])
  assert enc.stats.files == 2
  _, both = corpus.prepare([tmp_path / 'a.txt', tmp_path / 'b.txt'], min_count=1)
  np.testing.assert_array_equal(both.tokens, enc.tokens)


def test_a_byte_order_mark_is_not_part_of_the_first_word(tmp_path):
  counts, _ = corpus.count_words(_write(tmp_path / 'bom.txt', '\ufeffthe cat\n'))
  assert counts == {'the': 1, 'cat': 1}


def test_out_of_vocabulary_words_are_dropped_but_counted_as_raw_words(tmp_path):
  path = _write(tmp_path / 'c.txt', 'the cat the\nrare words only\nthe cat\n')
  vocab, enc = corpus.prepare(path, min_count=2)
  assert vocab.words == ['the', 'cat']
  np.testing.assert_array_equal(enc.tokens, [0, 1, 0, 0, 1])
  np.testing.assert_array_equal(enc.offsets, [0, 3, 5])  # the all-OOV line is gone
  assert enc.raw_words == 8


def test_undecodable_bytes_are_replaced_and_counted(tmp_path):
  data = b'good \xff\xfe bytes\n\xc3( caf\xc3\xa9 end \xe2\x82'
  expected = data.decode('utf-8', errors='replace')
  for chunk_bytes in (1, 5, 1 << 20):
    counts, stats = corpus.count_words(_write(tmp_path / 'bad.txt', data), chunk_bytes=chunk_bytes)
    assert stats.replaced_chars == expected.count('\ufffd') == 4
    assert counts == {w: expected.split().count(w) for w in expected.split()}


def test_missing_file_and_empty_corpora_raise(tmp_path):
  with pytest.raises(W2VError, match='not found'):
    corpus.prepare(tmp_path / 'nope.txt')
  for name, text in [('empty.txt', ''), ('blank.txt', ' \n\t\n\n')]:
    with pytest.raises(W2VError, match='empty'):
      corpus.prepare(_write(tmp_path / name, text), min_count=1)
  (tmp_path / 'dir').mkdir()
  with pytest.raises(W2VError, match='no files'):
    corpus.prepare(tmp_path / 'dir')
  with pytest.raises(W2VError, match='cannot read'):
    data = gzip.compress(_messy_text(np.random.default_rng(9)).encode())
    corpus.count_words(_write(tmp_path / 'broken.gz', data[:len(data) // 2]))


def test_prepare_loads_both_from_the_cache_without_reading_text(tmp_path, monkeypatch):
  path = _write(tmp_path / 'c.txt', _messy_text(np.random.default_rng(3)))
  cache = tmp_path / 'cache'
  vocab, enc = corpus.prepare(path, 2, None, cache)
  assert not enc.stats.from_cache

  def no_reading(*args, **kwargs):
    raise AssertionError('the text was read again')
  monkeypatch.setattr(corpus, '_iter_chunks', no_reading)
  vocab2, enc2 = corpus.prepare(path, 2, None, cache)
  assert enc2.stats.from_cache and isinstance(enc2.tokens, np.memmap)
  assert vocab2.words == vocab.words and np.array_equal(vocab2.counts, vocab.counts)
  np.testing.assert_array_equal(enc2.tokens, enc.tokens)
  np.testing.assert_array_equal(enc2.offsets, enc.offsets)
  assert enc2.raw_words == enc.raw_words
  monkeypatch.undo()
  assert not corpus.prepare(path, 3, None, cache)[1].stats.from_cache  # other settings, other entry


def test_the_cache_is_invalidated_when_the_file_changes(tmp_path):
  path = _write(tmp_path / 'c.txt', 'the cat sat\n')
  cache = tmp_path / 'cache'
  corpus.prepare(path, 1, None, cache)
  _write(path, 'the zebra sat on the mat\n')
  os.utime(path, ns=(1, 1))
  vocab, enc = corpus.prepare(path, 1, None, cache)
  assert not enc.stats.from_cache and 'zebra' in vocab.index
  assert [vocab.words[i] for i in enc.tokens] == 'the zebra sat on the mat'.split()


def test_encode_corpus_cache_is_keyed_by_the_vocabulary(tmp_path):
  path = _write(tmp_path / 'c.txt', 'the cat sat\non the mat\n')
  cache = tmp_path / 'cache'
  a = Vocab(['the', 'cat'], np.array([2, 1]))
  b = Vocab(['the', 'mat'], np.array([2, 1]))
  assert not corpus.encode_corpus(path, a, cache).stats.from_cache
  assert corpus.encode_corpus(path, a, cache).stats.from_cache
  enc_b = corpus.encode_corpus(path, b, cache)
  assert not enc_b.stats.from_cache
  np.testing.assert_array_equal(enc_b.tokens, [0, 0, 1])
  assert not [f for f in os.listdir(cache) if f.endswith('.tmp')]
