"""scripts/bench.py's tables, from rows as its workers return them (the runs themselves are the benchmark's,
not the tests': speed is measured there, never asserted here)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import bench  # noqa: E402


def _row(system, repeat, ratio, whole, cpu, far=None):
  return {"system": system, "model": "cbow_neg", "repeat": repeat, "ratio_vs_gensim": ratio,
          "whole_job_ratio_vs_gensim": whole, "user_cpu_seconds": cpu, "cores_far": far,
          "round_trip_ns": None if far is None else 55.0}


def test_repeats_table_gives_each_repeat_its_ratios_median_and_both_systems_cpu_time():
  rows = [_row("gensim (workers=2)", 0, 1.0, 1.0, 19.8, 0.0), _row("w2v_jax", 0, 2.29, 2.05, 9.2, 0.0),
          _row("gensim (workers=2)", 1, 1.0, 1.0, 17.2, 0.25), _row("w2v_jax", 1, 1.98, 1.80, 30.4, 0.9),
          _row("gensim (workers=2)", 2, 1.0, 1.0, 14.4), _row("w2v_jax", 2, 1.67, 1.61, 8.9, 0.0)]
  table = bench.repeats_table(rows).splitlines()
  ours = [line for line in table if line.startswith("| cbow_neg | w2v_jax |")]
  assert len(ours) == 1 and not any(line.startswith("| cbow_neg | gensim") for line in table)
  cells = [c.strip() for c in ours[0].strip("|").split("|")]
  assert cells[2:] == ["2.29x, 1.98x, 1.67x", "1.98x", "2.05x, 1.80x, 1.61x", "1.80x",
                       "9.2 / 19.8, 30.4 / 17.2, 8.9 / 14.4", "0% / 0%, 90% / 25%, 0% / -"]
  assert len(cells) == table[1].count("|") - 1   # as many cells as the header has columns


def test_core_sampler_says_how_much_of_a_run_the_cpus_were_far_apart():
  """CoreSampler's summary from its samples: the median round trip, and the share over FAR_NS; none
  without samples (no kernels, or one CPU)."""
  sampler = bench.CoreSampler()
  assert sampler.summary() == {"round_trip_ns": None, "cores_far": None}
  sampler.samples = [55.0, 60.0, 350.0, 52.0]
  assert sampler.summary() == {"round_trip_ns": 57.5, "cores_far": 0.25}
  assert bench._far(sampler.summary()) == "25% (58 ns)"


def test_core_sampler_samples_while_a_run_goes_on():
  """The real probe (native.core_round_trip_ns), sampled in a thread: a positive time per sample on a
  machine with two CPUs and the kernels, none where either is missing."""
  import time
  from w2v_jax import native
  available = native.core_round_trip_ns() is not None   # (loads the kernels first)
  with bench.CoreSampler(every=0.05) as sampler:
    time.sleep(0.5)
  if not available:
    assert sampler.samples == []
  else:
    assert len(sampler.samples) >= 3 and all(ns > 0 for ns in sampler.samples)
