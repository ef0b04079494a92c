"""scripts/bench.py's tables, from rows as its workers return them (the runs themselves are the benchmark's,
not the tests': speed is measured there, never asserted here)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import bench  # noqa: E402


def _row(system, repeat, ratio, whole, cpu):
  return {"system": system, "model": "cbow_neg", "repeat": repeat, "ratio_vs_gensim": ratio,
          "whole_job_ratio_vs_gensim": whole, "user_cpu_seconds": cpu}


def test_repeats_table_gives_each_repeat_its_ratios_median_and_both_systems_cpu_time():
  rows = [_row("gensim (workers=2)", 0, 1.0, 1.0, 19.8), _row("w2v_jax", 0, 2.29, 2.05, 9.2),
          _row("gensim (workers=2)", 1, 1.0, 1.0, 17.2), _row("w2v_jax", 1, 1.98, 1.80, 30.4),
          _row("gensim (workers=2)", 2, 1.0, 1.0, 14.4), _row("w2v_jax", 2, 1.67, 1.61, 8.9)]
  table = bench.repeats_table(rows).splitlines()
  ours = [line for line in table if line.startswith("| cbow_neg | w2v_jax |")]
  assert len(ours) == 1 and not any(line.startswith("| cbow_neg | gensim") for line in table)
  cells = [c.strip() for c in ours[0].strip("|").split("|")]
  assert cells[2:] == ["2.29x, 1.98x, 1.67x", "1.98x", "2.05x, 1.80x, 1.61x", "1.80x",
                       "9.2 / 19.8, 30.4 / 17.2, 8.9 / 14.4"]
  assert len(cells) == table[1].count("|") - 1   # as many cells as the header has columns
