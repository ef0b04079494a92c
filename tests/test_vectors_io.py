"""Tests for w2v_jax.vectors_io: round trips, gensim compatibility, determinism, bad files."""
import os
import subprocess
import sys

import numpy as np
import pytest

from w2v_jax import native, vectors_io
from w2v_jax.errors import W2VError

SAVE = {False: vectors_io.save_text, True: vectors_io.save_binary}


@pytest.fixture
def table():
  """Words (some non-ASCII) and float32 vectors with awkward values: extremes, -0.0, subnormals."""
  rng = np.random.default_rng(0)
  words = ["the", "café", "naïve", "日本", "x"] + [f"w{i}" for i in range(45)]
  vectors = (rng.standard_normal((50, 7)) * 0.1).astype(np.float32)
  vectors[0] = [0.0, -0.0, 1e-45, -3.4e38, 3.4e38, 1e-38, 0.1]
  return words, vectors


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_is_exact(tmp_path, table, binary):
  words, vectors = table
  path = tmp_path / "v"
  SAVE[binary](path, words, vectors)
  for flag in (binary, None):  # explicit, then detected
    got_words, got = vectors_io.load(path, binary=flag)
    assert got_words == words and got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.int32), vectors.view(np.int32))  # bit for bit, -0.0 too
  assert [p.name for p in tmp_path.iterdir()] == ["v"]  # no temporary file left behind


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_ours_and_we_read_gensims(tmp_path, table, binary):
  models = pytest.importorskip("gensim.models")
  words, vectors = table
  SAVE[binary](tmp_path / "ours", words, vectors)
  kv = models.KeyedVectors.load_word2vec_format(str(tmp_path / "ours"), binary=binary)
  assert kv.index_to_key == words
  np.testing.assert_array_equal(kv.vectors, vectors)
  kv.save_word2vec_format(str(tmp_path / "theirs"), binary=binary)  # binary: no "\n" after records
  got_words, got = vectors_io.load(tmp_path / "theirs")
  assert got_words == words
  np.testing.assert_array_equal(got, vectors)


@pytest.mark.parametrize("binary", [False, True])
def test_output_is_deterministic(tmp_path, table, binary):
  words, vectors = table
  SAVE[binary](tmp_path / "a", words, vectors)
  SAVE[binary](tmp_path / "b", list(words), vectors.copy())
  SAVE[binary](tmp_path / "b", words, vectors)  # overwriting gives the same bytes too
  assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_the_native_text_writer_writes_pythons_bytes(tmp_path, monkeypatch):
  """text_rows.cc (std::to_chars) against Python's "%.9g", byte for byte: every float32 exponent with
  either sign (random mantissas), subnormals, ±0, ±inf, NaN of either sign and any payload, exact ties
  at the 9th digit (6.103515625e-05 = 2^-14, 1000000.125) and their neighbours; blocks of 3 rows so that
  a word's offset crosses blocks; non-ASCII words. save_text must have used it (the Python formatter is
  made to fail)."""
  if not native.available():
    pytest.skip(f"no native kernels here ({native.status().reason}): save_text formats in Python")
  rng = np.random.default_rng(1)
  exponents = np.repeat(np.arange(256, dtype=np.uint32), 2)
  signs = np.tile(np.array([0, 1], np.uint32), 256)
  mantissas = rng.integers(0, 2**23, size=512, dtype=np.uint32)
  every = ((signs << 31) | (exponents << 23) | mantissas).view(np.float32)   # 512: each exponent, each sign
  ties = np.array([2.0**-14, 1000000.125, -1000000.125, 0.5, 1.0, 16777216.0, 1e9, 123456789.0],
                  np.float32)
  ties = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
  special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1.17549435e-38, 3.4028235e38,
                      np.float32(-3.4028235e38), 1e-5, 1e-4], np.float32)
  nan_payloads = np.array([0x7FC00001, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], np.uint32).view(np.float32)
  values = np.concatenate([every, ties, special, nan_payloads, (rng.standard_normal(348) * 0.1).astype(np.float32)])
  vectors = values.reshape(100, 9)
  words = ["the", "café", "日本", "a\u00a0b"] + [f"w{i}" for i in range(len(vectors) - 4)]
  lines = list(native.text_rows(words, vectors, block=3))
  assert len(lines) == 34 and all(isinstance(b, bytes) for b in lines)
  python = b"".join(vectors_io._text_rows(words, vectors))
  assert b"".join(lines) == python
  assert b"6.10351562e-05" in python and b"1000000.12" in python   # the ties, to even
  monkeypatch.setattr(vectors_io, "_text_rows", lambda *a: (_ for _ in ()).throw(AssertionError("Python")))
  vectors_io.save_text(tmp_path / "v", words, vectors)
  assert (tmp_path / "v").read_bytes() == b"100 9\n" + python


def test_writing_vectors_starts_no_build(tmp_path):
  """save_text in a process that has not loaded the kernels formats in Python: a file's writer does not
  start the native build (seconds) behind the caller's back."""
  code = ("import numpy as np; from w2v_jax import native, vectors_io; "
          "vectors_io.save_text('v', ['a', 'b'], np.eye(2, dtype=np.float32)); "
          "assert native._load.cache_info().currsize == 0")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, "W2V_JAX_NATIVE_DIR": str(tmp_path / "native"), "PYTHONPATH": root}
  out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0, out.stderr
  assert (tmp_path / "v").read_text() == "2 2\na 1 0\nb 0 1\n"
  assert not (tmp_path / "native").exists()


def test_text_layout_and_word2vec_c_quirks(tmp_path):
  vectors_io.save_text(tmp_path / "v", ["a", "b"], np.array([[0.5, -1.0], [0.1, 2.0]], np.float32))
  assert (tmp_path / "v").read_text() == "2 2\na 0.5 -1\nb 0.100000001 2\n"
  (tmp_path / "c").write_bytes(b"2 2\na 0.500000 -1.000000 \nb 0.100000 2.000000 \n\n")  # word2vec.c -binary 0
  words, got = vectors_io.load(tmp_path / "c")
  assert words == ["a", "b"]
  np.testing.assert_array_equal(got, np.array([[0.5, -1.0], [0.1, 2.0]], np.float32))


def test_binary_layout(tmp_path):
  vectors_io.save_binary(tmp_path / "v", ["a"], np.array([[1.0, -2.0]], np.float32))
  assert (tmp_path / "v").read_bytes() == b"1 2\na " + np.array([1.0, -2.0], "<f4").tobytes() + b"\n"


_F = np.array([1.0, -2.0], "<f4").tobytes()  # two float32 with zero bytes, like any binary record
_F3 = np.array([1.0, -2.0, 3.0], "<f4").tobytes()


@pytest.mark.parametrize("content, binary, match", [
    # bad header
    (b"", None, ":1: expected a header"),
    (b"hello world\n", None, ":1: expected a header line 'V D'.*got b'hello world'"),
    (b"2\na 1 2 3\n", None, ":1: expected a header"),
    (b"2 0\n", None, ":1: expected a header"),
    # truncated, or longer than the header says
    (b"3 3\na 1 2 3\nb 1 2 3\n", None, "header says 3 words, but only 2 lines follow it; the file is truncated"),
    (b"2 3\na 1 2 3\nb 1 2", None, ":3: expected a word and 3 numbers .*got 3 fields"),
    (b"1 3\na 1 2 3\nb 1 2 3\n", None, "header says 1 words, but 2 lines follow it"),
    (b"2 2\nabc " + _F + b"\nbcd " + _F[:4], True, "record 2 of 2 is cut short; the file is truncated"),
    (b"2 2\nabc " + _F + b"\nbcd " + _F[:4], None, "record 2 of 2 is cut short"),
    (b"9 2\na " + _F + b"\n", None, "header says 9 words of 2 float32, at least 90 bytes, but 11 bytes follow"),
    (b"1 2\na " + _F + b"\nextra", True, "unexpected bytes after record 1"),
    # a row of the wrong length (text: by line, whether or not it is the first row; binary: D wrong)
    (b"2 3\na 1 2 3\nb 1 2\n", None, ":3: expected a word and 3 numbers"),
    (b"2 3\na 1 2\nb 1 2 3\n", None, ":2: expected a word and 3 numbers .*got 3 fields"),
    (b"2 3\na 1 2 3 4\nb 1 2 3\n", None, ":2: expected a word and 3 numbers .*got 5 fields"),
    (b"2 3\na 1 x 3\nb 1 2 3\n", False, ":2: a value of word 'a' is not a number"),
    (b"2 2\na " + _F3 + b"\nb " + _F3 + b"\n", None, "record 2 of 2 .*not a word and a space; the header's D = 2"),
    # duplicate words
    (b"2 3\na 1 2 3\na 1 2 3\n", None, "'a' appears twice \\(records 1 and 2\\)"),
    (b"2 2\na " + _F + b"a " + _F, True, "'a' appears twice"),
    # undecodable bytes in a word (or a number)
    (b"2 3\nok 1 2 3\ncaf\xe9 1 2 3\n", None, ":3: the word b'caf\\\\xe9' is not valid UTF-8"),
    (b"1 3\na \xff 2 3\n", False, ":2: byte b'\\\\xff' after the word is not valid UTF-8"),
    (b"1 2\ncaf\xe9 " + _F, None, "record 1 of 1: the word b'caf\\\\xe9' is not valid UTF-8"),
])
def test_bad_files(tmp_path, content, binary, match):
  (tmp_path / "v").write_bytes(content)
  with pytest.raises(W2VError, match=match) as e:
    vectors_io.load(tmp_path / "v", binary=binary)
  assert "\n" not in str(e.value) and str(tmp_path / "v") in str(e.value)  # one line, naming the file


def test_detection_and_unicode_spaces(tmp_path):
  # A word holding a non-ASCII space (U+00A0) is one word: fields split at ASCII whitespace only.
  words, vectors = ["a\u00a0b", "c"], np.array([[1, 2], [3, 4]], np.float32)
  for save in SAVE.values():
    save(tmp_path / "v", words, vectors)
    got_words, got = vectors_io.load(tmp_path / "v")
    assert got_words == words
    np.testing.assert_array_equal(got, vectors)
  # A binary file whose first record happens to look like text with the wrong count is still binary.
  (tmp_path / "b").write_bytes(b"1 3\na 5\n" + bytes(10))
  assert vectors_io.load(tmp_path / "b")[0] == ["a"]


def test_bad_input_to_save(tmp_path):
  (tmp_path / "v").write_text("keep")
  for words in (["a b", "c"], ["", "c"], ["a\t", "c"]):
    with pytest.raises(W2VError, match="whitespace"):
      vectors_io.save_text(tmp_path / "v", words, np.zeros((2, 3)))
  with pytest.raises(W2VError, match="shape"):
    vectors_io.save_binary(tmp_path / "v", ["a"], np.zeros((2, 3)))
  with pytest.raises(W2VError, match="cannot write"):
    vectors_io.save_text(tmp_path / "missing" / "v", ["a"], np.zeros((1, 3)))
  with pytest.raises(W2VError, match="cannot read"):
    vectors_io.load(tmp_path / "nothing")
  assert [p.name for p in tmp_path.iterdir()] == ["v"] and (tmp_path / "v").read_text() == "keep"


def test_a_non_finite_vector_is_one_line(tmp_path):
  """A NaN or inf row would pass every benchmark's arithmetic unnoticed and skew its scores."""
  words, vectors = ["a", "b", "c"], np.arange(12, dtype=np.float32).reshape(3, 4)
  for bad in (np.nan, np.inf):
    v = vectors.copy()
    v[1, 2] = bad
    vectors_io.save_text(tmp_path / "v.txt", words, v)
    with pytest.raises(W2VError, match=r"word 'b' \(record 2\) holds a non-finite value"):
      vectors_io.load(tmp_path / "v.txt")


def test_a_word_with_a_space_is_named(tmp_path):
  """gensim writes a word holding a space as is; word2vec's formats cannot hold it: one line that says so
  (it used to be read as a binary file and reported as one)."""
  for first in (True, False):
    rows = ["a 1 2 3", "b 4 5 6"]
    rows.insert(0 if first else 2, "new york 7 8 9")
    (tmp_path / "v.txt").write_text("3 3\n" + "\n".join(rows) + "\n")
    with pytest.raises(W2VError, match=r"the word 'new york' holds a space"):
      vectors_io.load(tmp_path / "v.txt")
