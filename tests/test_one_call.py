"""w2v_jax.train, the one call: the same text as a list, a generator, a file or the command line gives the
same vectors; its result answers queries; bad options and sentences are one line."""
import gzip
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import w2v_jax
from w2v_jax import W2VError, corpus, one_call, vectors
from w2v_jax.vectors import KeyedVectors
from tests.helpers import planted_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--epochs=1", "--dim=16"]   # the shipped corpus (460k words), one epoch: a few seconds a run
TINY = dict(dim=16, window=2, neg=3, epochs=1, min_count=1, sample=0.0, batch_size=64, steps_per_call=4)

# Run with JAX's defaults, as a user runs it: the test session turns float64 on (conftest.py), and with it on
# the same run's vectors differ from the command line's in the last bits (about 3e-6).
PYTHON_FORMS = textwrap.dedent("""
    import gzip, sys
    import numpy as np
    import w2v_jax
    from w2v_jax import api

    out, workdir = sys.argv[1], sys.argv[2]
    path = api.DEFAULT_CORPUS
    with gzip.open(path, "rt", encoding="utf-8", newline="\\n") as f:   # lines end at \\n only, as the reader's
      sentences = [line.split() for line in f]
    generator = (line.split() for line in gzip.open(path, "rt", encoding="utf-8", newline="\\n"))
    runs = {"list": w2v_jax.train(sentences, workdir, epochs=1, dim=16),
            "generator": w2v_jax.train(generator, epochs=1, dim=16),
            "path": w2v_jax.train(path, epochs=1, dim=16)}
    np.savez(out, words=np.array(runs["list"].vectors.words),
             **{name: r.vectors.vectors for name, r in runs.items()})
""")


def _env(tmp_path):
  return {**os.environ, "W2V_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}


def test_a_list_a_generator_a_file_and_the_command_line_give_the_same_vectors(tmp_path):
  py = subprocess.run([sys.executable, "-c", PYTHON_FORMS, str(tmp_path / "forms.npz"), str(tmp_path / "py")],
                      cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
  assert py.returncode == 0, py.stderr
  cli = subprocess.run([sys.executable, "-m", "experiments.train", f"--workdir={tmp_path / 'cli'}", "--binary",
                        *SMALL], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
  assert cli.returncode == 0, cli.stderr
  kv = vectors.load(tmp_path / "cli" / "vectors.bin")
  forms = np.load(tmp_path / "forms.npz")
  assert list(forms["words"]) == kv.words and len(kv.words) == 8288
  for name in ("list", "generator", "path"):
    np.testing.assert_array_equal(forms[name], kv.vectors, err_msg=name)
  # with a workdir, the one call writes what the command line writes (without --binary: no vectors.bin)
  written = {p.name for p in (tmp_path / "cli").iterdir()} - {"vectors.bin"}
  assert {p.name for p in (tmp_path / "py").iterdir()} == written
  assert (tmp_path / "py" / "vectors.txt").read_bytes() == (tmp_path / "cli" / "vectors.txt").read_bytes()
  summary = json.loads((tmp_path / "py" / "summary.json").read_text())
  assert summary["config"] == json.loads((tmp_path / "cli" / "summary.json").read_text())["config"]
  # the sentences were written once into the cache, beside the encoded corpora
  assert len(list((tmp_path / "cache").glob("sentences-*.txt"))) == 1


def test_the_result_answers_queries_and_no_workdir_writes_only_the_cache(tmp_path, monkeypatch):
  lines = planted_corpus(tmp_path / "c.txt").read_text().splitlines()
  monkeypatch.chdir(tmp_path)
  before = set(os.listdir(tmp_path))
  result = w2v_jax.train([line.split() for line in lines], cache_dir=tmp_path / "cache", **TINY)
  assert set(os.listdir(tmp_path)) == before | {"cache"} and result.workdir is None
  kv = result.vectors
  assert isinstance(kv, KeyedVectors) and kv is result.vectors and kv.vectors.shape == (48, 16)
  np.testing.assert_array_equal(kv["g0w1"], np.asarray(result.params.W_in)[result.vocab.index["g0w1"]])
  assert [w for w, _ in kv.most_similar("g0w1", topn=3)] and kv.similarity("g0w1", "g0w1") == pytest.approx(1.0)
  assert result.summary["vocab_size"] == 48 and result.history and "analogy" in result.evaluation
  assert repr(result).startswith("Result(sgram_neg: 48 words x 16 dims, 1 epoch, analogy ")
  # the same sentences again: the file written the first time is kept (its cache entries stay valid)
  written = list((tmp_path / "cache").glob("sentences-*.txt"))
  assert len(written) == 1
  stamp = written[0].stat().st_mtime_ns
  again = w2v_jax.train(iter([line.split() for line in lines]), cache_dir=tmp_path / "cache", **TINY)
  assert written[0].stat().st_mtime_ns == stamp and len(list((tmp_path / "cache").glob("sentences-*"))) == 1
  np.testing.assert_array_equal(again.vectors.vectors, kv.vectors)


def test_the_name_is_the_call_and_importing_the_package_stays_light():
  assert w2v_jax.train is one_call.train and "train" in w2v_jax.__all__
  code = ("import sys, w2v_jax; assert 'w2v_jax.api' not in sys.modules, 'api imported'; "
          "from w2v_jax import train; import w2v_jax.one_call as m; assert train is m.train is w2v_jax.train")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("options, fragments", [
    ({"windw": 3}, ["unknown option 'windw'", "'window'"]),
    ({"vector_size": 50, "negative": 5}, ["'vector_size' (gensim's name): here it is dim=", "neg="]),
    ({"epoch": 1}, ["'epochs'"]),
    ({"cachedir": "x"}, ["'cache_dir'"]),
    ({"zzz": 1}, ["unknown option 'zzz'", "TrainConfig's fields (model, dim"]),
    ({"dim": "100"}, ["option dim must be int, got '100'"]),
    ({"window": 2.5}, ["option window must be int"]),
])
def test_an_unknown_or_mistyped_option_is_one_line(options, fragments):
  with pytest.raises(W2VError) as e:
    w2v_jax.train([["a", "b"]], **options)
  for f in fragments:
    assert f in str(e.value), str(e.value)
  assert "\n" not in str(e.value)


def test_options_of_numpy_types_become_the_fields_types():
  cfg, run = one_call._split_options({"dim": np.int64(16), "lr": 1, "sample": np.float32(0.5), "max_dup": 8,
                                      "hogwild": False, "max_vocab_size": None, "binary": True})
  assert (type(cfg.dim), type(cfg.lr), type(cfg.sample), type(cfg.max_dup)) == (int, float, float, float)
  assert cfg.max_vocab_size is None and run == {"binary": True}
  json.loads(cfg.to_json())


@pytest.mark.parametrize("corpus_, fragments", [
    ([], ["the corpus is empty"]),
    ([[], []], ["the corpus is empty: the 2 sentences given hold no words"]),
    (["the cat sat on the mat"], ["corpus file not found: the cat sat on the mat", "[line.split() for line"]),
    ([["the", "cat"], "sat on"], ["sentence 2 is a str, not a list of tokens"]),
    ([["the", "new york", "times"]], ["sentence 1, token 2 ('new york') is empty or holds whitespace"]),
    ([["the", ""]], ["token 2 ('') is empty"]),
    ([["a\u2028b"]], ["holds whitespace"]),
    ([["the", 3]], ["sentence 1, token 2 is an int (3), not a str"]),
    ([["the", b"cat"]], ["token 2 is a bytes"]),
    ([["the", "\ud800"]], ["sentence 1 holds a character that UTF-8 cannot write"]),
    ([[["nested"]]], ["token 1 is a list"]),
    (iter([3, 4]), ["sentence 1 is an int, not a list of str tokens"]),
    (b"text.txt", ["corpus is a bytes"]),
    (42, ["corpus is an int"]),
    ([["a"], ["b"], ["c"]], ["the sentences given: no line has two words"]),
])
def test_sentences_that_are_not_lists_of_words_are_one_line(tmp_path, corpus_, fragments):
  with pytest.raises(W2VError) as e:
    w2v_jax.train(corpus_, cache_dir=tmp_path / "cache", **{**TINY, "min_count": 1})
  for f in fragments:
    assert f in str(e.value), str(e.value)
  assert str(tmp_path) not in str(e.value)   # the cache file's name means nothing to the caller
  assert not list(tmp_path.glob("cache/.sentences*"))   # no temporary file left behind


def test_sentences_read_back_as_the_same_tokens(tmp_path):
  sentences = [["\ufeffbom", "Case", "kept", "ünï", "\ufffd"], [], ["tab-free", "x"]]
  path = one_call._write_sentences(sentences[0], iter(sentences[1:]), tmp_path)
  counts, stats = corpus.count_words([path])
  assert counts == {w: 1 for s in sentences for w in s} and stats.replaced_chars == 0
  assert path.name.startswith("sentences-") and oct(path.stat().st_mode & 0o777) != "0o600"


def test_a_list_of_paths_and_a_path_train_as_the_command_line_names_them(tmp_path):
  planted_corpus(tmp_path / "a.txt", seed=1)
  planted_corpus(tmp_path / "b.txt", seed=2)
  both = w2v_jax.train([tmp_path / "a.txt", str(tmp_path / "b.txt")], cache_dir=tmp_path / "cache", **TINY)
  assert both.summary["corpus_words"] == 2 * 600 * 12
  with gzip.open(tmp_path / "a.txt.gz", "wt") as f:
    f.write((tmp_path / "a.txt").read_text())
  one = w2v_jax.train(tmp_path / "a.txt.gz", cache_dir=tmp_path / "cache", **TINY)
  assert one.summary["corpus_words"] == 600 * 12
  with pytest.raises(W2VError, match="corpus mixes paths and lists"):
    w2v_jax.train([str(tmp_path / "a.txt"), ["a", "b"]], cache_dir=tmp_path / "cache", **TINY)
