"""Tests for w2v_jax.vectors and experiments/evaluate.py: files from any tool, gensim's answers."""
import gzip
import json
from pathlib import Path
import subprocess
import sys
import warnings

import numpy as np
import pytest

from w2v_jax import evaluate, vectors, vectors_io
from w2v_jax.errors import W2VError

ROOT = Path(__file__).resolve().parents[1]
SAVE = {False: vectors_io.save_text, True: vectors_io.save_binary}


def _random_table(n=300, dim=25, seed=0):
  rng = np.random.default_rng(seed)
  words = ["café", "naïve", "日本", "a\u00a0b"] + [f"w{i}" for i in range(n - 4)]
  return words, rng.standard_normal((n, dim)).astype(np.float32)


def _gensim_kv(words, table):
  models = pytest.importorskip("gensim.models")
  kv = models.KeyedVectors(table.shape[1])
  kv.add_vectors(words, table)
  return kv


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_of_our_files(tmp_path, binary):
  words, table = _random_table()
  SAVE[binary](tmp_path / "v", words, table)
  for flag in (None, binary):
    kv = vectors.load(tmp_path / "v", binary=flag)
    assert kv.words == words and kv.vectors.dtype == np.float32
    np.testing.assert_array_equal(kv.vectors, table)
  assert (len(kv), kv.dim, kv.path) == (300, 25, tmp_path / "v")
  assert "日本" in kv and "zebra" not in kv
  np.testing.assert_array_equal(kv["w7"], table[11])


@pytest.mark.parametrize("binary", [False, True])
def test_reads_gensim_files(tmp_path, binary):
  words, table = _random_table()
  _gensim_kv(words, table).save_word2vec_format(str(tmp_path / "g"), binary=binary)
  kv = vectors.load(tmp_path / "g")  # detected
  assert kv.words == words
  np.testing.assert_array_equal(kv.vectors, table)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
  """(ours, gensim's) KeyedVectors of one gensim-written file of random vectors."""
  models = pytest.importorskip("gensim.models")
  path = tmp_path_factory.mktemp("kv") / "g.txt"
  _gensim_kv(*_random_table()).save_word2vec_format(str(path))
  return vectors.load(path), models.KeyedVectors.load_word2vec_format(str(path))


def test_most_similar_matches_gensim(pair):
  kv, g = pair
  queries = [(["w1", "w2"], ["w3"]), ("w5", []), (["café"], "日本"), (["w10", "w11", "w12"], ["w13", "w14"]),
             ([], ["w20"])]
  for positive, negative in queries:
    for topn in (1, 10, 299):
      assert kv.most_similar(positive, negative, topn=topn) == g.most_similar(positive, negative, topn=topn)
  assert kv.most_similar("w1", topn=7, restrict_vocab=100) == g.most_similar("w1", topn=7, restrict_vocab=100)
  assert [w for w, _ in kv.most_similar("w1", topn=None)] == [w for w, _ in g.most_similar("w1", topn=299)]
  assert kv.most_similar("w1", topn=0) == []
  with warnings.catch_warnings():  # most_similar_cosmul calls the deprecated init_sims
    warnings.simplefilter("ignore", DeprecationWarning)
    for positive, negative in queries[:4]:
      assert kv.most_similar_cosmul(positive, negative, topn=10) == g.most_similar_cosmul(positive, negative, topn=10)


def test_nearest_is_most_similar(pair):
  kv, g = pair
  assert evaluate.nearest(kv.words, kv.vectors, "w9", k=5) == kv.most_similar("w9", topn=5) == g.most_similar("w9", topn=5)


def test_similarity_and_doesnt_match_match_gensim(pair):
  kv, g = pair
  rng = np.random.default_rng(1)
  for _ in range(30):
    a, b = rng.choice(kv.words, 2, replace=False)
    assert kv.similarity(a, b) == pytest.approx(float(g.similarity(a, b)), abs=1e-6)
    group = list(rng.choice(kv.words, 5, replace=False))
    assert kv.doesnt_match(group) == g.doesnt_match(group)
  assert kv.similarity("w1", "w1") == pytest.approx(1.0, abs=1e-6)


def test_analogy_matches_gensim_top_answer(pair):
  kv, g = pair
  rng = np.random.default_rng(2)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    for _ in range(40):
      a, b, c = rng.choice(kv.words, 3, replace=False)
      assert kv.analogy(a, b, c) == g.most_similar([b, c], [a], topn=1)[0][0]
      assert kv.analogy(a, b, c, method="3cosmul") == g.most_similar_cosmul([b, c], [a], topn=1)[0][0]


def test_planted_analogy_and_odd_one_out():
  e = np.eye(6, dtype=np.float32)
  kv = vectors.KeyedVectors(["man", "king", "woman", "queen", "apple", "pear"],
                            [e[0] + e[4], e[0] + e[5], e[1] + e[4], e[1] + e[5], e[2] + 0.1 * e[3], e[2]])
  for method in ("3cosadd", "3cosmul"):
    assert kv.analogy("man", "king", "woman", method=method) == "queen"
  assert kv.doesnt_match(["man", "king", "woman", "apple"]) == "apple"


def test_unknown_words_and_bad_queries(pair):
  kv, _ = pair
  calls = [lambda: kv.most_similar(["w1", "zebra"]), lambda: kv.most_similar("w1", negative="zebra"),
           lambda: kv.most_similar_cosmul("zebra"), lambda: kv.similarity("w1", "zebra"),
           lambda: kv.analogy("w1", "zebra", "w2"), lambda: kv.doesnt_match(["w1", "zebra"]), lambda: kv["zebra"]]
  for call in calls:
    with pytest.raises(W2VError, match="'zebra' is not in the vocabulary"):
      call()
  with pytest.raises(W2VError, match="method"):
    kv.analogy("w1", "w2", "w3", method="3cosmax")
  with pytest.raises(W2VError, match="at least one"):
    kv.most_similar([])
  zero = vectors.KeyedVectors(["a", "b", "c"], [[1, 0], [0, 0], [0, 1]])
  with pytest.raises(W2VError, match="'b' has a zero vector"):
    zero.most_similar("b")
  assert [w for w, _ in zero.most_similar("a")] == ["c", "b"]  # a zero vector ranks last (NaN, as in gensim)
  with pytest.raises(W2VError, match="appears twice"):
    vectors.KeyedVectors(["a", "a"], np.eye(2))
  with pytest.raises(W2VError, match="no candidate"):
    vectors.KeyedVectors(["a", "b", "c"], np.eye(3)).analogy("a", "b", "c")


_F = np.array([1.0, -2.0], "<f4").tobytes()


@pytest.mark.parametrize("content, match", [
    (b"2 two\na 1 2\nb 3 4\n", "expected a header line 'V D'"),
    (b"3 2\na 1 2\nb 3 4\n", "the file is truncated"),
    (b"3 2\nabc " + _F + b"bcd " + _F + b"cde " + _F[:5], "record 3 of 3 is cut short; the file is truncated"),
    (b"2 2\na 1 2\nb 3\n", ":3: expected a word and 2 numbers"),
    (b"2 2\na 1 2\na 3 4\n", "word 'a' appears twice"),
    (b"2 2\na 1 2\n\xffb 3 4\n", ":3: the word b'\\\\xffb' is not valid UTF-8"),
    (b"1 2\n\xffb " + _F, "the word b'\\\\xffb' is not valid UTF-8"),
])
def test_malformed_files(tmp_path, content, match):
  (tmp_path / "v").write_bytes(content)
  with pytest.raises(W2VError, match=match) as e:
    vectors.load(tmp_path / "v")
  assert "\n" not in str(e.value) and str(tmp_path / "v") in str(e.value)


# --- experiments/evaluate.py against gensim ------------------------------------------------------


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
  """A small CBOW model of the shipped corpus, its 3,000 most frequent words saved by gensim in text
  and binary (few enough that gensim's own evaluation takes a second)."""
  models = pytest.importorskip("gensim.models")
  with gzip.open(evaluate.DATA_DIR / "small_corpus.txt.gz", "rt") as f:
    sentences = [line.split() for line in f]
  w2v = models.Word2Vec(sentences, vector_size=32, window=5, min_count=5, alpha=0.05, epochs=3, sg=0,
                        workers=1, seed=0)
  kv = _gensim_kv(w2v.wv.index_to_key[:3000], w2v.wv.vectors[:3000])
  tmp = tmp_path_factory.mktemp("model")
  kv.save_word2vec_format(str(tmp / "v.txt"))
  kv.save_word2vec_format(str(tmp / "v.bin"), binary=True)
  return tmp / "v.txt", tmp / "v.bin"


def _cli(*flags):
  return subprocess.run([sys.executable, "-m", "experiments.evaluate", *flags], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)


def _gensim_numbers(path, binary):
  models = pytest.importorskip("gensim.models")
  g = models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
  out = {"analogy_accuracy": g.evaluate_word_analogies(str(evaluate.ANALOGY_PATH), restrict_vocab=30000)[0]}
  for name, pairs in evaluate.word_similarity_sets().items():
    pearson, spearman, _ = g.evaluate_word_pairs(str(pairs))
    out.update({f"{name}_spearman": spearman.statistic, f"{name}_pearson": pearson.statistic})
  return out


def test_cli_matches_gensim_side_by_side(model_files):
  text, binary = model_files
  run = _cli(f"--vectors={text},{binary}")
  assert run.returncode == 0, run.stderr
  lines = run.stdout.splitlines()
  assert str(text) in lines[0] and str(binary) in lines[0]  # one column per file
  assert any("gram3-comparative" in line for line in lines) and any("SimLex-999" in line for line in lines)
  result = json.loads(lines[-1])
  assert list(result) == [str(text), str(binary)]
  theirs = _gensim_numbers(text, False)
  assert theirs["analogy_accuracy"] > 0.01  # real numbers, not zeros
  ours_3cosmul = evaluate.analogy(*vectors_io.load(text), method="3cosmul")["accuracy"]  # == gensim's, see test_evaluate
  for path in (text, binary):
    r = result[str(path)]
    assert (r["vectors"], r["words"], r["dim"]) == (str(path), 3000, 32)
    for key, value in theirs.items():
      assert abs(r[key] - value) < 1e-4, key
    assert abs(r["analogy_3cosmul"] - ours_3cosmul) < 1e-12


def test_cli_one_binary_file(model_files):
  _, binary = model_files
  run = _cli(f"--vectors={binary}", "--binary")
  assert run.returncode == 0, run.stderr
  r = json.loads(run.stdout.splitlines()[-1])
  assert r["vectors"] == str(binary)
  for key, value in _gensim_numbers(binary, True).items():
    assert abs(r[key] - value) < 1e-4, key


def test_cli_bad_input_is_one_line(model_files, tmp_path):
  text, _ = model_files
  (tmp_path / "bad.txt").write_bytes(b"2 2\na 1 2\n")
  for flags, match in [([f"--vectors={tmp_path / 'bad.txt'}"], "truncated"),
                       ([f"--vectors={text}", "--binary"], "or this is a text file"),
                       (["--vectors="], "pass --vectors")]:
    run = _cli(*flags)
    assert run.returncode != 0 and run.stdout == ""
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1 and match in run.stderr, run.stderr
