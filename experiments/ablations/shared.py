"""What the ablation scripts share: flags, training a run (or reading a finished one back), evaluation,
markdown tables and bar charts.

    from . import shared
    shared.define_flags(workdir="runs/ablations/x", epochs=5)
    record = shared.train_run(TrainConfig(...), FLAGS.corpus, workdir / "run-name", FLAGS.cache_dir)

A run directory holds the training job's files (api.train) and ablation.json, the record this module
writes once the run and its extra evaluations are done; rerunning a script reads finished runs back from
their ablation.json instead of training them again (a record of other settings is an error). The
checkpoint of a finished run is deleted: the record and vectors.txt are what later steps need.
"""
import json
import pathlib
import time
from typing import Callable, Sequence

from absl import flags
import matplotlib
matplotlib.use("Agg")   # a script's plots go to files; no display is needed
import matplotlib.pyplot as plt
import numpy as np

from w2v_jax import api
from w2v_jax import loop
from w2v_jax.atomic import read_json, write_atomic
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError

REPO = pathlib.Path(__file__).resolve().parents[2]
DEV_CORPUS = REPO.parent / "shared" / "data" / "dev_corpus.txt.gz"   # ../shared/data relative to the repo
RECORD = "ablation.json"
METRIC_LABELS = {"analogy": "analogy %", "ws353": "WS-353 ρ", "simlex": "SimLex-999 ρ"}


def define_flags(workdir: str, epochs: int, epochs_help: str = "epochs of each training run") -> None:
  flags.DEFINE_string("corpus", str(DEV_CORPUS), "training corpus (text or .gz, one sentence a line); "
                      "default: the dev corpus, ../shared/data/dev_corpus.txt.gz next to the repository")
  flags.DEFINE_string("workdir", workdir, "where the runs, results.md, results.json and plots/ go")
  flags.DEFINE_integer("epochs", epochs, epochs_help)
  flags.DEFINE_string("cache_dir", None, "encoded-corpus cache; default $W2V_JAX_CACHE or ~/.cache/w2v_jax")


def ints(values: Sequence[str]) -> list[int]:
  return [int(v) for v in values]


def floats(values: Sequence[str]) -> list[float]:
  return [float(v) for v in values]


def scores(words: list[str], vectors: np.ndarray, method: str = "3cosadd") -> dict:
  """Analogy accuracy (all, semantic, syntactic; fractions) by `method`, WS-353 and SimLex-999 Spearman."""
  ev = api.evaluate_vectors(words, vectors, method)   # the benchmarks the training summary reports
  a, ws, sl = ev["analogy"], ev["word_similarity"], ev["simlex999"]
  return {"analogy": a["accuracy"], "semantic": a["semantic"], "syntactic": a["syntactic"],
          "analogy_questions": a["n_total"], "ws353": ws["spearman"], "simlex": sl["spearman"],
          "sections": [{k: s[k] for k in ("section", "correct", "incorrect")} for s in a["sections"]]}


def _write_json(path: pathlib.Path, obj) -> None:
  write_atomic(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode("utf-8")))


# Settings a record may differ in and still be the same run: softmax_prior acts on full-softmax models only,
# and its default changed while these ablations (all negative sampling) were being run.
_NO_EFFECT = {"softmax_prior"}


def _differs(recorded: dict, want: dict) -> bool:
  """Whether a recorded config is another run: a setting both know has another value (a field added to
  TrainConfig since the record was written is not a difference)."""
  return any(recorded[k] != want[k] for k in recorded.keys() & want.keys() - _NO_EFFECT)


def train_run(cfg: TrainConfig, corpus: str, run_dir: pathlib.Path, cache_dir=None,
              extra: Callable[[api.RunResult], dict] | None = None, label: str = "") -> dict:
  """Trains cfg in run_dir, or reads back the record of a finished run there. Returns the record: the
  config, the summary's metrics (vectors cfg.eval_with, analogies by 3CosAdd), wall time, and whatever
  extra(result) returns (evaluations of other exports of the same params)."""
  run_dir = pathlib.Path(run_dir)
  want = json.loads(cfg.to_json())
  label = label or run_dir.name
  if (run_dir / RECORD).exists():
    record = json.loads((run_dir / RECORD).read_text())
    if _differs(record["config"], want):
      raise W2VError(f"{run_dir} holds a run of other settings: delete it or choose another --workdir")
    print(f"{label}: finished earlier, read back from {run_dir / RECORD}", flush=True)
    return record
  print(f"{label}: training ({cfg.model}, {cfg.epochs} epochs, lr {cfg.learning_rate}) in {run_dir}", flush=True)
  start = time.time()
  earlier = read_json(run_dir / "summary.json")
  finished_earlier = earlier is not None and earlier.get("status") == "finished"
  if finished_earlier and (run_dir / "checkpoint.npz").exists():
    # trained, but stopped before its record was written: the files are rewritten from the final checkpoint
    # (api.train refuses to resume a run whose summary says it is finished), its timing kept below
    (run_dir / "summary.json").unlink()
  try:
    result = api.train(cfg, [corpus], run_dir, resume=(run_dir / "checkpoint.npz").exists(),
                       cache_dir=cache_dir, log_every_s=30.0,
                       on_notice=lambda message: print(f"{label}: note: {message}", flush=True))
  except loop.Diverged as e:   # a result too (an lr too high), not a reason to stop the script
    record = {"name": run_dir.name, "config": want, "lr": cfg.learning_rate, "diverged": str(e),
              **{m: None for m in ("analogy", "semantic", "syntactic", "ws353", "simlex", "words_per_sec",
                                   "train_seconds", "final_loss")}, "wall_seconds": time.time() - start}
    _write_json(run_dir / RECORD, record)
    (run_dir / "checkpoint.npz").unlink(missing_ok=True)
    print(f"{label}: DIVERGED ({e})", flush=True)
    return record
  s = result.summary
  if finished_earlier and not result.history:
    s = {**s, **{k: earlier[k] for k in ("train_seconds", "compile_seconds", "words_per_sec") if k in earlier}}
  if s["status"] != "finished":
    raise W2VError(f"{run_dir}: training ended with status {s['status']}")
  record = {"name": run_dir.name, "config": want, "lr": cfg.learning_rate,
            "analogy": s["analogy_accuracy"], "semantic": s["analogy_semantic"],
            "syntactic": s["analogy_syntactic"], "analogy_questions": s["analogy_questions"],
            "ws353": s["ws353_spearman"], "simlex": s["simlex999_spearman"],
            "words_per_sec": s["words_per_sec"], "train_seconds": s["train_seconds"],
            "compile_seconds": s["compile_seconds"], "final_loss": s["final_loss"],
            "vocab_size": s["vocab_size"], "corpus_words": s["corpus_words"], "engine": s["engine"]}
  if extra is not None:
    record.update(extra(result))
  record["wall_seconds"] = time.time() - start
  _write_json(run_dir / RECORD, record)
  (run_dir / "checkpoint.npz").unlink(missing_ok=True)
  num = lambda x, scale=1.0, digits=3: "n/a" if x is None else f"{scale * x:.{digits}f}"   # no pair in vocabulary
  print(f"{label}: analogy {num(record['analogy'], 100, 2)}% (sem {num(record['semantic'], 100, 2)}, "
        f"syn {num(record['syntactic'], 100, 2)}), WS-353 {num(record['ws353'])}, SimLex {num(record['simlex'])}, "
        f"{record['words_per_sec'] / 1e3:,.0f}k words/s, train {record['train_seconds']:.1f} s, "
        f"wall {record['wall_seconds']:.1f} s", flush=True)
  return record


BLOWUP_LOSS = 1e3   # a finished run whose final loss per prediction is above this blew up (sane runs: 1.5-3)


def failure(record: dict) -> str | None:
  """"diverged" (the loss became non-finite: no vectors), "blew up" (finite but huge final loss: the
  vectors are garbage), or None for a sound run."""
  if record.get("diverged"):
    return "diverged"
  if record.get("final_loss") is not None and record["final_loss"] > BLOWUP_LOSS:
    return "blew up"
  return None


def wall_line(script_seconds: float, records) -> str:
  """The results' wall-time line: this invocation's, and the sum over the runs used (each timed when it
  trained, so the sum is what a run of the script from scratch spends training and evaluating)."""
  unique = {r["name"] + json.dumps(r["config"], sort_keys=True): r for r in records}
  total = sum(r.get("wall_seconds", 0.0) for r in unique.values())
  return (f"{len(unique)} runs took {total:.0f} s ({total / 60:.1f} min) of wall time in all, each measured "
          f"when it trained; this invocation of the script took {script_seconds:.0f} s (runs finished earlier "
          f"are read back, not retrained).\n")


def pct(x) -> str:
  return "–" if x is None else f"{100 * x:.2f}"


def kwps(x) -> str:
  """Words/s in thousands."""
  return "–" if x is None else f"{x / 1e3:,.0f}"


def num(x, digits: int = 1) -> str:
  return "–" if x is None else f"{x:.{digits}f}"


def rho(x) -> str:
  return "–" if x is None or x != x else f"{x:.3f}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence], numeric_from: int = 1) -> str:
  """A markdown table; columns from `numeric_from` on are right-aligned."""
  lines = ["| " + " | ".join(headers) + " |",
           "|" + "".join("---|" if i < numeric_from else "--:|" for i in range(len(headers)))]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def write_results(workdir: pathlib.Path, title: str, sections: Sequence[tuple[str, str]], data) -> None:
  """workdir/results.md (a title, then (heading, markdown) sections) and workdir/results.json (data)."""
  text = f"# {title}\n\n" + "\n".join(f"## {h}\n\n{body}" for h, body in sections)
  write_atomic(workdir / "results.md", lambda f: f.write(text.encode("utf-8")))
  _write_json(workdir / "results.json", data)


def metric_bars(labels: Sequence[str], series: dict[str, dict[str, Sequence[float]]], path: pathlib.Path,
                title: str, metrics: Sequence[str] = ("analogy", "ws353", "simlex"),
                points: dict[str, dict[str, Sequence[Sequence[float]]]] | None = None, stacked: bool = False) -> None:
  """One panel per metric (side by side, or stacked), a group of bars per label, one bar per series (e.g. "w"
  and "w+c").

  series[name][metric] holds one value per label (analogy as a fraction: drawn in %); points, with the
  same keys, optionally holds several values per label (e.g. one per seed), drawn as dots on the bar.
  """
  if stacked:   # one panel under the other: room for many groups
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(8.0, 0.8 * len(labels) * len(series)), 3.2 * len(metrics)),
                             dpi=110)
  else:
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2), dpi=110)
  axes = np.atleast_1d(axes)
  x = np.arange(len(labels))
  width = 0.8 / len(series)
  for ax, metric in zip(axes, metrics):
    scale = 100.0 if metric in ("analogy", "semantic", "syntactic") else 1.0
    for i, (name, values) in enumerate(series.items()):
      offset = (i - (len(series) - 1) / 2) * width
      vals = np.array([np.nan if v is None else v for v in values[metric]], float) * scale
      colors = [f"C{j}" for j in range(len(labels))] if len(series) == 1 else None   # one series: a color a bar
      ax.bar(x + offset, vals, width, label=name, color=colors)
      tops = vals.copy()
      if points and name in points:
        for j, (xb, pts) in enumerate(zip(x + offset, points[name][metric])):
          pts = np.array(pts, float) * scale
          ax.plot(np.full(len(pts), xb), pts, "k.", ms=5, zorder=3)
          tops[j] = np.nanmax(np.r_[vals[j], pts])
      for xb, v, top in zip(x + offset, vals, tops):
        if np.isfinite(v):
          ax.annotate(f"{v:.2f}" if scale == 100.0 else f"{v:.3f}", (xb, max(top, 0.0)), xytext=(0, 3),
                      textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    slanted = not stacked and max(len(l) for l in labels) > 8
    ax.set_xticklabels(labels, rotation=25 if slanted else 0, ha="right" if slanted else "center", fontsize=8)
    ax.set_title({"semantic": "semantic analogy %", "syntactic": "syntactic analogy %"}.get(
        metric, METRIC_LABELS.get(metric, metric)))
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.12)
  if len(series) > 1:
    axes[0].legend(fontsize=8)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path)
  plt.close(fig)
