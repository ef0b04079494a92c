"""w2v_jax against gensim on one corpus with the same settings, plus scaling figures.

    python scripts/bench.py --corpus ../shared/data/dev_corpus.txt.gz
    python scripts/bench.py --zipf 25e3:4e6,300e3:4e6,1.5e6:10e6 --epochs 1 --min_count 1   # V scaling
    (--hogwild 1, --huge_pages on|off: also those runs of w2v_jax, in the same tables, beside the default
    run, whose tables go on huge pages when they take 512 MB or more (pages.py); --repeats N: N
    alternating runs of each, with each repeat's ratios to gensim and their median)
    python scripts/bench.py --corpus ../shared/data/dev_corpus.txt.gz --march x86-64,x86-64-v3,native \
        --one_thread --repeats 2   # every build of the kernels beside gensim; and each on one thread
        # against gensim workers=1

Each system trains in its own subprocess (so peak RSS is its own), on the same corpus, with dim 100,
window 5, neg 5, min_count 5, sample 1e-3 and 5 epochs unless flags say otherwise (the *_hs models
against gensim's hs=1, negative=0). Words/s counts raw corpus words x epochs / training seconds, as
gensim and word2vec.c report it; for w2v_jax the training time includes compilation, which is also
reported on its own. The whole job is timed from the process's start (imports included) to the vectors
written in word2vec's text format, with a cold corpus cache for w2v_jax (its vocabulary and encoding
are timed, as gensim's reading and build_vocab are); the native kernels' one-time build is cached, and
the compiled chunk is loaded from JAX's persistent compilation cache under --cache_dir/xla as w2v-train
does (the compile column says whether that cache was warm: it is cold the first time a setting runs). Quality is scored by the same code
(w2v_jax.evaluate, which agrees with gensim's evaluate_word_analogies / evaluate_word_pairs).
Scaling (--scaling): words/s against vocabulary size (synthetic Zipf corpus) and dimension, peak memory
against 2·V·D·4 bytes + tokens, and the full-softmax models' GFLOP/s against a plain jnp matmul.
gensim is an optional dependency: `pip install gensim` (or '.[bench]').
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
_PROCESS_START = time.perf_counter()   # the whole job is timed from here (imports included) to the vectors


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> dict:
  use = resource.getrusage(resource.RUSAGE_SELF)
  return {"user_cpu_seconds": use.ru_utime, "system_cpu_seconds": use.ru_stime}


def worker_w2v_jax(args) -> dict:
  if args.march:   # before the kernels are built: each -march is built and cached apart (native/builder.py)
    os.environ["W2V_JAX_NATIVE_MARCH"] = args.march
  if args.one:   # the fused steps on one thread (fused_steps.cc, Pace)
    os.environ["W2V_JAX_PACE"] = "one"
  import tempfile
  import numpy as np
  from w2v_jax import api, corpus, pages, loop, vectors_io
  from w2v_jax.config import TrainConfig
  from w2v_jax.experiments.common import use_compile_cache
  use_compile_cache(args.cache_dir)   # as w2v-train does: a rerun loads its compiled chunk
  xla_dir = os.path.join(args.cache_dir, "xla")
  cached = set(os.listdir(xla_dir)) if os.path.isdir(xla_dir) else set()
  cfg = TrainConfig(model=args.model, dim=args.dim, window=args.window, neg=args.neg, epochs=args.epochs,
                    min_count=args.min_count, sample=args.sample, batch_size=args.batch_size,
                    hogwild=bool(args.hogwild),
                    **({"steps_per_call": args.steps_per_call} if args.steps_per_call else {}))
  huge = pages.SETTINGS[args.pages]
  t_import = time.perf_counter() - _PROCESS_START
  t0 = time.perf_counter()
  with tempfile.TemporaryDirectory() as cold:   # a cold cache: the vocabulary and encoding are timed
    vocab, enc = corpus.prepare([args.corpus], cfg.min_count, cache_dir=cold)
  prep = time.perf_counter() - t0
  fit = loop.fit(cfg, vocab, enc, huge_pages=huge)
  if args.march and not fit.engine["native"]:   # a row named for a build must have run that build
    sys.exit(f"-march={args.march}: the native kernels did not run ({fit.engine['reason']})")
  vectors = np.asarray(fit.params.W_in)
  t1 = time.perf_counter()
  with tempfile.TemporaryDirectory() as out:
    vectors_io.save_text(os.path.join(out, "vectors.txt"), vocab.words, vectors)
  write = time.perf_counter() - t1
  whole = time.perf_counter() - _PROCESS_START
  compiled = any(n.startswith("jit_chunk") for n in set(os.listdir(xla_dir)) - cached)
  t2 = time.perf_counter()
  ev = api.evaluate_vectors(vocab.words, vectors)
  evaluate = time.perf_counter() - t2
  words = enc.stats.raw_words * cfg.epochs
  system = ("w2v_jax" + (f" -march={args.march} ({fit.engine['vector_bits']}-bit)" if args.march else "") + (" one thread" if args.one else "")
            + (" --hogwild" if args.hogwild else "")
            + {None: "", True: " --huge_pages", False: " --nohuge_pages"}[huge])
  return {"system": system, "model": args.model, "pages": fit.pages, "threads": fit.threads,
          "words_per_sec": words / fit.train_seconds,
          "words_per_sec_excl_compile": words / max(fit.train_seconds - fit.compile_seconds, 1e-9),
          "train_seconds": fit.train_seconds, "compile_seconds": fit.compile_seconds,
          "prepare_seconds": prep, "import_seconds": t_import, "write_seconds": write,
          "evaluate_seconds": evaluate, "whole_job_seconds": whole, "engine": fit.engine["step"],
          "march": fit.engine.get("march"), "march_resolved": fit.engine.get("march_resolved"),
          "vector_bits": fit.engine.get("vector_bits"),
          "compile_cache": "cold" if compiled else "warm",
          "analogy": ev["analogy"]["accuracy"], "ws353": ev["word_similarity"]["spearman"],
          "simlex999": ev["simlex999"]["spearman"], "final_loss": fit.history[-1]["loss"],
          "vocab_size": len(vocab.words), "peak_rss_mb": _peak_rss_mb(), **_cpu_seconds()}


def worker_gensim(args) -> dict:
  import gzip
  import tempfile
  from gensim.models import Word2Vec
  t_import = time.perf_counter() - _PROCESS_START
  t0 = time.perf_counter()
  opener = gzip.open if args.corpus.endswith(".gz") else open
  with opener(args.corpus, "rt", encoding="utf-8", errors="replace") as f:
    sentences = [line.split() for line in f]
  words = sum(map(len, sentences)) * args.epochs
  hs = args.model.endswith("_hs")   # hierarchical softmax: hs=1, negative=0, as word2vec.c's -hs 1 -negative 0
  model = Word2Vec(vector_size=args.dim, window=args.window, negative=0 if hs else args.neg, hs=int(hs),
                   sg=int(args.model.startswith("sgram")), min_count=args.min_count, sample=args.sample,
                   epochs=args.epochs, workers=args.workers, seed=1)
  model.build_vocab(sentences)
  prep = time.perf_counter() - t0
  t0 = time.perf_counter()
  model.train(sentences, total_examples=model.corpus_count, epochs=args.epochs)
  dt = time.perf_counter() - t0
  t1 = time.perf_counter()
  with tempfile.TemporaryDirectory() as out:
    model.wv.save_word2vec_format(os.path.join(out, "vectors.txt"))
  write = time.perf_counter() - t1
  whole = time.perf_counter() - _PROCESS_START
  from w2v_jax import api   # after the whole job: its import is not gensim's cost
  t2 = time.perf_counter()
  ev = api.evaluate_vectors(model.wv.index_to_key, model.wv.vectors)
  evaluate = time.perf_counter() - t2
  return {"system": f"gensim (workers={args.workers})", "model": args.model, "words_per_sec": words / dt,
          "train_seconds": dt, "prepare_seconds": prep, "import_seconds": t_import, "write_seconds": write,
          "evaluate_seconds": evaluate, "whole_job_seconds": whole, "analogy": ev["analogy"]["accuracy"],
          "ws353": ev["word_similarity"]["spearman"], "simlex999": ev["simlex999"]["spearman"],
          "vocab_size": len(model.wv.index_to_key), "peak_rss_mb": _peak_rss_mb(), **_cpu_seconds()}


def zipf_corpus(types: int, tokens: int, cache_dir: str, sentence: int = 20, seed: int = 0) -> str:
  """A text corpus of `tokens` words drawn from a Zipf(1.0) law over `types` word types ("w<rank>"), in
  sentences of `sentence` words, gzip-compressed; made once into cache_dir and reused."""
  import gzip
  import numpy as np
  path = os.path.join(cache_dir, f"zipf_{types}_{tokens}_{seed}.txt.gz")
  if os.path.exists(path):
    return path
  os.makedirs(cache_dir, exist_ok=True)
  rng = np.random.default_rng(seed)
  cdf = np.cumsum(1.0 / np.arange(1, types + 1))
  cdf /= cdf[-1]
  names = np.array([f"w{i}" for i in range(types)], dtype=object)
  tmp = path + ".tmp"
  with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as f:
    for lo in range(0, tokens, 1_000_000):
      ids = np.minimum(np.searchsorted(cdf, rng.random(min(1_000_000, tokens - lo))), types - 1)
      words = names[ids]
      f.write("\n".join(" ".join(words[i:i + sentence]) for i in range(0, len(words), sentence)) + "\n")
  os.replace(tmp, path)
  return path


class CoreSampler:
  """While a run goes on, the round trip of a cache line between the first two CPUs, every `every` seconds
  (native.core_round_trip_ns, a fraction of a millisecond of both CPUs each time). On this machine it
  has spells of several times its usual value, when the host places the two vCPUs far apart, and the
  two-thread steps slow down with it (docs/performance.md, "The slow spells", has the figures). `cores_far` is the
  share of samples over FAR_NS, between the two."""
  FAR_NS = 150.0

  def __init__(self, every: float = 0.5):
    import threading
    from w2v_jax import native
    self._probe, self._every, self.samples = native.core_round_trip_ns, every, []
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def _run(self):
    while not self._stop.wait(self._every):
      ns = self._probe()
      if ns is not None:
        self.samples.append(ns)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()

  def summary(self) -> dict:
    if not self.samples:
      return {"round_trip_ns": None, "cores_far": None}
    return {"round_trip_ns": statistics.median(self.samples),
            "cores_far": sum(ns > self.FAR_NS for ns in self.samples) / len(self.samples)}


def _far(r: dict) -> str:
  """A run's share of round-trip samples with the CPUs far apart, and the median round trip."""
  return "-" if r.get("cores_far") is None else f"{r['cores_far']:.0%} ({r['round_trip_ns']:.0f} ns)"


def _run_worker(kind, args, **extra) -> dict | None:
  cmd = [sys.executable, os.path.abspath(__file__), f"--worker={kind}", f"--corpus={args.corpus}",
         f"--dim={args.dim}", f"--window={args.window}", f"--neg={args.neg}", f"--epochs={args.epochs}",
         f"--min_count={args.min_count}", f"--sample={args.sample}", f"--workers={args.workers}",
         f"--batch_size={args.batch_size}", f"--cache_dir={args.cache_dir}"]
  cmd += [f"--steps_per_call={args.steps_per_call}"] if args.steps_per_call else []
  cmd += [f"--{k}={v}" for k, v in extra.items()]
  # --busy: that many busy loops beside the worker, as on a machine that is never idle; the same for every
  # system. They start before the worker and stop when it ends.
  busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
  try:
    with CoreSampler() as cores:
      out = subprocess.run(cmd, capture_output=True, text=True)
  finally:
    for b in busy:
      b.kill()
      b.wait()
  if out.returncode != 0:
    print(f"  {kind} {extra} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
    return None
  return {**json.loads(out.stdout.strip().splitlines()[-1]), **cores.summary()}


def _variants(args, model: str) -> dict:
  """Our runs of one model in one repeat, each the worker's extra flags: one per --march build (or the
  default build), each also on one thread with --one_thread, then --hogwild and --huge_pages."""
  marches = [m for m in args.march.split(",") if m] or [""]
  runs = {}
  for m in marches:
    runs[f"march={m}"] = {"march": m} if m else {}
    if args.one_thread:
      runs[f"march={m} one"] = {**runs[f"march={m}"], "one": 1}
  if args.hogwild and model.endswith("_neg"):
    runs["hogwild"] = {"hogwild": 1}
  if args.huge_pages:
    runs["pages"] = {"pages": args.huge_pages}
  return runs


def compare(args) -> list[dict]:
  rows = []
  print(f"corpus {args.corpus}: dim {args.dim}, window {args.window}, neg {args.neg}, min_count "
        f"{args.min_count}, sample {args.sample}, {args.epochs} epochs", flush=True)
  if args.busy:
    print(f"with {args.busy} busy loop(s) beside every run (--busy)", flush=True)
  header = ("| model | system | words/s | vs gensim | whole job s | vs gensim | compile s | analogy | WS-353 ρ | "
            "SimLex ρ | peak RSS MB |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  parts = ("| model | system | import s | vocabulary + encoding s | compile s | train s | write s | "
           "(evaluate s) | system CPU s | user CPU s | CPUs far apart (median round trip) |\n"
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  lines, breakdown = [], []
  for model, repeat in [(m, i) for m in args.models.split(",") for i in range(args.repeats)]:
    if args.repeats > 1:
      print(f"  {model}: repeat {repeat + 1} of {args.repeats}", flush=True)
    g = _run_worker("gensim", args, model=model) if not args.no_gensim else None
    g1 = (_run_worker("gensim", args, model=model, workers=1)
          if args.one_thread and not args.no_gensim and args.workers != 1 else None)
    variants = _variants(args, model)
    # Odd repeats run our variants in the reverse order, so that none always runs first after gensim.
    order = list(variants)[::-1 if repeat % 2 else 1]
    done = {k: _run_worker("w2v_jax", args, model=model, **variants[k]) for k in order}
    for r in done.values():
      if r is not None:
        print(f"  {model} {r['system']}: {r['pages']}" + (f"; {r['threads']}" if r["threads"] else ""), flush=True)
    for k, r in [*((k, done[k]) for k in variants), ("gensim", g), ("gensim1", g1)]:
      if r is None:
        continue
      one = (k != "gensim" and variants.get(k, {}).get("one")) or k == "gensim1"
      base = g1 if one and g1 is not None else g   # (with --workers=1, gensim's one run is both)
      r["repeat"] = repeat
      ratio = r["words_per_sec"] / base["words_per_sec"] if base else float("nan")
      whole = base["whole_job_seconds"] / r["whole_job_seconds"] if base else float("nan")   # > 1: faster
      r["ratio_vs_gensim"], r["whole_job_ratio_vs_gensim"] = ratio, whole
      rows.append(r)
      lines.append(f"| {model} | {r['system']} | {r['words_per_sec'] / 1e3:,.0f}k | {ratio:.2f}x | "
                   f"{r['whole_job_seconds']:.1f} | {whole:.2f}x | {r.get('compile_seconds', 0):.1f}"
                   f"{' (' + r['compile_cache'] + ' cache)' if 'compile_cache' in r else ''} | "
                   f"{100 * r['analogy']:.2f}% | {r['ws353']:.3f} | {r['simlex999']:.3f} | {r['peak_rss_mb']:,.0f} |")
      train_s = r["train_seconds"] - r.get("compile_seconds", 0.0)
      breakdown.append(f"| {model} | {r['system']} | {r['import_seconds']:.1f} | {r['prepare_seconds']:.1f} | "
                       f"{r.get('compile_seconds', 0):.1f} | {train_s:.1f} | {r['write_seconds']:.1f} | "
                       f"({r['evaluate_seconds']:.1f}) | {r['system_cpu_seconds']:.1f} | {r['user_cpu_seconds']:.1f} | "
                       f"{_far(r)} |")
      print(lines[-1], flush=True)
  print("\n" + header + "\n" + "\n".join(lines), flush=True)
  print("\nWhere the whole job's time goes (evaluation is not part of it):\n" + parts + "\n" +
        "\n".join(breakdown), flush=True)
  if args.repeats > 1:
    print("\n" + repeats_table(rows), flush=True)
  return rows


def repeats_table(rows: list[dict]) -> str:
  """With --repeats N: each system's ratios to the gensim run beside it (training words/s, whole job), run
  by run, and their median: this machine's speed moves between runs, so one run's ratio can mislead. The
  user CPU seconds of each run, ours and gensim's: each system does the same work in every repeat, so a
  repeat whose CPU time stands far above the others' ran in a slow spell of the machine; and the share of
  each run's time with the CPUs far apart (CoreSampler), ours and gensim's, which says whether it did."""
  lines = ["Ratios to gensim, repeat by repeat (each against the gensim run of the same repeat), and each run's "
           "user CPU s (the same work every repeat: one far above the others ran while the machine was slow):",
           "| model | system | words/s ratio per repeat | median | whole job ratio per repeat | median | "
           "user CPU s per repeat (this system / gensim) | CPUs far apart per repeat (this system / gensim) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for key in dict.fromkeys((r["model"], r["system"]) for r in rows if not r["system"].startswith("gensim")):
    mine = [r for r in rows if (r["model"], r["system"]) == key]
    train = [r["ratio_vs_gensim"] for r in mine]
    whole = [r["whole_job_ratio_vs_gensim"] for r in mine]
    gensim = {r["repeat"]: r for r in rows if r["system"].startswith("gensim") and r["model"] == key[0]
              and ("workers=1)" in r["system"]) == ("one thread" in key[1])}   # the gensim run it was set against
    cpu = ", ".join(f"{r['user_cpu_seconds']:.1f} / " + (f"{gensim[r['repeat']]['user_cpu_seconds']:.1f}"
                                                        if r["repeat"] in gensim else "-") for r in mine)
    share = lambda r: "-" if r is None or r.get("cores_far") is None else f"{r['cores_far']:.0%}"
    far = ", ".join(f"{share(r)} / {share(gensim.get(r['repeat']))}" for r in mine)
    lines.append(f"| {key[0]} | {key[1]} | {', '.join(f'{x:.2f}x' for x in train)} | "
                 f"{statistics.median(train):.2f}x | {', '.join(f'{x:.2f}x' for x in whole)} | "
                 f"{statistics.median(whole):.2f}x | {cpu} | {far} |")
  return "\n".join(lines)


def scaling_table(rows: list[dict]) -> str:
  """vocab_scaling's table from its rows (also: scaling_table(json.load(f)["vocab_scaling"]))."""
  lines = ["\nVocabulary scaling (Zipf(1.0) text; words/s with and without the first call's compilation; outside "
           "training = import + vocabulary and encoding + write):",
           "| V | tokens | model | words/s w2v_jax (excl. compile) | words/s gensim | ratio (excl. compile) | "
           "outside training s (w2v_jax / gensim) | whole job s (w2v_jax / gensim) | ratio | peak RSS MB "
           "(w2v_jax / gensim) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  out = lambda r: r["import_seconds"] + r["prepare_seconds"] + r["write_seconds"]
  for j in rows:
    if not j["system"].startswith("w2v_jax"):
      continue
    g = next((r for r in rows if r["system"].startswith("gensim") and r["model"] == j["model"]
              and r["zipf_types"] == j["zipf_types"] and r.get("repeat") == j.get("repeat")), None)
    if g is None:
      continue
    lines.append(
        f"| {j['vocab_size']:,} | {j['zipf_tokens'] / 1e6:g}M | {j['model']}{j['system'][len('w2v_jax'):]} | "
        f"{j['words_per_sec'] / 1e3:,.0f}k "
        f"({j['words_per_sec_excl_compile'] / 1e3:,.0f}k) | {g['words_per_sec'] / 1e3:,.0f}k | "
        f"{j['words_per_sec'] / g['words_per_sec']:.2f}x ({j['words_per_sec_excl_compile'] / g['words_per_sec']:.2f}x) | "
        f"{out(j):.1f} / {out(g):.1f} | {j['whole_job_seconds']:.1f} / {g['whole_job_seconds']:.1f} | "
        f"{g['whole_job_seconds'] / j['whole_job_seconds']:.2f}x | {j['peak_rss_mb']:,.0f} / {g['peak_rss_mb']:,.0f} |")
  return "\n".join(lines)


def vocab_scaling(args) -> list[dict]:
  """compare() on each --zipf corpus (synthetic Zipf text, made once into --cache_dir/zipf), then one table:
  training words/s against gensim's as V grows, the time outside training, and peak RSS."""
  import copy
  rows = []
  for spec in args.zipf.split(","):
    types, tokens = (int(float(x)) for x in spec.split(":"))
    run = copy.copy(args)
    run.corpus = zipf_corpus(types, tokens, os.path.join(args.cache_dir, "zipf"))
    print(f"\nZipf corpus: {types:,} word types, {tokens:,} tokens", flush=True)
    rows += [dict(r, zipf_types=types, zipf_tokens=tokens) for r in compare(run)]
  print(scaling_table(rows), flush=True)
  return rows


def host_line() -> str:
  """The CPU's model and its vector extensions (/proc/cpuinfo), for the figures' record."""
  info = {}
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
  except OSError:
    import platform
    return f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
  wanted = ("sse2", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "asimd", "sve")
  have = [f for f in wanted if f in info.get("flags", info.get("Features", "")).split()]
  return f"host: {info.get('model name', '?')}, {os.cpu_count()} CPUs, vector flags: {' '.join(have)}"


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "..", "w2v_jax", "data",
                                                  "small_corpus.txt.gz"))
  p.add_argument("--models", default="sgram_neg,cbow_neg", help="any of sgram_neg, cbow_neg, sgram_hs, cbow_hs")
  p.add_argument("--dim", type=int, default=100)
  p.add_argument("--window", type=int, default=5)
  p.add_argument("--neg", type=int, default=5)
  p.add_argument("--epochs", type=int, default=5)
  p.add_argument("--min_count", type=int, default=5)
  p.add_argument("--sample", type=float, default=1e-3)
  p.add_argument("--workers", type=int, default=2, help="gensim worker threads")
  p.add_argument("--batch_size", type=int, default=1024)
  p.add_argument("--steps_per_call", type=int, default=None, help="default: TrainConfig's")
  p.add_argument("--cache_dir", default=os.path.expanduser("~/.cache/w2v_jax"))
  p.add_argument("--no_gensim", action="store_true")
  p.add_argument("--hogwild", type=int, default=0, help="1: also run w2v_jax --hogwild (the *_neg models)")
  p.add_argument("--huge_pages", default="", choices=["", "on", "off"], help="also run w2v_jax with the tables "
                 "forced onto huge pages (on) or kept off them (off); the default run's are auto (pages.py)")
  p.add_argument("--pages", default="auto", choices=["auto", "on", "off"], help=argparse.SUPPRESS)
  p.add_argument("--repeats", type=int, default=1, help="run each model's systems this many times, alternating, "
                 "and print each repeat's ratios and their median")
  p.add_argument("--march", default="", help="comma-separated -march values (e.g. x86-64,x86-64-v3,native): "
                 "one w2v_jax run per build, beside the same gensim run (W2V_JAX_NATIVE_MARCH)")
  p.add_argument("--one_thread", action="store_true", help="also run each build on one thread "
                 "(W2V_JAX_PACE=one) against gensim workers=1")
  p.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
  p.add_argument("--scaling", action="store_true", help="also run the scaling figures")
  p.add_argument("--zipf", default=None, help="vocabulary scaling: comma-separated TYPES:TOKENS synthetic Zipf "
                 "corpora (e.g. 25e3:4e6,300e3:4e6,1.5e6:10e6; use with --epochs 1 --min_count 1)")
  p.add_argument("--busy", type=int, default=0,
                 help="run this many busy loops (one core each) beside every system's run: a machine in use")
  p.add_argument("--json", default=None, help="write all figures here")
  p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  p.add_argument("--model", default=None, help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.worker:
    print(json.dumps({"w2v_jax": worker_w2v_jax, "gensim": worker_gensim}[args.worker](args)))
    return
  import jax
  from w2v_jax import native
  print(host_line(), flush=True)
  print(f"JAX {jax.__version__} on {jax.default_backend()}: {jax.devices()}; {native.status().reason} "
        "(W2V_JAX_NATIVE=0 switches them off)", flush=True)
  results = {"vocab_scaling": vocab_scaling(args)} if args.zipf else {"compare": compare(args)}
  if args.scaling:
    import bench_sizes
    results["sizes"] = bench_sizes.run_all(args)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)
  print("JSON " + json.dumps(results))


if __name__ == "__main__":
  main()
