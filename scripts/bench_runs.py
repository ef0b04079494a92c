"""Train a list of configurations one after the other on one corpus and print one table: loss per
prediction, analogy, WS-353, SimLex-999, words/s, and (full softmax) the step's GFLOP/s.

    python scripts/bench_runs.py --corpus=../shared/data/dev_corpus.txt.gz --epochs=1 \
        --run=sgram_neg:optimizer=adam,optimizer_on=rows,lr=0.01 --run=sgram:lr=0.025 --out=runs/bench_runs.json

Each --run is MODEL[:field=value,...] over TrainConfig's fields; --plugin files are imported first. The
table is what the research tables of docs/ (training.md, softmax.md, results.md) quote. GFLOP/s counts the full softmax's three [B, V, D]
matmuls (logits, ∂h, ∂W_out) per step over the training time; `--matmul` also times a plain jnp matmul of
the same shape in the same process.
"""
import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_sizes import matmul_gflops  # noqa: E402  (scripts/ is on sys.path when a script runs)


def field_value(default, text: str):
  """A TrainConfig field's value from the command line, typed like its default (None: a number, or none)."""
  if isinstance(default, bool):
    return text.lower() in ("1", "true", "yes")
  if default is None:
    for kind in (int, float):
      try:
        return kind(text)
      except ValueError:
        pass
    return None if text == "none" else text
  return type(default)(text)


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--corpus", required=True)
  ap.add_argument("--epochs", type=int, default=1)
  ap.add_argument("--run", action="append", required=True)
  ap.add_argument("--plugin", action="append", default=[])
  ap.add_argument("--matmul", action="store_true")
  ap.add_argument("--out", default=None)
  args = ap.parse_args()
  from experiments.common import load_plugins
  load_plugins(args.plugin)   # as --plugin does on experiments.train
  from w2v_jax import TrainConfig, api, models
  rows = []
  for spec in args.run:
    model, _, rest = spec.partition(":")
    base = TrainConfig(model=model, epochs=args.epochs)
    fields = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
    cfg = dataclasses.replace(base, **{k: field_value(getattr(base, k), v) for k, v in fields.items()})
    t0 = time.perf_counter()
    try:
      r = api.train(cfg, [args.corpus], None)
    except Exception as e:   # a diverged run is a result too
      rows.append({"run": spec, "error": str(e).splitlines()[0]})
      print(f"{spec}: {rows[-1]['error']}", flush=True)
      continue
    s = r.summary
    row = {"run": spec, "engine": s["engine"]["step"], "loss_per_prediction": s["final_loss"],
           "analogy": s["analogy_accuracy"], "ws353": s["ws353_spearman"], "simlex999": s["simlex999_spearman"],
           "words_per_sec": s["words_per_sec"], "train_s": s["train_seconds"], "wall_s": time.perf_counter() - t0,
           "vocab": s["vocab_size"]}
    if models.get(model).dense_out:
      steps = sum(h.get("examples", 0) for h in r.history)   # examples trained ≈ centers
      B, V, D = cfg.batch_size, s["vocab_size"], cfg.dim
      row["gflops"] = 3 * 2 * steps * V * D / s["train_seconds"] / 1e9
      if args.matmul:
        row["matmul_gflops"] = matmul_gflops(B, V, D)
    rows.append(row)
    print(json.dumps(row), flush=True)
  print()
  print("| run | loss/prediction | analogy % | WS-353 ρ | SimLex ρ | k words/s | GFLOP/s (matmul) |")
  print("| --- | --- | --- | --- | --- | --- | --- |")
  for r in rows:
    if "error" in r:
      print(f"| {r['run']} | {r['error']} | | | | | |")
      continue
    g = f"{r['gflops']:.1f} ({r['matmul_gflops']:.1f})" if "matmul_gflops" in r else (
        f"{r['gflops']:.1f}" if "gflops" in r else "")
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"
    print(f"| {r['run']} | {r['loss_per_prediction']:.3f} | {100 * r['analogy']:.2f} | {fmt(r['ws353'])} | "
          f"{fmt(r['simlex999'])} | {r['words_per_sec'] / 1e3:,.0f} | {g} |")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  from w2v_jax.errors import W2VError
  try:
    main()
  except W2VError as e:   # a bad --plugin or --run: one line, as the experiments' scripts report it
    sys.exit(f"error: {e}")
