"""Atomic checkpoints: the train state's leaves plus where the run stands, one .npz (atomic.write_atomic)."""
import json
import os
import pathlib
from typing import NamedTuple

import numpy as np

import jax

from w2v_jax.atomic import write_atomic
from w2v_jax.errors import W2VError

FILENAME = "checkpoint.npz"


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


def load(workdir: str | os.PathLike) -> tuple[list[np.ndarray], Position, dict] | None:
  """(state leaves, position, meta), or None when the workdir holds no checkpoint."""
  path = pathlib.Path(workdir) / FILENAME
  if not path.exists():
    return None
  try:
    with np.load(path) as z:
      leaves = [z[f"leaf_{i}"] for i in range(len(z.files) - 2)]
      return (leaves, Position(*(int(x) for x in z["position"])),
              json.loads(str(z["meta"])))
  except (OSError, ValueError, KeyError) as e:
    raise W2VError(f"cannot read checkpoint {path} ({e}); delete it to start afresh") from None
