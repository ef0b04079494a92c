"""Many devices and hosts: meshes of 4 forced CPU devices train the same parameters as one device, the
command line takes --mesh, and a two-process run on localhost agrees with itself and with one process.

Everything that needs several devices runs in a subprocess (tests/distributed_worker.py or the CLI) with
XLA_FLAGS=--xla_force_host_platform_device_count=N, so the other tests keep their single device.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import planted_corpus
from w2v_jax import distributed, vectors_io
from w2v_jax.errors import W2VError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "distributed_worker.py")
TINY = ["--epochs=1", "--dim=16", "--window=2", "--neg=3", "--min_count=1", "--batch_size=64",
        "--steps_per_call=4"]


def _env(devices: int, tmp_path) -> dict:
  return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
          "JAX_PLATFORMS": "cpu", "W2V_JAX_CACHE": str(tmp_path / "cache")}


def _run(args, devices, tmp_path, timeout=120, **kw):
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(devices, tmp_path), capture_output=True,
                        text=True, timeout=timeout, **kw)


def test_parse_mesh():
  assert distributed.parse_mesh("data:4") == {"data": 4}
  assert distributed.parse_mesh("data:2, vocab:2") == {"data": 2, "vocab": 2}
  for spec, fragment in [("model:2", "unknown axis 'model'"), ("data:two", "positive integer"),
                         ("data:0", "positive integer"), ("data", "not axis:size"),
                         ("data:2,data:2", "given twice"), ("", "not axis:size")]:
    with pytest.raises(W2VError, match=fragment):
      distributed.parse_mesh(spec)
  with pytest.raises(W2VError, match="needs 2 devices but JAX sees 1"):
    distributed.make_mesh("data:2")
  assert distributed.make_mesh("vocab:1").shape == {"data": 1, "vocab": 1}


def test_meshes_of_4_devices_train_the_parameters_of_one(tmp_path):
  out = _run([WORKER, "equivalence", str(tmp_path), str(planted_corpus(tmp_path / "c.txt"))], 4, tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  diffs = json.loads((tmp_path / "equivalence.json").read_text())
  assert {"sgram_neg/word2vec-rows/data:4", "sgram_neg/word2vec-rows/data:2,vocab:2", "resume across meshes",
          "sgram/word2vec-rows/data:2,vocab:2", "cbow_neg/adagrad-rows/data:2,vocab:2",
          "cbow_neg/adagrad-tables/data:2,vocab:2"} <= diffs.keys()
  compiles = {case: diffs.pop(case) for case in list(diffs) if case.endswith("compiles")}
  assert set(compiles.values()) == {1}, compiles                  # two epochs, one compilation
  # The same rows, added in another order. (Adam is left out: its first steps are lr * sign(g), which
  # turns a rounding difference in a near-zero gradient into one of lr.)
  assert all(d < 1e-5 for d in diffs.values()), diffs


@pytest.mark.parametrize("mesh", ["data:4", "data:2,vocab:2"])
def test_command_line_trains_on_a_mesh(tmp_path, mesh):
  corpus = planted_corpus(tmp_path / "c.txt")
  out = _run(["-m", "experiments.train", f"--mesh={mesh}", f"--corpus={corpus}",
              f"--workdir={tmp_path / 'run'}", f"--cache_dir={tmp_path / 'cache'}", *TINY], 4, tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  summary = json.loads((tmp_path / "run" / "summary.json").read_text())
  words, vectors = vectors_io.load(tmp_path / "run" / "vectors.txt")
  assert summary["status"] == "finished" and len(words) == 48 and np.isfinite(vectors).all()


def test_a_sweep_trains_on_a_mesh(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  tiny = [f for f in TINY if not f.startswith(("--dim", "--window", "--neg"))]
  out = _run(["-m", "experiments.sweep", "--mesh=data:2,vocab:2", f"--corpus={corpus}", "--models=sgram_neg",
              "--windows=2", "--negs=3", "--dims=16", "--noprogress", f"--workdir={tmp_path / 'runs'}",
              *tiny], 4, tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "1 of 1 runs finished" in out.stdout, out.stdout


@pytest.mark.parametrize("mesh, fragment", [("data:3", "needs 3 devices but JAX sees 4"),
                                            ("data:2,model:2", "unknown axis 'model'")])
def test_a_bad_mesh_is_one_line(tmp_path, mesh, fragment):
  out = _run(["-m", "experiments.train", f"--mesh={mesh}", f"--workdir={tmp_path / 'run'}"], 4, tmp_path)
  errors = [l for l in out.stderr.splitlines() if l.startswith("error: ")]
  assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
  assert len(errors) == 1 and errors[0].startswith(f"error: --mesh={mesh}") and fragment in errors[0], errors


def test_two_processes_on_localhost_agree(tmp_path):
  corpus = str(planted_corpus(tmp_path / "c.txt"))
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  hosts = [subprocess.Popen([sys.executable, WORKER, "host", str(tmp_path), corpus,
                             f"--coordinator=localhost:{port}", f"--process_id={p}"], cwd=ROOT,
                            env=_env(2, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
           for p in (0, 1)]
  try:
    logs = [h.communicate(timeout=120)[0] for h in hosts]
  finally:
    for h in hosts:
      h.kill()
  assert [h.returncode for h in hosts] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
  ref = _run([WORKER, "reference", str(tmp_path), corpus], 4, tmp_path)
  assert ref.returncode == 0, ref.stderr[-3000:]
  p0, p1, one = (np.load(tmp_path / f"params_{n}.npz") for n in (0, 1, "reference"))
  assert int(p0["devices"]) == 4 and int(p0["local"]) == 2
  for table in ("arr_0", "arr_1"):
    np.testing.assert_array_equal(p0[table], p1[table])                   # the replicas agree
    np.testing.assert_allclose(p0[table], one[table], rtol=0, atol=1e-5)  # as one process on 4 devices
  words, vectors = vectors_io.load(tmp_path / "run" / "vectors.txt")      # written by process 0 alone
  np.testing.assert_allclose(vectors, p0["arr_0"], atol=1e-6)
  assert len(words) == 48
