"""Faults of a long run, on real files and real processes: one live run per workdir (a second is refused,
a killed one's lock is taken over), the disk checked before training (a small tmpfs), a full disk mid-run
(the last good checkpoint kept, --resume finishes it), caches that heal (each kind of entry damaged: the
vectors of a clean cache), and SIGKILL then --resume (the vectors of an uninterrupted run)."""
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import planted_corpus
from tests.test_cli import ROOT, TINY, assert_one_line_error, run_train
from w2v_jax import api, checkpoint, corpus as corpus_lib, workdir_lock, xla_cache
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError

# a run of some seconds: a checkpoint every call, so a kill finds one
LONG = [*(f for f in TINY if not f.startswith("--epochs")), "--epochs=40", "--checkpoint_every=4",
        "--checkpoint_every_s=0"]
API_TINY = dict(dim=16, window=2, neg=3, epochs=2, min_count=1, sample=0.0, batch_size=64, steps_per_call=4)


def _env(tmp_path):
  return {**os.environ, "W2V_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}


def _start(tmp_path, name, *args) -> subprocess.Popen:
  """A training run in the background, its output in tmp_path/NAME.out and .err (no pipe to fill up)."""
  with open(tmp_path / f"{name}.out", "w") as out, open(tmp_path / f"{name}.err", "w") as err:
    return subprocess.Popen([sys.executable, "-m", "experiments.train", *args], cwd=ROOT, env=_env(tmp_path),
                            stdout=out, stderr=err, text=True)


def _wait_for(condition, timeout=120.0, what="a condition"):
  end = time.monotonic() + timeout
  while not condition():
    if time.monotonic() > end:
      raise AssertionError(f"timed out waiting for {what}")
    time.sleep(0.01)


def _records(path):
  return [json.loads(line) for line in path.read_text().splitlines()]


# --- one live run per workdir; SIGKILL, then --resume ---------------------------------------------------------


def test_a_second_run_is_refused_and_a_killed_runs_lock_is_taken_over_by_its_resume(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  run, whole = tmp_path / "run", tmp_path / "whole"
  reference = _start(tmp_path, "whole", f"--corpus={corpus}", f"--workdir={whole}", *LONG)   # uninterrupted
  first = _start(tmp_path, "first", f"--corpus={corpus}", f"--workdir={run}", *LONG)
  try:
    _wait_for(lambda: (run / "checkpoint.npz").exists() or first.poll() is not None, what="a checkpoint")
    os.kill(first.pid, signal.SIGSTOP)   # held mid-run, its lock with it
    assert first.poll() is None and not (run / "summary.json").exists(), "the run ended before it was held"
    record = json.loads((run / ".lock").read_text())
    assert record["pid"] == first.pid and record["host"] == socket.gethostname()
    metrics = (run / "metrics.jsonl").read_bytes()
    # a second run into it, fresh or resuming, stops before doing anything, naming the workdir and the holder
    for extra in ([], ["--resume"]):
      assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", *LONG, *extra),
                            f"{run} is in use by another run (pid {first.pid} on {socket.gethostname()}",
                            "wait for it to end, or choose another --workdir")
    assert (run / "metrics.jsonl").read_bytes() == metrics
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
  except BaseException:
    reference.kill()
    raise
  finally:
    first.kill()   # (SIGKILLed already, unless the test failed before)
    first.wait()
  resumed = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", "--resume", *LONG)
  assert resumed.returncode == 0, resumed.stderr
  took_over = [line for line in resumed.stdout.splitlines() if "took over the lock" in line]
  assert len(took_over) == 1 and f"left by pid {first.pid} on {socket.gethostname()}" in took_over[0], resumed.stdout
  assert reference.wait(timeout=300) == 0, (tmp_path / "whole.err").read_text()
  assert (run / "vectors.txt").read_bytes() == (whole / "vectors.txt").read_bytes()
  # the log covers each step once, in order, across both sessions
  steps = [(r["epoch"], r["step"]) for r in _records(run / "metrics.jsonl")]
  assert steps == sorted(set(steps)) and steps[-1] == (40, max(s for e, s in steps if e == 40))
  assert (run / ".lock").read_text() == "" and not list(run.glob(".*.tmp"))   # released; no half-written file


def test_api_train_into_a_locked_workdir_is_refused_and_a_refused_run_leaves_no_workdir(tmp_path):
  path = planted_corpus(tmp_path / "c.txt")
  cfg = TrainConfig(**API_TINY)
  with workdir_lock.acquire(tmp_path / "run"):
    with pytest.raises(W2VError, match=f"{tmp_path / 'run'} is in use by another run \\(pid {os.getpid()} on "):
      api.train(cfg, [path], tmp_path / "run", cache_dir=tmp_path / "cache")
  assert not (tmp_path / "run").exists()   # the lock made it, and nothing else was written there
  # a lock record left by a process that died (its flock went with it) is taken over, in one line
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / ".lock").write_text(json.dumps({"pid": 999999999, "host": socket.gethostname()}))
  (tmp_path / "run" / ".checkpoint.npz.999999999.0a1b2c3d.tmp").write_bytes(b"half")
  notices = []
  api.train(cfg, [path], tmp_path / "run", cache_dir=tmp_path / "cache", on_notice=notices.append)
  assert notices == [f"{tmp_path / 'run'}: took over the lock left by pid 999999999 on {socket.gethostname()}, "
                     "which ended without releasing it (removed the 1 half-written file it left)"]
  assert not list((tmp_path / "run").glob(".*.tmp"))


def test_on_a_mesh_process_0_decides_for_all(tmp_path):
  corpus = str(planted_corpus(tmp_path / "c.txt"))
  worker = os.path.join(ROOT, "tests", "distributed_worker.py")
  env = {**_env(tmp_path), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  with workdir_lock.acquire(tmp_path / "run"):
    hosts = [subprocess.Popen([sys.executable, worker, "locked", str(tmp_path), corpus,
                               f"--coordinator=localhost:{port}", f"--process_id={p}"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for p in (0, 1)]
    try:
      logs = [h.communicate(timeout=120)[0] for h in hosts]
    finally:
      for h in hosts:
        h.kill()
  assert [h.returncode for h in hosts] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
  assert (tmp_path / "error_0.txt").read_text().startswith(f"{tmp_path / 'run'} is in use by another run "
                                                           f"(pid {os.getpid()} on ")
  assert (tmp_path / "error_1.txt").read_text() == (f"process 0 refused --workdir={tmp_path / 'run'} (its error "
                                                    "says why)")


# --- the disk checked before training, and a disk that fills mid-run --------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
  """A 4 MB tmpfs, mounted for the test (as root); skipped where none can be mounted."""
  mount = tmp_path / "small"
  mount.mkdir()
  if shutil.which("mount") is None or os.geteuid() != 0:
    pytest.skip("mounting a tmpfs needs root and mount(8)")
  out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                       text=True)
  if out.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
  try:
    yield mount
  finally:
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(fs, leave: int = 0) -> None:
  """Fills the filesystem `fs` until `leave` bytes are free (0: until a write fails for space)."""
  with open(fs / "filler", "ab") as f:
    while shutil.disk_usage(fs).free > leave:
      try:
        f.write(b"\0" * min(1 << 16, max(shutil.disk_usage(fs).free - leave, 4096)))
        f.flush()
      except OSError as e:
        assert e.errno == errno.ENOSPC
        break


def test_a_workdir_or_cache_without_room_is_refused_before_training(tmp_path, small_fs):
  # the shipped corpus at dim 100: its checkpoint (6.6 MB) alone is more than the 4 MB there
  out = run_train(tmp_path, f"--workdir={small_fs / 'run'}", "--epochs=1")
  assert_one_line_error(out, f"{small_fs / 'run'} has ", " free on its filesystem, and this run will write up to ",
                        "checkpoint.npz x 2", "vectors.txt", "choose a --workdir on a filesystem with room")
  assert "step:" not in out.stdout and not (small_fs / "run").exists()   # before compiling; nothing left
  # the corpus cache there, with 1 MB left: its encoded corpus (1.8 MB) does not fit
  _fill(small_fs, leave=1 << 20)
  out = run_train(tmp_path, f"--workdir={tmp_path / 'run'}", f"--cache_dir={small_fs / 'cache'}", "--epochs=1")
  assert_one_line_error(out, f"{small_fs / 'cache'} has ", " MB free", "the encoded corpus 1.8 MB",
                        "set --cache_dir")
  assert not [p for p in (small_fs / "cache").iterdir() if p.name != "xla"] and not (tmp_path / "run").exists()


def test_a_disk_that_fills_mid_run_keeps_the_last_checkpoint_and_resume_finishes(tmp_path, small_fs):
  path = planted_corpus(tmp_path / "c.txt")
  cfg = TrainConfig(**{**API_TINY, "epochs": 3})
  common = dict(cache_dir=tmp_path / "cache", checkpoint_every=4, checkpoint_every_s=0.0, log_every_s=0.0)
  api.train(cfg, [path], tmp_path / "whole", **common)
  run = small_fs / "run"

  def fill_after_a_checkpoint(record):
    if (run / "checkpoint.npz").exists() and not (small_fs / "filler").exists():
      _fill(small_fs)
  with pytest.raises(W2VError) as stopped:
    api.train(cfg, [path], run, on_log=fill_after_a_checkpoint, **common)
  message = str(stopped.value)
  kept = checkpoint.position(run)
  assert kept is not None and tuple(kept) < (cfg.epochs, 0)
  assert message.startswith(f"no space left on the device writing {run}/"), message
  assert f"the last good checkpoint (epoch {kept.epoch + 1} step {kept.step}) is kept in {run}" in message
  assert message.endswith("free space, then rerun with --resume to continue from it") and "\n" not in message
  assert not list(run.glob(".*.tmp"))   # no half-written file left behind
  (small_fs / "filler").unlink()
  resumed = api.train(cfg, [path], run, resume=True, **common)
  assert resumed.summary["status"] == "finished"
  assert (run / "vectors.txt").read_bytes() == (tmp_path / "whole" / "vectors.txt").read_bytes()


def test_what_a_full_disk_leaves_is_said_for_each_kind_of_checkpoint(tmp_path):
  assert api.kept_after_no_space(tmp_path, 3) == "no checkpoint had been written yet: free space, then run again"
  checkpoint.save(tmp_path, [np.zeros(2)], checkpoint.Position(1, 8), {})
  assert api.kept_after_no_space(tmp_path, 3) == (f"the last good checkpoint (epoch 2 step 8) is kept in {tmp_path}: "
                                                  "free space, then rerun with --resume to continue from it")
  checkpoint.save(tmp_path, [np.zeros(2)], checkpoint.Position(3, 0), {})
  assert api.kept_after_no_space(tmp_path, 3, "rerun the same command") == (
      f"the finished run's checkpoint is kept in {tmp_path}: free space, then rerun the same command to write its "
      "files from it (nothing is trained again)")


# --- caches that heal ---------------------------------------------------------------------------------------------


def _garble(path, at=0.5, n=64):
  data = bytearray(path.read_bytes())
  i = int(len(data) * at)
  data[i:i + n] = bytes((b + 1) % 256 for b in data[i:i + n])
  path.write_bytes(bytes(data))


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


DAMAGES = {
    "a garbage line in the vocabulary": ("vocab-*.tsv", lambda p: p.write_text(p.read_text() + "garbage\n"),
                                         "the cached vocabulary"),
    "a count changed in the vocabulary": ("vocab-*.tsv", lambda p: p.write_text(p.read_text().replace("\t", "\t1", 1)),
                                          "the cached vocabulary"),
    "the vocabulary's record garbled": ("vocab-*.json", lambda p: p.write_text("{not json"), "the cached vocabulary"),
    "the encoded corpus truncated": ("encoded-*.tokens.npy", _truncate, "the cached encoded corpus"),
    "the encoded corpus garbled": ("encoded-*.tokens.npy", _garble, "the cached encoded corpus"),
    "the sentence offsets garbled": ("encoded-*.offsets.npy", lambda p: _garble(p, at=0.9),
                                     "the cached encoded corpus"),
    "the encoded corpus's record garbled": ("encoded-*.json", lambda p: p.write_text("{}"),
                                            "the cached encoded corpus"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_corpus_cache_entry_is_rebuilt_and_gives_the_same_vectors(tmp_path, damage):
  pattern, spoil, named = DAMAGES[damage]
  path = planted_corpus(tmp_path / "c.txt")
  cfg = TrainConfig(**API_TINY)
  clean = api.train(cfg, [path], tmp_path / "clean", cache_dir=tmp_path / "cache")
  [entry] = (tmp_path / "cache").glob(pattern)
  spoil(entry)
  notices = []
  healed = api.train(cfg, [path], tmp_path / "healed", cache_dir=tmp_path / "cache", on_notice=notices.append)
  assert len(notices) == 1 and notices[0].startswith(f"{named} ") and " was damaged (" in notices[0], notices
  assert (tmp_path / "healed" / "vectors.txt").read_bytes() == (tmp_path / "clean" / "vectors.txt").read_bytes()
  assert np.array_equal(healed.params.W_in, clean.params.W_in)
  again = []   # mended: the next run reads it clean
  vocab, encoded = corpus_lib.prepare([path], cfg.min_count, None, tmp_path / "cache", on_notice=again.append)
  assert again == [] and encoded.stats.from_cache


def test_the_issues_damaged_vocabulary_is_one_line_from_the_command_line(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  assert run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'a'}", *TINY).returncode == 0
  [vocab] = (tmp_path / "cache").glob("vocab-*.tsv")
  size = vocab.stat().st_size
  vocab.write_text(vocab.read_text() + "one garbage line\n")
  out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'b'}", *TINY)
  assert out.returncode == 0, out.stderr
  notes = [line for line in out.stdout.splitlines() if line.startswith("note: ")]
  assert notes == [f"note: the cached vocabulary {vocab.name} was damaged ({vocab.name} has {size + 17:,} bytes, "
                   f"its record says {size:,}): building it again from the corpus"], out.stdout
  assert "Warning" not in out.stderr and "Traceback" not in out.stderr, out.stderr
  assert (tmp_path / "a" / "vectors.txt").read_bytes() == (tmp_path / "b" / "vectors.txt").read_bytes()


def test_two_runs_filling_one_cache_at_once_then_damaged_xla_entries_heal(tmp_path):
  """Two runs fill a fresh cache (corpus and compiled steps) at once: neither leaves a half-written entry.
  Then XLA's entries are truncated and garbled: the next run says so once per entry, compiles them again,
  and gives the same vectors; the run after it finds them sound."""
  corpus = planted_corpus(tmp_path / "c.txt")
  runs = {name: _start(tmp_path, name, f"--corpus={corpus}", f"--workdir={tmp_path / name}", *TINY)
          for name in ("a", "b")}
  for name, r in runs.items():
    assert r.wait(timeout=300) == 0, (tmp_path / f"{name}.err").read_text()
    assert "note:" not in (tmp_path / f"{name}.out").read_text()
  assert (tmp_path / "a" / "vectors.txt").read_bytes() == (tmp_path / "b" / "vectors.txt").read_bytes()
  notices = []
  corpus_lib.prepare([corpus], 1, None, tmp_path / "cache", on_notice=notices.append)
  assert notices == []
  entries = sorted((tmp_path / "cache" / "xla").glob("*-cache"))
  assert entries and not list((tmp_path / "cache" / "xla").glob(".*.tmp"))
  expected = set()
  for i, entry in enumerate(entries):
    size = entry.stat().st_size
    if i % 2:
      _truncate(entry)
      why = f"{size // 2:,} bytes, its record says {size:,}"
    else:
      _garble(entry)
      why = "its checksum differs from its record"
    expected.add(f"note: the compiled-step cache entry {entry} was damaged ({why}): removed, and the step is "
                 "compiled again")
  out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'c'}", *TINY)
  assert out.returncode == 0, out.stderr
  notes = [line for line in out.stdout.splitlines() if line.startswith("note: ")]
  assert len(notes) == len(set(notes)) and set(notes) == expected, (notes, expected)
  assert "Warning" not in out.stderr and "Traceback" not in out.stderr, out.stderr
  assert (tmp_path / "c" / "vectors.txt").read_bytes() == (tmp_path / "a" / "vectors.txt").read_bytes()
  out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'd'}", *TINY)
  assert out.returncode == 0 and "note:" not in out.stdout, out.stdout + out.stderr


WRITER = """
import sys, pathlib
sys.path.insert(0, {root!r})
from w2v_jax import xla_cache
cache = xla_cache.HealingCache(pathlib.Path({path!r}), lambda m: print("NOTICE", m, flush=True))
me = int(sys.argv[1])
for i in range(100):
  if me < 3:   # a writer: its own bytes, in sizes of its own
    cache.put("k", bytes([me]) * (1000 + 7919 * me + i % 5))
  elif (got := cache.get("k")) is not None:   # the reader: one writer's whole value, or nothing yet
    w = got[0]
    assert w < 3 and got == bytes([w]) * len(got) and 0 <= len(got) - 1000 - 7919 * w < 5, (w, len(got))
"""


def test_the_compiled_step_cache_is_never_seen_half_written(tmp_path):
  """Three processes write one entry over and over while a fourth reads it: every read is one writer's
  whole value, with its record (no notice of damage)."""
  script = WRITER.format(root=ROOT, path=str(tmp_path / "xla"))
  procs = [subprocess.Popen([sys.executable, "-c", script, str(me)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for me in range(4)]
  outs = [p.communicate(timeout=120) for p in procs]
  assert [p.returncode for p in procs] == [0] * 4, outs
  assert not any("NOTICE" in out for out, _ in outs), outs
  notices = []
  cache = xla_cache.HealingCache(tmp_path / "xla", notices.append)
  value = cache.get("k")
  assert value is not None and len(set(value)) == 1 and notices == []
  _garble(tmp_path / "xla" / "k-cache")
  assert cache.get("k") is None and len(notices) == 1 and "its checksum differs from its record" in notices[0]
  assert not (tmp_path / "xla" / "k-cache").exists()   # removed: the next compile writes it anew
  # an entry without a record (an older cache's): adopted where it decompresses, else removed
  from jax._src import compilation_cache
  (tmp_path / "xla" / "old-cache").write_bytes(compilation_cache.compress_executable(b"an executable"))
  (tmp_path / "xla" / "bad-cache").write_bytes(b"not compressed")
  assert cache.get("old") == (tmp_path / "xla" / "old-cache").read_bytes()
  assert (tmp_path / "xla" / "old-cache.json").exists() and len(notices) == 1
  assert cache.get("bad") is None and "it does not decompress" in notices[-1]


def test_a_workdir_removed_while_locked_leaves_the_real_error_to_be_seen(tmp_path):
  """Release runs in finally blocks: a workdir gone meanwhile must not replace the error on its way."""
  with pytest.raises(W2VError, match="the real error"):
    with workdir_lock.acquire(tmp_path / "run"):   # made by the lock: release looks inside to remove it
      shutil.rmtree(tmp_path / "run")
      raise W2VError("the real error")
  lock = workdir_lock.acquire(tmp_path / "run")   # and the lock can be taken again, in a new workdir
  lock.release()
  assert not (tmp_path / "run").exists()


def test_a_lent_lock_lets_its_run_in_and_keeps_other_processes_out(tmp_path):
  """A sweep lends its run directory's lock to api.train: the run trains; the lock outlives it."""
  path = planted_corpus(tmp_path / "c.txt")
  probe = ("import sys; from w2v_jax import workdir_lock, W2VError\n"
           "try:\n  workdir_lock.acquire(sys.argv[1])\nexcept W2VError as e:\n  print(e)")
  with workdir_lock.acquire(tmp_path / "run") as lock, lock.lend():
    api.train(TrainConfig(**API_TINY), [path], tmp_path / "run", cache_dir=tmp_path / "cache")
    other = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert other.stdout.startswith(f"{tmp_path / 'run'} is in use by another run (pid {os.getpid()} on "), other
  assert (tmp_path / "run" / "summary.json").exists() and (tmp_path / "run" / ".lock").read_text() == ""
  with workdir_lock.acquire(tmp_path / "run"):   # held but not lent: this process is refused too, as before
    with pytest.raises(W2VError, match="is in use by another run"):
      workdir_lock.acquire(tmp_path / "run")
