"""Ablation: 3CosAdd against 3CosMul (Levy & Goldberg 2014) on the same vectors.

    python -m experiments.ablations.cosmul --corpus=../shared/data/dev_corpus.txt.gz --workdir=runs/ablations/cosmul

Claim (Levy & Goldberg 2014, "Linguistic Regularities in Sparse and Explicit Word Representations"):
3CosAdd (argmax cos(x, b) − cos(x, a) + cos(x, a*)) lets one large similarity term dominate; 3CosMul
(argmax cos(x, b) cos(x, a*) / (cos(x, a) + ε), cosines shifted to [0, 1]) balances the terms and
answers more analogy questions correctly, on both the Google and the MSR sets, for neural embeddings
(SGNS) as well as for explicit (PPMI) vectors, with the larger gain on the explicit ones.

Vector sets scored (each by both rules, Google analogy set, top 30k words as vocabulary and candidates,
the way gensim's evaluate_word_analogies does it):
  --train    sgram_neg and cbow_neg of this package at word2vec's defaults (dim 100, window 5, k 5,
             min_count 5, sample 1e-3, lr 0.025 / 0.05), --epochs epochs, seed 0
  --gensim   gensim 4's Word2Vec, skip-gram and CBOW, the same settings (alpha 0.025 / 0.05 as word2vec.c),
             workers 2, seed 0 (with 2 workers gensim is not bit-reproducible)
  --vectors  any word2vec files, as label=path (comma-separated), e.g. another ablation's vectors.txt
Writes in --workdir: the runs (sgram_neg/, cbow_neg/, gensim_sg/, gensim_cbow/), results.md,
results.json, plots/cosmul_accuracy.png and plots/cosmul_sections.png. Rerunning reads finished runs back.
"""
import gzip
import json
import pathlib
import time

from absl import app, flags
import matplotlib.pyplot as plt
import numpy as np

from .. import common
from . import shared
from w2v_jax import api, vectors_io
from w2v_jax.atomic import write_atomic
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError

shared.define_flags(workdir="runs/ablations/cosmul", epochs=5)
flags.DEFINE_bool("train", True, "train sgram_neg and cbow_neg (word2vec defaults) and score them")
flags.DEFINE_bool("gensim", True, "train gensim's skip-gram and CBOW on the same corpus and score them")
flags.DEFINE_list("vectors", [], "extra word2vec files to score, as label=path")
FLAGS = flags.FLAGS

METHODS = ("3cosadd", "3cosmul")
PARTS = ("analogy", "semantic", "syntactic")


def both_methods(words, vectors) -> dict:
  return {m: shared.scores(words, vectors, method=m) for m in METHODS}


def ours(model: str, workdir: pathlib.Path) -> dict:
  cfg = TrainConfig(model=model, epochs=FLAGS.epochs, seed=0).validate()
  rec = shared.train_run(cfg, FLAGS.corpus, workdir / model, FLAGS.cache_dir, label=f"w2v_jax {model}",
                         extra=lambda r: {"methods": both_methods(r.vocab.words, api.export_vectors(r.params, "in"))})
  return rec["methods"]


def gensim_run(sg: int, workdir: pathlib.Path) -> dict:
  """gensim Word2Vec on the corpus (one sentence a line, split on whitespace), scored by both rules."""
  run_dir = workdir / ("gensim_sg" if sg else "gensim_cbow")
  settings = dict(vector_size=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=FLAGS.epochs, sg=sg,
                  hs=0, alpha=0.025 if sg else 0.05, workers=2, seed=0)
  record_path = run_dir / shared.RECORD
  if record_path.exists():
    record = json.loads(record_path.read_text())
    if record["settings"] == settings and record["corpus"] == str(FLAGS.corpus):
      print(f"gensim {'sg' if sg else 'cbow'}: finished earlier, read back", flush=True)
      return record["methods"]
    raise W2VError(f"{run_dir} holds a gensim run of other settings: delete it or choose another --workdir")
  from gensim.models import Word2Vec   # only when gensim runs
  opener = gzip.open if str(FLAGS.corpus).endswith(".gz") else open
  with opener(FLAGS.corpus, "rt", encoding="utf-8") as f:
    sentences = [line.split() for line in f if line.strip()]
  print(f"gensim {'sg' if sg else 'cbow'}: training {FLAGS.epochs} epochs", flush=True)
  start = time.time()
  model = Word2Vec(sentences, **settings)
  seconds = time.time() - start
  words, vectors = list(model.wv.index_to_key), np.asarray(model.wv.vectors, np.float32)
  run_dir.mkdir(parents=True, exist_ok=True)
  vectors_io.save_text(run_dir / "vectors.txt", words, vectors)
  record = {"settings": settings, "corpus": str(FLAGS.corpus), "train_seconds": seconds,
            "methods": both_methods(words, vectors)}
  write_atomic(record_path, lambda f: f.write((json.dumps(record, indent=2) + "\n").encode()))
  print(f"gensim {'sg' if sg else 'cbow'}: {seconds:.1f} s", flush=True)
  return record["methods"]


def sections_plot(results: dict[str, dict], path: pathlib.Path) -> None:
  """3CosMul − 3CosAdd accuracy per analogy section, one bar per vector set."""
  names = [s["section"] for s in next(iter(results.values()))["3cosadd"]["sections"]]
  fig, ax = plt.subplots(figsize=(8.5, 6.5), dpi=110)
  y = np.arange(len(names))
  height = 0.8 / len(results)

  def acc(s):
    n = s["correct"] + s["incorrect"]
    return 100.0 * s["correct"] / n if n else np.nan

  for i, (label, r) in enumerate(results.items()):
    delta = [acc(m) - acc(a) for a, m in zip(r["3cosadd"]["sections"], r["3cosmul"]["sections"])]
    ax.barh(y + (i - (len(results) - 1) / 2) * height, delta, height, label=label)
  ax.set_yticks(y)
  ax.set_yticklabels(names, fontsize=8)
  ax.invert_yaxis()
  ax.axvline(0, color="k", lw=0.8)
  ax.axhline(4.5, color="gray", lw=0.8, ls="--")   # 5 semantic sections, then 9 syntactic
  ax.set_xlabel("3CosMul − 3CosAdd accuracy (points); above the dashed line: semantic sections")
  ax.set_title("Per-section change from 3CosAdd to 3CosMul (Google analogy set)", fontsize=10)
  ax.grid(axis="x", alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def main(argv):
  started = time.time()
  workdir = pathlib.Path(FLAGS.workdir)
  results: dict[str, dict] = {}
  if FLAGS.train:
    for model in ("sgram_neg", "cbow_neg"):
      results[f"w2v_jax {model}"] = ours(model, workdir)
  if FLAGS.gensim:
    results["gensim sg"] = gensim_run(1, workdir)
    results["gensim cbow"] = gensim_run(0, workdir)
  for item in FLAGS.vectors:
    label, sep, path = item.partition("=")
    if not sep:
      raise W2VError(f"--vectors: {item!r} is not label=path")
    words, vectors = vectors_io.load(path)
    print(f"{label}: scoring {path}", flush=True)
    results[label] = both_methods(words, vectors)
  if not results:
    raise W2VError("nothing to score: keep --train or --gensim, or give --vectors")

  rows = []
  for label, r in results.items():
    add, mul = r["3cosadd"], r["3cosmul"]
    rows.append([label, f"{add['analogy_questions']:,}"] + [shared.pct(add[p]) for p in PARTS] +
                [shared.pct(mul[p]) for p in PARTS] + [f"{100 * (mul[p] - add[p]):+.2f}" for p in PARTS])
  table = shared.md_table(["vectors", "questions", "3CosAdd all %", "add sem %", "add syn %", "3CosMul all %",
                           "mul sem %", "mul syn %", "Δ all", "Δ sem", "Δ syn"], rows, numeric_from=1)

  def sec_acc(s):
    n = s["correct"] + s["incorrect"]
    return f"{100 * s['correct'] / n:.1f}" if n else "–"

  names = [s["section"] for s in next(iter(results.values()))["3cosadd"]["sections"]]
  sec_rows = []
  for i, name in enumerate(names):
    first = next(iter(results.values()))["3cosadd"]["sections"][i]
    sec_rows.append([name, f"{first['correct'] + first['incorrect']:,}"] +
                    [f"{sec_acc(r['3cosadd']['sections'][i])} → {sec_acc(r['3cosmul']['sections'][i])}"
                     for r in results.values()])
  sec_table = shared.md_table(["section", "questions"] + [f"{label} (add → mul)" for label in results],
                              sec_rows, numeric_from=1)

  plots = workdir / "plots"
  labels = list(results)
  series = {name: {p: [r[m][p] for r in results.values()] for p in PARTS}
            for name, m in (("3CosAdd", "3cosadd"), ("3CosMul", "3cosmul"))}
  shared.metric_bars(labels, series, plots / "cosmul_accuracy.png",
                     f"Google analogies, top 30k words, same vectors scored by both rules ({FLAGS.epochs} epochs)",
                     metrics=PARTS)
  sections_plot(results, plots / "cosmul_sections.png")

  wall = time.time() - started
  shared.write_results(workdir, "3CosAdd vs 3CosMul on the same vectors", [
      ("Accuracy", table), ("Per section (accuracy %, 3CosAdd → 3CosMul)", sec_table),
      ("Wall time", f"{wall:.0f} s for the whole script (training, evaluation, plots)\n")],
      {"results": results, "epochs": FLAGS.epochs, "wall_seconds": wall})
  print(f"\n{table}\n{sec_table}")
  print(f"wall time {wall:.0f} s; results.md, results.json and plots/ are in {workdir}")
  return 0


if __name__ == "__main__":
  app.run(common.run_main(main))
