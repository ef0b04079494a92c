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


def test_a_damaged_cached_sentences_file_is_written_again_with_a_notice(tmp_path):
  sentences = [line.split() for line in planted_corpus(tmp_path / "c.txt").read_text().splitlines()]
  first = w2v_jax.train(sentences, cache_dir=tmp_path / "cache", **TINY)
  written, = (tmp_path / "cache").glob("sentences-*.txt")
  whole = written.read_bytes()
  for damaged in (whole[: len(whole) // 2], whole[:-4] + b"xyz\n"):   # truncated; the same size, other bytes
    written.write_bytes(damaged)
    notices = []
    again = w2v_jax.train(iter(sentences), cache_dir=tmp_path / "cache", on_notice=notices.append, **TINY)
    assert written.read_bytes() == whole
    np.testing.assert_array_equal(again.vectors.vectors, first.vectors.vectors)
    said = [n for n in notices if "sentences" in n]
    assert said == [f"the cached sentences {written.name} were damaged ("
                    + (f"{len(damaged):,} bytes, the sentences are {len(whole):,}" if len(damaged) < len(whole)
                       else "its SHA-256 is not the sentences'") + "): wrote them again"], notices
    assert not list((tmp_path / "cache").glob(".sentences*"))   # no temporary file left behind


@pytest.mark.parametrize("options, fragments", [
    ({"cache_dir": 5}, ["option cache_dir must be a directory's path (str or os.PathLike) or None, got 5"]),
    ({"mesh": "data:2"}, ["option mesh must be a jax.sharding.Mesh", "make_mesh('data:2')", "got 'data:2'"]),
    ({"on_log": 5}, ["option on_log must be a function (called with each log record) or None, got 5"]),
    ({"on_notice": "print"}, ["option on_notice must be a function"]),
    ({"should_stop": None}, ["option should_stop must be a function", ", got None"]),
    ({"checkpoint_every_s": "60"}, ["option checkpoint_every_s must be float, got '60'"]),
    ({"resume": "yes"}, ["option resume must be bool, got 'yes'"]),
    ({"resume": True}, ["resume=True needs a workdir (where the run's checkpoint is): pass workdir=, or drop "
                        "resume"]),
    ({"binary": True}, ["binary=True needs a workdir (where the run's vectors.bin is written)"]),
    ({"workers": 4}, ["unknown option 'workers' (gensim's name): here it is no such option", "taskset"]),
    ({"shrink_windows": False}, ["unknown option 'shrink_windows' (gensim's name): here it is reduced_window="]),
])
def test_a_run_setting_of_the_wrong_kind_is_one_line_before_anything_runs(tmp_path, options, fragments):
  """Refused before the sentences are written or the corpus read: the cache stays unmade."""
  with pytest.raises(W2VError) as e:
    w2v_jax.train([["a", "b"], ["b", "a"]], cache_dir=options.pop("cache_dir", tmp_path / "cache"), **options)
  for f in fragments:
    assert f in str(e.value), str(e.value)
  assert "\n" not in str(e.value) and not (tmp_path / "cache").exists()


def test_run_settings_of_numpy_types_become_their_types_and_train(tmp_path):
  seen = []
  result = w2v_jax.train([line.split() for line in planted_corpus(tmp_path / "c.txt").read_text().splitlines()],
                         tmp_path / "run", cache_dir=str(tmp_path / "cache"), binary=True,
                         checkpoint_every=np.int64(0), log_every_s=np.float32(0.5), on_log=seen.append, **TINY)
  assert (tmp_path / "run" / "vectors.bin").exists() and seen and result.summary["vocab_size"] == 48


LAZY = ("api", "corpus", "distributed", "evaluate", "native", "vectors")


def test_the_public_submodules_are_reached_after_import_w2v_jax_and_imported_on_first_use(tmp_path):
  code = textwrap.dedent(f"""
      import sys, w2v_jax
      lazy = {LAZY!r}
      assert not [m for m in lazy if "w2v_jax." + m in sys.modules], "imported by import w2v_jax"
      assert callable(w2v_jax.vectors.load) and w2v_jax.api.DEFAULT_CORPUS.exists()
      assert [getattr(w2v_jax, m).__name__ for m in lazy] == ["w2v_jax." + m for m in lazy]
      assert set(lazy) <= set(dir(w2v_jax))
      try:
        w2v_jax.no_such_module
      except AttributeError as e:
        assert str(e) == "module 'w2v_jax' has no attribute 'no_such_module'"
      else:
        raise AssertionError("no AttributeError")
  """)
  out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr


def test_the_readmes_quick_start_reads_its_corpus_from_any_directory(tmp_path):
  """The README's Python example up to its training call, run outside the checkout (as pip users do)."""
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  block = readme.split("## From Python: one call", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
  opening = block.split("\nresult = ", 1)[0]
  out = subprocess.run([sys.executable, "-c", opening + "\nprint(len(sentences))"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  assert int(out.stdout) > 10_000
