"""scripts/device_check.sh keeps working: the one command a GPU machine runs, here on the CPU with --quick.

It runs as on the device machine: from the repository root through bash, the package found by PYTHONPATH,
no gensim (a stub that refuses to import stands in for it), the JSON written under $OUT.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEG_MODELS = ("sgram_neg", "cbow_neg")
SOFTMAX_MODELS = ("cbow", "sgram")


def _device_env(tmp_path, **extra):
  """The device machine's environment: no gensim (a stub that refuses to import stands in for it), the
  JSON under $OUT."""
  stub = tmp_path / "stubs" / "gensim"
  stub.mkdir(parents=True, exist_ok=True)
  (stub / "__init__.py").write_text('raise ImportError("gensim is not on the device machine")\n')
  return {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable,
          "PYTHONPATH": str(tmp_path / "stubs"), **extra}


def _check(args, env, timeout=180):
  return subprocess.run(["bash", "scripts/device_check.sh", *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout)


def test_device_check_quick_on_cpu(tmp_path):
  out_dir = tmp_path / "out"
  run = _check(["--quick"], _device_env(tmp_path, JAX_PLATFORMS="cpu"))
  assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
  text = run.stdout

  assert re.search(r"^platform cpu\s+device \S+.*jax \d", text, re.M), text[:500]
  # One line per measurement, naming its layout and step, with a positive rate.
  for model in NEG_MODELS:
    lines = re.findall(rf"^{model}\s+D=(\d+)\s+B=\d+\s+S=\d+\s+layout=(\w+)\s.*words/s\s+([\d.]+[kM])\s.*step: (.+)$",
                       text, re.M)
    assert len({d for d, *_ in lines}) >= 2, (model, text)
    for _, layout, rate, step in lines:
      assert layout in ("span", "buckets", "batch") and step.startswith(f"{model}: {layout} layout"), step
      assert float(rate[:-1]) > 0, rate
  for model in SOFTMAX_MODELS:
    m = re.search(rf"^{model}\s+D=\d+\s+B=\d+\s+V=\d+\s+layout=(\w+)\s.*GFLOP/s\s+([\d.]+)\s+plain matmul "
                  rf"GFLOP/s\s+([\d.]+)\s.*step: {model}: ", text, re.M)
    assert m and float(m.group(2)) > 0 and float(m.group(3)) > 0, (model, text)

  # The JSON: in $OUT, with every figure the issue asks for; stdout's last line is its short headline form
  # (a device tool keeps only the end of the output: the lines above must survive it).
  result = json.loads((out_dir / "device_check.json").read_text())
  last = text.strip().splitlines()[-1]
  brief = json.loads(last)
  assert len(last) < 2000 and brief["json"] == str(out_dir / "device_check.json") and brief["complete"], last
  assert brief["best"] == [{k: b[k] for k in ("model", "D", "B", "layout", "words_per_sec")} for b in result["best"]]
  assert [r["model"] for r in brief["softmax"]] == [r["model"] for r in result["softmax"]]
  assert result["complete"] and result["platform"] == "cpu" and not result["errors"], result["errors"]
  assert result["jax"] and result["device_kind"]
  for model in NEG_MODELS:
    runs = [r for r in result["train"] if r["model"] == model]
    assert {r["D"] for r in runs} == {100, 300}, runs
    for r in runs:
      assert r["words_per_sec"] > 0 and r["centers_per_sec"] > 0 and r["layout"] and r["step"], r
      assert isinstance(r["native"], bool) and r["compile_s"] >= 0
  for model in SOFTMAX_MODELS:
    runs = [r for r in result["softmax"] if r["model"] == model]
    assert runs and all(r["gflops"] > 0 and r["matmul_gflops"] > 0 for r in runs), runs
  assert {(b["model"], b["D"]) for b in result["best"]} == {(m, d) for m in NEG_MODELS for d in (100, 300)}


def test_device_check_runs_the_accelerator_path_on_cpu(tmp_path):
  """What only a GPU run reaches, here on the CPU: the XLA steps a GPU gets (no native kernels: the buckets
  layout), the larger batch sizes and the other layouts tried at each model's best batch size."""
  env = _device_env(tmp_path, JAX_PLATFORMS="cpu", W2V_JAX_NATIVE="0")
  run = _check(["--quick", "--models=cbow_neg", "--dims=50", "--batch_sizes=256,512", "--extra_layouts=span,batch",
                "--softmax_models="], env)
  assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
  result = json.loads((tmp_path / "out" / "device_check.json").read_text())
  runs = {(r["B"], r["layout_asked"]): r for r in result["train"]}
  assert set(runs) == {(256, "auto"), (512, "auto"), (result["best"][0]["B"], "span"),
                       (result["best"][0]["B"], "batch")}, sorted(runs)
  assert runs[(256, "auto")]["layout"] == "buckets" and not any(r["native"] for r in runs.values())
  assert all(r["words_per_sec"] > 0 for r in runs.values()) and not result["errors"], result["errors"]
  assert "-- larger batches" in run.stdout and "-- other layouts" in run.stdout


def test_device_check_refuses_cpu_figures_on_a_gpu_machine(tmp_path):
  """nvidia-smi sees a GPU but JAX runs on the CPU (a jaxlib without CUDA): one line, exit 3, nothing measured."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)'\n")
  (bin_dir / "nvidia-smi").chmod(0o755)
  env = _device_env(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
  env.pop("JAX_PLATFORMS", None)
  run = _check(["--quick"], env, timeout=120)
  assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-2000:]
  assert "error: nvidia-smi sees a GPU but JAX runs on the CPU" in run.stdout and "Traceback" not in run.stderr
  result = json.loads((tmp_path / "out" / "device_check.json").read_text())
  assert not result["train"] and not result["complete"] and json.loads(run.stdout.splitlines()[-1])["error"]


def test_device_check_without_a_python_that_has_jax(tmp_path):
  run = _check(["--quick"], _device_env(tmp_path, PYTHON="no-such-python"), timeout=60)
  assert run.returncode == 2 and run.stderr.startswith("error: no Python here imports jax"), run.stderr


def test_device_check_takes_a_python_path_with_spaces(tmp_path):
  spaced = tmp_path / "a dir"
  spaced.mkdir()
  (spaced / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')   # (a symlink would leave the venv)
  (spaced / "python").chmod(0o755)
  run = _check(["--help"], _device_env(tmp_path, PYTHON=str(spaced / "python")), timeout=60)
  assert run.returncode == 0 and f"python: {spaced / 'python'}" in run.stdout and "usage:" in run.stdout, run.stderr
