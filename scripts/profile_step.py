"""Where a training step's time goes: the real chunk on a real corpus, timed, then traced op by op.

  python scripts/profile_step.py --corpus ../shared/data/dev_corpus.txt.gz --model cbow_neg
  python scripts/profile_step.py --corpus ... --model sgram_neg --no_native   # XLA's scatter instead
  python scripts/profile_step.py --corpus ... --huge_pages on   # the tables on huge pages (pages.py);
                                                                # off: 4 kB pages; default auto, as fit
  python scripts/profile_step.py --corpus ... --model cbow_neg --timeline 12   # then 12 s, second by second

It builds the chunk `loop.fit` runs (defaults of TrainConfig, overridable as --set key=value), times
steady-state steps, then records a jax.profiler trace with XLA:CPU's per-thunk trace events on and prints
the time of each kind of op per step, summed over threads (so the total can exceed the wall time when
XLA runs independent ops at once). This is the profile the performance notes in docs/performance.md quote.
With --timeline N it then runs N more seconds of steps and prints each second's ms a step beside the
round trip of a cache line between the first two CPUs taken right after it (native.core_round_trip_ns:
docs/performance.md, "The slow spells"), and how many steps ran on one thread (fused_steps.cc, Pace;
W2V_JAX_PACE=all runs them all on every thread, W2V_JAX_PACE=one on one).
"""
import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time

# Per-op (thunk) trace events must be switched on before XLA initialises.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from w2v_jax import corpus as corpus_lib, engine, native, pages, loop  # noqa: E402
from w2v_jax.config import TrainConfig  # noqa: E402
from bench import CoreSampler  # noqa: E402  (scripts/ is on sys.path when a script runs)
from bench_runs import field_value  # noqa: E402
from experiments.common import parse_max_dup  # noqa: E402


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--corpus", required=True)
  ap.add_argument("--model", default="sgram_neg")
  ap.add_argument("--set", action="append", default=[], help="a TrainConfig field, key=value")
  ap.add_argument("--no_native", action="store_true", help="apply rows with XLA's scatter (W2V_JAX_NATIVE=0)")
  ap.add_argument("--chunks", type=int, default=30, help="timed chunks (steps_per_call steps each)")
  ap.add_argument("--top", type=int, default=20)
  ap.add_argument("--timeline", type=float, default=0.0,
                  help="then this many seconds of steps, each second's time beside the CPUs' round trip")
  ap.add_argument("--huge_pages", nargs="?", const="on", default="auto", choices=list(pages.SETTINGS),
                  help="the tables on huge pages (pages.place): auto (as loop.fit), on or off")
  args = ap.parse_args()

  base = TrainConfig()
  fields = {k: field_value(getattr(base, k), v) for k, v in (s.split("=", 1) for s in args.set)}
  if "max_dup" in fields:   # as on the command line: a number, auto, or 0 (the cap off)
    fields["max_dup"] = parse_max_dup(fields["max_dup"])
  cfg = TrainConfig(model=args.model, **fields).validate()
  vocab, enc = corpus_lib.prepare(args.corpus, cfg.min_count)
  if args.no_native:
    os.environ["W2V_JAX_NATIVE"] = "0"   # read when the kernel is first needed, at tracing
  spec = engine.select_step(cfg, counts=vocab.counts)   # as loop.fit without a mesh
  print(f"step: {spec.name} -- {spec.reason}")
  chunk = jax.jit(engine.make_chunk(spec, cfg), donate_argnums=0)
  huge = pages.SETTINGS[args.huge_pages]
  state = spec.init(pages.init_params(jax.random.PRNGKey(cfg.seed), len(vocab.words), cfg.dim, huge))   # as fit
  state, pages_line = pages.place(state, huge)
  print(f"tables: {pages_line}")
  data = loop.epoch_data(cfg, vocab, enc, 0)
  S = cfg.steps_per_call
  if (args.chunks + 12) * S > int(data.steps):
    raise SystemExit(f"error: the epoch has {int(data.steps)} steps, fewer than --chunks needs; lower it")
  state, m = chunk(state, data, jnp.int32(0))
  jax.block_until_ready(m)

  t = time.perf_counter()
  for i in range(1, args.chunks + 1):
    state, m = chunk(state, data, jnp.int32(i * S))
  jax.block_until_ready(m)
  dt = (time.perf_counter() - t) / (args.chunks * S)
  print(f"{cfg.model}, B={cfg.batch_size}, D={cfg.dim}, native={not args.no_native}: "
        f"{dt * 1e3:.3f} ms/step, {cfg.batch_size / dt / 1e3:.0f}k centers/s")

  traced = 10
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      for i in range(args.chunks + 1, args.chunks + 1 + traced):
        state, m = chunk(state, data, jnp.int32(i * S))
      jax.block_until_ready(m)
    from jax._src.lib import _profile_data
    profile = _profile_data.ProfileData.from_file(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0])
    per_op = collections.Counter()
    for plane in profile.planes:
      for line in plane.lines:
        for event in line.events:
          if "Thunk" in event.name or event.name.startswith("$") or "tf_" in event.name:
            continue   # executor and Python frames, not ops
          per_op[re.sub(r"[._]\d+$", "", event.name)] += event.duration_ns
  steps = traced * S
  print(f"op time per step, summed over threads: {sum(per_op.values()) / steps / 1e3:.0f} us")
  for name, ns in per_op.most_common(args.top):
    print(f"  {ns / steps / 1e3:8.1f} us  {name}")
  if args.timeline > 0:
    timeline(chunk, state, data, S, args.timeline)


def timeline(chunk, state, data, steps_per_call: int, seconds: float):
  """Second by second: ms a step, then the round trip between the first two CPUs (ns), taken at once
  after the second; and the fused steps' thread counts over the whole timeline."""
  calls = int(data.steps) // steps_per_call - 1   # whole calls in the epoch, cycled through
  before, start, i = native.contention(), time.perf_counter(), 0
  print(f"timeline: ms a step | round trip ns (far apart over {CoreSampler.FAR_NS:.0f} ns)")
  while time.perf_counter() - start < seconds:
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < 1.0:
      state, m = chunk(state, data, jnp.int32((i % calls) * steps_per_call))
      jax.block_until_ready(m)
      i, n = i + 1, n + 1
    ms = (time.perf_counter() - t) / (n * steps_per_call) * 1e3
    ns = native.core_round_trip_ns()
    far = "" if ns is None else (" far" if ns > CoreSampler.FAR_NS else " near")
    print(f"  {ms:.3f} | {'-' if ns is None else f'{ns:.0f}'}{far}", flush=True)
  c = native.contention() - before
  print(f"threads: {c.describe() or 'no fused step on several threads'}")


if __name__ == "__main__":
  main()
