"""python -m experiments.evaluate --vectors=FILE

Scores word2vec files (--vectors=A,B,C compares several; text or binary, from any tool, the format
detected unless --binary or --nobinary insists) on every bundled benchmark, with the numbers gensim
gives on the same file:

* the Google analogy set (w2v_jax/data/questions-words.txt) by 3CosAdd and by 3CosMul, the 30,000
  most frequent words (--restrict_vocab) being the vocabulary and the candidate answers, per section
  (gensim's KeyedVectors.evaluate_word_analogies(restrict_vocab=30000) for 3CosAdd);
* every bundled word-pair set (WS-353, SimLex-999): Spearman and Pearson correlation of cosine with
  the human scores (gensim's evaluate_word_pairs).

It prints one table, one column per file, then, as the LAST line, JSON: for one file an object with
"vectors" (the path), "words", "dim", "analogy_accuracy" (3CosAdd), "analogy_semantic",
"analogy_syntactic", "analogy_3cosmul", and "<set>_spearman", "<set>_pearson", "<set>_oov_rate" for
ws353 and simlex999 (null for a correlation over no pair); for several files an object keyed by each
path as given to --vectors, with one such object each. Bad input ends as one line "error: ..." on stderr.
"""
import json

from absl import app, flags

from . import common
import w2v_jax.evaluate as evaluate
import w2v_jax.vectors as vectors

flags.DEFINE_list("vectors", None, "word2vec text or binary file(s), comma-separated; several are compared")
flags.DEFINE_bool("binary", None, "--binary: read word2vec.c's binary format; --nobinary: text; default: detect")
flags.DEFINE_integer("restrict_vocab", 30000, "analogies: the most frequent N words are the vocabulary and answers")
FLAGS = flags.FLAGS

_METHODS = {"3cosadd": "3CosAdd", "3cosmul": "3CosMul"}
_SETS = {"ws353": "WS-353", "simlex999": "SimLex-999"}


def _accuracy(sections):
  """'45.12% (8,043/17,827)' over the sections, or '-' when none of their questions was answered."""
  right = sum(s["correct"] for s in sections)
  total = right + sum(s["incorrect"] for s in sections)
  return f"{100 * right / total:.2f}% ({right:,}/{total:,})" if total else "-"


def _table(results):
  """Rows (label, [cell per file]) of the comparison table; results: [(kv, all_benchmarks report)]."""
  rows = [("words x dimensions", [f"{len(kv):,} x {kv.dim}" for kv, _ in results])]
  first = results[0][1]
  for method, label in _METHODS.items():
    rows.append((f"analogy {label}, top {FLAGS.restrict_vocab:,} words", [""] * len(results)))
    names = [s["section"] for s in first["analogy"][method]["sections"]]
    for name in names:
      rows.append((f"  {name}", [_accuracy([s for s in r["analogy"][method]["sections"] if s["section"] == name])
                                 for _, r in results]))
    for part, keep in (("semantic", False), ("syntactic", True), ("all", None)):
      rows.append((f"  {part}", [_accuracy([s for s in r["analogy"][method]["sections"]
                                            if keep is None or s["section"].startswith("gram") == keep])
                                 for _, r in results]))
    rows.append(("  skipped (a word out of vocabulary)", [f"{r['analogy'][method]['n_skipped']:,}"
                                                         for _, r in results]))
  for name in first["similarity"]:
    rows.append((f"word pairs {_SETS.get(name, name)}", [""] * len(results)))
    sims = [r["similarity"][name] for _, r in results]
    for key in ("spearman", "pearson"):
      rows.append((f"  {key.capitalize()}", [f"{s[key]:.4f}" if s["n_pairs"] else "-" for s in sims]))
    rows.append(("  pairs (out of vocabulary)", [f"{s['n_pairs']:,} ({100 * s['oov_rate']:.1f}%)" for s in sims]))
  return rows


def _print_table(header, rows):
  width = max(len(label) for label, _ in rows)
  cols = [max(len(h), *(len(cells[i]) for _, cells in rows)) for i, h in enumerate(header)]
  print(" " * width + "".join(f"  {h:>{w}}" for h, w in zip(header, cols)))
  for label, cells in rows:
    print(f"{label:<{width}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, cols)))


def run():
  """The console script `w2v-evaluate`."""
  app.run(common.run_main(main))


def main(argv):
  paths = [p for p in FLAGS.vectors or [] if p]
  if not paths:
    common.fail("pass --vectors=FILE (a word2vec text or binary file), or several, comma-separated")
  if len(set(paths)) != len(paths):
    common.fail(f"--vectors names a file twice: {[p for p in paths if paths.count(p) > 1][0]}")
  if FLAGS.restrict_vocab < 1:
    common.fail(f"--restrict_vocab must be at least 1, got {FLAGS.restrict_vocab}")
  results = []
  for path in paths:
    kv = vectors.load(path, binary=FLAGS.binary)
    results.append((kv, kv.evaluate(restrict_vocab=FLAGS.restrict_vocab)))
  _print_table(paths, _table(results))
  out = {path: dict(vectors=path, words=len(kv), dim=kv.dim, **evaluate.headline(report))
         for path, (kv, report) in zip(paths, results)}
  print(json.dumps(out[paths[0]] if len(paths) == 1 else out))
  return 0


if __name__ == "__main__":
  run()
