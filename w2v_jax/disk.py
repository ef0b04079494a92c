"""Disk space: what a run will write, set against its filesystem's free space before it trains, and the
one-line error (naming the file) for a write that still runs out of space.

The estimates are upper bounds: a text vector's float takes at most 16 bytes ("%.9g" and its space:
"-1.23456789e-05 "), about 12 on average, so a refusal is never the first sign of a run that fits badly.
"""
import errno
import os
import pathlib
import shutil

import numpy as np

from w2v_jax.errors import W2VError

SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
TEXT_FLOAT_BYTES = 16       # the longest "%.9g" float32 with its separator
LOG_RECORD_BYTES = 600      # one metrics.jsonl record (about 400)
FIXED_BYTES = 1 << 20       # loss.png, summary.json, run.json and the lock record, with room to spare


class NoSpace(W2VError):
  """A write that failed for space (ENOSPC, or a quota): `path` is the file it was writing, `what` says
  so, and `advice` (after a semicolon in the message) what is kept and how to go on."""

  def __init__(self, what: str, path: pathlib.Path, advice: str = ""):
    super().__init__(what + (f"; {advice}" if advice else ""))
    self.what, self.path = what, path


def is_no_space(e: BaseException) -> bool:
  return isinstance(e, OSError) and e.errno in SPACE_ERRNOS


def free_bytes(path) -> int | None:
  """Free bytes (for this user) on the filesystem that holds `path`, or would once it is made."""
  p = pathlib.Path(os.path.abspath(path))
  while not p.exists() and p != p.parent:
    p = p.parent
  try:
    return shutil.disk_usage(p).free
  except OSError:
    return None


def human(n: float) -> str:
  for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if n >= size:
      return f"{n / size:,.1f} {unit}"
  return f"{int(n)} bytes"


def no_space(path, e: OSError | None = None) -> NoSpace:
  """The error for a write of `path` that ran out of space."""
  path = pathlib.Path(path)
  free = free_bytes(path.parent)
  what = "a disk quota was exceeded" if e is not None and e.errno == errno.EDQUOT else "no space left on the device"
  return NoSpace(f"{what} writing {path}" + (f" ({human(free)} free there now)" if free is not None else ""), path)


def check(where: pathlib.Path, parts: list[tuple[str, int]], fix: str) -> None:
  """Raises W2VError, in one line with both figures, when the bytes of `parts` ((what, bytes), to be
  written under `where`) exceed the free space of its filesystem."""
  need = sum(n for _, n in parts)
  free = free_bytes(where)
  if free is None or need <= free:
    return
  listed = ", ".join(f"{what} {human(n)}" for what, n in parts if n)
  raise W2VError(f"{where} has {human(free)} free on its filesystem, and this run will write up to {human(need)} "
                 f"there ({listed}): {fix}")


def text_vectors_bytes(words: list[str], dim: int) -> int:
  """vectors.txt's size at most: the header, then per word its bytes, D floats and a newline."""
  return 32 + len("".join(words).encode("utf-8")) + len(words) * (dim * TEXT_FLOAT_BYTES + 1)


def binary_vectors_bytes(words: list[str], dim: int) -> int:
  return 32 + len("".join(words).encode("utf-8")) + len(words) * (4 * dim + 2)


def vocab_bytes(words: list[str], counts) -> int:
  """vocab.tsv's size at most: 'word<TAB>count' lines, every count as long as the largest."""
  digits = len(str(int(np.max(counts)))) if len(counts) else 1
  return len("".join(words).encode("utf-8")) + len(words) * (digits + 2)


def check_run(workdir: pathlib.Path, checkpoint_bytes: int, words: list[str], counts, dim: int, binary: bool,
              log_records: int) -> None:
  """Refuses (W2VError) a run whose files will not fit its workdir's filesystem: the checkpoint twice over
  (the next one is written beside the last, then moved onto it; once where a checkpoint is already there),
  the vectors, the vocabulary, metrics.jsonl and the small files."""
  has_checkpoint = (workdir / "checkpoint.npz").exists()
  parts = [("checkpoint.npz" if has_checkpoint else "checkpoint.npz x 2 (the next is written beside the last)",
            checkpoint_bytes * (1 if has_checkpoint else 2)),
           ("vectors.txt", text_vectors_bytes(words, dim))]
  if binary:
    parts.append(("vectors.bin", binary_vectors_bytes(words, dim)))
  parts += [("vocab.tsv", vocab_bytes(words, counts)),
            ("logs and plot", FIXED_BYTES + LOG_RECORD_BYTES * log_records)]
  check(workdir, parts, "free space there, or choose a --workdir on a filesystem with room")
