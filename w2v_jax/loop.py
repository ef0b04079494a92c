"""The training loop: epochs of jitted step chunks, interval metrics, checkpoints, a clean stop.

The library prints nothing: the chosen step goes to `on_start(engine)`, progress to `on_log(record)`, and
`should_stop()` lets a signal handler end the run at the next chunk boundary (a checkpoint is written there).

Checkpoints (with a workdir) are taken by time, every `checkpoint_every_s` seconds of training, and/or every
`checkpoint_every` steps, at a chunk boundary; and at the end. Each is copied to the host on the training
thread (the only stall: one copy of the tables) and written by a background thread (checkpoint.Writer),
atomically, while the next chunks run. A run on several processes checkpoints by steps only (default 2000):
a clock would not fire on the same chunk everywhere, and every process takes part in gathering the state.
"""
import concurrent.futures
import dataclasses
import json
import os
import threading
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import batches, checkpoint, distributed, engine, models, native, pages, sampling
from w2v_jax import step as step_lib
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from w2v_jax.types import Params


BLOWUP = 50.0   # an interval loss this many times the first one is a divergence, finite or not


class Diverged(W2VError):
  """The loss became non-finite, or blew up; the last good checkpoint was kept."""


@dataclasses.dataclass
class FitResult:
  params: Params
  history: list[dict]           # one record per log step
  status: str                   # "finished" or "interrupted"
  train_seconds: float          # wall time of the steps, first compile included (not the last
                                # checkpoint's write, nor a finished run's copy of the tables for it)
  compile_seconds: float        # time the run waited for compilation (see `CompiledAhead`)
  words_trained: float          # raw corpus words covered (epochs x words, or less if interrupted)
  engine: dict                  # engine.StepSpec.describe(): which step ran, and why
  pages: str = ""               # pages.place's line: how much of the tables was on huge pages, or why none
  threads: str = ""             # native.Contention.describe() of this run's fused steps ("" where none ran)
  checkpoint_writer: checkpoint.Writer | None = None   # wait(): the last checkpoint on disk, or its error


def epoch_data(cfg: TrainConfig, vocab, corpus, epoch: int,
               noise: sampling.AliasTable | None = None) -> batches.EpochData:
  """The epoch's subsample (host numpy, seeded by (seed, epoch)), padded to the corpus length. `noise`:
  sampling.noise_alias of the vocabulary, built here if not given (the same for every epoch)."""
  keep = sampling.keep_probs(vocab.counts, cfg.sample)
  tok, sent = sampling.subsample(corpus, keep, cfg.seed, epoch, cfg.subsampling)
  if len(tok) == 0:
    raise W2VError(f"--sample={cfg.sample} kept no words in epoch {epoch}: raise --sample or use 0")
  n = len(corpus.tokens)   # a fixed length, so the chunk is compiled once for every epoch
  tokens = np.zeros(n, np.int32)
  tokens[:len(tok)] = tok
  sents = np.full(n, -1, np.int32)
  sents[:len(sent)] = sent
  if noise is None:
    noise = sampling.noise_alias(vocab.counts, cfg.ns_exponent)
  noise = jax.tree.map(jnp.asarray, noise)
  return batches.EpochData(jnp.asarray(tokens), jnp.asarray(sents), noise,
                            batches.epoch_key(cfg.seed, epoch),
                            jnp.int32(batches.num_batches(len(tok), cfg.batch_size)), jnp.int32(epoch))


class EpochsAhead:
  """Each epoch's data, drawn one epoch ahead on a background thread: `get(e)` returns epoch e's
  `epoch_data` and starts drawing e + 1's, so the host's subsampling and upload for the next epoch run
  while this one trains instead of between the two. The noise alias table is built there first, from
  the start of `fit` on, while the tables are initialised, and then `first_epoch`'s data, when the caller
  knows which epoch comes first (a fresh run: 0), so the first epoch's draw overlaps the initialisation
  too. The same data as drawing each epoch when it starts (`epoch_data` is a pure function of (seed,
  epoch)); an epoch asked for that was not drawn ahead is drawn then. With a mesh the epochs are drawn
  on the training thread (distributed.epoch_data agrees across processes), only the table ahead."""

  def __init__(self, cfg: TrainConfig, vocab, corpus, mesh=None, first_epoch: int | None = None):
    self._args, self._mesh = (cfg, vocab, corpus), mesh
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="w2v-epochs-ahead")
    self._noise = self._pool.submit(sampling.noise_alias, vocab.counts, cfg.ns_exponent)
    self._next: tuple[int, concurrent.futures.Future] | None = None
    if mesh is None and first_epoch is not None and first_epoch < cfg.epochs:
      self._next = (first_epoch, self._pool.submit(self._draw, first_epoch))

  def _draw(self, epoch: int) -> batches.EpochData:
    # Waits here, on this thread, for the arrays' transfer to the device: jnp.asarray returns before
    # the copy is done, and left pending it ran inside the first chunk call (docs/performance.md,
    # "The first chunk call at V ≈ 1M").
    return jax.block_until_ready(epoch_data(*self._args, epoch, self._noise.result()))

  def get(self, epoch: int) -> batches.EpochData:
    cfg, vocab, corpus = self._args
    if self._mesh is not None:
      return distributed.epoch_data(cfg, vocab, corpus, epoch, self._mesh, self._noise.result())
    if self._next is not None and self._next[0] == epoch:
      data = self._next[1].result()   # raises what the drawing raised
    else:
      data = self._draw(epoch)
    self._next = (epoch + 1, self._pool.submit(self._draw, epoch + 1)) if epoch + 1 < cfg.epochs else None
    return data

  def close(self) -> None:
    self._pool.shutdown(wait=False, cancel_futures=True)


class CompiledAhead:
  """The jitted chunk, compiled on a background thread from the shapes alone, while the caller initialises
  the tables and draws the first epoch (the figures are in docs/performance.md). Calling it waits for
  the compilation, then runs the compiled chunk: the same computation as calling `chunk`. `waited` is the
  time callers spent waiting. A failed compilation raises at the call."""

  def __init__(self, chunk, spec: engine.StepSpec, cfg: TrainConfig, vocab, corpus):
    V, n = len(vocab.words), len(corpus.tokens)
    columns = sampling.alias_columns(V)   # the table's shape, without building it
    noise = sampling.AliasTable(jax.ShapeDtypeStruct((columns,), jnp.uint32),
                                jax.ShapeDtypeStruct((columns,), jnp.int32))
    i32 = jax.ShapeDtypeStruct((), jnp.int32)
    data = batches.EpochData(jax.ShapeDtypeStruct((n,), jnp.int32), jax.ShapeDtypeStruct((n,), jnp.int32),
                             noise, jax.eval_shape(lambda: batches.epoch_key(cfg.seed, 0)), i32, i32)
    state = jax.eval_shape(lambda: spec.init(models.init(jax.random.PRNGKey(0), V, cfg.dim,
                                                         extra_in_rows=spec.model.extra_in_rows)))
    self._fn, self._error, self.waited = None, None, 0.0

    def run():
      try:
        self._fn = chunk.lower(state, data, i32).compile()
      except BaseException as e:   # raised on the training thread, at its first call
        self._error = e
    # Not a daemon: a run that fails before its first call (say, --resume into another run's workdir)
    # leaves the compilation going, and a daemon thread still inside XLA when the interpreter finalises
    # aborts the process ("FATAL: exception not rethrown"); Python joins a non-daemon thread first.
    self._thread = threading.Thread(target=run, name="w2v_jax-compile", daemon=False)
    self._thread.start()

  def __call__(self, state, data, first):
    if self._fn is None:
      t = time.perf_counter()
      self._thread.join()
      self.waited += time.perf_counter() - t
      if self._error is not None:
        raise self._error
    return self._fn(state, data, first)


def fingerprint(cfg: TrainConfig, vocab, corpus) -> dict:
  """What a checkpoint must match to be resumed: the config and the data it was trained on."""
  return {"config": cfg.to_json(), "vocab_size": len(vocab.words), "tokens": int(len(corpus.tokens)),
          "raw_words": int(corpus.stats.raw_words)}


def _differences(saved_meta: dict, meta: dict) -> str:
  """What differs between a checkpoint's fingerprint and this run's, for the error that refuses it."""
  saved, new = saved_meta.get("fingerprint") or {}, json.loads(meta["config"])
  try:
    old = json.loads(saved.get("config", "{}"))
  except (TypeError, ValueError):   # a fingerprint from another version, or damaged
    old = {}
  said = [f"--{k}={old[k]} there, {new[k]} here" for k in sorted(new) if k in old and old[k] != new[k]]
  said += [f"{k}: {saved[k]} there, {meta[k]} here"
           for k in meta if k != "config" and k in saved and saved[k] != meta[k]]
  return "; ".join(said) or "other settings or corpus"


def check_memory(cfg: TrainConfig, vocab_size: int, extra_in_rows: int = 0) -> str | None:
  """Refuses (W2VError) a run whose tables, or whose steps' batches, cannot fit this machine's memory (on
  the CPU, where the tables live in it); returns a warning where they fit but a whole run may not, else
  None. The tables are 2 x V x D float32, and a run holds up to about 4x that at its peak: the tables, the
  host copy a checkpoint writes, the exported vectors and the evaluation's normalised copy. `extra_in_rows`:
  W_in's rows after the V words' (Model.extra_in_rows)."""
  if jax.default_backend() != "cpu":
    return None
  try:
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):   # not a POSIX system that says
    return None
  tables = (2 * vocab_size + extra_in_rows) * cfg.dim * 4
  slots = cfg.steps_per_call * cfg.batch_size * (2 * cfg.window + cfg.neg + 2) * 4 * 4   # ids, masks, ...
  gb = lambda x: f"{x / 1e9:,.1f} GB"
  if 2 * tables > physical:
    extra = f" + {extra_in_rows:,} rows" if extra_in_rows else ""
    raise W2VError(f"the tables need {gb(tables)} (2 x {vocab_size:,} words{extra} x dim {cfg.dim} float32) and "
                   f"a run holds at least two copies; this machine has {gb(physical)}: lower --dim, or shrink the "
                   "vocabulary (--min_count, --max_vocab_size)" + (" or --buckets" if extra_in_rows else ""))
  if slots > physical // 2:
    raise W2VError(f"a call's batches need about {gb(slots)} (--steps_per_call={cfg.steps_per_call} x "
                   f"--batch_size={cfg.batch_size:,} x the window's and negatives' slots); this machine has "
                   f"{gb(physical)}: lower --batch_size or --steps_per_call")
  if 4 * tables > physical:
    return (f"the tables take {gb(tables)} of this machine's {gb(physical)}, and a run can need about 4x that at "
            "its peak (a checkpoint's copy, the exported vectors, the evaluation): it may run out of memory; "
            "lower --dim, or shrink the vocabulary")
  return None


def checkpoint_bytes(spec: engine.StepSpec, cfg: TrainConfig, vocab_size: int) -> int:
  """A checkpoint's size: the state's leaves (from their shapes alone: nothing is made), with room for the
  .npz's headers and the fingerprint."""
  state = jax.eval_shape(lambda: spec.init(models.init(jax.random.PRNGKey(0), vocab_size, cfg.dim,
                                                       extra_in_rows=spec.model.extra_in_rows)))
  leaves = jax.tree.leaves(state)
  return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in leaves) + 512 * (len(leaves) + 2) + 8192


class _Logger:
  """The run's interval metrics: each chunk's Metrics are added up on the device (`add`), and at a log
  point (`log`) fetched (the only host sync of a step), checked for divergence, and made a record for
  `history` and `on_log`. `kept()` says what a divergence leaves behind, for its error."""

  def __init__(self, cfg: TrainConfig, raw_words: float, on_log, kept: Callable[[], str]):
    self.cfg, self.raw_words, self.on_log, self.kept = cfg, raw_words, on_log, kept
    self.history: list[dict] = []
    self.zeros = step_lib.Metrics(*(jnp.zeros((), jnp.float32),) * 4)
    self.acc = self.zeros
    self.t0 = self.t_log = time.perf_counter()
    self.words_start = self.words_log = None   # raw words covered where this session began, and at the last log

  def words_at(self, epoch: int, step: int, steps: int) -> float:
    return self.raw_words * (epoch + min(step, steps) / steps)

  def begin(self, epoch: int, step: int, steps: int) -> None:
    if self.words_start is None:
      self.words_start = self.words_log = self.words_at(epoch, step, steps)

  def add(self, metrics: step_lib.Metrics) -> None:
    self.acc = jax.tree.map(jnp.add, self.acc, metrics)

  def due(self, every_s: float) -> bool:
    return time.perf_counter() - self.t_log >= every_s

  def log(self, epoch: int, step: int, steps: int, final: bool = False) -> None:
    """Fetches the interval's metrics, checks them (Diverged), and logs a record."""
    cfg = self.cfg
    m, self.acc = jax.device_get(self.acc), self.zeros
    loss = float(m.loss_sum / max(m.predictions, 1.0))
    if not np.isfinite(loss):
      raise Diverged(f"the loss became non-finite in epoch {epoch + 1} near step {step} with "
                     f"--lr={cfg.learning_rate}: lower --lr ({self.kept()})")
    if m.examples == 0:
      return
    # A finite loss can have blown up too (seen: 2e23 per pair after a few epochs of sgram_neg at K = 15):
    # far above where the run started, it is stopped the same way, before a checkpoint of it is written.
    first = self.history[0]["loss"] if self.history else None
    if first is not None and loss > BLOWUP * max(first, 1.0):
      raise Diverged(f"the loss blew up in epoch {epoch + 1} near step {step} ({first:.3g} per prediction at "
                     f"the start, {loss:.3g} now) with --lr={cfg.learning_rate}: lower --lr ({self.kept()})")
    now, words = time.perf_counter(), self.words_at(epoch, step, steps)
    total = self.raw_words * cfg.epochs
    rate = (words - self.words_log) / max(now - self.t_log, 1e-9)
    record = {"epoch": epoch + 1, "step": min(step, steps), "progress": words / total, "loss": loss,
              "loss_per_example": float(m.loss_sum / max(m.examples, 1.0)),
              "examples": float(m.examples), "pairs": float(m.pairs), "predictions": float(m.predictions),
              "lr": float(step_lib.linear_lr(cfg.learning_rate, cfg.min_lr_ratio, words / total)),
              "words_per_sec": rate, "elapsed_s": now - self.t0, "eta_s": (total - words) / max(rate, 1e-9),
              "final": final}
    self.history.append(record)
    if self.on_log is not None:
      self.on_log(record)
    self.t_log, self.words_log = now, words


class _Checkpointer:
  """The run's checkpoints (with a workdir): due every `every_s` seconds of training and/or every
  `every_steps` steps (a run on several processes: by steps only, default 2000, since a clock would not
  fire on the same chunk everywhere); each copied to the host (`to_host`: gathered from a mesh) on the
  training thread and written by checkpoint.Writer in the background, by process 0."""

  def __init__(self, workdir, meta: dict, position: checkpoint.Position, every: int, every_s: float,
               to_host: Callable):
    self.workdir, self.meta, self.to_host = workdir, meta, to_host
    self.writer = checkpoint.Writer()
    self.every_s = every_s if every_s and jax.process_count() == 1 else 0.0
    self.every_steps = every or (2000 if jax.process_count() > 1 else 0)
    self.t = time.perf_counter()
    self.saved_at = position if tuple(position) != (0, 0) else None   # what a divergence leaves in place

  def due(self, steps_done: int, steps_per_call: int) -> bool:
    return self.workdir is not None and (
        (self.every_steps > 0 and steps_done % self.every_steps < steps_per_call)
        or (self.every_s > 0 and time.perf_counter() - self.t >= self.every_s))

  def save(self, state, epoch: int, step: int, steps: int) -> None:
    self.t = time.perf_counter()
    if self.workdir is None:
      return
    where = checkpoint.Position(epoch, step) if step < steps else checkpoint.Position(epoch + 1, 0)
    self.saved_at = where
    saved = self.to_host(state)   # with a mesh: gathered on every process, written by process 0
    if jax.process_index() == 0:
      self.writer.save(self.workdir, saved, where, {"fingerprint": self.meta})   # in the background

  def kept(self) -> str:
    if self.workdir is None:
      return "no workdir, so no checkpoint"
    if self.saved_at is None:
      return "no checkpoint had been written yet"
    return f"the last good checkpoint, at epoch {self.saved_at.epoch + 1} step {self.saved_at.step}, was kept"


def _select(cfg: TrainConfig, vocab, corpus, mesh, on_start, check_space, checkpoint_every: int,
            checkpoint_every_s: float):
  """The run's settings checked, its step chosen and said (on_start), and its chunk jitted (compiled
  ahead on one device): (spec, chunk)."""
  batches.check_settings(batch_size=cfg.batch_size, window=cfg.window, neg=cfg.neg,
                         vocab_size=len(vocab.words))
  if checkpoint_every < 0 or not checkpoint_every_s >= 0:
    raise W2VError(f"--checkpoint_every ({checkpoint_every}) and --checkpoint_every_s ({checkpoint_every_s}) must "
                   "be >= 0 (0 switches that trigger off)")
  spec = engine.select_step(cfg, mesh, counts=vocab.counts, words=vocab.words)
  memory_note = check_memory(cfg, len(vocab.words), spec.model.extra_in_rows)
  if check_space is not None:
    check_space(checkpoint_bytes(spec, cfg, len(vocab.words)))
  if on_start is not None:
    # which step runs, and why: before any compilation (and what memory the run will need, where it is tight)
    on_start({**spec.describe(), **({"memory": memory_note} if memory_note else {})})
  chunk = jax.jit(engine.make_chunk(spec, cfg), donate_argnums=0)
  if mesh is None:   # (the mesh's chunk is built in _initial_state, from the placed state)
    chunk = CompiledAhead(chunk, spec, cfg, vocab, corpus)
  return spec, chunk


class _Start(NamedTuple):
  """Where training starts: the state (placed), the chunk to run it, the position, the pages' line, and
  how to bring the state to the host (checkpoints, the result)."""
  state: object
  chunk: Callable
  position: checkpoint.Position
  pages_line: str
  to_host: Callable


def _initial_state(spec, chunk, cfg: TrainConfig, vocab, *, workdir, resume: bool, mesh, huge_pages,
                   meta: dict) -> _Start:
  """The tables made (on huge pages where pages.place would put them, one device: no copy), or the
  checkpoint's when resuming; placed on the mesh with its sharded chunk where there is one."""
  V = len(vocab.words)
  state = spec.init(pages.init_params(jax.random.PRNGKey(cfg.seed), V, cfg.dim,
                                      huge_pages if mesh is None else False, spec.model.extra_in_rows))
  position = checkpoint.Position(0, 0)
  if resume and workdir is not None and (saved := checkpoint.load(workdir)) is not None:
    saved_state, position, saved_meta = saved
    if saved_meta.get("fingerprint") != meta:
      raise W2VError(f"{workdir} holds a checkpoint of a different run ({_differences(saved_meta, meta)}); "
                     "use another --workdir, or drop --resume")
    state = jax.tree.unflatten(jax.tree.structure(state), [jnp.asarray(x) for x in saved_state])
  if mesh is not None and huge_pages is not False:
    pages_line = "tables on 4 kB pages: huge pages are for one device (placing the state on a mesh copies them)"
  else:
    state, pages_line = pages.place(state, huge_pages)
  if mesh is None:
    return _Start(state, chunk, position, pages_line, lambda s: s)
  state, position = distributed.agree(state, position)   # every process starts where process 0 does
  state = distributed.place_state(state, mesh, V)
  return _Start(state, distributed.shard_chunk(spec, cfg, mesh, state, V), position, pages_line,
                lambda s: distributed.to_host(s, V, mesh))


def fit(cfg: TrainConfig, vocab, corpus, *, workdir=None, resume: bool = False,
        on_log: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] = lambda: False,
        log_every_s: float = 2.0, checkpoint_every: int = 0, checkpoint_every_s: float = 60.0, mesh=None,
        on_start: Callable[[dict], None] | None = None, huge_pages: bool | None = None,
        wait_for_checkpoint: bool = True, check_space: Callable[[int], None] | None = None) -> FitResult:
  """Trains cfg.model on the corpus and returns the tables; see the module docstring for the hooks.

  `wait_for_checkpoint=False` returns while the last checkpoint is still being written (in the
  background), with FitResult.checkpoint_writer to wait on: the caller then owes it a wait() (which
  raises the write's error, if any). api.train writes the vectors meanwhile.

  `huge_pages`: the tables on huge pages on the CPU, on one device (pages.place; None: "auto", for tables
  of at least pages.AUTO_MIN_BYTES; FitResult.pages says what came of it and why). A runtime setting, as
  the mesh is: the same bits either way.

  `check_space(checkpoint_bytes)` is called (on every process) before anything is compiled or made, with
  the size of one checkpoint of this run's state, so the caller can refuse a workdir with no room for it.

  The step is engine.select_step(cfg, mesh)'s (`_select`). With a `mesh` (distributed.make_mesh) its
  chunk runs sharded on it (distributed.py); the returned params, the checkpoints and the metrics are the
  same host-side arrays as without one. The pieces: `_select` (the step and its chunk), `_initial_state`
  (the tables, or a checkpoint's), `_Logger` (the metrics and divergence), `_Checkpointer`, `EpochsAhead`.
  """
  spec, chunk = _select(cfg, vocab, corpus, mesh, on_start, check_space, checkpoint_every, checkpoint_every_s)
  meta = fingerprint(cfg, vocab, corpus)
  # the noise table and (unless resuming: its epoch is not known yet) epoch 0, while the tables are made
  epochs_ahead = EpochsAhead(cfg, vocab, corpus, mesh, first_epoch=None if resume else 0)
  try:   # until the training loop's own try: a setup that fails stops the drawing ahead too
    start = _initial_state(spec, chunk, cfg, vocab, workdir=workdir, resume=resume, mesh=mesh,
                           huge_pages=huge_pages, meta=meta)
  except BaseException:
    epochs_ahead.close()
    raise
  # The tables are made asynchronously: waited for here, or their making would be timed as the first
  # chunk call's (0.4-0.5 s at V = 965k, reported as compilation).
  state = jax.block_until_ready(start.state)
  ckpt = _Checkpointer(workdir, meta, start.position, checkpoint_every, checkpoint_every_s, start.to_host)
  log = _Logger(cfg, float(corpus.stats.raw_words), on_log, ckpt.kept)
  contention_start, status, calls, compile_s, t_steps = native.contention(), "finished", 0, 0.0, None
  epoch, first, steps = start.position.epoch, start.position.step, 1
  try:
    for epoch in range(start.position.epoch, cfg.epochs):
      data = epochs_ahead.get(epoch)
      steps, first = int(data.steps), start.position.step if epoch == start.position.epoch else 0
      log.begin(epoch, first, steps)
      while first < steps and status == "finished":
        t_call = time.perf_counter()
        state, m = start.chunk(state, data, jnp.int32(first))
        log.add(m)
        first, calls = first + cfg.steps_per_call, calls + 1
        if calls <= 2:   # the first call's excess over the second (steady) one is compilation, or the wait
          jax.block_until_ready(m)   # for CompiledAhead's
          compile_s += (1 if calls == 1 else -1) * (time.perf_counter() - t_call)
        stop, due = should_stop(), ckpt.due(calls * cfg.steps_per_call, cfg.steps_per_call)
        if stop or due or log.due(log_every_s):
          log.log(epoch, first, steps)   # raises Diverged before a bad checkpoint is written
          if stop or due:
            ckpt.save(state, epoch, first, steps)
        status = "interrupted" if stop else status
      if status == "interrupted":
        break
      if epoch < cfg.epochs - 1:   # a record ends with its epoch, so summary's last-epoch loss is that epoch's
        log.log(epoch, first, steps)
    if status == "finished":
      log.log(epoch, first, steps, final=True)
      t_steps = time.perf_counter()   # the final checkpoint is not training: its write is not timed as such
      ckpt.save(state, cfg.epochs, 0, 1)
  except BaseException:
    ckpt.writer.wait(quiet=True)   # the last good checkpoint is on disk before the error leaves
    raise
  finally:
    epochs_ahead.close()
  train_s = (time.perf_counter() if t_steps is None else t_steps) - log.t0   # not the wait below, either way
  if wait_for_checkpoint:
    ckpt.writer.wait()
  jax.block_until_ready(state)
  words_end = log.raw_words * cfg.epochs if status == "finished" else log.words_at(epoch, first, steps)
  return FitResult(start.to_host(state).params, log.history, status, train_s, max(compile_s, 0.0),
                   words_end - (words_end if log.words_start is None else log.words_start), spec.describe(),
                   start.pages_line, (native.contention() - contention_start).describe(), ckpt.writer)
