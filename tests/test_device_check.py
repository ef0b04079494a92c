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


def test_device_check_quick_on_cpu(tmp_path):
  stub = tmp_path / "stubs" / "gensim"
  stub.mkdir(parents=True)
  (stub / "__init__.py").write_text('raise ImportError("gensim is not on the device machine")\n')
  out_dir = tmp_path / "out"
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "OUT": str(out_dir), "PYTHON": sys.executable,
         "PYTHONPATH": str(tmp_path / "stubs")}
  run = subprocess.run(["bash", "scripts/device_check.sh", "--quick"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=180)
  assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
  text = run.stdout

  assert re.search(r"^platform cpu\s+device \S+.*jax \d", text, re.M), text[:500]
  # One line per measurement, naming its layout and step, with a positive rate.
  for model in NEG_MODELS:
    lines = re.findall(rf"^{model}\s+D=(\d+)\s+B=\d+\s+layout=(\w+)\s.*words/s\s+([\d.]+[kM])\s.*step: (.+)$",
                       text, re.M)
    assert len({d for d, *_ in lines}) >= 2, (model, text)
    for _, layout, rate, step in lines:
      assert layout in ("span", "buckets", "batch") and step.startswith(f"{model}: {layout} layout"), step
      assert float(rate[:-1]) > 0, rate
  for model in SOFTMAX_MODELS:
    m = re.search(rf"^{model}\s+D=\d+\s+B=\d+\s+V=\d+\s+layout=(\w+)\s.*GFLOP/s\s+([\d.]+)\s+plain matmul "
                  rf"GFLOP/s\s+([\d.]+)\s.*step: {model}: ", text, re.M)
    assert m and float(m.group(2)) > 0 and float(m.group(3)) > 0, (model, text)

  # The JSON: in $OUT, the same as stdout's last line, with every figure the issue asks for.
  result = json.loads((out_dir / "device_check.json").read_text())
  assert json.loads(text.strip().splitlines()[-1]) == result
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
