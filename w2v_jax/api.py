"""One call from corpus to evaluated, exported vectors: what `experiments/train.py` and sweeps run.

    from w2v_jax import api, TrainConfig
    result = api.train(TrainConfig(model="cbow_neg", window=3), corpus=["text.txt.gz"], workdir="runs/a")
    result.evaluation["analogy"]["accuracy"], result.params.W_in, result.vocab.words, result.history

The workdir receives vectors.txt (word2vec text format), vectors.bin (with binary=True), vocab.tsv,
metrics.jsonl (one record per log step), loss.png (redrawn at most every 10 s during training, so a long
run can be watched, and at its end), checkpoint.npz and summary.json. summary["engine"] says which training step ran, and why.
While a run lives, .lock there holds it (workdir_lock: a second run into the workdir is refused), and
before it trains, the bytes it will write are set against the free space there (disk.check_run).
"""
import dataclasses
import json
import os
import pathlib
import threading
import time
import warnings
from typing import Callable

import jax
import numpy as np

from w2v_jax import corpus as corpus_lib
from w2v_jax import batches, checkpoint, disk, distributed, engine, evaluate, loop, models, native, plots
from w2v_jax import workdir_lock
from w2v_jax import vectors_io
from w2v_jax.atomic import read_json, write_atomic
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from w2v_jax.types import Params
from w2v_jax.vocab import Vocab

DEFAULT_CORPUS = pathlib.Path(__file__).parent / "data" / "small_corpus.txt.gz"
PROBE_WORDS = ("king", "city", "war", "good", "money", "three", "president", "water", "music", "france")


def default_cache_dir() -> pathlib.Path:
  """Where encoded corpora are cached: $W2V_JAX_CACHE (if set and not empty), else ~/.cache/w2v_jax."""
  return pathlib.Path(os.environ.get("W2V_JAX_CACHE") or pathlib.Path.home() / ".cache" / "w2v_jax")


@dataclasses.dataclass
class RunResult:
  config: TrainConfig
  params: Params
  vocab: Vocab
  history: list[dict]
  evaluation: dict      # {"analogy": ..., "word_similarity": ...}
  summary: dict         # what summary.json holds
  workdir: pathlib.Path | None
  model: models.Model | None = None   # the configured model (export_vectors reads its word_vectors)


def export_vectors(params: Params, eval_with: str, model: models.Model | None = None) -> np.ndarray:
  """The vectors users get: W_in (word2vec's syn0), or W_in + W_out (Levy et al. 2015's w + c). With a
  `model` that has word_vectors (the subword models), its word vectors from W_in replace W_in's rows."""
  if model is not None and model.word_vectors is not None:
    vectors = model.word_vectors(params.W_in)
  elif params.W_in.shape[0] != params.W_out.shape[0]:
    raise W2VError("W_in has rows beyond the vocabulary's (a subword model's buckets): pass its model, "
                   "export_vectors(params, eval_with, result.model)")
  else:
    vectors = np.asarray(params.W_in, np.float32)
  return vectors + np.asarray(params.W_out, np.float32) if eval_with == "in+out" else vectors


def evaluate_vectors(words: list[str], vectors: np.ndarray, method: str = "3cosadd") -> dict:
  """The analogy set by `method` (top 30k words), WS-353 ("word_similarity") and SimLex-999 ("simlex999")."""
  return {"analogy": evaluate.analogy(words, vectors, method=method),
          "word_similarity": evaluate.word_similarity(words, vectors),
          "simlex999": evaluate.word_similarity(words, vectors, path=evaluate.SIMLEX_PATH)}


class _Plotter:
  """Redraws loss.png on a background thread, so training does not wait for matplotlib, and at most once
  every max(MIN_INTERVAL_S, 50 x the last redraw's time) seconds, the first after MIN_INTERVAL_S: a redraw
  costs about 65 ms of CPU and the GIL (the first, which imports matplotlib, 0.25 s), and at every log
  step (each second) it took 12-20% off the CBOW main job's words/s on 2 cores (3.0M against 3.5M in
  alternating runs). api.train draws the final curve after training in any case. A redraw that finds
  the previous one still drawing waits for it."""
  MIN_INTERVAL_S = 10.0

  def __init__(self, workdir: pathlib.Path, cfg: TrainConfig):
    self.workdir, self.cfg, self.thread = workdir, cfg, None
    self.next_s = time.perf_counter() + self.MIN_INTERVAL_S   # no redraw before this (the first one
                                                              # imports matplotlib: 0.25 s of CPU)
    self.seconds = 0.0      # the last redraw's time

  def draw(self, history: list[dict]) -> None:
    if time.perf_counter() < self.next_s:
      return
    self.wait()
    start = time.perf_counter()
    self.next_s = start + max(self.MIN_INTERVAL_S, 50 * self.seconds)

    def run(records):
      t = time.perf_counter()
      try:
        draw_loss(self.workdir, self.cfg, records)
      except Exception:   # (a full disk) the plot is a view of metrics.jsonl: api.train draws it again at the
        pass              # end, where an error stops the run with its one line
      self.seconds = time.perf_counter() - t
    self.thread = threading.Thread(target=run, args=(list(history),))
    self.thread.start()

  def wait(self) -> None:
    if self.thread is not None:
      self.thread.join()
      self.thread = None


def _run_logger(workdir: pathlib.Path, cfg: TrainConfig, history: list[dict], on_log, plotter: _Plotter):
  """Appends each record to metrics.jsonl and redraws loss.png from the whole run's records (_Plotter)."""
  def log(record):
    try:
      with open(workdir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    except OSError as e:   # (half a line left by a full disk is dropped on --resume: _records_up_to)
      if disk.is_no_space(e):
        raise disk.no_space(workdir / "metrics.jsonl", e) from None
      raise
    history.append(record)
    plotter.draw(history)
    if on_log is not None:
      on_log(record)
  return log


def draw_loss(workdir: pathlib.Path, cfg: TrainConfig, history: list[dict]) -> None:
  tmp = workdir / ".loss.png.tmp.png"
  uses_neg = models.get(cfg.model).uses_negatives
  try:
    plots.loss_curve(history, tmp, cfg.epochs, title=f"{cfg.model}, dim {cfg.dim}, window {cfg.window}"
                     + (f", neg {cfg.neg}" if uses_neg else ""))
    os.replace(tmp, workdir / "loss.png")   # a watcher never sees half a PNG
  except BaseException as e:
    tmp.unlink(missing_ok=True)
    if disk.is_no_space(e):
      raise disk.no_space(workdir / "loss.png", e) from None
    raise


def check_workdir(workdir: pathlib.Path, resume: bool, cfg: TrainConfig | None = None) -> None:
  """Raises W2VError, in one line, where training there would lose finished work or resume nothing: a
  fresh run into a workdir that holds a run (its checkpoint, or an earlier run's vectors or summary), a
  --resume with no checkpoint to resume, or a --resume of a run already finished and written."""
  if workdir.exists() and not workdir.is_dir():
    raise W2VError(f"--workdir={workdir} is a file, not a directory: choose another --workdir")
  has_checkpoint = (workdir / "checkpoint.npz").exists()
  if not resume:
    if has_checkpoint:
      raise W2VError(f"{workdir} already holds a run: pass --resume to continue it, or choose another --workdir")
    written = [name for name in ("summary.json", "vectors.txt", "vectors.bin") if (workdir / name).exists()]
    if written:
      raise W2VError(f"{workdir} holds an earlier run's {' and '.join(written)}: choose another --workdir, or "
                     "move them away to train there")
    return
  if not has_checkpoint:
    raise W2VError(f"--resume: {workdir} holds no checkpoint.npz to continue; drop --resume to start a run there")
  summary = read_json(workdir / "summary.json")
  same = cfg is None or summary is None or summary.get("config") == json.loads(cfg.to_json())
  if summary is not None and summary.get("status") == "finished" and same:   # (other settings: fit says which)
    n = summary.get("epochs")
    raise W2VError(f"{workdir} holds a finished run ({n} epoch{'' if n == 1 else 's'} trained; its vectors are in "
                   f"{workdir / 'vectors.txt'}): nothing to resume; choose another --workdir to train again")


def _records_up_to(workdir: pathlib.Path, position) -> list[dict]:
  """metrics.jsonl's records up to the checkpoint being resumed; records past it (a run killed between two
  checkpoints logs steps it then loses) are dropped from the file too, so its records cover each step once."""
  path = workdir / "metrics.jsonl"
  lines = [line for line in open(path) if line.strip()]
  records = []
  for n, line in enumerate(lines, 1):
    try:
      records.append(json.loads(line))
    except ValueError:
      if n < len(lines):
        raise W2VError(f"{path}, line {n}, is not a JSON record: restore the file or delete it (the checkpoint "
                       "resumes without it; the summary's final loss then covers this session)") from None
      # the last line half-written (a run killed while appending it): dropped below
  # a record (epoch e + 1, step s) covers the steps before checkpoint.Position(e, s); an epoch's last record
  # (step = its steps) sorts before the next epoch's Position(e + 1, 0)
  kept = [r for r in records if position is None or (r["epoch"] - 1, r["step"]) <= tuple(position)]
  if len(kept) < len(lines):
    write_atomic(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in kept).encode()))
  return kept


def train(cfg: TrainConfig, corpus=None, workdir=None, *, resume: bool = False, binary: bool = False,
          cache_dir=None, on_log: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] = lambda: False, checkpoint_every: int = 0,
          checkpoint_every_s: float = 60.0, log_every_s: float = 1.0, mesh=None,
          on_start: Callable[[dict], None] | None = None, huge_pages: bool | None = None,
          on_notice: Callable[[str], None] | None = None) -> RunResult:
  """Prepares the corpus (cached), trains, evaluates, and writes the workdir's files.

  `mesh` (distributed.make_mesh) trains on several devices; with several processes all of them train and
  evaluate, and process 0 alone writes the workdir.

  The workdir is locked for the run (workdir_lock: a second run into it is refused at once), and set
  against its filesystem's free space before training (disk.check_run). `on_notice` gets the one-line
  notes of what the run mended on its way (a lock left by a run that died, a damaged cache entry built
  again); default: warnings.warn.
  """
  notice = on_notice or _warn
  primary = jax.process_index() == 0
  if workdir is not None and str(workdir) == "":
    raise W2VError("--workdir is empty: name a directory for the run's files (it is made if missing)")
  workdir = None if workdir is None else pathlib.Path(workdir)
  lock = None
  if workdir is not None:   # on process 0 (the others get its checkpoint and write nothing), agreed by all
    refused = None
    if primary:
      try:
        lock = workdir_lock.acquire(workdir, on_notice=notice)
        check_workdir(workdir, resume, cfg)
      except W2VError as e:
        refused = e
    if distributed.agree_flag(refused is not None) or refused is not None:
      if lock is not None:
        lock.release()
      raise refused or W2VError(f"process 0 refused --workdir={workdir} (its error says why)")
  try:
    return _train(cfg, corpus, workdir, resume=resume, binary=binary, cache_dir=cache_dir, on_log=on_log,
                  should_stop=should_stop, checkpoint_every=checkpoint_every,
                  checkpoint_every_s=checkpoint_every_s, log_every_s=log_every_s, mesh=mesh, on_start=on_start,
                  huge_pages=huge_pages, notice=notice)
  except disk.NoSpace as e:
    raise disk.NoSpace(e.what, e.path, kept_after_no_space(workdir, cfg.epochs)) from None
  finally:
    if lock is not None:
      lock.release()


def _warn(message: str) -> None:
  warnings.warn(message, RuntimeWarning, stacklevel=3)


def kept_after_no_space(workdir: pathlib.Path | None, epochs: int, rerun: str = "rerun with --resume") -> str:
  """What a run stopped by a full disk leaves, and how to go on (the end of its one-line error)."""
  try:
    position = None if workdir is None else checkpoint.position(workdir)
  except W2VError:
    position = None
  if position is None:
    return "no checkpoint had been written yet: free space, then run again"
  if tuple(position) >= (epochs, 0):
    return (f"the finished run's checkpoint is kept in {workdir}: free space, then {rerun} to write its files "
            "from it (nothing is trained again)")
  where = (f"end of epoch {position.epoch}" if position.step == 0 else
           f"epoch {position.epoch + 1} step {position.step}")
  return f"the last good checkpoint ({where}) is kept in {workdir}: free space, then {rerun} to continue from it"


def _train(cfg: TrainConfig, corpus, workdir: pathlib.Path | None, *, resume, binary, cache_dir, on_log,
           should_stop, checkpoint_every, checkpoint_every_s, log_every_s, mesh, on_start, huge_pages,
           notice) -> RunResult:
  """train's work, with the workdir locked and checked."""
  primary = jax.process_index() == 0
  paths = [DEFAULT_CORPUS] if corpus is None else corpus
  native.start_build()   # the native kernels' first build (seconds) overlaps reading the corpus
  # The corpus first: a corpus that cannot be trained on stops the run before anything is written.
  vocab, encoded = corpus_lib.prepare(paths, cfg.min_count, cfg.max_vocab_size,
                                      default_cache_dir() if cache_dir is None else cache_dir, on_notice=notice)
  # settings this vocabulary cannot train with are refused before the workdir is made (fit checks them too)
  batches.check_settings(batch_size=cfg.batch_size, window=cfg.window, neg=cfg.neg, vocab_size=len(vocab.words))

  def check_space(checkpoint_bytes: int) -> None:   # before anything is compiled; process 0's verdict for all
    refused = None
    if workdir is not None and primary:
      try:
        steps = cfg.epochs * -(-len(encoded.tokens) // (cfg.batch_size * cfg.steps_per_call))
        disk.check_run(workdir, checkpoint_bytes, vocab.words, vocab.counts, cfg.dim, binary, steps + cfg.epochs)
      except W2VError as e:
        refused = e
    if workdir is not None and (distributed.agree_flag(refused is not None) or refused is not None):
      raise refused or W2VError(f"process 0 refused --workdir={workdir} (its error says why)")

  history: list[dict] = []
  if workdir is not None:
    workdir.mkdir(parents=True, exist_ok=True)
    if primary and not resume:
      (workdir / "metrics.jsonl").unlink(missing_ok=True)
    elif primary and (workdir / "metrics.jsonl").exists():
      history = _records_up_to(workdir, checkpoint.position(workdir))
  plotter = None if workdir is None else _Plotter(workdir, cfg)
  log = on_log if workdir is None or not primary else _run_logger(workdir, cfg, history, on_log, plotter)
  try:
    fit = loop.fit(cfg, vocab, encoded, workdir=workdir, resume=resume, on_log=log,
                        should_stop=should_stop, log_every_s=log_every_s, checkpoint_every=checkpoint_every,
                        checkpoint_every_s=checkpoint_every_s,
                        mesh=mesh, on_start=on_start, huge_pages=huge_pages, wait_for_checkpoint=False,
                        check_space=check_space)
  finally:
    if plotter is not None:
      plotter.wait()
  try:   # the last checkpoint is written in the background meanwhile (772 MB at V = 965k: about 3 s)
    model = engine.configured_model(cfg, vocab.counts, vocab.words)   # (built for the run: cached)
    vectors = export_vectors(fit.params, cfg.eval_with, model)
    evaluation = evaluate_vectors(vocab.words, vectors, cfg.analogy_method)
    # a resumed run's final loss is its last epoch's over both sessions (metrics.jsonl's records and this one's)
    summary = make_summary(cfg, vocab, encoded, fit, evaluation, history if history else None)
    if workdir is not None and primary:
      vectors_io.save_text(workdir / "vectors.txt", vocab.words, vectors)
      if model.write_files is not None:   # the model's own files (subwords.npz)
        model.write_files(workdir, fit.params)
      if binary:
        vectors_io.save_binary(workdir / "vectors.bin", vocab.words, vectors)
      vocab.save(workdir / "vocab.tsv")
      if history:
        draw_loss(workdir, cfg, history)
      # the last checkpoint on disk before summary.json says the run finished: a run whose checkpoint could
      # not be written (a full disk) has no summary, so --resume continues it from the one before
      fit.checkpoint_writer.wait()
      write_atomic(workdir / "summary.json", lambda f: f.write((json.dumps(summary, indent=2) + "\n").encode()))
  except BaseException:
    fit.checkpoint_writer.wait(quiet=True)   # waited for; this error, not the write's, is the one reported
    raise
  fit.checkpoint_writer.wait()   # on disk before the run returns; its error, if any, raised here
  return RunResult(cfg, fit.params, vocab, fit.history, evaluation, summary, workdir, model)


def _number(x):
  """JSON has no NaN: an undefined score (e.g. no WS-353 pair in a tiny vocabulary) becomes null."""
  return None if x is None or x != x else x


def make_summary(cfg: TrainConfig, vocab: Vocab, encoded, fit: loop.FitResult, evaluation: dict,
                 history: list[dict] | None = None) -> dict:
  """What summary.json holds. `history`: the whole run's log records where it spans several sessions (a
  resumed run), else fit.history; train_seconds and words_per_sec are this session's."""
  an, ws = evaluation["analogy"], evaluation["word_similarity"]
  records = fit.history if history is None else history
  # final_loss: the mean loss per prediction over the last epoch trained (the records are interval means)
  last = [r for r in records if records and r["epoch"] == records[-1]["epoch"]]
  final = sum(r["loss"] * r["predictions"] for r in last) / max(sum(r["predictions"] for r in last), 1.0)
  return {
      "model": cfg.model, "dim": cfg.dim, "window": cfg.window, "neg": cfg.neg, "epochs": cfg.epochs,
      "vocab_size": len(vocab.words), "corpus_words": int(encoded.stats.raw_words),
      "train_seconds": fit.train_seconds, "compile_seconds": fit.compile_seconds,
      "words_per_sec": fit.words_trained / max(fit.train_seconds, 1e-9),
      "final_loss": final if last else None,
      "analogy_accuracy": an["accuracy"], "analogy_semantic": an["semantic"],
      "analogy_syntactic": an["syntactic"], "analogy_questions": an["n_total"],
      "ws353_spearman": _number(ws["spearman"]), "ws353_oov_rate": ws["oov_rate"],
      "simlex999_spearman": _number(evaluation["simlex999"]["spearman"]),
      "simlex999_oov_rate": evaluation["simlex999"]["oov_rate"],
      "status": fit.status, "replaced_chars": encoded.stats.replaced_chars,
      "backend": jax.default_backend(), "engine": fit.engine, "pages": fit.pages,
      "threads": fit.threads, "config": json.loads(cfg.to_json()),
  }


def probe_words(vocab: Vocab, k: int = 5) -> list[str]:
  """A few words to show neighbours of: familiar ones if present, else the most frequent."""
  found = [w for w in PROBE_WORDS if w in vocab.index]
  return (found or vocab.words)[:k]
