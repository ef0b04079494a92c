"""One way to write a file: through a temporary file beside it and os.replace, so no reader (or crash)
ever sees half a file; and the way to read back a JSON record so written."""
import json
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

from w2v_jax import disk
from w2v_jax.errors import W2VError


def write_atomic(path, write: Callable[[BinaryIO], object]) -> None:
  """Calls write(f) on a fresh binary file, syncs it, and moves it onto `path`. A write that runs out of
  space removes its temporary file, leaves `path` as it was, and raises disk.NoSpace naming `path`."""
  path = Path(os.fspath(path))
  tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
  try:
    f = open(tmp, "xb")  # not mkstemp: its 0600 mode would stick to the result
  except OSError as e:
    if disk.is_no_space(e):
      raise disk.no_space(path, e) from None
    raise W2VError(f"cannot write {path}: {e.strerror}; check that its directory exists and is writable") from None
  try:
    with f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException as e:
    tmp.unlink(missing_ok=True)
    if disk.is_no_space(e):
      raise disk.no_space(path, e) from None
    raise


def read_json(path) -> dict | None:
  """The JSON at `path`, or None where there is none or it cannot be read or parsed (callers treat a
  damaged record as a missing one)."""
  try:
    return json.loads(Path(os.fspath(path)).read_text())
  except (OSError, ValueError):
    return None
