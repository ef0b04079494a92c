"""`w2v_jax.train`: the one call from Python, from a corpus (files or your own sentences) to queryable vectors.

    import w2v_jax
    result = w2v_jax.train([["the", "king", "rules"], ...], model="cbow_neg", dim=50, epochs=3)
    result.vectors.most_similar("king")      # a vectors.KeyedVectors: gensim's queries
    result.evaluation, result.summary, result.history, result.params, result.vocab

`corpus` is a text file (plain or gzipped, one sentence a line), a directory of them, a list of those, or
any iterable of sentences, each a list of str tokens (a generator is read once). Sentences are written,
once, as a text file into the corpus cache: one sentence a line, its tokens joined by one space, named by
the hash of its bytes (`sentences-<sha256>.txt`). From there they train exactly as that file does (the
same vocabulary, encoding, cache entries and vectors), so the same text gives the same vectors for the
same seed as a list, a generator, a file, or `python -m experiments.train --corpus=...`.

The file reader (`w2v_jax.corpus`) takes a line as one sentence, never cut, and its tokens as str.split()
gives them, case kept; so a sentence here is a list of non-empty tokens without whitespace (a token
holding a space would become two words in the file, and is refused instead).
"""
import dataclasses
import difflib
import functools
import hashlib
import inspect
import numbers
import os
import pathlib
import secrets
import typing
import warnings

import jax

from w2v_jax import api
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from w2v_jax.vectors import KeyedVectors

_CONFIG = {f.name: typing.get_type_hints(TrainConfig)[f.name] for f in dataclasses.fields(TrainConfig)}
# api.train's settings of a run (cache_dir, binary, on_log, resume, ...), read from its signature
_RUN = tuple(name for name, p in inspect.signature(api.train).parameters.items() if p.kind is p.KEYWORD_ONLY)
# gensim's Word2Vec arguments a newcomer will try first, and what says the same here
_GENSIM = {"vector_size": "dim=", "size": "dim=", "negative": "neg=", "alpha": "lr=", "iter": "epochs=",
           "min_alpha": "min_lr_ratio= (min_alpha / alpha)", "sg": "model='sgram_neg' (sg=1) or 'cbow_neg' (sg=0)",
           "hs": "model='sgram_hs' or 'cbow_hs'", "cbow_mean": "cbow_context_grad= ('sum' is gensim's rule)",
           "max_final_vocab": "max_vocab_size=", "sentences": "the first argument, corpus",
           "corpus_file": "the first argument, corpus", "shrink_windows": "reduced_window=",
           "workers": "no such option: a run uses the CPUs its process may run on (e.g. `taskset -c 0,1 "
                      "python ...` for two)"}
# api.train's run settings that take a function (or None)
_FUNCTIONS = {"on_log": "each log record", "on_start": "the run's engine record", "on_notice": "each notice",
              "should_stop": "no arguments, returning True to stop"}
_NOTHING = object()
_LINES_A_WRITE = 10_000
_BOM = "\ufeff".encode()


@dataclasses.dataclass(repr=False)
class Result(api.RunResult):
  """api.RunResult (config, params, vocab, history, evaluation, summary, workdir) and the vectors to query."""

  def __repr__(self):
    s = self.summary
    ws = "n/a" if s["ws353_spearman"] is None else f"{s['ws353_spearman']:.3f}"
    return (f"Result({s['model']}: {s['vocab_size']:,} words x {s['dim']} dims, {s['epochs']} epoch"
            f"{'' if s['epochs'] == 1 else 's'}, analogy {100 * s['analogy_accuracy']:.2f}%, WS-353 {ws}, "
            f"workdir={None if self.workdir is None else str(self.workdir)!r})")

  @functools.cached_property
  def vectors(self) -> KeyedVectors:
    """The exported vectors (W_in, or W_in + W_out with eval_with="in+out"), the ones vectors.txt holds."""
    return KeyedVectors(self.vocab.words, api.export_vectors(self.params, self.config.eval_with, self.model))


def train(corpus=None, workdir=None, **options) -> Result:
  """Trains word2vec on `corpus` and returns the evaluated result, with `.vectors` to query.

  corpus: a file or directory path (str or os.PathLike), a list of them, or an iterable of sentences,
    each a list of str tokens; None: the small corpus shipped in the package.
  workdir: None writes nothing but the corpus cache; a directory receives what `python -m
    experiments.train --workdir=...` writes there (vectors.txt, vocab.tsv, metrics.jsonl, loss.png,
    checkpoint.npz, summary.json).
  options: any TrainConfig field by name (model, dim, window, neg, epochs, min_count, sample, lr, seed, ...),
    and api.train's run settings (cache_dir, binary, on_log, resume, checkpoint_every_s, ...).

  Raises W2VError, in one line and before anything runs, for an unknown option (naming the close matches),
  an option of the wrong kind, resume or binary without a workdir, a sentence that is not a list of tokens,
  and whatever the command line refuses.
  """
  config, run = _split_options(options)
  run = _check_run(run, workdir)
  cache_dir = api.default_cache_dir() if run.get("cache_dir") is None else pathlib.Path(run["cache_dir"])
  paths, written = _corpus_paths(corpus, cache_dir, run.get("on_notice") or _warn)
  try:
    result = api.train(config, paths, workdir, **run)
  except W2VError as e:
    if written is None:
      raise
    message = str(e)
    for form in {str(written), str(written.resolve())}:   # the cache file's name means nothing to the caller
      message = message.replace(form, "the sentences given")
    raise W2VError(message) from None
  return Result(**{f.name: getattr(result, f.name) for f in dataclasses.fields(api.RunResult)})


def _split_options(options: dict) -> tuple[TrainConfig, dict]:
  """TrainConfig from the options that name its fields, and the rest (api.train's run settings)."""
  unknown = [name for name in options if name not in _CONFIG and name not in _RUN]
  if unknown:
    raise W2VError("w2v_jax.train: " + "; ".join(map(_unknown, unknown)))
  config = {name: _coerce(name, value, _CONFIG[name]) for name, value in options.items() if name in _CONFIG}
  return TrainConfig(**config), {name: value for name, value in options.items() if name in _RUN}


def _check_run(run: dict, workdir) -> dict:
  """The run settings, numbers as their types; W2VError, in one line naming the option, for a setting of
  the wrong kind, and for resume or binary without a workdir (they would be ignored), before anything is
  read or compiled."""
  hints = typing.get_type_hints(api.train)
  run = {name: _run_setting(name, value, hints.get(name)) for name, value in run.items()}
  for name in ("resume", "binary"):
    if run.get(name) and workdir is None:
      raise W2VError(f"w2v_jax.train: {name}=True needs a workdir (where the run's "
                     f"{'checkpoint is' if name == 'resume' else 'vectors.bin is written'}): pass workdir=, "
                     f"or drop {name}")
  return run


def _run_setting(name: str, value, annotation):
  """One run setting as api.train takes it, or one W2VError line saying what it must be."""
  if name == "cache_dir":
    if value is None or (isinstance(value, (str, os.PathLike)) and str(value) != ""):
      return value
    raise W2VError(f"w2v_jax.train: option cache_dir must be a directory's path (str or os.PathLike) or None, "
                   f"got {value!r}")
  if name == "mesh":
    if value is None or isinstance(value, jax.sharding.Mesh):
      return value
    raise W2VError(f"w2v_jax.train: option mesh must be a jax.sharding.Mesh, e.g. "
                   f"w2v_jax.distributed.make_mesh('data:2'), or None, got {value!r}")
  if name in _FUNCTIONS:
    if callable(value) or (value is None and name != "should_stop"):
      return value
    none = "" if name == "should_stop" else " or None"
    raise W2VError(f"w2v_jax.train: option {name} must be a function (called with {_FUNCTIONS[name]}){none}, "
                   f"got {value!r}")
  return value if annotation is None else _coerce(name, value, annotation)   # (None: api.train says no type)


def _unknown(name: str) -> str:
  if name in _GENSIM:
    return f"unknown option {name!r} (gensim's name): here it is {_GENSIM[name]}"
  close = difflib.get_close_matches(name, [*_CONFIG, *_RUN], n=3, cutoff=0.6)
  if close:
    return f"unknown option {name!r}: did you mean {' or '.join(map(repr, close))}?"
  return f"unknown option {name!r}: the options are TrainConfig's fields ({', '.join(_CONFIG)}) and {', '.join(_RUN)}"


def _coerce(name: str, value, annotation):
  """The value as its field's type (`annotation`): numpy numbers become int or float, an int a float where
  the field is one (summary.json is JSON); a value of another type is one line naming the option."""
  allowed = typing.get_args(annotation) or (annotation,)
  if value is None and type(None) in allowed:
    return None
  if isinstance(value, bool):
    if bool in allowed:
      return value
  elif isinstance(value, numbers.Integral) and int in allowed:
    return int(value)
  elif isinstance(value, numbers.Real) and float in allowed:
    return float(value)
  elif isinstance(value, str) and str in allowed:
    return str(value)
  wanted = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
  raise W2VError(f"w2v_jax.train: option {name} must be {wanted}, got {value!r}")


def _corpus_paths(corpus, cache_dir: pathlib.Path, notice) -> tuple[list | None, pathlib.Path | None]:
  """The files to train on, and the sentences' file written into the cache (None for files given)."""
  if corpus is None:
    return None, None
  if isinstance(corpus, (str, os.PathLike)):
    return [_existing(corpus)], None
  if isinstance(corpus, (bytes, bytearray)):
    raise W2VError(f"corpus is {_a(corpus)}: give a path, or sentences as lists of str tokens")
  try:
    items = iter(corpus)
  except TypeError:
    raise W2VError(f"corpus is {_a(corpus)}: give a path, a list of paths, or an iterable of "
                   "sentences (lists of str tokens)") from None
  first = next(items, _NOTHING)
  if first is _NOTHING:
    raise W2VError("the corpus is empty: no sentence (or file) given")
  if isinstance(first, (str, os.PathLike)):   # a list of paths
    paths = [first, *items]
    for p in paths:
      if not isinstance(p, (str, os.PathLike)):
        raise W2VError(f"corpus mixes paths and {type(p).__name__}s: give paths only, or sentences only")
    return [_existing(p) for p in paths], None
  path = _write_sentences(first, items, cache_dir, notice)
  return [path], path


def _existing(path) -> str | os.PathLike:
  if not pathlib.Path(path).expanduser().exists():
    raise W2VError(f"corpus file not found: {path} (a str names a file; to train on sentences, give lists of "
                   "tokens, e.g. [line.split() for line in lines])")
  return path


def _line(n: int, sentence) -> tuple[bytes, int]:
  """Sentence n (counted from 1) as the line, in UTF-8, that the file reader reads back as the same tokens,
  and its number of tokens."""
  if isinstance(sentence, (str, bytes)):
    raise W2VError(f"sentence {n} is {_a(sentence)}, not a list of tokens: split it (e.g. "
                   f"text.split()), or give the file's path as the corpus")
  try:
    tokens = list(sentence)
  except TypeError:
    raise W2VError(f"sentence {n} is {_a(sentence)}, not a list of str tokens") from None
  for k, token in enumerate(tokens, 1):
    if not isinstance(token, str):
      raise W2VError(f"sentence {n}, token {k} is {_a(token)} ({token!r}), not a str")
  line = " ".join(tokens)
  if len(line.split()) != len(tokens):   # the reader would not give these tokens back
    k, token = next((k, t) for k, t in enumerate(tokens, 1) if t.split() != [t])
    raise W2VError(f"sentence {n}, token {k} ({token!r}) is empty or holds whitespace: a token is one word "
                   "(the file reader splits a line on whitespace)")
  try:
    return (line + "\n").encode("utf-8"), len(tokens)
  except UnicodeEncodeError:
    raise W2VError(f"sentence {n} holds a character that UTF-8 cannot write (a lone surrogate): "
                   f"{line[:60]!r}") from None


def _write_sentences(first, rest, cache_dir: pathlib.Path, notice=None) -> pathlib.Path:
  """Writes the sentences, one a line, into cache_dir as sentences-<hash of the bytes>.txt, in one pass.

  A file of equal bytes written earlier is kept as it is (its cached vocabulary and encoding are keyed by
  its name, size and time), so the same sentences given twice are tokenised once; one whose size or
  SHA-256 differs (truncated, say) is replaced by the new one, said in one line to `notice`."""
  tmp = cache_dir / f".sentences.{os.getpid()}.{secrets.token_hex(4)}.tmp"
  try:
    cache_dir.mkdir(parents=True, exist_ok=True)
    f = open(tmp, "xb")   # not mkstemp: its 0600 mode would stick to the file (atomic.write_atomic's reason)
  except OSError as e:
    raise W2VError(f"cannot use the corpus cache {cache_dir} ({e.strerror or e}); pass cache_dir= (or set "
                   "$W2V_JAX_CACHE) to a writable directory") from None
  digest, words, sentences, pending, size = hashlib.sha256(), 0, 0, [], 0

  def flush():
    nonlocal size
    data = b"".join(pending)
    digest.update(data)
    size += len(data)
    _write(cache_dir, f.write, data)
    pending.clear()

  try:
    with f:
      for sentence in _chain(first, rest):
        sentences += 1
        line, n = _line(sentences, sentence)
        if sentences == 1 and line.startswith(_BOM):
          line = _BOM + line   # the reader drops a file's leading byte-order mark: the token keeps its own
        pending.append(line)
        words += n
        if len(pending) >= _LINES_A_WRITE:
          flush()
      flush()
      _write(cache_dir, os.fsync, f.fileno())
    if not words:
      raise W2VError(f"the corpus is empty: the {sentences:,} sentence{'s' if sentences > 1 else ''} given "
                     f"hold{'s' if sentences == 1 else ''} no words")
    path = cache_dir / f"sentences-{digest.hexdigest()[:24]}.txt"
    damage = _damage(path, size, digest.hexdigest()) if path.exists() else None
    if path.exists() and damage is None:
      tmp.unlink()
      return path
    _write(cache_dir, os.replace, tmp, path)   # atomic: a reader sees the old file or the whole new one
    if damage is not None:
      (notice or _warn)(f"the cached sentences {path.name} were damaged ({damage}): wrote them again")
    return path
  except BaseException:
    tmp.unlink(missing_ok=True)
    raise


def _damage(path: pathlib.Path, size: int, sha256: str) -> str | None:
  """How the cached sentences' file at `path` differs from `size` bytes of SHA-256 `sha256`; None if not."""
  try:
    found = path.stat().st_size
    if found != size:
      return f"{found:,} bytes, the sentences are {size:,}"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
      while chunk := f.read(1 << 20):
        digest.update(chunk)
  except OSError as e:
    return f"it cannot be read: {e.strerror or e}"
  return None if digest.hexdigest() == sha256 else "its SHA-256 is not the sentences'"


def _warn(message: str) -> None:
  warnings.warn(message, RuntimeWarning, stacklevel=5)


def _write(cache_dir: pathlib.Path, call, *args):
  """call(*args), an OSError (a full disk, say) turned into one line naming the cache."""
  try:
    return call(*args)
  except OSError as e:
    raise W2VError(f"cannot write the sentences into the corpus cache {cache_dir} ({e.strerror or e}); pass "
                   "cache_dir= (or set $W2V_JAX_CACHE) to a writable directory with room") from None


def _a(x) -> str:
  name = type(x).__name__
  return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _chain(first, rest):
  yield first
  yield from rest
