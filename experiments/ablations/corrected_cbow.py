"""Ablation: corrected CBOW (İrsoy, Benton & Stratos 2021, kōan) against word2vec's CBOW rule and skip-gram.

    python -m experiments.ablations.corrected_cbow --corpus=../shared/data/dev_corpus.txt.gz --workdir=runs/ablations/corrected_cbow

Claim (İrsoy et al. 2021, "Corrected CBOW Performs as well as Skip-gram"; kōan): word2vec.c and gensim
give every context word of a CBOW window the whole gradient of the averaged hidden vector h, which is n
times the true gradient (n: the words in the window). Trained with the exact gradient (kōan, at lr 0.075),
CBOW with negative sampling is as good as skip-gram on intrinsic and extrinsic tasks and over three times
faster to train.

Three variants, each at its own best learning rate:
  cbow_neg, `cbow_context_grad="sum"`   word2vec.c / gensim's rule (lrs --lrs_cbow)
  cbow_neg, `cbow_context_grad="mean"`  the exact gradient, kōan's "corrected CBOW" (lrs --lrs_mean)
  sgram_neg                              skip-gram with negative sampling (lrs --lrs_sgram)
The lr sweep has two stages, both seed 0: every lr for --sweep_epochs (1) epoch, then the lrs that did not
diverge for --epochs (5) epochs, because the best lr of a one-epoch run is not the best of a five-epoch
run. Per variant, the lr with the best mean rank over analogy accuracy, WS-353 and SimLex-999 (ties:
analogy) after --epochs epochs is chosen and trained again once per other --seeds seed. Everything else
is word2vec's default: dim 100, window 5, k 5, min_count 5, sample 1e-3. Words/s are wall-clock
throughput on whatever the machine shares at the time; compare them within one run of the script only.

Writes in --workdir: lr/<variant>-lr<lr>-seed0/ (short sweep) and final/<variant>-lr<lr>-seed<s>/ (full
sweep and seeds), one training job each with vectors.txt; results.md, results.json, and
plots/lr_sweep.png, plots/final_quality.png, plots/speed.png. Rerunning reads finished runs back.
"""
import dataclasses
import pathlib
import time

from absl import app, flags
import matplotlib.pyplot as plt
import numpy as np

from .. import common
from . import shared
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError

shared.define_flags(workdir="runs/ablations/corrected_cbow", epochs=5,
                    epochs_help="epochs of the final runs (each variant at its chosen lr)")
flags.DEFINE_integer("sweep_epochs", 1, "epochs of each run of the short lr sweep")
flags.DEFINE_list("lrs_mean", ["0.025", "0.05", "0.075", "0.1", "0.2", "0.4"], "lrs tried for the corrected CBOW")
flags.DEFINE_list("lrs_cbow", ["0.025", "0.05", "0.1", "0.2"], "lrs tried for word2vec's CBOW rule")
flags.DEFINE_list("lrs_sgram", ["0.0125", "0.025", "0.05", "0.1"], "lrs tried for skip-gram")
flags.DEFINE_list("seeds", ["0", "1"], "seeds of the final runs (the lr sweeps use seed 0)")
FLAGS = flags.FLAGS

VARIANTS = {   # key: (label, config fields)
    "cbow_sum": ("CBOW, word2vec rule (sum)", dict(model="cbow_neg", cbow_context_grad="sum")),
    "cbow_mean": ("CBOW, exact gradient (mean)", dict(model="cbow_neg", cbow_context_grad="mean")),
    "sgram": ("skip-gram (sgram_neg)", dict(model="sgram_neg")),
}
METRICS = ("analogy", "ws353", "simlex")


def pick_lr(records: list[dict]) -> dict:
  """The record with the best mean rank over METRICS (rank 1 = best) among the runs that neither diverged nor
  blew up (shared.failure), ties broken by analogy accuracy."""
  ok = [r for r in records if not shared.failure(r)]
  if not ok:
    tried = ", ".join(f"{r['lr']:g}" for r in records)
    raise W2VError(f"every lr of the sweep diverged ({tried}): try lower ones")
  ranks = np.zeros(len(ok))
  for m in METRICS:
    values = np.array([-(r[m] if r[m] is not None else -np.inf) for r in ok])
    ranks += np.argsort(np.argsort(values, kind="stable"), kind="stable") + 1
  order = sorted(range(len(ok)), key=lambda i: (ranks[i], -ok[i]["analogy"]))
  for r in records:
    r["mean_rank"] = None
  for i, r in enumerate(ok):
    r["mean_rank"] = ranks[i] / len(METRICS)
  return ok[order[0]]


def lr_plot(stages: list[tuple[str, dict[str, list[dict]], dict[str, float]]], path: pathlib.Path) -> None:
  """One row of panels (analogy, WS-353, SimLex) per sweep stage: metric against lr, a line per variant."""
  fig, axes = plt.subplots(len(stages), 3, figsize=(14, 4.0 * len(stages)), dpi=110, squeeze=False)
  all_lrs = sorted({r["lr"] for _, sweep, _ in stages for recs in sweep.values() for r in recs})
  for row, (title, sweep, chosen) in zip(axes, stages):
    for ax, m in zip(row, METRICS):
      scale = 100.0 if m == "analogy" else 1.0
      for i, (key, recs) in enumerate(sweep.items()):
        color = f"C{i}"
        ok = [r for r in recs if not r.get("diverged")]
        ax.plot([r["lr"] for r in ok], [scale * r[m] for r in ok], marker="o", color=color, label=VARIANTS[key][0])
        ax.plot([chosen[key]], [scale * r[m] for r in ok if r["lr"] == chosen[key]], marker="*", ms=15,
                color=color, zorder=3)
        bad = [r["lr"] for r in recs if r.get("diverged")]
        if bad:   # an x on the axis: the run diverged, no vectors to score
          ax.plot(bad, [0.0] * len(bad), marker="x", ms=10, mew=2, color=color, ls="none",
                  label=f"{VARIANTS[key][0]}: diverged")
      ax.set_xscale("log")
      ax.set_xticks(all_lrs)
      ax.get_xaxis().set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
      ax.minorticks_off()
      ax.tick_params(axis="x", labelrotation=45, labelsize=8)
      ax.set_xlabel("starting learning rate")
      ax.set_title(f"{shared.METRIC_LABELS[m]}: {title}", fontsize=10)
      ax.grid(alpha=0.3)
  handles = [plt.Line2D([], [], color=f"C{i}", marker="o", label=VARIANTS[k][0]) for i, k in enumerate(VARIANTS)]
  handles += [plt.Line2D([], [], color="gray", marker="*", ms=12, ls="none", label="chosen lr (best mean rank)"),
              plt.Line2D([], [], color="gray", marker="x", ms=9, mew=2, ls="none", label="diverged (drawn at 0)")]
  fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
  fig.suptitle("lr sweeps, seed 0", fontsize=10)
  fig.tight_layout(rect=(0, 0.05, 1, 1))
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path)
  plt.close(fig)


def speed_plot(finals: dict[str, list[dict]], path: pathlib.Path) -> None:
  fig, ax = plt.subplots(figsize=(7.2, 3.6), dpi=110)
  labels = [VARIANTS[k][0] for k in finals]
  means = [np.mean([r["words_per_sec"] / 1e3 for r in recs]) for recs in finals.values()]
  ax.barh(labels, means, color=["C0", "C1", "C2"][:len(labels)])
  for i, (v, recs) in enumerate(zip(means, finals.values())):
    pts = [r["words_per_sec"] / 1e3 for r in recs]
    ax.plot(pts, [i] * len(recs), "k.", ms=6)
    ax.text(max(pts + [v]), i, f"   mean {v:,.0f}k", va="center", fontsize=8)
  ax.set_xlabel("thousand corpus words per second (dots: one per seed)")
  ax.set_title(f"training speed, {FLAGS.epochs} epochs, 2 CPU cores shared with other jobs", fontsize=10)
  ax.margins(x=0.25)
  ax.grid(axis="x", alpha=0.3)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def main(argv):
  started = time.time()
  workdir = pathlib.Path(FLAGS.workdir)
  seeds = shared.ints(FLAGS.seeds)
  base = TrainConfig(seed=0).validate()
  lrs = {"cbow_sum": shared.floats(FLAGS.lrs_cbow), "cbow_mean": shared.floats(FLAGS.lrs_mean),
         "sgram": shared.floats(FLAGS.lrs_sgram)}

  def run(key, lr, epochs, seed, where, stage):
    label, fields = VARIANTS[key]
    cfg = dataclasses.replace(base, epochs=epochs, lr=lr, seed=seed, **fields).validate()
    return shared.train_run(cfg, FLAGS.corpus, workdir / where / f"{key}-lr{lr:g}-seed{seed}", FLAGS.cache_dir,
                            label=f"[{stage}] {label}, lr {lr:g}, {epochs} epoch(s), seed {seed}")

  # Stage 1: every lr for --sweep_epochs (1) epoch(s). Stage 2: the lrs that did not diverge there, for
  # --epochs epochs: the best lr after one epoch is not the best after five (a larger lr wins a short run).
  sweep: dict[str, list[dict]] = {}
  chosen_short: dict[str, float] = {}
  for key in VARIANTS:
    sweep[key] = [run(key, lr, FLAGS.sweep_epochs, 0, "lr", "short sweep") for lr in lrs[key]]
    chosen_short[key] = pick_lr(sweep[key])["lr"]
    print(f"{VARIANTS[key][0]}: best lr after {FLAGS.sweep_epochs} epoch(s): {chosen_short[key]:g}", flush=True)
  full: dict[str, list[dict]] = {}
  chosen: dict[str, float] = {}
  for key in VARIANTS:
    full[key] = [run(key, r["lr"], FLAGS.epochs, 0, "final", "full sweep") for r in sweep[key]
                 if not r.get("diverged")]
    chosen[key] = pick_lr(full[key])["lr"]
    print(f"{VARIANTS[key][0]}: best lr after {FLAGS.epochs} epochs: {chosen[key]:g}", flush=True)
  finals: dict[str, list[dict]] = {}
  for key in VARIANTS:
    finals[key] = [run(key, chosen[key], FLAGS.epochs, seed, "final", "final") for seed in seeds]
    for rec in finals[key]:
      if rec.get("diverged"):
        raise W2VError(f"{VARIANTS[key][0]} at lr {chosen[key]:g} diverged with seed {rec['config']['seed']}")

  def sweep_table(stage, chosen_lrs):
    rows = [[VARIANTS[k][0], f"{r['lr']:g}" + (" **←**" if r["lr"] == chosen_lrs[k] else "") +
             (" (blew up)" if shared.failure(r) == "blew up" else "")] +
            (["diverged (loss non-finite)"] + [""] * 7 if r.get("diverged") else
             [shared.pct(r["analogy"]), shared.pct(r["semantic"]), shared.pct(r["syntactic"]),
              shared.rho(r["ws353"]), shared.rho(r["simlex"]), shared.num(r["mean_rank"], 2),
              shared.kwps(r["words_per_sec"]), shared.num(r["final_loss"], 4)])
            for k, recs in stage.items() for r in recs]
    return shared.md_table(["variant", "lr", "analogy %", "semantic %", "syntactic %", "WS-353 ρ", "SimLex ρ",
                            "mean rank", "k words/s", "final loss"], rows, numeric_from=1)

  short_md = sweep_table(sweep, chosen_short)
  full_md = sweep_table(full, chosen)
  final_rows = [[VARIANTS[k][0], f"{r['lr']:g}", r["config"]["seed"], shared.pct(r["analogy"]),
                 shared.pct(r["semantic"]), shared.pct(r["syntactic"]), shared.rho(r["ws353"]),
                 shared.rho(r["simlex"]), f"{r['words_per_sec'] / 1e3:,.0f}", f"{r['train_seconds']:.1f}"]
                for k, recs in finals.items() for r in recs]
  final_md = shared.md_table(["variant", "lr", "seed", "analogy %", "semantic %", "syntactic %", "WS-353 ρ",
                              "SimLex ρ", "k words/s", "train s"], final_rows, numeric_from=1)

  def mean(recs, m):
    return float(np.mean([r[m] for r in recs]))

  def spread(recs, m, scale):
    vals = [scale * r[m] for r in recs]
    return f" ± {(max(vals) - min(vals)) / 2:.{2 if scale == 100 else 3}f}" if len(vals) > 1 else ""

  mean_rows = [[VARIANTS[k][0], f"{chosen[k]:g}",
                f"{100 * mean(recs, 'analogy'):.2f}{spread(recs, 'analogy', 100)}",
                f"{100 * mean(recs, 'semantic'):.2f}", f"{100 * mean(recs, 'syntactic'):.2f}",
                f"{mean(recs, 'ws353'):.3f}{spread(recs, 'ws353', 1)}",
                f"{mean(recs, 'simlex'):.3f}{spread(recs, 'simlex', 1)}",
                f"{mean(recs, 'words_per_sec') / 1e3:,.0f}",
                f"{mean(recs, 'words_per_sec') / mean(finals['sgram'], 'words_per_sec'):.2f}x"]
               for k, recs in finals.items()]
  mean_md = shared.md_table(["variant", "lr", "analogy %", "semantic %", "syntactic %", "WS-353 ρ", "SimLex ρ",
                             "k words/s", "speed vs skip-gram"], mean_rows, numeric_from=1)
  note = (f"Mean over seeds {', '.join(map(str, seeds))}" + (" (± half the range between seeds)"
                                                              if len(seeds) > 1 else "") + ".\n\n")

  plots = workdir / "plots"
  lr_plot([(f"{FLAGS.sweep_epochs} epoch(s)", sweep, chosen_short), (f"{FLAGS.epochs} epochs", full, chosen)],
          plots / "lr_sweep.png")
  labels = [VARIANTS[k][0].replace(", ", ",\n") for k in finals]
  shared.metric_bars(labels, {"mean over seeds": {m: [mean(recs, m) for recs in finals.values()]
                                                  for m in METRICS}},
                     plots / "final_quality.png",
                     f"{FLAGS.epochs} epochs at each variant's chosen lr (bars: mean; dots: seeds {', '.join(FLAGS.seeds)})",
                     points={"mean over seeds": {m: [[r[m] for r in recs] for recs in finals.values()]
                                                 for m in METRICS}})
  speed_plot(finals, plots / "speed.png")

  wall = time.time() - started
  shared.write_results(workdir, "Corrected CBOW vs word2vec's CBOW vs skip-gram", [
      (f"Short lr sweep ({FLAGS.sweep_epochs} epoch(s), seed 0)", short_md),
      (f"Full lr sweep ({FLAGS.epochs} epochs, seed 0; the lrs that did not diverge above)", full_md),
      (f"Final runs ({FLAGS.epochs} epochs, chosen lr)", final_md),
      ("Mean over seeds", note + mean_md),
      ("Wall time", shared.wall_line(wall, [r for stage in (sweep, full, finals) for recs in stage.values()
                                            for r in recs]))],
      {"short_sweep": sweep, "chosen_lr_short": chosen_short, "full_sweep": full, "chosen_lr": chosen,
       "final": finals, "wall_seconds": wall})
  print(f"\nshort lr sweep ({FLAGS.sweep_epochs} epoch(s), seed 0):\n{short_md}")
  print(f"full lr sweep ({FLAGS.epochs} epochs, seed 0):\n{full_md}")
  print(f"final runs ({FLAGS.epochs} epochs):\n{final_md}")
  print(note + mean_md)
  print(shared.wall_line(wall, [r for stage in (sweep, full, finals) for recs in stage.values() for r in recs]))
  print(f"wall time {wall:.0f} s; results.md, results.json and plots/ are in {workdir}")
  return 0


if __name__ == "__main__":
  app.run(common.run_main(main))
