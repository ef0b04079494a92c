"""Tests for w2v_jax.evaluate: known answers, and exact agreement with gensim where it is installed."""
import gzip
import hashlib
import re
import warnings

import numpy as np
import pytest

from w2v_jax import evaluate
from w2v_jax.errors import W2VError

# --- gensim-independent ------------------------------------------------------------------------


def _planted():
  """Words and vectors in which every pair (x, role_x) is e_x + role, so b - a + c hits d exactly."""
  pairs = {"cap": [("athens", "greece"), ("paris", "france"), ("rome", "italy"), ("berlin", "germany")],
           "cmp": [("good", "better"), ("bad", "worse"), ("big", "bigger")]}
  words, rows = [], []
  dim = 16
  for k, (kind, group) in enumerate(pairs.items()):
    for i, (x, y) in enumerate(group):
      e = np.eye(dim)[4 * k + i]
      words += [x, y]
      rows += [e + np.eye(dim)[12 + 2 * k], e + np.eye(dim)[13 + 2 * k]]
  rng = np.random.default_rng(0)
  words += [f"filler{i}" for i in range(40)]
  rows += list(rng.standard_normal((40, dim)))
  return pairs, words, np.array(rows, np.float32)


def _questions(path, pairs, extra=()):
  with open(path, "w") as f:
    f.write(": capital-common-countries\n")
    for a, b in pairs["cap"]:
      for c, d in pairs["cap"]:
        if a != c:
          f.write(f"{a.capitalize()} {b.capitalize()} {c.capitalize()} {d.capitalize()}\n")
    f.write(": gram3-comparative\n")
    for a, b in pairs["cmp"]:
      for c, d in pairs["cmp"]:
        if a != c:
          f.write(f"{a} {b} {c} {d}\n")
    f.writelines(extra)
  return path


def test_analogy_planted_answers(tmp_path):
  pairs, words, vectors = _planted()
  path = _questions(tmp_path / "q.txt", pairs, ["good better ugly uglier\n", "not a question\n"])
  for method in ("3cosadd", "3cosmul"):
    r = evaluate.analogy(words, vectors, path=path, method=method)
    assert (r["accuracy"], r["semantic"], r["syntactic"]) == (1.0, 1.0, 1.0)
    assert (r["n_correct"], r["n_total"], r["n_skipped"]) == (18, 18, 1)
    assert r["sections"] == [
        dict(section="capital-common-countries", correct=12, incorrect=0, accuracy=1.0),
        dict(section="gram3-comparative", correct=6, incorrect=0, accuracy=1.0)]
  exact = evaluate.analogy(words, vectors, path=path, case_insensitive=False)  # "Athens" is unknown
  assert (exact["n_total"], exact["n_skipped"], exact["semantic"], exact["syntactic"]) == (6, 13, 0.0, 1.0)
  cut = evaluate.analogy(words, vectors, path=path, restrict_vocab=len(words) - 41)  # drops "bigger"
  assert (cut["n_total"], cut["n_skipped"]) == (14, 5)


def test_cosmul_differs_from_cosadd(tmp_path):
  # a:b :: c:?  3CosAdd prefers x (sum of cosines 0.099 vs -0.990); 3CosMul prefers y (0.137 vs 0.001).
  words = ["a", "b", "c", "x", "y"]
  vectors = np.array([[0.5, -0.2, 0.2], [0.3, 0.2, -0.3], [-0.7, -0.3, 0.3],
                      [-0.8, -0.6, 0.8], [0.4, -0.2, -0.1]], np.float32)
  path = tmp_path / "q.txt"
  path.write_text(": s1\na b c x\n: gram-s2\na b c y\n")
  add = evaluate.analogy(words, vectors, path=path, method="3cosadd")
  mul = evaluate.analogy(words, vectors, path=path, method="3cosmul")
  assert [s["correct"] for s in add["sections"]] == [1, 0]
  assert [s["correct"] for s in mul["sections"]] == [0, 1]


def test_spearman_pearson_match_scipy_with_ties():
  stats = pytest.importorskip("scipy.stats")
  rng = np.random.default_rng(0)
  x, y = rng.integers(0, 8, 200).astype(float), rng.integers(0, 5, 200) + rng.normal(0, 0.1, 200)
  y[:50] = np.round(y[:50])
  np.testing.assert_array_equal(evaluate.rankdata(x), stats.rankdata(x))
  assert abs(evaluate.spearman(x, y) - stats.spearmanr(x, y).statistic) < 1e-12
  assert abs(evaluate.pearson(x, y) - stats.pearsonr(x, y).statistic) < 1e-12
  assert evaluate.spearman(x, x) == pytest.approx(1.0)


def test_nearest():
  words = ["a", "b", "c", "d"]
  vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32)
  assert [w for w, _ in evaluate.nearest(words, vectors, "a", k=10)] == ["b", "c", "d"]
  word, cos = evaluate.nearest(words, vectors, "a", k=1)[0]
  assert word == "b" and cos == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-6)
  with pytest.raises(W2VError, match="not in the vocabulary"):
    evaluate.nearest(words, vectors, "zebra")


def test_nearest_ties_go_to_the_earlier_word():
  words = ["a", "b", "c", "d", "e"]
  vectors = np.array([[1, 0], [0, 1], [0.5, 0.5], [0, 1], [0, 2]], np.float32)
  assert [w for w, _ in evaluate.nearest(words, vectors, "c", k=3)] == ["a", "b", "d"]
  assert [w for w, _ in evaluate.most_similar(words, vectors, "c", topn=None)] == ["a", "b", "d", "e"]


def test_bundled_sets_and_readme_hashes():
  sets = evaluate.word_similarity_sets()
  assert sets == {"ws353": evaluate.WORDSIM_PATH, "simlex999": evaluate.SIMLEX_PATH}
  pairs = [line.split("\t") for line in open(evaluate.SIMLEX_PATH) if not line.startswith("#")]
  assert len(pairs) == 999 and all(len(p) == 3 and 0 <= float(p[2]) <= 10 for p in pairs)
  readme = (evaluate.DATA_DIR / "README.md").read_text()
  listed = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M))
  assert set(listed) >= {p.name for p in sets.values()} | {evaluate.ANALOGY_PATH.name}
  for name, digest in listed.items():
    assert hashlib.sha256((evaluate.DATA_DIR / name).read_bytes()).hexdigest() == digest, name


def test_all_benchmarks_and_headline(tmp_path):
  pairs, words, vectors = _planted()
  report = evaluate.all_benchmarks(words, vectors)
  assert set(report["analogy"]) == {"3cosadd", "3cosmul"} and set(report["similarity"]) == {"ws353", "simlex999"}
  assert report["analogy"]["3cosmul"] == evaluate.analogy(words, vectors, method="3cosmul")
  flat = evaluate.headline(report)
  assert flat["analogy_accuracy"] == report["analogy"]["3cosadd"]["accuracy"]
  assert flat["analogy_3cosmul"] == report["analogy"]["3cosmul"]["accuracy"]
  assert flat["ws353_spearman"] is None and flat["simlex999_oov_rate"] == 1.0  # no pair in this vocabulary


def test_bad_input(tmp_path):
  words, vectors = ["a", "b"], np.eye(2, dtype=np.float32)
  with pytest.raises(W2VError, match="not found"):
    evaluate.analogy(words, vectors, path=tmp_path / "missing.txt")
  (tmp_path / "q.txt").write_text("a b a b\n: s\n")
  with pytest.raises(W2VError, match="q.txt:1"):
    evaluate.analogy(words, vectors, path=tmp_path / "q.txt")
  with pytest.raises(W2VError, match="method"):
    evaluate.analogy(words, vectors, method="3cosmax")
  with pytest.raises(W2VError, match="shape"):
    evaluate.analogy(words, vectors[:1])
  far = evaluate.word_similarity(words, vectors)           # no pair in a 4-word vocabulary
  assert far["n_pairs"] == 0 and far["oov_rate"] == 1.0 and np.isnan(far["spearman"])
  (tmp_path / "pairs.tsv").write_text("# only a comment\nnot a pair\n")
  with pytest.raises(W2VError, match="no valid"):
    evaluate.word_similarity(words, vectors, path=tmp_path / "pairs.tsv")

# --- agreement with gensim ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
  """A small CBOW model of the shipped corpus: (words, vectors, gensim KeyedVectors)."""
  gensim = pytest.importorskip("gensim")
  with gzip.open(evaluate.DATA_DIR / "small_corpus.txt.gz", "rt") as f:
    sentences = [line.split() for line in f]
  w2v = gensim.models.Word2Vec(sentences, vector_size=32, window=5, min_count=5, alpha=0.05, epochs=3,
                               sg=0, workers=1, seed=0)
  return list(w2v.wv.index_to_key), w2v.wv.vectors, w2v.wv


def _keyed(words, vectors):
  from gensim.models import KeyedVectors
  kv = KeyedVectors(vectors.shape[1])
  kv.add_vectors(words, vectors)
  return kv


def _gensim_analogy(kv, path, restrict_vocab, case_insensitive, method):
  """gensim's per-section (name, correct, incorrect); 3CosMul runs gensim's evaluation loop by hand."""
  if method == "3cosadd":
    _, sections = kv.evaluate_word_analogies(path, restrict_vocab=restrict_vocab, case_insensitive=case_insensitive)
    return [(s["section"], len(s["correct"]), len(s["incorrect"])) for s in sections[:-1]]
  kv = _keyed(kv.index_to_key[:restrict_vocab], kv.vectors[:restrict_vocab])  # cosmul ignores restrict_vocab
  fold = str.upper if case_insensitive else str
  kv.key_to_index = {fold(k): kv.get_index(k) for k in reversed(kv.index_to_key)}
  out = []
  for line in open(path):
    if line.startswith(": "):
      out.append([line.lstrip(": ").strip(), 0, 0])
      continue
    quad = [fold(w) for w in line.split()]
    if len(quad) != 4 or not all(w in kv.key_to_index for w in quad):
      continue
    predicted = None
    with warnings.catch_warnings():  # most_similar_cosmul calls the deprecated init_sims
      warnings.simplefilter("ignore", DeprecationWarning)
      sims = kv.most_similar_cosmul(positive=quad[1:3], negative=quad[:1], topn=5)
    for word, _ in sims:
      predicted = fold(word)
      if predicted not in quad[:3]:
        break
    out[-1][1 if predicted == quad[3] else 2] += 1
  return [tuple(s) for s in out]


def _subset(tmp_path, every):
  """Every `every`-th question of each section of the bundled set, to keep gensim's loop quick."""
  path, kept = tmp_path / f"q{every}.txt", []
  for line in open(evaluate.ANALOGY_PATH):
    if line.startswith(": "):
      kept.append(line)
      n = 0
    else:
      kept += [line] if n % every == 0 else []
      n += 1
  path.write_text("".join(kept))
  return path


def _assert_same(ours, theirs):
  assert [(s["section"], s["correct"], s["incorrect"]) for s in ours["sections"]] == theirs
  n_correct = sum(s[1] for s in theirs)
  n_total = sum(s[1] + s[2] for s in theirs)
  assert (ours["n_correct"], ours["n_total"]) == (n_correct, n_total)
  assert abs(ours["accuracy"] - n_correct / n_total) < 1e-12


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogy_matches_gensim(model, tmp_path, method):
  words, vectors, kv = model
  for path, restrict in [(evaluate.ANALOGY_PATH, 3000), (_subset(tmp_path, 3), 30000)]:
    ours = evaluate.analogy(words, vectors, path=path, restrict_vocab=restrict, method=method)
    _assert_same(ours, _gensim_analogy(kv, path, restrict, True, method))
    assert ours["n_correct"] > 10


@pytest.mark.parametrize("case_insensitive", [True, False])
@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogy_matches_gensim_with_ties_and_spellings(model, tmp_path, case_insensitive, method):
  # Capitalised spellings beside their words, half with identical vectors (exact ties), half
  # slightly moved: the answer is often a spelling of a question word, which gensim skips.
  words, vectors, _ = model
  rng = np.random.default_rng(0)
  new_words, rows = [], []
  for i, (w, v) in enumerate(zip(words[:3000], vectors[:3000])):
    new_words.append(w)
    rows.append(v)
    if i % 3 == 0:
      new_words.append(w.capitalize())
      rows.append(v if i % 2 else v + rng.normal(0, 0.01, v.shape).astype(np.float32))
  new_vectors = np.array(rows, np.float32)
  path = _subset(tmp_path, 4)
  ours = evaluate.analogy(new_words, new_vectors, path=path, restrict_vocab=len(new_words),
                          case_insensitive=case_insensitive, method=method)
  theirs = _gensim_analogy(_keyed(new_words, new_vectors), path, len(new_words), case_insensitive, method)
  _assert_same(ours, theirs)
  assert ours["n_total"] > 100


def test_nearest_and_simlex_match_gensim(model):
  words, vectors, kv = model
  for word in ("king", "water", "the"):
    assert evaluate.nearest(words, vectors, word, k=8) == kv.most_similar(word, topn=8)
  pearson, spearman, oov = kv.evaluate_word_pairs(evaluate.SIMLEX_PATH)
  ours = evaluate.word_similarity(words, vectors, path=evaluate.SIMLEX_PATH)
  assert abs(ours["spearman"] - spearman.statistic) < 1e-9 and abs(ours["pearson"] - pearson.statistic) < 1e-9
  assert abs(ours["oov_rate"] - oov / 100) < 1e-12 and ours["n_pairs"] > 500


@pytest.mark.parametrize("case_insensitive", [True, False])
@pytest.mark.parametrize("restrict_vocab", [2000, 300000])
def test_word_similarity_matches_gensim(model, case_insensitive, restrict_vocab):
  words, vectors, kv = model
  # Rarer upper-case spellings with other vectors: folded away, or separate words, in both.
  words = words + [w.upper() for w in words[:500]]
  vectors = np.concatenate([vectors, vectors[:500][::-1]])
  kv = _keyed(words, vectors)
  pearson, spearman, oov = kv.evaluate_word_pairs(
      evaluate.WORDSIM_PATH, restrict_vocab=restrict_vocab, case_insensitive=case_insensitive)
  ours = evaluate.word_similarity(words, vectors, case_insensitive=case_insensitive, restrict_vocab=restrict_vocab)
  assert abs(ours["pearson"] - pearson.statistic) < 1e-9
  assert abs(ours["spearman"] - spearman.statistic) < 1e-9
  assert abs(ours["oov_rate"] - oov / 100) < 1e-12
  assert ours["n_pairs"] == round(353 * (1 - oov / 100))
