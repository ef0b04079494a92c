"""Text corpora: streamed tokens, the encoded int32 corpus, and an on-disk cache of both.

A sentence is one line (LF or CRLF endings), never cut: a window never crosses a line break or a file
boundary, and a text8-style file (one 100 MB line) is one sentence, read in chunks so that the line is never
held whole as text. Tokens are what str.split() gives.
"""
import codecs
import collections
import dataclasses
import gzip
import hashlib
import json
import os
import pathlib
import zlib
from typing import Iterator, Sequence

import numpy as np

from w2v_jax.atomic import write_atomic
from w2v_jax.errors import W2VError
from w2v_jax.vocab import Vocab, check_vocab_settings

FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20

Paths = str | os.PathLike | Sequence[str | os.PathLike]

_ERRORS = 'w2v_jax.count_replace'
_replaced = [0]


def _count_and_replace(err: UnicodeDecodeError) -> tuple[str, int]:
  """Decode error handler: what errors='replace' does, plus a count of the U+FFFD it inserts."""
  _replaced[0] += 1
  return '\ufffd', err.end


codecs.register_error(_ERRORS, _count_and_replace)


@dataclasses.dataclass(frozen=True)
class CorpusStats:
  """What reading found; the caller reports it (the library prints nothing)."""
  files: int
  raw_words: int       # every token read, out-of-vocabulary ones included
  replaced_chars: int  # undecodable byte sequences, each replaced by U+FFFD
  from_cache: bool = False


@dataclasses.dataclass(frozen=True)
class EncodedCorpus:
  """Token ids with sentence boundaries: sentence s is tokens[offsets[s]:offsets[s + 1]]."""
  tokens: np.ndarray   # int32 [N]    in-vocabulary tokens only, as word2vec.c
  offsets: np.ndarray  # int64 [S+1]  no empty sentences
  stats: CorpusStats

  @property
  def raw_words(self) -> int:
    """Corpus words per epoch for words/s, counted as gensim and word2vec.c count them."""
    return self.stats.raw_words

  @property
  def num_sentences(self) -> int:
    return len(self.offsets) - 1


def resolve_paths(paths: Paths) -> list[pathlib.Path]:
  """Files to read, in order: a directory gives its non-hidden files sorted by name."""
  if isinstance(paths, (str, os.PathLike)):
    paths = [paths]
  files = []
  for p in map(pathlib.Path, paths):
    p = p.expanduser()
    if p.is_dir():
      inside = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith('.'))
      if not inside:
        raise W2VError(f'corpus directory {p} has no files; put text files in it or give a file')
      files.extend(inside)
    elif p.is_file():
      files.append(p)
    else:
      raise W2VError(f'corpus file not found: {p}; check the --corpus path')
  if not files:
    raise W2VError('no corpus given; pass at least one file or directory')
  return [f.resolve() for f in files]


def _open(path: pathlib.Path):
  with open(path, 'rb') as f:
    gz = f.read(2) == b'\x1f\x8b'  # the magic number, so a .gz without its suffix still reads
  return gzip.open(path, 'rb') if gz else open(path, 'rb')


def _file_chunks(path: pathlib.Path, chunk_bytes: int, tally: collections.Counter
                 ) -> Iterator[tuple[list[str], list[int]]]:
  """Yields (tokens, ends) per chunk: ends[i] = len(tokens) where the i-th line ending in it falls."""
  decoder = codecs.getincrementaldecoder('utf-8-sig')(errors=_ERRORS)  # -sig: a leading BOM is no word
  carry = ''  # a token that may continue in the next chunk
  with _open(path) as f:
    while True:
      data = f.read(chunk_bytes)
      before = _replaced[0]
      text = carry + decoder.decode(data, final=not data)
      tally['replaced_chars'] += _replaced[0] - before
      lines = text.split('\n')
      tail = lines.pop()  # the line still open at the end of this chunk
      tokens, ends = [], []
      for line in lines:
        tokens += line.split()
        ends.append(len(tokens))
      rest = tail.split()
      carry = rest.pop() if data and rest and not tail[-1].isspace() else ''
      tokens += rest
      if not data:
        ends.append(len(tokens))  # the end of a file ends its last sentence
      yield tokens, ends
      if not data:
        return


def _iter_chunks(files: list[pathlib.Path], chunk_bytes: int, tally: collections.Counter
                 ) -> Iterator[tuple[list[str], list[int]]]:
  """All files' chunks in order, with read errors turned into one clear W2VError."""
  if chunk_bytes < 1:
    raise W2VError(f'chunk_bytes must be >= 1, got {chunk_bytes}')
  for path in files:
    try:
      yield from _file_chunks(path, chunk_bytes, tally)
    except (OSError, EOFError, zlib.error) as e:
      raise W2VError(f'cannot read corpus file {path}: {e}; check that it is plain text or gzip') from None


class _FirstSeen(dict):
  """word -> id in first-seen order; a miss takes the next id, so hits stay in C (map of __getitem__)."""

  def __missing__(self, word: str) -> int:
    self[word] = i = len(self)
    return i


@dataclasses.dataclass(frozen=True)
class _Scan:
  """One pass over the text: its distinct words, their counts, and (optionally) every token as an id."""
  words: list[str]        # [U] distinct words, first-seen order
  counts: np.ndarray      # int64 [U]
  ids: np.ndarray | None   # int32 [N_raw] index into words; None when only counting
  ends: np.ndarray | None  # int64 [L] raw token position where each line ends; None when only counting
  stats: CorpusStats


def _scan(files: list[pathlib.Path], chunk_bytes: int, keep_ids: bool) -> _Scan:
  """Reads the text once; memory is bounded by the vocabulary unless keep_ids asks for the tokens."""
  first_seen, tally = _FirstSeen(), collections.Counter()
  counts, pieces, ends, n = np.zeros(0, np.int64), [], [], 0
  for tokens, chunk_ends in _iter_chunks(files, chunk_bytes, tally):
    ids = np.fromiter(map(first_seen.__getitem__, tokens), np.int32, len(tokens))
    counts = np.pad(counts, (0, len(first_seen) - len(counts))) + np.bincount(ids, minlength=len(first_seen))
    if keep_ids:
      pieces.append(ids)
      ends.append(n + np.asarray(chunk_ends, dtype=np.int64))
    n += len(tokens)
  if not n:
    raise W2VError(f'the corpus is empty: {", ".join(map(str, files))} has no words; give a file with text')
  stats = CorpusStats(len(files), n, tally['replaced_chars'])
  if not keep_ids:
    return _Scan(list(first_seen), counts, None, None, stats)
  return _Scan(list(first_seen), counts, np.concatenate(pieces), np.concatenate(ends), stats)


def count_words(paths: Paths, *, chunk_bytes: int = CHUNK_BYTES) -> tuple[dict[str, int], CorpusStats]:
  """Word counts of the corpus, streamed: memory is bounded by the number of distinct words."""
  scan = _scan(resolve_paths(paths), chunk_bytes, keep_ids=False)
  return dict(zip(scan.words, scan.counts.tolist())), scan.stats


def _encode(scan: _Scan, vocab: Vocab) -> EncodedCorpus:
  """Maps the scan's ids to vocabulary ids, drops OOV tokens, and the sentences left empty."""
  table = np.array([vocab.index.get(w, -1) for w in scan.words], dtype=np.int32)  # [U]
  ids = table[scan.ids]
  keep = ids >= 0
  if not keep.any():
    raise W2VError('no corpus word is in the vocabulary; build the vocabulary from this corpus')
  kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])  # [N_raw+1]
  bounds = np.concatenate([[0], kept_before[scan.ends]])
  offsets = bounds[np.concatenate([[True], np.diff(bounds) > 0])]
  return EncodedCorpus(ids[keep], offsets, scan.stats)


def _files_key(files: list[pathlib.Path]) -> list:
  return [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def _digest(obj) -> str:
  return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:24]


def _save_json(path: pathlib.Path, obj) -> None:
  write_atomic(path, lambda f: f.write(json.dumps(obj).encode()))


def _load_json(path: pathlib.Path):
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None


def _cache(cache_dir: str | os.PathLike) -> pathlib.Path:
  cache = pathlib.Path(cache_dir)
  cache.mkdir(parents=True, exist_ok=True)
  return cache


def _load_encoded(base: pathlib.Path) -> EncodedCorpus | None:
  meta = _load_json(base.with_suffix('.json'))  # written last, so it marks a complete entry
  if meta is None:
    return None
  try:
    tokens = np.load(base.with_suffix('.tokens.npy'), mmap_mode='r')
    offsets = np.load(base.with_suffix('.offsets.npy'), mmap_mode='r')
    return EncodedCorpus(tokens, offsets, CorpusStats(**meta, from_cache=True))
  except (OSError, ValueError, TypeError):
    return None  # a damaged entry: encode again and overwrite it


def _store_encoded(base: pathlib.Path, corpus: EncodedCorpus) -> None:
  write_atomic(base.with_suffix('.tokens.npy'), lambda f: np.save(f, corpus.tokens))
  write_atomic(base.with_suffix('.offsets.npy'), lambda f: np.save(f, corpus.offsets))
  meta = dataclasses.asdict(corpus.stats)
  del meta['from_cache']
  write_atomic(base.with_suffix('.json'), lambda f: f.write(json.dumps(meta).encode()))


def _encoded_base(cache_dir, files: list[pathlib.Path], vocab: Vocab) -> pathlib.Path:
  # Keyed by the files' identity and the vocabulary's content: any change makes a new entry.
  return _cache(cache_dir) / f'encoded-{_digest([FORMAT_VERSION, _files_key(files), vocab.fingerprint()])}'


def encode_corpus(paths: Paths, vocab: Vocab, cache_dir: str | os.PathLike | None = None, *,
                  chunk_bytes: int = CHUNK_BYTES) -> EncodedCorpus:
  """Token ids of the corpus under `vocab`, OOV dropped; loaded memory-mapped from cache_dir if there."""
  files = resolve_paths(paths)
  base = None if cache_dir is None else _encoded_base(cache_dir, files, vocab)
  if base is not None and (cached := _load_encoded(base)) is not None:
    return cached
  corpus = _encode(_scan(files, chunk_bytes, keep_ids=True), vocab)
  if base is not None:
    _store_encoded(base, corpus)
  return corpus


def prepare(paths: Paths, min_count: int = 5, max_vocab_size: int | None = None,
            cache_dir: str | os.PathLike | None = None, *,
            chunk_bytes: int = CHUNK_BYTES) -> tuple[Vocab, EncodedCorpus]:
  """Vocabulary and encoded corpus from one pass over the text, cached so a second run reads no text."""
  check_vocab_settings(min_count, max_vocab_size)
  files = resolve_paths(paths)
  vocab_path = None
  if cache_dir is not None:
    key = _digest([FORMAT_VERSION, _files_key(files), min_count, max_vocab_size])
    vocab_path = _cache(cache_dir) / f'vocab-{key}.tsv'
    if vocab_path.exists():
      vocab = Vocab.load(vocab_path)
      return vocab, encode_corpus(files, vocab, cache_dir, chunk_bytes=chunk_bytes)
  scan = _scan(files, chunk_bytes, keep_ids=True)
  vocab = Vocab.from_counts(dict(zip(scan.words, scan.counts.tolist())), min_count, max_vocab_size)
  corpus = _encode(scan, vocab)
  if vocab_path is not None:
    _store_encoded(_encoded_base(cache_dir, files, vocab), corpus)
    vocab.save(vocab_path)  # last: its presence means both entries are complete
  return vocab, corpus
