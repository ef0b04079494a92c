"""Ablation: Levy, Goldberg & Dagan (2015), "Improving Distributional Similarity with Lessons Learned from
Word Embeddings", on SGNS (sgram_neg), one factor at a time.

    python -m experiments.ablations.levy2015 --corpus=../shared/data/dev_corpus.txt.gz --workdir=runs/ablations/levy2015

Around word2vec's defaults (window 5, k 5, dim 100, context-distribution smoothing 0.75, dirty
subsampling with sample 1e-3, min_count 5, seed 0), each run changes one factor:
  context-distribution smoothing  ns_exponent 1.0 (none) vs 0.75
  negatives k                     1, 15 vs 5
  window                          2, 10 vs 5
  subsampling                     clean (removed words keep their positions) vs dirty (word2vec.c)
(k 15 diverges at word2vec's lr 0.025 over 3 epochs on the dev corpus, so k 15 and k 5 are also compared
at lr 0.0125), and every run is scored twice from the same parameters: w (W_in, word2vec's vectors) and w+c
(W_in + W_out, the paper's "adding context vectors"); no retraining is needed for w+c.
Scores: Google analogies by 3CosAdd (top 30k words; all, semantic, syntactic), WS-353 and SimLex-999
Spearman. --epochs defaults to 3 (not word2vec's 5) to fit the budget of a 2-core machine.

Writes in --workdir: one directory per run (<setting>-seed<s>/, with vectors.txt of w), results.md,
results.json and plots/levy2015_factors.png. Rerunning reads finished runs back.
"""
import dataclasses
import pathlib
import time

from absl import app, flags
import numpy as np

from .. import common
from . import shared
from w2v_jax import api
from w2v_jax.config import TrainConfig

shared.define_flags(workdir="runs/ablations/levy2015", epochs=3)
flags.DEFINE_list("seeds", ["0"], "seeds: every setting trains once per seed")
FLAGS = flags.FLAGS

SETTINGS = [   # (run name, factor, label, TrainConfig changes from the defaults, the run it is compared with)
    ("baseline", "(defaults)", "baseline: W5 k5 cds0.75 dirty", {}, "baseline"),
    ("cds1.0", "smoothing", "ns_exponent 1.0", {"ns_exponent": 1.0}, "baseline"),
    ("k1", "negatives", "k 1", {"neg": 1}, "baseline"),
    ("k15", "negatives", "k 15", {"neg": 15}, "baseline"),
    ("w2", "window", "window 2", {"window": 2}, "baseline"),
    ("w10", "window", "window 10", {"window": 10}, "baseline"),
    ("clean", "subsampling", "clean subsampling", {"subsampling": "clean"}, "baseline"),
    # k 15 diverges at lr 0.025 over 3 epochs on the dev corpus (epoch 2): the k comparison again at half
    # the lr, k 15 against k 5, both at lr 0.0125.
    ("k5-lr0.0125", "negatives @ lr 0.0125", "k 5, lr 0.0125", {"lr": 0.0125}, "k5-lr0.0125"),
    ("k15-lr0.0125", "negatives @ lr 0.0125", "k 15, lr 0.0125", {"neg": 15, "lr": 0.0125}, "k5-lr0.0125"),
]
METRICS = ("analogy", "ws353", "simlex")


def with_context_vectors(result: api.RunResult) -> dict:
  """The same run's w+c scores (W_in + W_out), under the key "wc"."""
  return {"wc": shared.scores(result.vocab.words, api.export_vectors(result.params, "in+out"))}


def main(argv):
  started = time.time()
  workdir = pathlib.Path(FLAGS.workdir)
  seeds = shared.ints(FLAGS.seeds)
  base = TrainConfig(model="sgram_neg", epochs=FLAGS.epochs, seed=0).validate()
  runs: dict[str, list[dict]] = {}
  for name, _, label, changes, _ in SETTINGS:
    runs[name] = []
    for seed in seeds:
      cfg = dataclasses.replace(base, seed=seed, **changes).validate()
      runs[name].append(shared.train_run(cfg, FLAGS.corpus, workdir / f"{name}-seed{seed}", FLAGS.cache_dir,
                                         extra=with_context_vectors, label=f"{label}, seed {seed}"))

  rows = []
  for name, factor, label, _, _ in SETTINGS:
    for r in runs[name]:
      if shared.failure(r) == "diverged":
        rows.append([factor, label, r["config"]["seed"], "diverged (loss non-finite)"] + [""] * 11)
        continue
      wc = r["wc"]
      blew = f" (blew up: final loss {r['final_loss']:.0e})" if shared.failure(r) else ""
      rows.append([factor, label + blew, r["config"]["seed"], shared.pct(r["analogy"]), shared.pct(r["semantic"]),
                   shared.pct(r["syntactic"]), shared.rho(r["ws353"]), shared.rho(r["simlex"]),
                   shared.pct(wc["analogy"]), shared.pct(wc["semantic"]), shared.pct(wc["syntactic"]),
                   shared.rho(wc["ws353"]), shared.rho(wc["simlex"]),
                   f"{r['words_per_sec'] / 1e3:,.0f}", f"{r['train_seconds']:.1f}"])
  table = shared.md_table(["factor", "setting", "seed", "w analogy %", "w sem %", "w syn %", "w WS-353",
                           "w SimLex", "w+c analogy %", "w+c sem %", "w+c syn %", "w+c WS-353", "w+c SimLex",
                           "k words/s", "train s"], rows, numeric_from=2)

  def mean(name, metric, wc=False):
    """Over the seeds; NaN when a run of the setting diverged (no vectors)."""
    if any(shared.failure(r) for r in runs[name]):
      return float("nan")
    return float(np.mean([(r["wc"] if wc else r)[metric] for r in runs[name]]))

  delta_rows = []
  for name, factor, label, _, base_name in SETTINGS:
    if any(shared.failure(r) for r in runs[name]):
      delta_rows.append([factor, label, "diverged or blew up"] + [""] * 7)
      continue
    delta_rows.append([factor, f"{label} (vs {base_name})"] + [
        f"{100 * (mean(name, m) - mean(base_name, m)):+.2f}" if m in ("analogy", "semantic", "syntactic")
        else f"{mean(name, m) - mean(base_name, m):+.3f}" for m in ("analogy", "semantic", "syntactic", "ws353",
                                                                   "simlex")] + [
        f"{100 * (mean(name, 'analogy', True) - mean(name, 'analogy')):+.2f}",
        f"{mean(name, 'ws353', True) - mean(name, 'ws353'):+.3f}",
        f"{mean(name, 'simlex', True) - mean(name, 'simlex'):+.3f}"])
  delta_md = shared.md_table(["factor", "setting", "Δ analogy (points)", "Δ sem", "Δ syn", "Δ WS-353", "Δ SimLex",
                              "w+c − w analogy", "w+c − w WS-353", "w+c − w SimLex"], delta_rows, numeric_from=2)
  delta_note = ("Δ: the setting's w vectors minus those of the run named in brackets (the baseline, or the "
                "same lr)" +
                (f" (means over seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else "") +
                "; the last three columns compare w+c with w within the same run.\n\n")

  shown = [st for st in SETTINGS if not any(shared.failure(r) for r in runs[st[0]])]   # a failed run: no bar
  short = {"baseline": "baseline\nW5 k5 cds.75 dirty", "cds1.0": "cds 1.0", "k1": "k 1", "k15": "k 15",
           "w2": "W 2", "w10": "W 10", "clean": "clean\nsubsampling", "k5-lr0.0125": "k 5\nlr 0.0125",
           "k15-lr0.0125": "k 15\nlr 0.0125"}
  labels = [short.get(name, label) for name, _, label, _, _ in shown]
  series = {v: {m: [mean(name, m, v == "w+c") for name, *_ in shown] for m in METRICS} for v in ("w", "w+c")}
  points = ({v: {m: [[(r["wc"] if v == "w+c" else r)[m] for r in runs[name]] for name, *_ in shown]
                 for m in METRICS} for v in ("w", "w+c")} if len(seeds) > 1 else None)
  diverged = [label for name, _, label, _, _ in SETTINGS if any(shared.failure(r) for r in runs[name])]
  shared.metric_bars(labels, series, workdir / "plots" / "levy2015_factors.png",
                     f"SGNS, {FLAGS.epochs} epochs, one factor at a time; w = W_in, w+c = W_in + W_out (same run)"
                     + (f"; dots: seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else "")
                     + (f"; not shown (diverged or blew up): {', '.join(diverged)}" if diverged else ""), points=points,
                     stacked=True)

  wall = time.time() - started
  shared.write_results(workdir, "Levy, Goldberg & Dagan (2015) on SGNS, one factor at a time", [
      (f"Runs (sgram_neg, {FLAGS.epochs} epochs)", table),
      ("Differences", delta_note + delta_md),
      ("Wall time", shared.wall_line(wall, [r for recs in runs.values() for r in recs]))],
      {"runs": runs, "epochs": FLAGS.epochs, "wall_seconds": wall})
  print(f"\nsgram_neg, {FLAGS.epochs} epochs:\n{table}\n{delta_note}{delta_md}")
  print(shared.wall_line(wall, [r for recs in runs.values() for r in recs]))
  print(f"wall time {wall:.0f} s; results.md, results.json and plots/ are in {workdir}")
  return 0


if __name__ == "__main__":
  app.run(common.run_main(main))
