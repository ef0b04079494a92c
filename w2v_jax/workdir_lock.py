"""One live run per workdir: an exclusive flock on workdir/.lock, with a record of who holds it.

The kernel releases a flock when its process ends, however it ends (a SIGKILL, the machine's OOM killer),
so a lock is never left stale; the record in the file (pid, host, start time, command) names the holder in
a refusal. A clean release empties the record, so a record found under a lock that was free is one left by
a process that died: the new holder takes it over and says so (`on_notice`).

    lock = workdir_lock.acquire(pathlib.Path("runs/a"))   # W2VError at once if another run holds it
    ...
    lock.release()

A holder that prepares a workdir before the run it starts there (a sweep writing run.json) lends its lock to
that run, so that no other process can enter between the two: `with lock.lend(): api.train(..., workdir)`
(api.train's acquire, in the same thread, gets a hold on the lent lock; its release leaves the lock held).
"""
import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import pathlib
import socket
import sys
import threading
import time
from typing import Callable

from w2v_jax.errors import W2VError

FILENAME = ".lock"
_LENT: dict[tuple[str, int], "Lock"] = {}   # (workdir's real path, thread) -> the lock lent there (Lock.lend)


def _record() -> dict:
  return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "command": " ".join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:])[:200]}


def _parse(text: str) -> dict | None:
  try:
    record = json.loads(text)
  except ValueError:
    record = {"pid": text.strip()} if text.strip() else None   # a bare pid (an older sweep's lock)
  return record if isinstance(record, dict) else None


def describe(record: dict | None) -> str:
  """'pid 123 on host h, started ...', as much of it as the record holds."""
  if not record:
    return "a process that left no record"
  said = f"pid {record.get('pid', '?')}"
  if record.get("host"):
    said += f" on {record['host']}"
  if record.get("started"):
    said += f", started {record['started']}"
  if record.get("command"):
    said += f": {record['command']}"
  return said


@dataclasses.dataclass
class Lock:
  workdir: pathlib.Path
  file: object
  made_dir: bool   # the workdir was made to lock it: removed again on release if nothing else was written

  def release(self) -> None:
    """Empties the record and drops the lock; a workdir this lock made, and nothing then wrote into, goes."""
    if self.file is None:
      return
    f, self.file = self.file, None
    try:
      f.seek(0)
      f.truncate(0)
      f.flush()
    except OSError:
      pass   # (a full disk cannot take a truncation's metadata?) the lock itself still goes below
    if self.made_dir:
      self._remove_if_empty()
    fcntl.flock(f, fcntl.LOCK_UN)
    f.close()

  def _remove_if_empty(self) -> None:
    """Removes the workdir this lock made where nothing but the lock file is in it. A workdir removed, or
    made unreadable, meanwhile is left as it is: release runs in finally blocks, where an error of its own
    would replace the one on its way."""
    try:
      if [p.name for p in self.workdir.iterdir()] == [FILENAME]:
        (self.workdir / FILENAME).unlink(missing_ok=True)   # before unlocking, so no one locks the unlinked file
        self.workdir.rmdir()
    except OSError:
      pass   # gone already, or another run has written there meanwhile

  @contextlib.contextmanager
  def lend(self):
    """While inside, acquire() of this workdir in this thread returns a hold on this lock (whose release
    does nothing) instead of refusing: the holder hands its workdir to the run it starts there."""
    key = _key(self.workdir)
    _LENT[key] = self
    try:
      yield self
    finally:
      _LENT.pop(key, None)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


def _key(workdir: pathlib.Path) -> tuple[str, int]:
  return os.path.realpath(workdir), threading.get_ident()


def _remove_its_temporaries(workdir: pathlib.Path, record: dict) -> int:
  """Removes the temporary files (atomic.write_atomic's .NAME.PID.HEX.tmp) a dead holder on this host left."""
  pid = str(record.get("pid", ""))
  if not pid.isdigit() or record.get("host") not in (None, socket.gethostname()):
    return 0
  removed = 0
  for p in workdir.glob(f".*.{pid}.*.tmp"):
    try:
      p.unlink()
      removed += 1
    except OSError:
      pass
  return removed


def acquire(workdir, *, kind: str = "run", on_notice: Callable[[str], None] | None = None) -> Lock:
  """Locks `workdir` (made if missing) for this process, or raises W2VError at once, in one line naming
  the workdir and the holder, when another process holds it. `kind` names what holds it in that line."""
  workdir = pathlib.Path(workdir)
  lent = _LENT.get(_key(workdir))
  if lent is not None and lent.file is not None:   # its holder lent it to this run (Lock.lend)
    return Lock(workdir, None, False)
  if workdir.exists() and not workdir.is_dir():
    raise W2VError(f"--workdir={workdir} is a file, not a directory: choose another --workdir")
  for _ in range(100):   # a holder that removed its empty workdir, or its lock file, as we opened it: again
    made = not workdir.exists()
    try:
      workdir.mkdir(parents=True, exist_ok=True)
      f = open(workdir / FILENAME, "a+")
    except FileNotFoundError:
      continue
    except OSError as e:
      raise W2VError(f"cannot lock --workdir={workdir} ({e.strerror or e}): choose a writable --workdir") from None
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      f.seek(0)
      holder = _parse(f.read())
      f.close()
      if e.errno in (errno.EAGAIN, errno.EACCES):
        raise W2VError(f"{workdir} is in use by another {kind} ({describe(holder)}): wait for it to end, or "
                       "choose another --workdir") from None
      raise W2VError(f"cannot lock --workdir={workdir} ({e.strerror}; its filesystem may not support locks): "
                     "choose a --workdir on a local filesystem") from None
    try:
      same_file = os.stat(workdir / FILENAME).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
      same_file = False
    if not same_file:   # locked a file its holder had just removed: the lock is on the new one
      fcntl.flock(f, fcntl.LOCK_UN)
      f.close()
      continue
    f.seek(0)
    left = _parse(f.read())
    if left:
      removed = _remove_its_temporaries(workdir, left)
      if on_notice is not None:
        files = f"{removed} half-written file{'s' if removed > 1 else ''}"
        on_notice(f"{workdir}: took over the lock left by {describe(left)}, which ended without releasing it"
                  + (f" (removed the {files} it left)" if removed else ""))
    f.seek(0)
    f.truncate(0)
    f.write(json.dumps(_record()) + "\n")
    f.flush()
    return Lock(workdir, f, made)
  raise W2VError(f"cannot lock --workdir={workdir}: it kept vanishing as it was locked; choose another --workdir")
