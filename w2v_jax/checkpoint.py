"""Atomic checkpoints: the train state's leaves plus where the run stands, one .npz (atomic.write_atomic).

`Writer` writes them on a background thread, so that training does not wait for the disk: the state is
copied to host memory first (the only part the training loop waits for), then compressed-free .npz
writing, fsync and the atomic rename happen while the next steps run. One write is in flight at most.
"""
import json
import os
import pathlib
import threading
import zipfile
import zlib
from typing import Callable, NamedTuple, TypeVar

import jax
import numpy as np

from w2v_jax.atomic import write_atomic
from w2v_jax.errors import W2VError

FILENAME = "checkpoint.npz"
T = TypeVar("T")


class Position(NamedTuple):
  """The next step to run: epoch `epoch`, step `step` within it (a multiple of steps_per_call)."""
  epoch: int
  step: int


def save(workdir: str | os.PathLike, state, position: Position, meta: dict) -> pathlib.Path:
  """Writes the leaves of the `state` pytree to workdir/checkpoint.npz atomically (a crash leaves the
  previous checkpoint intact)."""
  leaves = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}
  path = pathlib.Path(workdir) / FILENAME
  write_atomic(path, lambda f: np.savez(f, **leaves, position=np.asarray(position, np.int64),
                                       meta=np.asarray(json.dumps(meta, sort_keys=True))))
  return path


def _read(workdir: str | os.PathLike, read: Callable[..., T]) -> T | None:
  """read(the open .npz), or None when the workdir holds no checkpoint; a damaged file (truncated, not a
  zip, a missing entry) is one W2VError."""
  path = pathlib.Path(workdir) / FILENAME
  if not path.exists():
    return None
  try:
    with np.load(path) as z:
      return read(z)
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise W2VError(f"cannot read checkpoint {path} ({e}); delete it to start afresh") from None


def _position(z) -> Position:
  return Position(*(int(x) for x in z["position"]))


def load(workdir: str | os.PathLike) -> tuple[list[np.ndarray], Position, dict] | None:
  """(state leaves, position, meta), or None when the workdir holds no checkpoint."""
  return _read(workdir, lambda z: ([z[f"leaf_{i}"] for i in range(len(z.files) - 2)], _position(z),
                                   json.loads(str(z["meta"]))))


def position(workdir: str | os.PathLike) -> Position | None:
  """Where the workdir's checkpoint stands, read without its tables; None when there is none."""
  return _read(workdir, _position)


class Writer:
  """Background checkpoint writes: `save` copies the state to the host and returns; `wait` joins the
  write in flight and re-raises its error, if any."""

  def __init__(self):
    self._thread: threading.Thread | None = None
    self._error: BaseException | None = None

  def save(self, workdir, state, position: Position, meta: dict) -> None:
    self.wait()
    host = jax.tree.map(lambda x: np.array(x, copy=True), state)   # one host copy, safe from donation

    def write():
      try:
        save(workdir, host, position, meta)
      except BaseException as e:   # surfaced by the next wait()
        self._error = e
    self._thread = threading.Thread(target=write, name="w2v-checkpoint", daemon=False)
    self._thread.start()

  def wait(self, quiet: bool = False) -> None:
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    if self._error is not None:
      error, self._error = self._error, None
      if not quiet:
        raise error
