"""Word vectors in word2vec.c's text and binary formats, readable by word2vec.c and gensim.

Text:   a header line "V D", then V lines "word f_1 ... f_D".
Binary: the same header line, then V records: the word's UTF-8 bytes, b" ", D little-endian
        float32 (4 D bytes), b"\\n" (word2vec.c writes the newline, gensim does not: both read).

Text floats are written with "%.9g": 9 significant digits, the fewest that bring every float32
back bit for bit (gensim, word2vec.c and `load` all parse them back to the same float32).
word2vec.c's own "%lf" keeps 6 decimals and loses small components; the shortest round-trip
repr (gensim's str()) saves about 10% of the bytes but formats about 3x slower in Python.
A value takes about 12 bytes, so V = 100,000 at D = 100 is about 120 MB; the binary file is a
third of that. Output is a pure function of (words, vectors): identical input, identical bytes.
Files are written to a temporary file beside the target and moved into place (os.replace), so
readers never see half a file.
"""
import itertools
import os
from pathlib import Path

import numpy as np

from w2v_jax import native
from w2v_jax.atomic import write_atomic
from w2v_jax.errors import W2VError

_FLOAT = "%.9g"


def _check(words, vectors):
  """Returns (words, float32 [V, D]) or raises W2VError naming the problem."""
  vectors = np.asarray(vectors)
  if vectors.ndim != 2 or vectors.shape[0] != len(words) or vectors.shape[1] < 1:
    raise W2VError(f"expected vectors of shape [len(words), D] = [{len(words)}, D >= 1], got {vectors.shape}")
  for i, word in enumerate(words):
    try:
      raw = word.encode("utf-8")
    except (AttributeError, UnicodeEncodeError):
      raise W2VError(f"word {i} ({word!r}) is not a string that UTF-8 can encode") from None
    if raw.split() != [raw]:  # ASCII whitespace separates fields; other spaces (U+00A0) may stay in a word
      raise W2VError(f"word {i} ({word!r}) is empty or holds whitespace; the word2vec formats cannot store it")
  return list(words), np.ascontiguousarray(vectors, dtype=np.float32)


def _write_atomic(path, chunks):
  """Writes the byte strings `chunks` to `path` atomically."""
  write_atomic(path, lambda f: f.writelines(chunks))


def save_text(path, words, vectors):
  """Writes word2vec's text format: "V D", then "word f_1 ... f_D" lines, floats as "%.9g".

  `words` must be non-empty and free of whitespace; `vectors` [V, D] is stored as float32.
  """
  words, vectors = _check(words, vectors)
  rows = native.text_rows(words, vectors)   # the same bytes, formatted in C++ where the kernels are loaded
  header = f"{len(words)} {vectors.shape[1]}\n".encode()
  _write_atomic(path, itertools.chain([header], rows if rows is not None else _text_rows(words, vectors)))


def _text_rows(words, vectors):
  """save_text's lines, formatted by Python (native.text_rows gives the same bytes about 4x faster)."""
  line = "%s " + " ".join([_FLOAT] * vectors.shape[1]) + "\n"
  for lo in range(0, len(words), 1024):
    yield "".join(line % (w, *v) for w, v in zip(words[lo:lo + 1024], vectors[lo:lo + 1024].tolist())).encode()


def save_binary(path, words, vectors):
  """Writes word2vec.c's binary format: "V D\\n", then word, b" ", D float32 (little-endian), b"\\n".

  `words` must be non-empty and free of whitespace; `vectors` [V, D] is stored as float32.
  """
  words, vectors = _check(words, vectors)
  rows = vectors.astype("<f4")

  def chunks():
    yield f"{len(words)} {vectors.shape[1]}\n".encode()
    for lo in range(0, len(words), 1024):
      yield b"".join(w.encode() + b" " + r.tobytes() + b"\n" for w, r in zip(words[lo:lo + 1024], rows[lo:lo + 1024]))

  _write_atomic(path, chunks())


def _header(path, data):
  """Parses "V D\\n" at the start of `data`; returns (V, D, offset of the first record)."""
  end = data.find(b"\n")
  line = data[:end if end >= 0 else len(data)]
  try:
    vocab_size, dim = (int(x) for x in line.split())
    if vocab_size < 0 or dim < 1:
      raise ValueError
  except ValueError:
    raise W2VError(f"{path}:1: expected a header line 'V D' (vocabulary size, dimension), got {line[:40]!r}; "
                   "files without one (GloVe) need it added") from None
  return vocab_size, dim, (end + 1 if end >= 0 else len(data))


def _numbers(fields) -> bool:
  try:
    [float(x) for x in fields]
  except ValueError:
    return False
  return True


def _looks_like_text(data, start, dim):
  """True if the records read as text lines: the first is a word and `dim` numbers, or a word and
  another count of numbers in a file without a zero byte (a text file with a bad row, which then
  gets a line-numbered error; binary float32 records almost always hold a zero byte)."""
  end = data.find(b"\n", start)
  fields = data[start:end if end >= 0 else len(data)].split()
  if len(fields) < 2:
    return False
  if _numbers(fields[1:]):
    return len(fields) == dim + 1 or b"\0" not in data
  # a text line whose word holds a space ("new york 0.1 ..."): its last dim fields are numbers
  return len(fields) > dim + 1 and _numbers(fields[-dim:]) and b"\0" not in data


def _check_utf8(path, data, start):
  """Raises W2VError naming the line and the word (or number) of the first undecodable byte."""
  try:
    data[start:].decode("utf-8")
  except UnicodeDecodeError as e:
    at = start + e.start
    line_no = data.count(b"\n", 0, at) + 1
    first = data.rfind(b"\n", 0, at) + 1
    line = data[first:data.find(b"\n", at) if data.find(b"\n", at) >= 0 else len(data)]
    fields = line.split()
    if fields and at < first + line.find(fields[0]) + len(fields[0]):
      raise W2VError(f"{path}:{line_no}: the word {fields[0]!r} is not valid UTF-8; "
                     "re-encode the file as UTF-8") from None
    raise W2VError(f"{path}:{line_no}: byte {data[at:at + 1]!r} after the word is not valid UTF-8; "
                   "is this a binary file? read it as one (binary=True, --binary)") from None


def _read_text(path, data, start, vocab_size, dim):
  """Text records; fields are split at ASCII whitespace (as word2vec.c does), so a word may hold
  other Unicode spaces."""
  _check_utf8(path, data, start)
  lines = data[start:].split(b"\n")
  while lines and not lines[-1].strip():
    lines.pop()  # the final newline, and trailing blank lines
  if len(lines) < vocab_size:
    raise W2VError(f"{path}: header says {vocab_size} words, but only {len(lines)} lines follow it; "
                   "the file is truncated or its header is wrong")
  if len(lines) > vocab_size:
    raise W2VError(f"{path}: header says {vocab_size} words, but {len(lines)} lines follow it; "
                   "its header is wrong")
  words, vectors = [], np.empty((vocab_size, dim), np.float32)
  for i, line in enumerate(lines):
    fields = line.split()
    if len(fields) != dim + 1:
      spaced = len(fields) > dim + 1 and _numbers(fields[-dim:])
      raise W2VError(f"{path}:{i + 2}: expected a word and {dim} numbers (the header's D), got {len(fields)} fields"
                     + (f"; the word {b' '.join(fields[:-dim]).decode(errors='replace')!r} holds a space, which "
                        "word2vec's formats cannot (write it with '_' for the spaces)" if spaced else ""))
    try:
      vectors[i] = np.array(fields[1:], dtype=np.float64)
    except ValueError:
      raise W2VError(f"{path}:{i + 2}: a value of word {fields[0].decode()!r} is not a number") from None
    words.append(fields[0].decode())
  return words, vectors


def _read_binary(path, data, start, vocab_size, dim):
  width = 4 * dim
  if len(data) - start < vocab_size * (width + 2):  # a record is at least a 1-byte word, b" ", 4 D bytes
    raise W2VError(f"{path}: header says {vocab_size} words of {dim} float32, at least "
                   f"{vocab_size * (width + 2):,} bytes, but {len(data) - start:,} bytes follow it; "
                   "the file is truncated or its header is wrong")
  words, vectors = [], np.empty((vocab_size, dim), np.float32)
  for i in range(vocab_size):
    while data[start:start + 1] == b"\n":
      start += 1  # word2vec.c ends each record with "\n", gensim does not
    space = data.find(b" ", start)
    if space < 0 or space + 1 + width > len(data):
      raise W2VError(f"{path}: record {i + 1} of {vocab_size} is cut short; the file is truncated or V is wrong")
    raw = data[start:space]
    if raw.split() != [raw]:
      raise W2VError(f"{path}: record {i + 1} of {vocab_size} (byte {start}) starts with {raw[:40]!r}, not a word "
                     f"and a space; the header's D = {dim} does not match the records, or this is a text file "
                     "(binary=False, --nobinary)")
    try:
      words.append(raw.decode("utf-8"))
    except UnicodeDecodeError:
      raise W2VError(f"{path}: record {i + 1} of {vocab_size}: the word {raw!r} is not valid UTF-8; "
                     "re-encode the words as UTF-8") from None
    vectors[i] = np.frombuffer(data, "<f4", dim, space + 1)
    start = space + 1 + width
  if data[start:].strip(b"\n"):
    raise W2VError(f"{path}: {len(data) - start} unexpected bytes after record {vocab_size}; "
                   "the header's V or D is wrong")
  return words, vectors


def load(path, binary=None):
  """Reads a word2vec text or binary file into (words, float32 [V, D]).

  Args:
    path: the file.
    binary: True or False to insist on a format; None to tell from the first record (text if it
      is a word and numbers, see `_looks_like_text`).

  Raises:
    W2VError, one line naming the file and the problem: missing file; bad header; a file cut short
      or longer than its header says; a row of the wrong length or a value that is not a number
      (with its line); a word that is not valid UTF-8 (with its line or record); a duplicate word; a
      non-finite value (nan, inf).
  """
  path = Path(os.fspath(path))
  try:
    data = path.read_bytes()
  except OSError as e:
    raise W2VError(f"cannot read vectors file {path}: {e.strerror}") from None
  vocab_size, dim, start = _header(path, data)
  if binary is None:
    binary = vocab_size > 0 and not _looks_like_text(data, start, dim)
  read = _read_binary if binary else _read_text
  words, vectors = read(path, data, start, vocab_size, dim)
  if len(set(words)) != len(words):
    first = {}
    i, dup = next((i, w) for i, w in enumerate(words) if first.setdefault(w, i) != i)
    raise W2VError(f"{path}: word {dup!r} appears twice (records {first[dup] + 1} and {i + 1}); "
                   "each word needs one vector")
  bad = ~np.isfinite(vectors).all(axis=1)
  if bad.any():   # a NaN row would pass every benchmark's arithmetic unnoticed and skew its scores
    i = int(np.argmax(bad))
    raise W2VError(f"{path}: the vector of word {words[i]!r} (record {i + 1}) holds a non-finite value (nan or "
                   f"inf), as do {int(bad.sum()) - 1} more; the run that wrote it diverged, or the file is damaged")
  return words, vectors
