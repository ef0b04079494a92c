"""Scaling figures: words/s against vocabulary size and dimension, peak memory, softmax GFLOP/s.

    python scripts/bench_sizes.py            (or: python scripts/bench.py --scaling)

Vocabulary scaling uses a synthetic Zipf(1.0) corpus of 1M tokens in 20-word sentences over V words,
built straight into an EncodedCorpus (no text), trained for one epoch of sgram_neg and cbow_neg in a
subprocess each, so peak RSS is the run's own; it is compared with 2·V·D·4 bytes of tables plus the
token arrays. The full-softmax models report examples/s and achieved GFLOP/s (3 matmuls of B x V x D per
step) beside a plain jnp matmul measured in the same process.
"""
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TOKENS = 1_000_000


def _zipf_run(model: str, V: int, D: int, steps_per_call: int = 16) -> dict:
  import numpy as np
  from w2v_jax import corpus, loop, vocab
  from w2v_jax.config import TrainConfig
  rng = np.random.default_rng(0)
  p = 1.0 / np.arange(1, V + 1)
  p /= p.sum()
  tokens = rng.choice(V, size=TOKENS, p=p).astype(np.int32)
  counts = np.maximum(np.bincount(tokens, minlength=V), 1)
  voc = vocab.Vocab([f"w{i}" for i in range(V)], counts)
  enc = corpus.EncodedCorpus(tokens, np.arange(0, TOKENS + 1, 20, dtype=np.int64),
                             corpus.CorpusStats(files=0, raw_words=TOKENS, replaced_chars=0))
  cfg = TrainConfig(model=model, dim=D, epochs=1, min_count=1, steps_per_call=steps_per_call)
  fit = loop.fit(cfg, voc, enc)
  steady = fit.train_seconds - fit.compile_seconds
  return {"model": model, "V": V, "D": D, "words_per_sec": TOKENS / fit.train_seconds,
          "words_per_sec_excl_compile": TOKENS / max(steady, 1e-9), "compile_seconds": fit.compile_seconds,
          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          "tables_plus_tokens_mb": (2 * V * D * 4 + 3 * TOKENS * 4) / 2**20}


def _softmax_run(model: str, V: int, D: int, B: int = 256, steps: int = 20) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  from w2v_jax import Batch, TrainConfig, engine, models
  from w2v_jax import step as step_lib
  rng = np.random.default_rng(0)
  C = 10
  batch = Batch(jnp.asarray(rng.integers(0, V, B), jnp.int32), jnp.asarray(rng.integers(0, V, (B, C)), jnp.int32),
                jnp.ones((B, C), jnp.float32), jnp.zeros((B, 0), jnp.int32))
  spec = engine.select_step(TrainConfig(model=model, layout="batch"))   # the step a run takes, on one batch
  step = jax.jit(spec.step, donate_argnums=0)
  state = step_lib.TrainState(models.init(jax.random.PRNGKey(0), V, D))
  state, _ = step(state, batch, 0.01)
  jax.block_until_ready(state)
  t = time.perf_counter()
  for _ in range(steps):
    state, _ = step(state, batch, 0.01)
  jax.block_until_ready(state)
  dt = (time.perf_counter() - t) / steps
  flops = 3 * 2 * B * V * D   # logits, ∂h and ∂W_out
  return {"model": model, "V": V, "D": D, "B": B, "examples_per_sec": B / dt, "gflops": flops / dt / 1e9,
          "matmul_gflops": matmul_gflops(B, V, D, steps)}


def matmul_gflops(B: int, V: int, D: int, reps: int = 20) -> float:
  """GFLOP/s of a plain jitted jnp matmul [B, D] x [D, V], the shape of a full softmax's logits."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  rng = np.random.default_rng(1)
  a = jnp.asarray(rng.normal(size=(B, D)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(V, D)), jnp.float32)
  mm = jax.jit(lambda a, w: a @ w.T)
  jax.block_until_ready(mm(a, w))
  t = time.perf_counter()
  for _ in range(reps):
    r = mm(a, w)
  jax.block_until_ready(r)
  return 2 * B * V * D * reps / (time.perf_counter() - t) / 1e9


def _sub(kind: str, **kw) -> dict | None:
  out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", json.dumps({"kind": kind, **kw})],
                       capture_output=True, text=True)
  if out.returncode != 0:
    print(f"  {kind} {kw} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
    return None
  return json.loads(out.stdout.strip().splitlines()[-1])


def run_all(args=None) -> dict:
  res = {"vocab": [], "dim": [], "softmax": []}
  print("\nwords/s against vocabulary size (Zipf corpus, 1M tokens, D=100, 1 epoch):", flush=True)
  print("| model | V | words/s | excl. compile | peak RSS MB | tables+tokens MB |\n| --- | --- | --- | --- | --- | --- |")
  for model in ("sgram_neg", "cbow_neg"):
    for V in (20_000, 200_000, 2_000_000):
      r = _sub("zipf", model=model, V=V, D=100)
      if r:
        res["vocab"].append(r)
        print(f"| {model} | {V:,} | {r['words_per_sec'] / 1e3:,.0f}k | {r['words_per_sec_excl_compile'] / 1e3:,.0f}k"
              f" | {r['peak_rss_mb']:,.0f} | {r['tables_plus_tokens_mb']:,.0f} |", flush=True)
  print("\nwords/s against dimension (V=20k):\n| model | D | words/s | excl. compile |\n| --- | --- | --- | --- |")
  for model in ("sgram_neg", "cbow_neg"):
    for D in (50, 100, 300):
      r = _sub("zipf", model=model, V=20_000, D=D)
      if r:
        res["dim"].append(r)
        print(f"| {model} | {D} | {r['words_per_sec'] / 1e3:,.0f}k | {r['words_per_sec_excl_compile'] / 1e3:,.0f}k |",
              flush=True)
  print("\nfull softmax, one step of B=256 examples (V=20k, D=100):\n"
        "| model | examples/s | GFLOP/s | plain matmul GFLOP/s |\n| --- | --- | --- | --- |")
  for model in ("cbow", "sgram"):
    r = _sub("softmax", model=model, V=20_000, D=100)
    if r:
      res["softmax"].append(r)
      print(f"| {model} | {r['examples_per_sec']:,.0f} | {r['gflops']:.1f} | {r['matmul_gflops']:.1f} |", flush=True)
  return res


if __name__ == "__main__":
  if len(sys.argv) > 2 and sys.argv[1] == "--one":
    spec = json.loads(sys.argv[2])
    fn = {"zipf": _zipf_run, "softmax": _softmax_run}[spec.pop("kind")]
    print(json.dumps(fn(**spec)))
  else:
    print(json.dumps(run_all()))
