"""Device check: training words/s and full-softmax GFLOP/s on whatever device JAX finds, in minutes.

    bash scripts/device_check.sh                            (a GPU machine: the figures docs/ lacks)
    JAX_PLATFORMS=cpu bash scripts/device_check.sh --quick  (a CPU: tiny sizes, the test's run)

Needs only the checkout and jax, optax, numpy (no corpus files, no gensim, no network): the corpora are
synthetic Zipf(1.0) token streams made here, straight into an EncodedCorpus (sentences of 10-30 tokens,
the Vocab sorted by count as Vocab.from_counts sorts it).

What it measures, each in its own jit of engine.make_chunk (the trainer's chunk of --steps_per_call steps,
batches built on the device), with the step engine.select_step picks (its name, layout and native flag are
printed):
  - sgram_neg and cbow_neg at each --dims and --batch_sizes: words/s counted as the trainer counts them
    (raw corpus words x steps done / steps in the epoch, so subsampled words count), and kept centers/s;
  - cbow and sgram (full softmax) at V = --softmax_vocab: GFLOP/s of the step, counted as 3 matmuls of
    2·B·V·D (logits, ∂h, ∂W_out), beside a plain jnp matmul [B, D] x [D, V] in the same process;
  - on a GPU, as time allows, the other layouts (--extra_layouts) at each model's best batch size.
The first call of a chunk compiles it: "compile s" is the first call's time less a steady call's.
Measurements are added in that order until --time_budget_s is spent; every measurement rewrites the JSON
file ($OUT/device_check.json when $OUT is set, else ./device_check.json, or --json), so a run cut short
still leaves its figures. The last line of stdout is a short JSON of the headline figures (the best words/s
per model and D, the GFLOP/s, the file's path). On a machine where nvidia-smi sees a GPU but JAX runs on
the CPU (JAX_PLATFORMS unset), it stops at once with exit code 3 and says so: CPU figures must not pass for
the device's.
"""
import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

T0 = time.perf_counter()


def _ints(s: str) -> list[int]:
  return [int(x.replace("_", "")) for x in s.split(",") if x.strip()]


def _names(s: str) -> list[str]:
  return [x.strip() for x in s.split(",") if x.strip()]


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--quick", action="store_true", help="tiny sizes for a CPU smoke test (well under a minute)")
  p.add_argument("--tokens", type=int, default=None, help="synthetic corpus tokens (GPU 20M, CPU 2M, quick 100k)")
  p.add_argument("--vocab", type=int, default=None, help="Zipf vocabulary (100k; quick 5k): words never drawn "
                 "are dropped")
  p.add_argument("--dims", default="100,300")
  p.add_argument("--models", default="sgram_neg,cbow_neg")
  p.add_argument("--batch_sizes", default=None, help="GPU 1024,8192,32768; CPU 1024. The first is measured for "
                 "every model and D first; the others as time allows")
  p.add_argument("--layouts", default="auto", help="layouts measured at every batch size (auto: the engine's)")
  p.add_argument("--extra_layouts", default=None, help="layouts also tried at each model's best B, as time "
                 "allows (GPU: span,batch; CPU: none)")
  p.add_argument("--softmax_models", default="cbow,sgram")
  p.add_argument("--softmax_vocab", type=int, default=None, help="V of the full-softmax models (30k; quick 2k)")
  p.add_argument("--softmax_batch", type=int, default=None, help="B of the full-softmax models (GPU 1024, CPU "
                 "256, quick 128)")
  p.add_argument("--softmax_dims", default=None, help="default: --dims (quick: its first)")
  p.add_argument("--softmax_tokens", type=int, default=None, help="their corpus (default min(--tokens, 1M))")
  p.add_argument("--steps_per_call", type=int, default=16)
  p.add_argument("--softmax_steps_per_call", type=int, default=None, help="GPU 16, CPU 2")
  p.add_argument("--window", type=int, default=5)
  p.add_argument("--neg", type=int, default=5)
  p.add_argument("--sample", type=float, default=1e-3)
  p.add_argument("--time_slice_s", type=float, default=None, help="timed seconds per measurement (GPU 1.5, "
                 "CPU 3, quick 0.3)")
  p.add_argument("--time_budget_s", type=float, default=240.0, help="no measurement starts after this many "
                 "seconds from the start")
  p.add_argument("--json", default=None, help="where the JSON goes (default $OUT/device_check.json, else "
                 "./device_check.json)")
  p.add_argument("--seed", type=int, default=0)
  return p.parse_args(argv)


def fill_defaults(args, backend: str):
  """Sizes by backend: a GPU/TPU gets the full check, a CPU a smaller one, --quick a tiny one."""
  accel = backend != "cpu"
  if args.quick:
    d = dict(tokens=100_000, vocab=5_000, batch_sizes="1024", extra_layouts="", softmax_vocab=2_000,
             softmax_batch=128, softmax_steps_per_call=2, time_slice_s=0.3)
  elif accel:
    d = dict(tokens=20_000_000, vocab=100_000, batch_sizes="1024,8192,32768", extra_layouts="span,batch",
             softmax_vocab=30_000, softmax_batch=1024, softmax_steps_per_call=16, time_slice_s=1.5)
  else:
    d = dict(tokens=2_000_000, vocab=100_000, batch_sizes="1024", extra_layouts="", softmax_vocab=30_000,
             softmax_batch=256, softmax_steps_per_call=2, time_slice_s=3.0)
  for k, v in d.items():
    if getattr(args, k) is None:
      setattr(args, k, v)
  if args.softmax_dims is None:   # --quick: the first D only (each softmax chunk compiles for seconds)
    args.softmax_dims = _names(args.dims)[0] if args.quick else args.dims
  if args.softmax_tokens is None:
    args.softmax_tokens = min(args.tokens, 1_000_000)
  if args.json is None:
    args.json = os.path.join(os.environ["OUT"] if os.environ.get("OUT") else ".", "device_check.json")
  return args


# ----------------------------------------------------------------------------------- the synthetic corpus

def zipf_corpus(n_tokens: int, V: int, seed: int):
  """(Vocab, EncodedCorpus): Zipf(1.0) over V ranks, ids re-sorted by count (never-drawn words dropped)."""
  import numpy as np
  from w2v_jax import corpus, vocab
  rng = np.random.default_rng(seed)
  cdf = np.cumsum(1.0 / np.arange(1, V + 1))
  cdf /= cdf[-1]
  raw = np.empty(n_tokens, np.int32)
  for lo in range(0, n_tokens, 1 << 22):   # in pieces: no 160 MB of float64 draws at once
    hi = min(n_tokens, lo + (1 << 22))
    raw[lo:hi] = np.minimum(np.searchsorted(cdf, rng.random(hi - lo), side="right"), V - 1)
  counts = np.bincount(raw, minlength=V)
  order = np.argsort(-counts, kind="stable")           # id order: count descending, as Vocab.from_counts
  kept = int(np.count_nonzero(counts))
  new_id = np.empty(V, np.int32)
  new_id[order] = np.arange(V, dtype=np.int32)
  tokens = new_id[raw]
  lengths = rng.integers(10, 31, size=n_tokens // 10 + 1)
  ends = np.cumsum(lengths)
  offsets = np.concatenate([[0], ends[ends < n_tokens], [n_tokens]]).astype(np.int64)
  voc = vocab.Vocab([f"w{i}" for i in range(kept)], counts[order][:kept])
  enc = corpus.EncodedCorpus(tokens, offsets, corpus.CorpusStats(files=0, raw_words=n_tokens, replaced_chars=0))
  return voc, enc


class Data:
  """A corpus with its epoch-0 data (loop.epoch_data) made once; steps set per batch size."""

  def __init__(self, name: str, n_tokens: int, V: int, args):
    import numpy as np
    from w2v_jax import loop
    from w2v_jax.config import TrainConfig
    t = time.perf_counter()
    self.vocab, self.corpus = zipf_corpus(n_tokens, V, args.seed)
    cfg = TrainConfig(model="sgram_neg", epochs=1, min_count=1, sample=args.sample, seed=args.seed,
                      batch_size=1024)
    self.base = loop.epoch_data(cfg, self.vocab, self.corpus, 0)
    self.kept = int(np.count_nonzero(np.asarray(self.base.sent) >= 0))
    self.raw_words = float(self.corpus.stats.raw_words)
    self.seconds = time.perf_counter() - t
    self.record = {"name": name, "tokens": n_tokens, "vocab_drawn_from": V, "vocab": len(self.vocab),
                   "sentences": self.corpus.num_sentences, "kept_after_subsampling": self.kept,
                   "sample": args.sample, "build_seconds": round(self.seconds, 2)}

  def steps(self, B: int) -> int:
    return -(-self.kept // B)

  def for_batch(self, B: int):
    import jax.numpy as jnp
    return self.base._replace(steps=jnp.int32(self.steps(B)))


# ----------------------------------------------------------------------------------- one measurement

def _select(cfg, counts):
  from w2v_jax import engine
  return engine.select_step(cfg, counts=counts)


def _timed_calls(call, slice_s: float, max_calls: int = 1 << 20):
  """Runs call(i) (each returns something to block on) for about slice_s seconds after one blocked call
  that sets the pace; returns (calls, seconds, seconds of the one blocked call)."""
  import jax
  t = time.perf_counter()
  jax.block_until_ready(call(0))
  one = time.perf_counter() - t
  n = int(max(1, min(max_calls, math.ceil(slice_s / max(one, 1e-6)) - 1)))
  t = time.perf_counter()
  out = None
  for i in range(n):
    out = call(1 + i)
  jax.block_until_ready(out)
  return n + 1, time.perf_counter() - t + one, one


def measure_train(model: str, D: int, B: int, layout: str, data: Data, args, steps_per_call: int,
                  slice_s: float) -> dict:
  """words/s (and kept centers/s) of the trainer's chunk for (model, D, B, layout) on `data`."""
  import jax
  import jax.numpy as jnp
  from w2v_jax import engine, models
  from w2v_jax.config import TrainConfig
  steps = data.steps(B)
  spc = max(1, min(steps_per_call, steps))
  cfg = TrainConfig(model=model, dim=D, epochs=1, window=args.window, neg=args.neg, min_count=1,
                    sample=args.sample, batch_size=B, seed=args.seed, layout=layout, steps_per_call=spc)
  spec = _select(cfg, data.vocab.counts)
  rec = {"model": model, "D": D, "B": B, "layout_asked": layout, "layout": spec.layout, "step": spec.name,
         "native": spec.native, "reason": spec.reason, "V": len(data.vocab), "steps_per_call": spc,
         "steps_per_epoch": steps}
  chunk = jax.jit(engine.make_chunk(spec, cfg), donate_argnums=0)
  state = spec.init(models.init(jax.random.PRNGKey(args.seed), len(data.vocab), D))
  ep = data.for_batch(B)
  calls_per_epoch = max(1, steps // spc)   # whole chunks inside the epoch, cycled: no all-padding steps
  box = {"state": state, "m": None}

  def call(i):
    box["state"], box["m"] = chunk(box["state"], ep, jnp.int32((i % calls_per_epoch) * spc))
    return box["state"]

  t = time.perf_counter()
  jax.block_until_ready(call(0))
  first = time.perf_counter() - t
  calls, seconds, one = _timed_calls(lambda i: call(1 + i), slice_s)
  steps_done = calls * spc
  m = jax.device_get(box["m"])
  loss = float(m.loss_sum / max(float(m.predictions), 1.0))
  rec.update({"first_call_s": first, "compile_s": max(first - one, 0.0), "calls": calls, "seconds": seconds,
              "ms_per_step": 1e3 * seconds / steps_done,
              "words_per_sec": data.raw_words * steps_done / steps / seconds,
              "centers_per_sec": data.kept * steps_done / steps / seconds,
              "last_chunk_loss": loss})
  if not math.isfinite(loss):
    raise RuntimeError(f"non-finite loss {loss} ({rec['step']})")
  return rec


def measure_matmul(B: int, V: int, D: int, slice_s: float) -> float:
  """GFLOP/s of a plain jnp matmul [B, D] x [D, V] (as the logits), float32, default precision."""
  import jax
  import jax.numpy as jnp
  ka, kw = jax.random.split(jax.random.PRNGKey(1))
  a = jax.random.normal(ka, (B, D), jnp.float32)
  w = jax.random.normal(kw, (V, D), jnp.float32)
  mm = jax.jit(lambda a, w: a @ w.T)
  jax.block_until_ready(mm(a, w))
  calls, seconds, _ = _timed_calls(lambda i: mm(a, w), slice_s)
  return 2.0 * B * V * D * calls / seconds / 1e9


def measure_softmax(model: str, D: int, data: Data, args, slice_s: float) -> dict:
  B, V = args.softmax_batch, len(data.vocab)
  rec = measure_train(model, D, B, "auto", data, args, args.softmax_steps_per_call, slice_s)
  steps_per_sec = rec["calls"] * rec["steps_per_call"] / rec["seconds"]
  rec["gflops"] = 3 * 2.0 * B * V * D * steps_per_sec / 1e9
  rec["examples_per_sec"] = B * steps_per_sec
  try:   # the step's figure stands even if the plain matmul beside it fails
    rec["matmul_gflops"] = measure_matmul(B, V, D, min(slice_s, 1.0))
  except Exception as e:   # noqa: BLE001
    rec["matmul_gflops"], rec["matmul_error"] = None, f"{type(e).__name__}: {_first_line(e)}"
  return rec


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0] if text else ""


# ----------------------------------------------------------------------------------- the run

def _fmt_rate(x: float) -> str:
  return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def train_line(r: dict) -> str:
  return (f"{r['model']:<9} D={r['D']:<4} B={r['B']:<6} S={r['steps_per_call']:<3} layout={r['layout']:<7} "
          f"native={str(r['native']):<5} compile {r['compile_s']:6.2f}s  {r['ms_per_step']:8.3f} ms/step  words/s {_fmt_rate(r['words_per_sec']):>8}"
          f"  centers/s {_fmt_rate(r['centers_per_sec']):>8}  loss {r['last_chunk_loss']:.3f}  step: {r['step']}")


def softmax_line(r: dict) -> str:
  return (f"{r['model']:<9} D={r['D']:<4} B={r['B']:<6} V={r['V']:<6} layout={r['layout']:<7} "
          f"native={str(r['native']):<5} compile {r['compile_s']:6.2f}s  {r['ms_per_step']:8.3f} ms/step  "
          f"GFLOP/s {r['gflops']:8.1f}  plain matmul GFLOP/s {_gflops(r['matmul_gflops']):>8}  "
          f"words/s {_fmt_rate(r['words_per_sec']):>8}  step: {r['step']}")


def _gflops(x) -> str:
  return "failed" if x is None else f"{x:.1f}"


class _Stop(BaseException):   # not an Exception: no `except Exception` on the way may swallow the stop
  pass


def _on_term(signum, frame):   # `timeout` sends SIGTERM: finish the JSON, then go
  raise _Stop(f"signal {signum}")


def _nvidia_gpu_listed() -> bool:
  """Whether nvidia-smi is here and lists a GPU (a CPU-only image may ship the binary alone)."""
  if not shutil.which("nvidia-smi"):
    return False
  try:
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
  except (OSError, subprocess.SubprocessError):
    return False
  return out.returncode == 0 and "GPU" in out.stdout


def _write_json(path: str, result: dict) -> None:
  """The whole record, atomically (a run cut short keeps what it had)."""
  from w2v_jax.atomic import write_atomic
  result["elapsed_s"] = round(time.perf_counter() - T0, 2)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  write_atomic(path, lambda f: f.write(json.dumps(result, indent=1).encode()))


def _brief(result: dict, path: str) -> dict:
  """stdout's last line: the headline figures (a few hundred bytes, so a tool that keeps only the end of
  the output still has them and the lines above); the whole record is in `path`."""
  return {"json": path, "complete": result["complete"], "platform": result["platform"],
          "device_kind": result["device_kind"], "error": result.get("error"),
          "best": [{k: b[k] for k in ("model", "D", "B", "layout", "words_per_sec")} for b in result.get("best", [])],
          "softmax": [{k: r[k] for k in ("model", "D", "gflops", "matmul_gflops")} for r in result["softmax"]],
          "failed": len(result["errors"]), "skipped": len(result["skipped"])}


def main(argv=None) -> int:
  args = parse_args(argv)
  signal.signal(signal.SIGTERM, _on_term)
  import jax
  from w2v_jax import native
  backend = jax.default_backend()
  fill_defaults(args, backend)
  dev = jax.devices()[0]
  try:
    import jaxlib
    jaxlib_version = jaxlib.__version__
  except Exception:   # noqa: BLE001
    jaxlib_version = "?"
  if backend == "cpu" and not os.environ.get("JAX_PLATFORMS") and _nvidia_gpu_listed():
    # A GPU machine whose JAX fell back to the CPU: CPU figures would pass for the device's. Stop at once
    # (the device time is scarce), saying why; JAX_PLATFORMS=cpu runs the CPU check on purpose.
    error = ("nvidia-smi sees a GPU but JAX runs on the CPU: install a CUDA jaxlib (jax[cuda12]) or check the "
             "CUDA libraries; set JAX_PLATFORMS=cpu to measure the CPU on purpose")
    print("error: " + error, flush=True)
    early = {"complete": False, "platform": backend, "device_kind": dev.device_kind, "jax": jax.__version__,
             "error": error, "train": [], "softmax": [], "skipped": [], "errors": []}
    _write_json(args.json, early)
    print(json.dumps(_brief(early, args.json)), flush=True)
    return 3
  t = time.perf_counter()
  nat = native.status()   # builds the CPU kernels here if they are not built: not part of any compile time
  native_s = time.perf_counter() - t
  result = {"complete": False, "platform": backend, "device_kind": dev.device_kind,
            "devices": len(jax.devices()), "jax": jax.__version__, "jaxlib": jaxlib_version,
            "python": platform.python_version(), "host": platform.node(),
            "matmul_precision": str(getattr(jax.config, "jax_default_matmul_precision", "?")),
            "matmul_precision_note": "None is JAX's default: on NVIDIA Ampere/Hopper GPUs float32 matmuls then "
                                     "run as TF32",
            "native": {"available": nat.available, "reason": nat.reason, "seconds": round(native_s, 2)},
            "args": vars(args), "corpora": [], "train": [], "softmax": [], "skipped": [], "errors": []}
  print(f"platform {backend}  device {dev.device_kind} (x{len(jax.devices())})  jax {jax.__version__}  "
        f"jaxlib {jaxlib_version}  python {platform.python_version()}", flush=True)
  print(f"native: {nat.reason} ({native_s:.1f}s)", flush=True)

  def save():
    _write_json(args.json, result)

  def over_budget() -> bool:
    return time.perf_counter() - T0 >= args.time_budget_s

  core_failed = False
  try:
    main_data = Data("main", args.tokens, args.vocab, args)
    result["corpora"].append(main_data.record)
    print(f"corpus: {args.tokens:,} Zipf tokens, V={len(main_data.vocab):,}, {main_data.corpus.num_sentences:,} "
          f"sentences, {main_data.kept:,} kept by subsampling ({main_data.seconds:.1f}s to make)", flush=True)
    save()
    dims, models_, Bs = _ints(args.dims), _names(args.models), _ints(args.batch_sizes)
    layouts = _names(args.layouts)

    def run_train(model, D, B, layout, core):
      nonlocal core_failed
      what = {"model": model, "D": D, "B": B, "layout": layout}
      if over_budget():
        result["skipped"].append({**what, "why": "time budget"})
        print(f"{model:<9} D={D:<4} B={B:<6} layout={layout}: skipped (time budget)", flush=True)
        return None
      try:
        r = measure_train(model, D, B, layout, main_data, args, args.steps_per_call, args.time_slice_s)
      except _Stop:
        raise
      except Exception as e:   # noqa: BLE001  (an OOM at a large B, a layout a model lacks): go on
        core_failed |= core
        msg = f"{type(e).__name__}: {_first_line(e)}"
        result["errors"].append({**what, "error": msg})
        print(f"{model:<9} D={D:<4} B={B:<6} layout={layout}: FAILED {msg}", flush=True)
        if core:
          traceback.print_exc()
        save()
        return None
      result["train"].append(r)
      print(train_line(r), flush=True)
      save()
      return r

    print("\n-- negative sampling: words/s (raw corpus words, as the trainer counts them), steady state over "
          f"about {args.time_slice_s:g} s, compilation excluded (its own column); S: steps per call --", flush=True)
    for D in dims:
      for model in models_:
        for layout in layouts:
          run_train(model, D, Bs[0], layout, core=True)

    if _names(args.softmax_models):
      print("\n-- full softmax: GFLOP/s = 3 matmuls of 2*B*V*D per step, steady state; float32 at JAX's "
            "default precision (TF32 on Ampere/Hopper GPUs), the plain matmul likewise --", flush=True)
    sm_data = None
    for D in _ints(args.softmax_dims):   # D outer: every model at the first D before the budget runs out
      for model in _names(args.softmax_models):
        what = {"model": model, "D": D, "B": args.softmax_batch}
        if over_budget():
          result["skipped"].append({**what, "why": "time budget"})
          print(f"{model:<9} D={D}: skipped (time budget)", flush=True)
          continue
        try:
          if sm_data is None:
            sm_data = Data("softmax", args.softmax_tokens, args.softmax_vocab, args)
            result["corpora"].append(sm_data.record)
          r = measure_softmax(model, D, sm_data, args, args.time_slice_s)
        except _Stop:
          raise
        except Exception as e:   # noqa: BLE001
          core_failed = True
          msg = f"{type(e).__name__}: {_first_line(e)}"
          result["errors"].append({**what, "error": msg})
          print(f"{model:<9} D={D}: FAILED {msg}", flush=True)
          traceback.print_exc()
          save()
          continue
        result["softmax"].append(r)
        print(softmax_line(r), flush=True)
        save()

    if len(Bs) > 1:
      print("\n-- larger batches, as time allows --", flush=True)
      for B in Bs[1:]:
        for D in dims:
          for model in models_:
            for layout in layouts:
              run_train(model, D, B, layout, core=False)

    extra = _names(args.extra_layouts)
    if extra:
      print("\n-- other layouts at each model's best batch size, as time allows --", flush=True)
      for model in models_:
        for D in dims:
          runs = [r for r in result["train"] if r["model"] == model and r["D"] == D]
          if not runs:
            continue
          best = max(runs, key=lambda r: r["words_per_sec"])
          tried = {(r["B"], r["layout"]) for r in runs}
          for layout in extra:
            if (best["B"], layout) not in tried:
              run_train(model, D, best["B"], layout, core=False)
  except _Stop as e:
    result["stopped"] = str(e)
    print(f"stopped by {e}: the figures so far follow", flush=True)
  signal.signal(signal.SIGTERM, signal.SIG_IGN)   # the summary takes milliseconds; `timeout -k` backs it up

  # the best per (model, D)
  best = {}
  for r in result["train"]:
    key = f"{r['model']} D={r['D']}"
    if key not in best or r["words_per_sec"] > best[key]["words_per_sec"]:
      best[key] = {k: r[k] for k in ("model", "D", "B", "layout", "step", "native", "words_per_sec",
                                     "centers_per_sec")}
  result["best"] = list(best.values())
  print("\n-- best words/s per model and D --", flush=True)
  for b in result["best"]:
    print(f"{b['model']:<9} D={b['D']:<4} {_fmt_rate(b['words_per_sec']):>8} words/s  "
          f"({_fmt_rate(b['centers_per_sec'])} centers/s) at B={b['B']}, layout={b['layout']}", flush=True)
  for r in result["softmax"]:
    print(f"{r['model']:<9} D={r['D']:<4} {r['gflops']:8.1f} GFLOP/s (plain matmul {_gflops(r['matmul_gflops'])}) "
          f"at B={r['B']}, V={r['V']}", flush=True)
  if result["skipped"]:
    print(f"skipped for time: {len(result['skipped'])} measurement(s)", flush=True)
  result["complete"] = "stopped" not in result
  save()
  print(f"wrote {args.json} ({time.perf_counter() - T0:.1f}s in all)", flush=True)
  print(json.dumps(_brief(result, args.json)), flush=True)   # one short line: the whole record is in the file
  if "stopped" in result:
    return 124
  return 1 if core_failed else 0


if __name__ == "__main__":
  sys.exit(main())
