"""Reading corpora: chunked streaming, sentence boundaries, decoding errors, the encoded cache."""
import gzip
import os
import pathlib
import sys

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


# --- decoding errors are counted per call ----------------------------------------------------------------------


def _bad_text(rng, n_parts=300):
  """Valid text, U+FFFD that the text itself holds, and undecodable bytes, mixed; and its error count."""
  parts, errors = [], 0
  bad = [b'\xff', b'\xc3(', b'\xe2\x82 ', b'\xed\xa0\x80', b'\x80\x80']  # 1, 1, 1, 3 and 2 errors
  per_bad = [1, 1, 1, 3, 2]
  for _ in range(n_parts):
    kind = rng.integers(4)
    if kind == 0:
      parts.append(' '.join(WORDS[i] for i in rng.integers(len(WORDS), size=rng.integers(1, 5))).encode() + b'\n')
    elif kind == 1:
      parts.append('a\ufffdb \ufffd '.encode())  # real U+FFFD: no decoding error
    elif kind == 2:
      i = rng.integers(len(bad))
      parts.append(bad[i])
      errors += per_bad[i]
    else:
      parts.append(b' ')
  return b''.join(parts), errors


@pytest.mark.parametrize('chunk_bytes', [1, 2, 3, 5, 64, 1 << 20])
def test_replaced_chars_counts_decoding_errors_and_not_a_real_replacement_character(tmp_path, chunk_bytes):
  data, errors = _bad_text(np.random.default_rng(chunk_bytes))
  decoded = data.decode('utf-8', errors='replace')
  assert decoded.count('\ufffd') > errors  # the text holds U+FFFD of its own too
  counts, stats = corpus.count_words(_write(tmp_path / 'c.txt', data), chunk_bytes=chunk_bytes)
  assert stats.replaced_chars == errors
  assert counts == {w: decoded.split().count(w) for w in set(decoded.split())}


def test_counting_has_no_module_state_and_is_right_from_many_threads(tmp_path):
  import codecs
  import concurrent.futures
  assert not hasattr(corpus, '_replaced')
  with pytest.raises(LookupError):
    codecs.lookup_error('w2v_jax.count_replace')  # no handler registered process-wide
  paths = [_write(tmp_path / f'{k}.txt', b'the cat\n' * 50 + b'\xff sat\n' * k) for k in range(8)]
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    results = list(pool.map(lambda p: corpus.count_words(p, chunk_bytes=3)[1].replaced_chars, paths * 4))
  assert results == list(range(8)) * 4


def test_a_leading_byte_order_mark_is_dropped_only_at_the_start(tmp_path):
  for chunk_bytes in (1, 2, 1 << 20):
    counts, stats = corpus.count_words(_write(tmp_path / 'bom.txt', '\ufeffthe cat \ufeffsat\n'),
                                       chunk_bytes=chunk_bytes)
    assert counts == {'the': 1, 'cat': 1, '\ufeffsat': 1} and stats.replaced_chars == 0


# --- a corpus with no context -------------------------------------------------------------------------------


def test_single_word_lines_are_refused_with_the_cause_and_nothing_cached(tmp_path):
  path = _write(tmp_path / 'words.txt', 'the\ncat\nsat\n\non\nthe\n' * 20)
  cache = tmp_path / 'cache'
  for _ in range(2):  # nothing cached, so the second call reads again and raises again
    with pytest.raises(W2VError) as e:
      corpus.prepare([path], 1, None, cache)
    msg = str(e.value)
    assert msg.startswith(f'{path}: no line has two words in the vocabulary, so no word has a context')
    assert 'every line holds one word at most' in msg
    assert 'give text with sentences of two words or more (one sentence per line)' in msg
    assert '--min_count' not in msg
    assert not list(cache.iterdir())
  with pytest.raises(W2VError, match='no word has a context'):
    corpus.prepare(path, min_count=1)
  with pytest.raises(W2VError, match='no word has a context'):
    corpus.encode_corpus(path, Vocab(['the', 'cat'], np.array([40, 20])), cache)
  assert not list(cache.iterdir())


def test_words_dropped_by_min_count_that_leave_no_context_name_min_count(tmp_path):
  path = _write(tmp_path / 'c.txt', 'the rare\nthe words\nthe once each\n' * 3)
  with pytest.raises(W2VError) as e:
    corpus.prepare(path, 4)
  msg = str(e.value)
  assert 'no line has two words in the vocabulary' in msg
  assert 'the longest line has 1 word in the vocabulary; lines of up to 3 words were read' in msg
  assert 'seen fewer than min_count=4 times' in msg and 'lower --min_count' in msg
  vocab, enc = corpus.prepare(path, 3)  # every word kept: trains
  assert enc.num_sentences == 9
  with pytest.raises(W2VError, match=r'beyond the max_vocab_size=1 most frequent.*raise --max_vocab_size'):
    corpus.prepare(path, 1, 1)


def test_a_cached_corpus_with_no_context_raises_too(tmp_path, monkeypatch):
  path = _write(tmp_path / 'words.txt', 'the\ncat\nthe\n')
  cache = tmp_path / 'cache'
  monkeypatch.setattr(corpus, '_has_context', lambda offsets: True)  # as a version without the check wrote it
  corpus.prepare([path], 1, None, cache)
  vocab = Vocab(['the', 'cat'], np.array([2, 1]))
  corpus.encode_corpus(path, vocab, cache)
  monkeypatch.undo()
  assert any(f.name.startswith('vocab-') for f in cache.iterdir())
  with pytest.raises(W2VError, match='no word has a context'):
    corpus.prepare([path], 1, None, cache)
  with pytest.raises(W2VError, match='no word has a context'):
    corpus.encode_corpus(path, vocab, cache)


def test_one_line_of_two_words_is_enough(tmp_path):
  vocab, enc = corpus.prepare(_write(tmp_path / 'c.txt', 'the\ncat\nthe cat\n'), 1, None, tmp_path / 'cache')
  np.testing.assert_array_equal(enc.offsets, [0, 1, 2, 4])
  assert corpus.prepare(tmp_path / 'c.txt', 1, None, tmp_path / 'cache')[1].stats.from_cache


# --- a file that is not text ---------------------------------------------------------------------------------


def _assert_not_text(path, chunk_bytes=corpus.CHUNK_BYTES, named=None):
  """Checks that prepare refuses `path` with the one-line message naming the file (`named`) and the share."""
  with pytest.raises(W2VError) as e:
    corpus.prepare(path, 1, chunk_bytes=chunk_bytes)
  msg = str(e.value)
  assert msg.startswith(f'{named or path} is not text: ') and '\n' not in msg
  assert 'are not UTF-8 or are control characters' in msg
  assert msg.endswith('expected plain or gzipped UTF-8 text, one sentence a line')
  share = int(msg.split('is not text: ')[1].split('%')[0])
  assert share >= corpus.NOT_TEXT_SHARE * 100
  return msg


@pytest.mark.parametrize('seed', range(5))
def test_random_bytes_are_refused(tmp_path, seed):
  data = np.random.default_rng(seed).bytes(200_000) if seed else os.urandom(200_000)
  msg = _assert_not_text(_write(tmp_path / 'random.txt', data))
  assert 'of its 200,000 bytes' in msg  # one chunk holds it all: judged whole at once


def test_gzipped_binary_images_and_executables_are_refused(tmp_path):
  rng = np.random.default_rng(7)
  msg = _assert_not_text(_write(tmp_path / 'random.gz', rng.bytes(200_000), gz=True))
  assert 'of its first 200,000 bytes after gunzip' in msg  # its size is known once the read ends
  png = b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00'
  _assert_not_text(_write(tmp_path / 'image.png', png + rng.bytes(50_000)))
  _assert_not_text(_write(tmp_path / 'tiny.png', png + rng.bytes(100)))
  exe = pathlib.Path('/bin/ls') if pathlib.Path('/bin/ls').is_file() else pathlib.Path(sys.executable)
  _assert_not_text(_write(tmp_path / 'ls', exe.read_bytes()))
  _assert_not_text(_write(tmp_path / 'utf16.txt', ('the cat sat on the mat\n' * 100).encode('utf-16')))


def test_a_binary_file_in_a_directory_is_named_and_a_large_one_fails_fast(tmp_path):
  _write(tmp_path / 'a.txt', 'the cat sat\n' * 100)
  _write(tmp_path / 'b.bin', np.random.default_rng(8).bytes(4 << 20))
  msg = _assert_not_text(tmp_path, chunk_bytes=4096, named=(tmp_path / 'b.bin').resolve())
  assert f'of its first {corpus.PROBE_BYTES:,} bytes' in msg  # judged after 64 KiB, not after 4 MiB
  with pytest.raises(W2VError, match='b.bin is not text'):
    corpus.count_words(tmp_path)


def test_text_that_turns_binary_after_the_first_probe_is_refused_at_its_end(tmp_path):
  data = b'the cat sat\n' * 20_000 + np.random.default_rng(9).bytes(200_000)
  msg = _assert_not_text(_write(tmp_path / 'c.txt', data), chunk_bytes=1 << 16)
  assert f'of its {len(data):,} bytes' in msg


def test_text_with_a_few_bad_bytes_is_accepted_and_they_are_counted(tmp_path):
  text = _messy_text(np.random.default_rng(10), lines=400).encode()
  lines = text.split(b'\n')
  rng = np.random.default_rng(11)
  for i in rng.choice(len(lines), size=12, replace=False):
    lines[i] = b'\xff' + lines[i]  # before a line's first word: breaks no character
  data = b'\n'.join(lines)
  assert data.count(b'\xff') == 12 and data.count(b'\xff') / len(data) < 0.01
  for chunk_bytes in (7, 4096, 1 << 20):
    counts, stats = corpus.count_words(_write(tmp_path / 'c.txt', data), chunk_bytes=chunk_bytes)
    assert stats.replaced_chars == 12
    decoded = data.decode('utf-8', errors='replace')
    assert counts == {w: decoded.split().count(w) for w in set(decoded.split())}


def test_tabs_crlf_form_feeds_and_escapes_are_text(tmp_path):
  text = ''.join(f'the\tcat {i}\r\nsat \x1b[1mon\x1b[0m\tthe\x0cmat\r\n' for i in range(3000))
  path = _write(tmp_path / 'c.txt', text)
  vocab, enc = corpus.prepare(path, 1)
  assert enc.stats.replaced_chars == 0 and enc.num_sentences == 6000
  assert set(vocab.words) == set(text.split())


def test_the_share_of_bad_bytes_decides(tmp_path):
  line = b'the cat sat on the mat and the dog ate it\n'  # 42 bytes
  few = (line + b'\xff\x01') * 2000   # 2 of 44 bytes, 4.5%: text with damage, kept and counted
  counts, stats = corpus.count_words(_write(tmp_path / 'few.txt', few))
  assert stats.replaced_chars == 2000 and counts['cat'] == 2000
  many = (line + b'\xff\x01' * 4) * 2000  # 8 of 50 bytes, 16%
  assert '16% of its 100,000 bytes' in _assert_not_text(_write(tmp_path / 'many.txt', many))
  counts, stats = corpus.count_words(_write(tmp_path / 'short.txt', b'\x00\xff the cat\n'))  # too few to judge
  assert stats.replaced_chars == 1 and counts == {'\x00\ufffd': 1, 'the': 1, 'cat': 1}
