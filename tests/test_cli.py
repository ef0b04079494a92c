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
