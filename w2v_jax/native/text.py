"""`vectors.txt`'s lines formatted by text_rows.cc (the bytes of vectors_io's Python formatter)."""
import collections
import concurrent.futures
import ctypes

import numpy as np

from w2v_jax.native import library

def text_rows(words: list[str], vectors: np.ndarray, block: int = 4096):
  """The lines of word2vec's text format for `words` and float32 `vectors` [V, D] ("word f_1 ... f_D\\n",
  floats as "%.9g" prints them: vectors_io.save_text's bytes), as an iterator of byte strings of `block`
  rows each, formatted by text_rows.cc two blocks at a time (ctypes lets go of the GIL); None where the
  kernels are not loaded (off, or not built in this process: writing a file does not start a build).
  The words must hold no b"\\n" (vectors_io checks that they hold no whitespace)."""
  if library._load.cache_info().currsize == 0 or not library.status().available:
    return None
  vectors = np.ascontiguousarray(vectors, dtype=np.float32)
  if not words:
    return iter(())
  blob = ("\n".join(words) + "\n").encode("utf-8")
  ends = np.flatnonzero(np.frombuffer(blob, np.uint8) == 10).astype(np.int64)
  if len(ends) != len(words) or vectors.shape[0] != len(words):
    raise ValueError(f"text_rows: {len(words)} words (one holding a newline?) for {vectors.shape[0]} rows")
  d = vectors.shape[1]

  def one(lo: int) -> bytes:
    hi = min(lo + block, len(words))
    base = int(ends[lo - 1]) + 1 if lo > 0 else 0
    rel = ends[lo:hi] - base
    cap = int(ends[hi - 1]) + 1 - base + (hi - lo) * (2 + 16 * d)   # kernels.h: kMaxFloatChars = 16
    out = ctypes.create_string_buffer(cap)
    address = ctypes.cast(ctypes.c_char_p(blob), ctypes.c_void_p).value + base   # blob itself, not a copy
    n = library._LIB.W2vFormatTextRows(address, rel.ctypes.data, vectors[lo:hi].ctypes.data, hi - lo, d, out, cap)
    if n < 0:
      raise RuntimeError(f"text_rows.cc: a block of {hi - lo} rows did not fit in {cap} bytes")
    return ctypes.string_at(out, n)

  def blocks():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      pending = collections.deque()
      for lo in range(0, len(words), block):
        pending.append(pool.submit(one, lo))
        if len(pending) > 2:   # at most three blocks in memory
          yield pending.popleft().result()
      while pending:
        yield pending.popleft().result()

  return blocks()


