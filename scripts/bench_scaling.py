"""Words/s of one training job on 1, 2 and 4 devices: data-parallel and vocab-parallel meshes.

    python scripts/bench_scaling.py
    python scripts/bench_scaling.py --real --meshes none data:8 data:4,vocab:2   # the machine's own devices

Each mesh trains in its own subprocess. By default (CPU) a mesh of N devices runs with
XLA_FLAGS=--xla_force_host_platform_device_count=N: the N "devices" share the machine's cores, so the figures
show that the sharded step works and what its collectives cost, not a speed-up. `none` is the single-device
path without a mesh. With --real the subprocesses see the machine's devices (GPUs, TPU cores) as they are.
Words/s counts raw corpus words x epochs over the steady training time (compilation excluded, and given on
its own). scripts/bench.py can call `run_all(args)` with its own argument namespace.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

MESHES = ("none", "data:2", "data:4", "data:2,vocab:2", "vocab:4")


def worker(args) -> dict:
  import jax
  from w2v_jax import corpus, distributed, loop
  from w2v_jax.config import TrainConfig
  cfg = TrainConfig(model=args.model, dim=args.dim, window=args.window, neg=args.neg, epochs=args.epochs,
                    min_count=args.min_count, sample=args.sample, batch_size=args.batch_size,
                    steps_per_call=args.steps_per_call)
  vocab, enc = corpus.prepare([args.corpus], cfg.min_count, cache_dir=args.cache_dir)
  mesh = None if args.mesh == "none" else distributed.make_mesh(args.mesh)
  fit = loop.fit(cfg, vocab, enc, mesh=mesh, log_every_s=math.inf)
  steady = max(fit.train_seconds - fit.compile_seconds, 1e-9)
  return {"mesh": args.mesh, "devices": 1 if mesh is None else mesh.devices.size,
          "device": jax.devices()[0].device_kind, "model": args.model, "vocab_size": len(vocab.words),
          "words_per_sec": fit.words_trained / steady, "compile_seconds": fit.compile_seconds,
          "train_seconds": fit.train_seconds, "final_loss": fit.history[-1]["loss"]}


def _devices(mesh: str) -> int:
  from w2v_jax import distributed
  return 1 if mesh == "none" else math.prod(distributed.parse_mesh(mesh).values())


def run_all(args) -> list[dict]:
  """Trains args.model once per mesh in args.meshes (default MESHES); prints and returns the rows."""
  rows, base = [], None
  real = getattr(args, "real", False)
  print(f"\nscaling over devices ({'real devices' if real else 'forced CPU devices sharing the cores'}): "
        f"{getattr(args, 'model', 'sgram_neg')}, dim {args.dim}, batch {args.batch_size}", flush=True)
  print("| mesh | devices | words/s | vs 1 device | compile s | final loss |\n" + "| --- " * 6 + "|")
  for mesh in getattr(args, "meshes", None) or MESHES:
    env = dict(os.environ)
    if not real:
      env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={_devices(mesh)}")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"--mesh={mesh}"] + [
        f"--{k}={getattr(args, k)}" for k in ("corpus", "dim", "window", "neg", "epochs", "min_count",
                                              "sample", "batch_size", "steps_per_call", "cache_dir")]
    cmd.append(f"--model={getattr(args, 'model', None) or 'sgram_neg'}")
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
      print(f"| {mesh} | failed: {(out.stderr.strip().splitlines() or ['?'])[-1]} |", flush=True)
      continue
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["wall_seconds"] = time.perf_counter() - t0
    base = r["words_per_sec"] if mesh == "none" else base
    r["vs_one_device"] = r["words_per_sec"] / base if base else float("nan")
    rows.append(r)
    print(f"| {mesh} | {r['devices']} | {r['words_per_sec'] / 1e3:,.0f}k | {r['vs_one_device']:.2f}x | "
          f"{r['compile_seconds']:.1f} | {r['final_loss']:.4f} |", flush=True)
  return rows


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--corpus", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "w2v_jax",
                                                  "data", "small_corpus.txt.gz"))
  p.add_argument("--model", default="sgram_neg")
  p.add_argument("--meshes", nargs="+", default=None, help=f"default: {' '.join(MESHES)}")
  p.add_argument("--real", action="store_true", help="use the machine's devices, not forced CPU devices")
  p.add_argument("--dim", type=int, default=100)
  p.add_argument("--window", type=int, default=5)
  p.add_argument("--neg", type=int, default=5)
  p.add_argument("--epochs", type=int, default=1)
  p.add_argument("--min_count", type=int, default=5)
  p.add_argument("--sample", type=float, default=1e-3)
  p.add_argument("--batch_size", type=int, default=1024)
  p.add_argument("--steps_per_call", type=int, default=16)
  p.add_argument("--cache_dir", default=os.path.expanduser("~/.cache/w2v_jax"))
  p.add_argument("--json", default=None, help="write the rows here")
  p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--mesh", default="none", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.worker:
    print(json.dumps(worker(args)))
    return
  rows = run_all(args)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
