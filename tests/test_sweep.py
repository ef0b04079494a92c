"""Sweeps: grid expansion and checks, one row per run, skipping finished runs, redoing unfinished ones."""
import csv
import dataclasses
import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from experiments import sweep_grid as sweep
from w2v_jax import api
from w2v_jax import corpus as corpus_lib
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError

REPO = pathlib.Path(__file__).resolve().parents[1]
# Words from WS-353 and the analogy set, so that evaluation has something to score.
WORDS = ("love sex tiger cat king queen man woman boy girl brother sister athens greece berlin germany "
         "good better bad worse money bank water music war city").split()
BASE = TrainConfig(dim=8, epochs=1, min_count=1, batch_size=64, steps_per_call=4)
GRID = {"model": ["sgram_neg"], "window": [1, 2], "neg": [1, 2], "dim": [8]}


def _corpus(path: pathlib.Path) -> pathlib.Path:
  rng = np.random.default_rng(0)
  path.write_text("\n".join(" ".join(rng.choice(WORDS, size=8)) for _ in range(300)) + "\n")
  return path


class Calls:
  """Wraps api.train and records (run name, resume) per call."""

  def __init__(self, monkeypatch):
    self.calls, self._train = [], api.train
    monkeypatch.setattr(api, "train", self)

  def __call__(self, cfg, corpus, workdir, **kw):
    self.calls.append((pathlib.Path(workdir).name, kw["resume"]))
    return self._train(cfg, corpus, workdir, **kw)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
  """A finished 2 x 2 sweep: (corpus, cache, workdir, rows, events, text scans)."""
  tmp = tmp_path_factory.mktemp("sweep")
  corpus, cache, workdir = _corpus(tmp / "corpus.txt"), tmp / "cache", tmp / "runs"
  events, scans, scan = [], [], corpus_lib._scan
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(corpus_lib, "_scan", lambda *a, **k: scans.append(1) or scan(*a, **k))
    rows = sweep.run_grid(BASE, GRID, [corpus], workdir, cache_dir=cache, on_event=events.append)
  return corpus, cache, workdir, rows, events, len(scans)


def test_grid_gives_one_row_per_run_with_its_settings(done):
  corpus, cache, workdir, rows, events, scans = done
  assert scans == 1   # the corpus is read once; every run reads the cache
  assert [r["name"] for r in rows] == ["sgram_neg-w1-k1-d8", "sgram_neg-w1-k2-d8", "sgram_neg-w2-k1-d8",
                                       "sgram_neg-w2-k2-d8"]
  assert [(r["window"], r["neg"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]
  for r in rows:
    assert (r["model"], r["dim"], r["epochs"], r["min_count"], r["batch_size"]) == ("sgram_neg", 8, 1, 1, 64)
    assert r["lr"] == 0.025 and r["words_per_sec"] > 0 and np.isfinite(r["final_loss"])
    assert all(k in r for k in sweep.METRICS)
    assert json.loads((workdir / r["name"] / "summary.json").read_text())["status"] == "finished"
    assert (workdir / r["name"] / "vectors.txt").exists()
  assert [e["event"] for e in events] == ["start", "done"] * 4
  with open(workdir / "results.csv") as f:
    assert [row["name"] for row in csv.DictReader(f)] == [r["name"] for r in rows]
  assert [json.loads(line) for line in open(workdir / "results.jsonl")] == rows
  assert sum(line.startswith("| ") for line in open(workdir / "results.md")) == 1 + len(rows)
  assert sorted(p.name for p in (workdir / "plots").iterdir()) == sorted(
      f"{m}_vs_{x}.png" for m in ("analogy", "ws353", "simlex999", "words_per_sec") for x in ("window", "neg"))


def test_rerun_skips_every_finished_run(done, monkeypatch):
  corpus, cache, workdir, rows, _, _ = done
  calls, events = Calls(monkeypatch), []
  again = sweep.run_grid(BASE, GRID, [corpus], workdir, cache_dir=cache, on_event=events.append,
                         make_plots=False)
  assert calls.calls == [] and again == rows
  assert [e["event"] for e in events] == ["skip"] * 4


def test_a_run_deleted_half_way_is_redone(done, tmp_path, monkeypatch):
  corpus, cache, workdir, rows, _, _ = done
  copy = shutil.copytree(workdir, tmp_path / "runs")
  (copy / rows[2]["name"] / "summary.json").unlink()   # its timing is lost: trained again from scratch
  calls = Calls(monkeypatch)
  again = sweep.run_grid(BASE, GRID, [corpus], copy, cache_dir=cache, make_plots=False)
  assert calls.calls == [(rows[2]["name"], False)]
  assert [r["name"] for r in again] == [r["name"] for r in rows]


def test_an_interrupted_run_resumes_from_its_checkpoint(done, tmp_path, monkeypatch):
  corpus, cache, _, _, _, _ = done
  grid, workdir, asked = {"window": [2]}, tmp_path / "runs", []
  stop = lambda: asked.append(1) or len(asked) > 1   # lets the run start, then stops it at once
  assert sweep.run_grid(BASE, grid, [corpus], workdir, cache_dir=cache, should_stop=stop) == []
  run = workdir / "sgram_neg-w2-k5-d8"
  assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
  assert (run / "checkpoint.npz").exists()
  calls, events = Calls(monkeypatch), []
  rows = sweep.run_grid(BASE, grid, [corpus], workdir, cache_dir=cache, on_event=events.append,
                        make_plots=False)
  assert calls.calls == [(run.name, True)] and [e["event"] for e in events] == ["resume", "done"]
  assert [r["name"] for r in rows] == [run.name]


def test_other_settings_in_the_same_workdir_are_refused(done, monkeypatch):
  corpus, cache, workdir, _, _, _ = done
  calls = Calls(monkeypatch)
  with pytest.raises(W2VError, match="other settings.*epochs=1 there, 2 here"):
    sweep.run_grid(dataclasses.replace(BASE, epochs=2), GRID, [corpus], workdir, cache_dir=cache)
  assert calls.calls == []


def test_a_corpus_changed_in_place_is_another_corpus(done, tmp_path, monkeypatch):
  """The same path with other text: finished runs of the old text are not passed off as the new one's."""
  corpus, cache, workdir, rows, _, _ = done
  copy = shutil.copytree(workdir, tmp_path / "runs")
  text = tmp_path / "corpus.txt"
  shutil.copy(corpus, text)
  for name in (r["name"] for r in rows):   # the copied runs' records name this corpus file, as it was
    record = json.loads((copy / name / sweep.RUN_RECORD).read_text())
    record.update(corpus=[str(text.resolve())], corpus_stat=sweep.corpus_stats([str(text.resolve())]))
    (copy / name / sweep.RUN_RECORD).write_text(json.dumps(record))
  calls = Calls(monkeypatch)
  assert sweep.run_grid(BASE, GRID, [text], copy, cache_dir=cache, make_plots=False) == rows   # unchanged: skipped
  with open(text, "a") as f:
    f.write("love war money\n" * 50)
  with pytest.raises(W2VError, match="changed since that run"):
    sweep.run_grid(BASE, GRID, [text], copy, cache_dir=cache, make_plots=False)
  assert calls.calls == []


@pytest.mark.parametrize("grid, message", [
    ({}, "grid is empty"),
    ({"window": []}, "empty"),
    ({"model": ["sgram_neg", "skipgram"]}, "unknown model 'skipgram'"),
    ({"window": [2, 0]}, "sgram_neg-w0-k5-d100: --window must be at least 1"),
    ({"dim": [-1]}, "--dim must be at least 1"),
    ({"window": [2, "x"]}, "bad window value 'x'"),
    ({"window": [2.5]}, "bad window value 2.5"),
    ({"windows": [2]}, "cannot sweep 'windows'"),
    ({"model": ["cbow_neg"], "neg": [0]}, "needs --neg >= 1"),
])
def test_bad_grids_fail_before_anything_runs(grid, message, tmp_path):
  with pytest.raises(W2VError, match=message.replace("(", r"\(")):
    sweep.run_grid(TrainConfig(), grid, [tmp_path / "missing.txt"], tmp_path / "runs")
  assert not (tmp_path / "runs").exists()


def test_full_softmax_models_collapse_the_neg_axis():
  plan = sweep.expand(BASE, {"model": ["sgram", "sgram_neg"], "neg": [1, 2]})
  assert [name for name, _ in plan] == ["sgram-w5-d8", "sgram_neg-w5-k1-d8", "sgram_neg-w5-k2-d8"]
  assert [cfg.neg for _, cfg in plan] == [0, 1, 2]
  assert sweep.run_name(BASE, ["window", "sample"]) == "sgram_neg-w5-k5-d8-sample0.001"


def test_a_second_sweep_on_a_locked_workdir_is_refused(tmp_path):
  workdir = tmp_path / "runs"
  with sweep.workdir_lock(workdir):
    with pytest.raises(W2VError, match=f"{workdir} is in use by another sweep or run \\(pid {os.getpid()} on "):
      sweep.run_grid(BASE, GRID, [_corpus(tmp_path / "c.txt")], workdir, cache_dir=tmp_path / "cache")
  assert not workdir.exists()   # released, and the workdir it made for itself removed with it
  workdir.mkdir()
  with open(workdir / ".lock", "w") as f:   # another process could take it now
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_cli_reports_a_bad_list_in_one_line(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "experiments.sweep", "--windows=2,x",
                         f"--workdir={tmp_path / 'runs'}"], cwd=REPO, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines() == ["error: --windows: 'x' is not an integer (give a "
                                              "comma-separated list such as --windows=2,5,10)"]
  assert not (tmp_path / "runs").exists()


# the holder of a run directory's lock: a real process that holds it until killed
HOLDER = ("import sys, time; from w2v_jax import workdir_lock; lock = workdir_lock.acquire(sys.argv[1]); "
          "print('held', flush=True); time.sleep(600)")


def test_a_sweep_leaves_a_run_directory_another_process_holds_untouched(tmp_path):
  corpus, workdir = _corpus(tmp_path / "c.txt"), tmp_path / "runs"
  cfg = dataclasses.replace(BASE, window=2, neg=1)
  (name, _), = sweep.expand(cfg, {"model": ["sgram_neg"]})
  run_dir = workdir / name
  run_dir.mkdir(parents=True)
  live = '{"epoch": 1, "step": 4, "loss": 4.1}\n'   # the live run's log
  (run_dir / "metrics.jsonl").write_text(live)
  holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
  try:
    assert holder.stdout.readline() == "held\n"
    proc = subprocess.run([sys.executable, "-m", "experiments.sweep", f"--corpus={corpus}",
                           f"--workdir={workdir}", "--models=sgram_neg", "--windows=2", "--negs=1", "--dims=8",
                           "--epochs=1", "--min_count=1", "--batch_size=64", "--steps_per_call=4",
                           "--noprogress"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "W2V_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"})
  finally:
    holder.kill()
    holder.wait()
  assert proc.returncode > 0 and "Traceback" not in proc.stderr, proc.stderr
  assert proc.stderr.strip().splitlines() == [
      f"error: run {name}: {run_dir} is in use by another run (pid {holder.pid} on {os.uname().nodename}, "
      f"started " + proc.stderr.split(", started ")[1].strip()]
  assert (run_dir / "metrics.jsonl").read_text() == live
  assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "metrics.jsonl"]   # no run.json written
