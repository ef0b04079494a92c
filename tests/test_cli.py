"""The main job as a user meets it: files written, gensim reads them, bad input is one line on stderr."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import planted_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dim=16", "--window=2", "--neg=3", "--epochs=2", "--min_count=1", "--sample=0", "--batch_size=64",
        "--steps_per_call=4"]


def run_train(tmp_path, *args):
  env = {**os.environ, "W2V_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def assert_one_line_error(out, *fragments):
  # > 0: an exit, not a signal (a process that aborts at exit, e.g. "FATAL: exception not rethrown" from a
  # daemon thread still inside XLA, has returncode -6)
  assert out.returncode > 0, (out.returncode, out.stderr)
  assert "FATAL" not in out.stderr and "terminate called" not in out.stderr, out.stderr
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert "Traceback" not in out.stderr, out.stderr
  errors = [l for l in lines if l.startswith("error: ")]
  assert len(errors) == 1, out.stderr
  for f in fragments:
    assert f in errors[0], errors[0]


def test_main_job_writes_every_file_and_gensim_reads_the_vectors(tmp_path):
  gensim_models = pytest.importorskip("gensim.models")
  corpus = planted_corpus(tmp_path / "c.txt")
  out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'run'}", "--binary", *TINY)
  assert out.returncode == 0, out.stderr
  assert "analogy" in out.stdout and "WS-353" in out.stdout and str(tmp_path / "run") in out.stdout
  run = tmp_path / "run"
  for name in ("vectors.txt", "vectors.bin", "vocab.tsv", "metrics.jsonl", "loss.png", "summary.json",
               "checkpoint.npz"):
    assert (run / name).stat().st_size > 0, name
  summary = json.loads((run / "summary.json").read_text())
  for key in ("model", "dim", "window", "neg", "epochs", "vocab_size", "corpus_words", "train_seconds",
              "words_per_sec", "final_loss", "analogy_accuracy", "ws353_spearman"):
    assert key in summary
  assert summary["vocab_size"] == 48 and summary["corpus_words"] == 600 * 12
  records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
  assert records and all(np.isfinite(r["loss"]) for r in records)
  text = gensim_models.KeyedVectors.load_word2vec_format(str(run / "vectors.txt"))
  binary = gensim_models.KeyedVectors.load_word2vec_format(str(run / "vectors.bin"), binary=True)
  assert text.vectors.shape == (48, 16)
  np.testing.assert_array_equal(text.vectors, binary.vectors)
  assert text.most_similar("g0w1", topn=5)[0][0].startswith("g0")


def test_same_flags_give_byte_identical_vectors(tmp_path):
  # Run b loads run a's compiled chunk from the persistent compilation cache; run c compiles afresh.
  corpus = planted_corpus(tmp_path / "c.txt")
  for name, extra in (("a", []), ("b", []), ("c", ["--nocompile_cache"])):
    out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / name}", *TINY, *extra)
    assert out.returncode == 0, out.stderr
  assert any(p.name.startswith("jit_chunk") for p in (tmp_path / "cache" / "xla").iterdir())
  for name in ("b", "c"):
    assert (tmp_path / "a" / "vectors.txt").read_bytes() == (tmp_path / name / "vectors.txt").read_bytes()


@pytest.mark.parametrize("flags, fragments", [
    (["--corpus=/no/such/file.txt"], ["/no/such/file.txt"]),
    (["--model=skipgram"], ["unknown model 'skipgram'"]),
    (["--window=0"], ["window"]),
    (["--neg=-1"], ["neg"]),
    (["--max_dup=-1"], ["--max_dup"]),
    (["--max_dup=often"], ["--max_dup must be a number > 0, 'auto'", "'often'"]),
    (["corpus.txt"], ["unexpected arguments ['corpus.txt']", "--name=value"]),   # common.run_main
    (["--model=cbow_hs", "--hogwild"], ["--hogwild runs in the fused native CPU kernels", "drop --hogwild"]),
])
def test_bad_flags_are_one_line(tmp_path, flags, fragments):
  assert_one_line_error(run_train(tmp_path, f"--workdir={tmp_path / 'run'}", *flags), *fragments)


def test_an_unknown_pace_setting_is_one_line(tmp_path, monkeypatch):
  """W2V_JAX_PACE (a measuring knob, docs/performance.md, "The slow spells"): a value the kernels do not know is refused
  before the build starts, not silently paced."""
  monkeypatch.setenv("W2V_JAX_PACE", "fast")
  assert_one_line_error(run_train(tmp_path, f"--workdir={tmp_path / 'run'}", *TINY),
                        "W2V_JAX_PACE='fast'", "expected auto", "all", "one")


def test_bad_corpora_are_one_line(tmp_path):
  (tmp_path / "empty.txt").write_text("\n\n")
  assert_one_line_error(run_train(tmp_path, f"--corpus={tmp_path / 'empty.txt'}", f"--workdir={tmp_path / 'r'}"),
                        "empty")
  (tmp_path / "three.txt").write_text("a b c a b c\n" * 10)
  assert_one_line_error(run_train(tmp_path, f"--corpus={tmp_path / 'three.txt'}", f"--workdir={tmp_path / 'r'}",
                                  "--min_count=1", "--neg=5"), "--neg")
  assert_one_line_error(run_train(tmp_path, f"--corpus={tmp_path / 'three.txt'}", f"--workdir={tmp_path / 'r'}",
                                  "--min_count=50"), "--min_count")


def test_divergence_and_a_foreign_resume_are_one_line(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'run'}", *TINY)
  assert out.returncode == 0
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'run'}", *TINY),
                        "already holds a run")
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'run'}", "--resume",
                                  *TINY, "--dim=8"), "different run")
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'div'}", *TINY,
                                  "--lr=1e30"), "lower --lr")


def test_undecodable_bytes_are_replaced_and_reported(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  corpus.write_bytes(corpus.read_bytes() + b"g0w1 \xff\xfe g0w2\n")
  out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'run'}", *TINY)
  assert out.returncode == 0, out.stderr
  assert "2 undecodable byte" in out.stdout or "undecodable" in out.stdout


@pytest.mark.parametrize("flags, fragments", [
    (["--window=100000"], ["--window=100000 is too large", "at most 1000"]),
    (["--seed=99999999999999999999"], ["--seed must be between 0 and 2147483647"]),
    (["--epochs=100000000000"], ["--epochs=100000000000 is too large"]),
    (["--lr=inf"], ["--lr must be a finite number > 0"]),
    (["--sample=nan"], ["--sample must be a finite number"]),
    (["--checkpoint_every=-1"], ["--checkpoint_every (-1)", "must be >= 0"]),
    (["--dim=2000000"], ["the tables need", "lower --dim"]),
    (["--batch_size=1000000000"], ["a call's batches need", "lower --batch_size"]),
])
def test_absurd_settings_are_refused_before_training(tmp_path, flags, fragments):
  """Sizes that would overflow int32, hang compiling, or run out of memory: one line before any training,
  and nothing written."""
  out = run_train(tmp_path, f"--workdir={tmp_path / 'run'}", "--epochs=1", *flags)
  assert_one_line_error(out, *fragments)
  assert not (tmp_path / "run" / "checkpoint.npz").exists() and not (tmp_path / "run" / "vectors.txt").exists()


def test_finished_work_is_never_overwritten_or_resumed_twice(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  run = tmp_path / "run"
  assert run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", *TINY).returncode == 0
  vectors, summary = (run / "vectors.txt").read_bytes(), (run / "summary.json").read_bytes()
  # --resume of the finished run: one line, the files untouched (it used to retrain nothing and rewrite
  # summary.json with a null loss, then fail formatting it)
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", "--resume", *TINY),
                        "holds a finished run", "nothing to resume")
  # the checkpoint deleted (to save space): a fresh run there is still refused, naming what it would overwrite
  (run / "checkpoint.npz").unlink()
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", *TINY, "--seed=5"),
                        "holds an earlier run's summary.json and vectors.txt")
  assert (run / "vectors.txt").read_bytes() == vectors and (run / "summary.json").read_bytes() == summary
  # --resume with nothing to resume, an empty --workdir, a file as --workdir
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'new'}", "--resume",
                                  *TINY), "holds no checkpoint.npz", "drop --resume")
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", "--workdir=", *TINY), "--workdir is empty")
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={corpus}", *TINY),
                        "is a file, not a directory")


def test_a_finished_checkpoint_without_its_files_writes_them(tmp_path):
  """A run killed after its last checkpoint but before its vectors were written (seen: out of memory while
  writing them) gets its files from the checkpoint with --resume, without training again."""
  corpus = planted_corpus(tmp_path / "c.txt")
  run = tmp_path / "run"
  assert run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", *TINY).returncode == 0
  vectors, summary = (run / "vectors.txt").read_bytes(), json.loads((run / "summary.json").read_text())
  (run / "vectors.txt").unlink()
  (run / "summary.json").unlink()
  out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", "--resume", *TINY)
  assert out.returncode == 0, out.stderr
  assert "nothing left to train" in out.stdout
  assert (run / "vectors.txt").read_bytes() == vectors
  again = json.loads((run / "summary.json").read_text())
  assert again["final_loss"] == summary["final_loss"] and again["status"] == "finished"


def test_a_damaged_checkpoint_is_one_line(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  run = tmp_path / "run"
  calls = ["--checkpoint_every=4", "--epochs=2"]
  assert run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", *TINY, *calls).returncode == 0
  (run / "summary.json").unlink()
  with open(run / "checkpoint.npz", "r+b") as f:
    f.truncate(1000)
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={run}", "--resume", *TINY, *calls),
                        "cannot read checkpoint", "delete it to start afresh")


def test_bad_corpus_paths_are_one_line(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--corpus={corpus}",
                                  f"--workdir={tmp_path / 'r'}"), "is given twice")
  (tmp_path / "d" / "sub").mkdir(parents=True)
  (tmp_path / "d" / "a.txt").write_text("a b c\n")
  assert_one_line_error(run_train(tmp_path, f"--corpus={tmp_path / 'd'}", f"--workdir={tmp_path / 'r'}"),
                        "holds subdirectories (sub)", "not read")
  assert_one_line_error(run_train(tmp_path, "--corpus=/dev/null", f"--workdir={tmp_path / 'r'}"),
                        "not a regular file")
  # a vocabulary too small for the negatives: refused before the workdir is made
  assert_one_line_error(run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'r'}",
                                  "--max_vocab_size=1"), "too few for 5 negatives")
  assert not (tmp_path / "r").exists()


def test_an_unwritable_corpus_cache_names_its_flag(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  (tmp_path / "afile").write_text("x")
  out = run_train(tmp_path, f"--corpus={corpus}", f"--workdir={tmp_path / 'r'}", f"--cache_dir={tmp_path / 'afile'}",
                  *TINY)
  assert_one_line_error(out, f"cannot use the corpus cache {tmp_path / 'afile'}", "set --cache_dir")
