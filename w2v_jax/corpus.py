"""Text corpora: streamed tokens, the encoded int32 corpus, and an on-disk cache of both.

A sentence is one line (LF or CRLF endings), never cut: a window never crosses a line break or a file
boundary, and a text8-style file (one 100 MB line) is one sentence, read in chunks so that the line is never
held whole as text. Tokens are what str.split() gives.

The cache (`prepare`'s cache_dir) holds entries `vocab-<key>.tsv` and `encoded-<key>.{tokens,offsets}.npy`,
each with a JSON record of its files' sizes and CRC-32s, written last (its presence marks a complete entry).
An entry is checked when read; a damaged one is built again and overwritten, said in one line (`on_notice`).
Every file is written to a temporary file and moved into place, so two processes filling one entry at once
leave a whole one (the same bytes: the key covers the files' identity and the settings).

A file must be UTF-8 text, plain or gzipped: a few undecodable bytes are replaced by U+FFFD and counted
(CorpusStats.replaced_chars), but a file where they, or control characters, are NOT_TEXT_SHARE of the bytes
is refused as binary. A corpus must have a line with two vocabulary words, or nothing has a context.
"""
import codecs
import collections
import dataclasses
import gzip
import hashlib
import json
import os
import pathlib
import warnings
import zlib
from typing import Callable, Iterator, Sequence

import numpy as np

from w2v_jax import disk
from w2v_jax.atomic import read_json, write_atomic
from w2v_jax.errors import W2VError
from w2v_jax.vocab import Vocab, check_vocab_settings

FORMAT_VERSION = 2   # 2: each entry's JSON record holds its files' sizes and CRC-32s
CHUNK_BYTES = 1 << 20

Paths = str | os.PathLike | Sequence[str | os.PathLike]

# Telling text from binary. Per file, a byte is "bad" if it is part of a sequence that is not UTF-8 or if it
# is a control character other than the whitespace ones (\t \n \v \f \r) and ESC. Real text has almost
# none: a stray Latin-1 or truncated character here and there, a few percent at most even for a whole file
# in Latin-1. Binary has many: random or compressed bytes (gzip, PNG, JPEG, zip, PDF streams) ~53%,
# executables and shared libraries 55-95% (NUL padding), .pyc ~60%, UTF-16 text ~50% (its NUL bytes).
NOT_TEXT_SHARE = 0.10   # a file with this share of bad bytes or more is refused
NOT_TEXT_MIN_BYTES = 16  # ...once it has at least this many: a few bad bytes in a short file are still text
PROBE_BYTES = 64 << 10   # judged first once this much is read (fail fast on a large binary), then at its end
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b'\t\n\x0b\x0c\r\x1b') + b'\x7f'
_FFFD_UTF8 = '\ufffd'.encode()  # a U+FFFD that the text itself holds, which is no decoding error


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
      subdirs = sorted(f.name for f in p.iterdir() if f.is_dir() and not f.name.startswith('.'))
      if subdirs:   # not read: a silent skip would train on less than the user gave
        shown = ', '.join(subdirs[:3]) + (f' and {len(subdirs) - 3} more' if len(subdirs) > 3 else '')
        raise W2VError(f'corpus directory {p} holds subdirectories ({shown}), whose files are not read: give '
                       'them as --corpus too, or move them out')
      if not inside:
        raise W2VError(f'corpus directory {p} has no files; put text files in it or give a file')
      files.extend(inside)
    elif p.is_file():
      files.append(p)
    elif p.exists():
      raise W2VError(f'corpus {p} is not a regular file or a directory; give a text file (plain or gzipped)')
    else:
      raise W2VError(f'corpus file not found: {p}; check the --corpus path')
  if not files:
    raise W2VError('no corpus given; pass at least one file or directory')
  files = [f.resolve() for f in files]
  twice = sorted(str(f) for f, n in collections.Counter(files).items() if n > 1)
  if twice:
    raise W2VError(f'corpus file {twice[0]} is given twice; name each file once')
  return files


def _open(path: pathlib.Path):
  """The file as a binary stream, and whether it is gzip (its magic number, so a .gz without its suffix reads)."""
  with open(path, 'rb') as f:
    gz = f.read(2) == b'\x1f\x8b'
  return (gzip.open(path, 'rb') if gz else open(path, 'rb')), gz


@dataclasses.dataclass
class _TextCheck:
  """One file's tally of the bytes that text would not hold; refuses the file when they are too many."""
  path: pathlib.Path
  gz: bool
  size: int | None   # the file's size when plain: reading that much is reading it whole
  read: int = 0      # bytes read (after gunzip)
  decoded: int = 0   # UTF-8 length of the text decoded from them, each U+FFFD inserted counted as 3 bytes
  replaced: int = 0  # undecodable sequences, each replaced by one U+FFFD
  control: int = 0   # control bytes (_CONTROL_BYTES)
  pending: int = 0   # bytes of a character still open at the end of what was read
  probed: bool = False

  def add(self, data: bytes, text: str, replaced: int, pending: int) -> None:
    self.read += len(data)
    self.decoded += len(text.encode('utf-8'))
    self.replaced += replaced
    self.control += len(data) - len(data.translate(None, _CONTROL_BYTES))
    self.pending = pending

  def judge(self, whole: bool) -> None:
    """Raises if the bytes read so far are not text: once early (PROBE_BYTES), then for the whole file."""
    whole = whole or self.read == self.size
    if not whole:
      if self.probed or self.read < PROBE_BYTES:
        return
      self.probed = True
    undecodable = self.read - self.pending - (self.decoded - 3 * self.replaced)
    bad = undecodable + self.control
    if bad >= NOT_TEXT_MIN_BYTES and bad >= NOT_TEXT_SHARE * self.read:
      first = '' if whole else 'first '
      gunzipped = ' after gunzip' if self.gz else ''
      raise W2VError(f'{self.path} is not text: {bad / self.read:.0%} of its {first}{self.read:,} bytes{gunzipped} '
                     f'are not UTF-8 or are control characters ({undecodable:,} undecodable, {self.control:,} '
                     f'control); expected plain or gzipped UTF-8 text, one sentence a line')


def _file_chunks(path: pathlib.Path, chunk_bytes: int, tally: collections.Counter
                 ) -> Iterator[tuple[list[str], list[int]]]:
  """Yields (tokens, ends) per chunk: ends[i] = len(tokens) where the i-th line ending in it falls.

  Adds to tally['replaced_chars'] the undecodable byte sequences, each decoded as U+FFFD ('replace', which
  C does without a Python handler), so all state is this call's: a U+FFFD is an error unless the bytes hold
  one, and those are counted apart (EF BF BD, which can only be a whole U+FFFD). Raises W2VError if the file
  is not text (_TextCheck).
  """
  decoder = codecs.getincrementaldecoder('utf-8')(errors='replace')
  carry = ''    # a token that may continue in the next chunk
  last2 = b''   # the last two bytes read: the bytes of a U+FFFD may straddle two reads
  start = True  # nothing decoded yet: a leading BOM (U+FEFF) is no word
  f, gz = _open(path)
  with f:
    check = _TextCheck(path, gz, None if gz else os.fstat(f.fileno()).st_size)
    while True:
      data = f.read(chunk_bytes)
      piece = decoder.decode(data, final=not data)
      held = data.count(_FFFD_UTF8) + (last2 + data[:2]).count(_FFFD_UTF8)  # those ending in data
      last2 = (last2 + data)[-2:] if len(data) < 2 else data[-2:]
      replaced = piece.count('\ufffd') - held
      check.add(data, piece, replaced, pending=len(decoder.getstate()[0]))
      check.judge(whole=not data)
      tally['replaced_chars'] += replaced
      if start and piece:
        start = False
        piece = piece[1:] if piece[0] == '\ufeff' else piece
      text = carry + piece
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
    raise W2VError(f'the corpus is empty: {_names(files)} has no words; give a file with text')
  stats = CorpusStats(len(files), n, tally['replaced_chars'])
  if not keep_ids:
    return _Scan(list(first_seen), counts, None, None, stats)
  return _Scan(list(first_seen), counts, np.concatenate(pieces), np.concatenate(ends), stats)


def count_words(paths: Paths, *, chunk_bytes: int = CHUNK_BYTES) -> tuple[dict[str, int], CorpusStats]:
  """Word counts of the corpus, streamed: memory is bounded by the number of distinct words."""
  scan = _scan(resolve_paths(paths), chunk_bytes, keep_ids=False)
  return dict(zip(scan.words, scan.counts.tolist())), scan.stats


def _names(files: list[pathlib.Path]) -> str:
  shown = ', '.join(map(str, files[:3]))
  return shown if len(files) <= 3 else f'{shown} and {len(files) - 3} more files'


def _has_context(offsets: np.ndarray) -> bool:
  """Whether some sentence has two tokens or more: sentences are never empty, so more tokens than sentences."""
  return len(offsets) > 1 and int(offsets[-1]) > len(offsets) - 1


def _no_context(files: list[pathlib.Path], scan: _Scan, cut: tuple[int, int | None] | None) -> W2VError:
  """The error for an encoded corpus whose every sentence is one token long; cut: (min_count, max_vocab_size)."""
  longest_read = int(np.diff(scan.ends, prepend=0).max())
  if longest_read < 2:
    why, fix = 'every line holds one word at most', ''
  else:
    dropped, fix = 'words outside the vocabulary', 'lower --min_count, or '
    if cut is not None:
      min_count, max_vocab_size = cut
      reasons, fixes = [], []
      if min_count > 1:
        reasons.append(f'seen fewer than min_count={min_count} times')
        fixes.append('lower --min_count')
      if max_vocab_size is not None:
        reasons.append(f'beyond the max_vocab_size={max_vocab_size} most frequent')
        fixes.append('raise --max_vocab_size')
      dropped += f', those {" or ".join(reasons)},' if reasons else ''
      fix = ''.join(f'{f}, or ' for f in fixes)
    why = (f'the longest line has 1 word in the vocabulary; lines of up to {longest_read} words were read, but '
           f'{dropped} are dropped')
  return W2VError(f'{_names(files)}: no line has two words in the vocabulary, so no word has a context to train '
                  f'on ({why}); {fix}give text with sentences of two words or more (one sentence per line)')


def _encode(scan: _Scan, vocab: Vocab, files: list[pathlib.Path],
            cut: tuple[int, int | None] | None = None) -> EncodedCorpus:
  """Maps the scan's ids to vocabulary ids, drops OOV tokens, and the sentences left empty.

  Raises W2VError if no sentence is left with two tokens: nothing would have a context to train on.
  """
  table = np.array([vocab.index.get(w, -1) for w in scan.words], dtype=np.int32)  # [U]
  ids = table[scan.ids]
  keep = ids >= 0
  if not keep.any():
    raise W2VError('no corpus word is in the vocabulary; build the vocabulary from this corpus')
  kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])  # [N_raw+1]
  bounds = np.concatenate([[0], kept_before[scan.ends]])
  offsets = bounds[np.concatenate([[True], np.diff(bounds) > 0])]
  if not _has_context(offsets):
    raise _no_context(files, scan, cut)
  return EncodedCorpus(ids[keep], offsets, scan.stats)


def _files_key(files: list[pathlib.Path]) -> list:
  return [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def _digest(obj) -> str:
  return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:24]


def _warn(message: str) -> None:
  warnings.warn(message, RuntimeWarning, stacklevel=3)


def _cache(cache_dir: str | os.PathLike) -> pathlib.Path:
  cache = pathlib.Path(cache_dir)
  try:
    cache.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise _cache_error(cache, e) from None
  return cache


def _cache_error(cache: pathlib.Path, e: OSError | disk.NoSpace) -> W2VError:
  if isinstance(e, disk.NoSpace):
    return W2VError(f'{e}: free space in the corpus cache {cache}, or set --cache_dir (or $W2V_JAX_CACHE) to a '
                    'directory with room')
  return W2VError(f'cannot use the corpus cache {cache} ({e.strerror or e}); set --cache_dir (or $W2V_JAX_CACHE) '
                  'to a writable directory')


# --- each cache entry's record: its files' sizes and CRC-32s, checked when the entry is read ----------------------


def _file_check(path: pathlib.Path) -> dict:
  """{"bytes", "crc32"} of the file (read back in chunks: the encoded corpus may be gigabytes, at ~3 GB/s)."""
  crc, size = 0, 0
  with open(path, 'rb') as f:
    while chunk := f.read(CHUNK_BYTES * 16):
      crc, size = zlib.crc32(chunk, crc), size + len(chunk)
  return {'bytes': size, 'crc32': crc}


def _damage(path: pathlib.Path, expected) -> str | None:
  """Why `path` does not match its recorded size and checksum, or None where it does."""
  if not isinstance(expected, dict):
    return 'its record holds no checksum for it'
  try:
    size = path.stat().st_size
  except OSError:
    return f'{path.name} is missing'
  if size != expected.get('bytes'):
    said = expected.get('bytes')
    return f'{path.name} has {size:,} bytes, its record says {f"{said:,}" if isinstance(said, int) else said}'
  if _file_check(path)['crc32'] != expected.get('crc32'):
    return f'{path.name} does not match its checksum'
  return None


def _check_space(cache: pathlib.Path, corpus: EncodedCorpus | None, vocab: Vocab | None) -> None:
  """Refuses, in one line, a cache entry that its filesystem has no room for."""
  parts = []
  if corpus is not None:
    parts.append(('the encoded corpus', corpus.tokens.nbytes + corpus.offsets.nbytes + 1024))
  if vocab is not None:
    parts.append(('its vocabulary', disk.vocab_bytes(vocab.words, vocab.counts) + 512))
  disk.check(cache, parts, 'free space there, or set --cache_dir (or $W2V_JAX_CACHE) to a directory with room')


def _load_encoded(base: pathlib.Path, notice) -> EncodedCorpus | None:
  """The cached entry, checked against its record; None where there is none, or it is damaged (said in one
  line through `notice`: the caller encodes again and overwrites it)."""
  record_path = base.with_suffix('.json')
  if not record_path.exists():   # written last, so it marks a complete entry
    return None
  meta = read_json(record_path)
  if meta is None or not isinstance(meta.get('check'), dict):
    damage = f'its record {record_path.name} is not readable'
  else:
    check = meta.pop('check')
    damage = next(filter(None, (_damage(base.with_suffix(s), check.get(s)) for s in ('.tokens.npy', '.offsets.npy'))),
                  None)
  if damage is None:
    try:
      tokens = np.load(base.with_suffix('.tokens.npy'), mmap_mode='r')
      offsets = np.load(base.with_suffix('.offsets.npy'), mmap_mode='r')
      if not _has_context(offsets):
        return None  # written before such a corpus was refused: encode again, which raises the error
      return EncodedCorpus(tokens, offsets, CorpusStats(**meta, from_cache=True))
    except (OSError, ValueError, TypeError) as e:
      damage = f'it cannot be read: {e}'
  notice(f'the cached encoded corpus {base.name} was damaged ({damage}): encoding the corpus again')
  return None


def _store_encoded(base: pathlib.Path, corpus: EncodedCorpus) -> None:
  meta = dataclasses.asdict(corpus.stats)
  del meta['from_cache']
  try:
    meta['check'] = {}
    for suffix, array in (('.tokens.npy', corpus.tokens), ('.offsets.npy', corpus.offsets)):
      write_atomic(base.with_suffix(suffix), lambda f: np.save(f, array))
      meta['check'][suffix] = _file_check(base.with_suffix(suffix))
    write_atomic(base.with_suffix('.json'), lambda f: f.write(json.dumps(meta).encode()))
  except (OSError, disk.NoSpace) as e:
    raise _cache_error(base.parent, e) from None


def _load_vocab(path: pathlib.Path, notice) -> Vocab | None:
  """The cached vocabulary at `path`, checked against its record (path.json); None where there is none, or
  it is damaged (said in one line: the caller builds it again)."""
  record_path = path.with_suffix('.json')
  if not record_path.exists():   # written last: no record, no complete entry
    return None
  record = read_json(record_path)
  damage = 'its record is not readable' if record is None else _damage(path, record.get('check'))
  if damage is None:
    try:
      vocab = Vocab.load(path)
      if len(vocab.words) == record.get('words'):
        return vocab
      damage = f'{len(vocab.words):,} words, its record says {record.get("words")}'
    except (ValueError, OSError) as e:   # a line that is no 'word<TAB>count', bytes that are no UTF-8
      damage = str(e).split(';')[0]
  notice(f'the cached vocabulary {path.name} was damaged ({damage}): building it again from the corpus')
  return None


def _store_vocab(path: pathlib.Path, vocab: Vocab) -> None:
  try:
    vocab.save(path)
    record = {'words': len(vocab.words), 'check': _file_check(path)}
    write_atomic(path.with_suffix('.json'), lambda f: f.write(json.dumps(record).encode()))
  except (OSError, disk.NoSpace) as e:
    raise _cache_error(path.parent, e) from None


def _encoded_base(cache_dir, files: list[pathlib.Path], vocab: Vocab) -> pathlib.Path:
  # Keyed by the files' identity and the vocabulary's content: any change makes a new entry.
  return _cache(cache_dir) / f'encoded-{_digest([FORMAT_VERSION, _files_key(files), vocab.fingerprint()])}'


def encode_corpus(paths: Paths, vocab: Vocab, cache_dir: str | os.PathLike | None = None, *,
                  chunk_bytes: int = CHUNK_BYTES, on_notice: Callable[[str], None] | None = None) -> EncodedCorpus:
  """Token ids of the corpus under `vocab`, OOV dropped; loaded memory-mapped from cache_dir if there.

  Raises W2VError if no line keeps two words in the vocabulary: then no word has a context to train on.
  A damaged cache entry is encoded again, said in one line to `on_notice` (default: warnings.warn).
  """
  return _encode_files(resolve_paths(paths), vocab, cache_dir, chunk_bytes, on_notice=on_notice or _warn)


def _encode_files(files: list[pathlib.Path], vocab: Vocab, cache_dir, chunk_bytes: int,
                  cut: tuple[int, int | None] | None = None, *, on_notice=_warn) -> EncodedCorpus:
  base = None if cache_dir is None else _encoded_base(cache_dir, files, vocab)
  if base is not None and (cached := _load_encoded(base, on_notice)) is not None:
    return cached
  corpus = _encode(_scan(files, chunk_bytes, keep_ids=True), vocab, files, cut)
  if base is not None:
    _check_space(base.parent, corpus, None)
    _store_encoded(base, corpus)
  return corpus


def prepare(paths: Paths, min_count: int = 5, max_vocab_size: int | None = None,
            cache_dir: str | os.PathLike | None = None, *,
            chunk_bytes: int = CHUNK_BYTES, on_notice: Callable[[str], None] | None = None
            ) -> tuple[Vocab, EncodedCorpus]:
  """Vocabulary and encoded corpus from one pass over the text, cached so a second run reads no text.

  Raises W2VError, caching nothing, if a file is not text or no line keeps two words in the vocabulary, or
  where cache_dir's filesystem has no room for the entry. Each cache entry is checked when read (its size
  and CRC-32, kept in its JSON record): a damaged one is built again, said in one line to `on_notice`
  (default: warnings.warn), and gives the same vocabulary and tokens as a clean cache.
  """
  notice = on_notice or _warn
  check_vocab_settings(min_count, max_vocab_size)
  files = resolve_paths(paths)
  vocab_path = None
  if cache_dir is not None:
    key = _digest([FORMAT_VERSION, _files_key(files), min_count, max_vocab_size])
    vocab_path = _cache(cache_dir) / f'vocab-{key}.tsv'
    if (vocab := _load_vocab(vocab_path, notice)) is not None:
      return vocab, _encode_files(files, vocab, cache_dir, chunk_bytes, (min_count, max_vocab_size),
                                  on_notice=notice)
  scan = _scan(files, chunk_bytes, keep_ids=True)
  vocab = Vocab.from_counts(dict(zip(scan.words, scan.counts.tolist())), min_count, max_vocab_size)
  corpus = _encode(scan, vocab, files, (min_count, max_vocab_size))  # raises before anything is cached
  if vocab_path is not None:
    _check_space(vocab_path.parent, corpus, vocab)
    _store_encoded(_encoded_base(cache_dir, files, vocab), corpus)
    _store_vocab(vocab_path, vocab)  # last: its record's presence means both entries are complete
  return vocab, corpus
