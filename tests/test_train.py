"""The training engine: both step paths agree, the chunk compiles once, training learns planted
structure, and runs are reproducible and resumable bit for bit."""
import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from w2v_jax import api, batches, checkpoint, engine, models, loop
from w2v_jax import rows as rows_lib
from w2v_jax import step as step_lib
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from tests.helpers import awkward_batch, group_purity, jax_step, planted_corpus, random_params

TINY = dict(dim=16, window=2, neg=3, epochs=3, min_count=1, sample=0.0, batch_size=64, steps_per_call=4)


@pytest.mark.parametrize("name", models.NAMES)
def test_fast_step_equals_research_step_with_optax_sgd(name):
  rng = np.random.default_rng(0)
  V, B = 13, 8
  params, batch = random_params(rng, V, 5), awkward_batch(rng, V, B, 4, 3)
  lr = 0.1
  fast = jax_step(name, cbow_context_grad="mean", sgram_neg_form="shared").step
  (fast_state, fast_m) = jax.jit(fast)(step_lib.TrainState(params), batch, lr)
  model = models.get(name)
  init, research = step_lib.make_research_step(model.example_loss, model.per_pair, optax.sgd)
  (res_state, res_m) = jax.jit(research)(init(params), batch, lr * B)   # the mean loss: lr · B
  for a, b in zip(fast_state.params, res_state.params):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
  np.testing.assert_allclose(fast_m.loss_sum, res_m.loss_sum, rtol=1e-6)


def test_word2vec_cbow_rule_differs_from_the_exact_step_only_in_w_in():
  rng = np.random.default_rng(1)
  params, batch = random_params(rng, 11, 4), awkward_batch(rng, 11, 6, 4, 2)
  exact = jax_step("cbow_neg", cbow_context_grad="mean").step(step_lib.TrainState(params), batch, 0.1)
  w2v = jax_step("cbow_neg", cbow_context_grad="sum").step(step_lib.TrainState(params), batch, 0.1)
  exact, w2v = exact[0].params, w2v[0].params
  np.testing.assert_allclose(exact.W_out, w2v.W_out, rtol=1e-12)
  assert not np.allclose(exact.W_in, w2v.W_in)


def _fit(tmp_path, fit_kw=None, **kw):
  from w2v_jax import corpus
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(**{**TINY, **kw})
  vocab, enc = corpus.prepare([path], cfg.min_count, cache_dir=tmp_path / "cache")
  return vocab, loop.fit(cfg, vocab, enc, **{"log_every_s": 0.0, **(fit_kw or {})})


@pytest.mark.parametrize("model", models.NAMES)
def test_training_learns_the_planted_groups(tmp_path, model):
  vocab, result = _fit(tmp_path, model=model, epochs=4)
  losses = [r["loss"] for r in result.history]
  assert result.status == "finished" and losses[-1] < losses[0]
  vectors = np.asarray(result.params.W_in)
  assert group_purity(vocab.words, vectors) > 0.9
  untrained = np.asarray(models.init(jax.random.PRNGKey(0), len(vocab.words), 16).W_in)
  assert group_purity(vocab.words, untrained) < 0.5        # the test can fail: chance is 11/47


def test_research_path_with_adam_learns_too(tmp_path):
  vocab, result = _fit(tmp_path, model="sgram_neg", optimizer="adam", optimizer_on="tables", lr=0.01)
  assert "research path" in result.engine["step"]
  assert group_purity(vocab.words, np.asarray(result.params.W_in)) > 0.9


def test_chunk_is_traced_once_across_epochs(tmp_path, monkeypatch):
  traces = []
  select = engine.select_step

  def counting(*args, **kw):
    spec = select(*args, **kw)
    def counted(fn):
      def wrapped(*a):
        traces.append(1)                 # runs only while jax traces
        return fn(*a)
      return wrapped
    # The chunk calls one of them: `steps` (a chunk's steps in one fused call) where there is one.
    return spec._replace(step=counted(spec.step), steps=spec.steps and counted(spec.steps))
  monkeypatch.setattr(engine, "select_step", counting)
  _, result = _fit(tmp_path, epochs=3)
  assert result.status == "finished" and len(traces) == 1


@pytest.mark.parametrize("model", ["cbow_neg", "sgram", "cbow_hs"])
def test_compile_ahead_runs_the_same_chunk(tmp_path, model):
  """loop.fit compiles its chunk on a thread from the shapes alone (loop.CompiledAhead), while the tables
  are initialised: the compiled chunk must give the jitted chunk's result on the real arguments (a shape or
  dtype it got wrong would fail at the call), and a compilation that fails must raise at the call."""
  from w2v_jax import corpus
  cfg = TrainConfig(**{**TINY, "model": model})
  vocab, enc = corpus.prepare([planted_corpus(tmp_path / "planted.txt")], cfg.min_count,
                              cache_dir=tmp_path / "cache")
  spec = engine.select_step(cfg, counts=vocab.counts)
  plain = jax.jit(engine.make_chunk(spec, cfg))
  ahead = loop.CompiledAhead(plain, spec, cfg, vocab, enc)
  state = spec.init(models.init(jax.random.PRNGKey(cfg.seed), len(vocab.words), cfg.dim))
  data = loop.epoch_data(cfg, vocab, enc, 1)
  a, b = ahead(state, data, jnp.int32(3)), plain(state, data, jnp.int32(3))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert np.array_equal(np.asarray(x), np.asarray(y))
  assert float(a[1].examples) > 0

  def broken(state, data, first):
    raise ValueError("a chunk that cannot be traced")
  late = loop.CompiledAhead(jax.jit(broken), spec, cfg, vocab, enc)
  with pytest.raises(ValueError, match="cannot be traced"):
    late(state, data, jnp.int32(0))


def test_same_seed_gives_identical_vectors_and_other_seed_differs(tmp_path):
  _, a = _fit(tmp_path, seed=3)
  _, b = _fit(tmp_path, seed=3)
  _, c = _fit(tmp_path, seed=4)
  assert np.array_equal(a.params.W_in, b.params.W_in) and np.array_equal(a.params.W_out, b.params.W_out)
  assert not np.array_equal(a.params.W_in, c.params.W_in)


def test_divergent_learning_rate_stops_with_a_clear_error_and_says_what_checkpoint_is_left(tmp_path):
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(**{**TINY, "lr": 1e30})
  # it diverges at the first log step, before any checkpoint: the error must not promise one
  with pytest.raises(loop.Diverged, match="lower --lr .no checkpoint had been written yet"):
    api.train(cfg, [path], tmp_path / "run", cache_dir=tmp_path / "cache", checkpoint_every=4,
              log_every_s=0.0)
  assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_resume_after_interruption_ends_with_identical_vectors(tmp_path):
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(**TINY)
  common = dict(cache_dir=tmp_path / "cache", checkpoint_every=8)
  api.train(cfg, [path], tmp_path / "whole", **common)
  calls = iter(range(1000))
  part = api.train(cfg, [path], tmp_path / "part", should_stop=lambda: next(calls) == 5, **common)
  assert part.summary["status"] == "interrupted"
  saved = checkpoint.load(tmp_path / "part")
  assert saved is not None and saved[1] != checkpoint.Position(cfg.epochs, 0)
  with pytest.raises(Exception, match="already holds a run"):
    api.train(cfg, [path], tmp_path / "part", **common)
  # a run killed between two checkpoints has logged steps its checkpoint lacks: a record past it, planted
  metrics = tmp_path / "part" / "metrics.jsonl"
  records = [json.loads(line) for line in metrics.read_text().splitlines()]
  metrics.write_text(metrics.read_text() + json.dumps({**records[-1], "step": records[-1]["step"] + 1,
                                                       "loss": 1e6}) + "\n" + '{"epoch": 2, "st')   # + half a line
  resumed = api.train(cfg, [path], tmp_path / "part", resume=True, **common)
  assert resumed.summary["status"] == "finished"
  assert (tmp_path / "part" / "vectors.txt").read_bytes() == (tmp_path / "whole" / "vectors.txt").read_bytes()
  # the final loss is the last epoch's over both sessions, as the uninterrupted run's; the planted record went
  whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
  assert resumed.summary["final_loss"] == pytest.approx(whole["final_loss"], rel=1e-6)
  assert all(json.loads(line)["loss"] < 1e6 for line in metrics.read_text().splitlines())
  with pytest.raises(Exception, match="different run") as refused:
    api.train(TrainConfig(**{**TINY, "dim": 8, "steps_per_call": 8}), [path], tmp_path / "part", resume=True,
              **common)
  # the message names what differs, and nothing else
  assert f"--dim={cfg.dim} there, 8 here" in str(refused.value)
  assert f"--steps_per_call={cfg.steps_per_call} there, 8 here" in str(refused.value)
  assert "--epochs" not in str(refused.value) and "vocab_size" not in str(refused.value)


@pytest.mark.parametrize("model", ["cbow_neg", "sgram_neg"])
def test_steps_per_call_changes_the_time_not_the_bytes(tmp_path, model):
  """How many steps one jitted call runs (the default went from 16 to 32) only groups the same steps: the
  same tables to the byte, including an epoch whose steps are not a multiple of it (padding steps)."""
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(**{**TINY, "model": model, "epochs": 2})
  out = {}
  for s in (3, 8):
    r = api.train(dataclasses.replace(cfg, steps_per_call=s), [path], tmp_path / f"s{s}",
                  cache_dir=tmp_path / "cache")
    out[s] = (tmp_path / f"s{s}" / "vectors.txt").read_bytes()
  steps = batches.num_batches(r.summary["corpus_words"], cfg.batch_size)   # sample 0: every word is kept
  assert steps % 3 and steps % 8   # both runs end their epochs with padding steps
  assert out[3] == out[8]


def test_duplicate_damping_caps_only_frequent_rows():
  idx = jnp.asarray([3, 3, 3, 3, 1, 2, 2], jnp.int32)
  rows = jnp.ones((7, 2))
  damped = rows_lib.damp_duplicates(idx, rows, 5, max_dup=2.0)
  np.testing.assert_allclose(damped[:, 0], [0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0])   # word 3: 4 > 2 updates
  total = jnp.zeros((5, 2)).at[idx].add(damped)
  assert float(total[3, 0]) == 2.0 and float(total[2, 0]) == 2.0                  # a step moves it max_dup


def test_damping_keeps_a_large_k_run_finite(tmp_path):
  """lr 0.5 on the 48-word planted corpus (every word hundreds of times a step) diverges with plain
  summed updates and trains with the cap."""
  with pytest.raises(loop.Diverged):
    _fit(tmp_path, neg=15, lr=0.5, max_dup=None, batch_size=256)
  vocab, result = _fit(tmp_path, neg=15, lr=0.5, max_dup=1.0, batch_size=256)
  assert np.all(np.isfinite(result.params.W_in))


@pytest.mark.parametrize("every_s, expect_mid_run", [(1e-9, True), (0.0, False)])
def test_checkpoints_are_taken_by_time(tmp_path, every_s, expect_mid_run):
  # By time (the default, every 60 s): with a tiny interval every chunk checkpoints, in the background,
  # so by the third log record an earlier checkpoint is on disk; with none, only the final one is written.
  path = planted_corpus(tmp_path / "planted.txt")
  seen = []
  run = tmp_path / "run"
  api.train(TrainConfig(**TINY), [path], run, cache_dir=tmp_path / "cache", checkpoint_every=0,
            checkpoint_every_s=every_s, log_every_s=0.0,
            on_log=lambda r: seen.append((run / "checkpoint.npz").exists()))
  assert len(seen) >= 4 and any(seen[2:-1]) == expect_mid_run
  assert (run / "checkpoint.npz").exists()


def _before_the_final_checkpoint(monkeypatch, then):
  """checkpoint.save, with then(workdir) run before a TINY run's final checkpoint is written."""
  save = checkpoint.save

  def wrapped(workdir, state, position, meta):
    if position == checkpoint.Position(TINY["epochs"], 0):   # the final one
      then(workdir)
    return save(workdir, state, position, meta)
  monkeypatch.setattr(checkpoint, "save", wrapped)


def test_the_final_checkpoint_is_not_timed_as_training(tmp_path, monkeypatch):
  """A finished run's last checkpoint is written after its steps: its write (made to take 2 s here) is in
  fit's wall time but not in train_seconds, so words/s counts training only. It is on disk when fit
  returns."""
  _before_the_final_checkpoint(monkeypatch, lambda workdir: time.sleep(2.0))
  (tmp_path / "run").mkdir()
  start = time.perf_counter()
  _, result = _fit(tmp_path, fit_kw=dict(workdir=tmp_path / "run", checkpoint_every_s=0.0, log_every_s=2.0))
  wall = time.perf_counter() - start
  assert result.status == "finished" and (tmp_path / "run" / "checkpoint.npz").exists()
  assert result.history[-1]["final"] and wall >= result.train_seconds + 2.0
  # the steps end with the final record (elapsed_s: seconds since the same start); the write is after them
  assert result.train_seconds < result.history[-1]["elapsed_s"] + 1.0, (result.train_seconds, result.history[-1])


def test_the_final_checkpoint_is_written_beside_the_vectors_and_its_error_still_reaches_the_caller(
    tmp_path, monkeypatch):
  """api.train writes the vectors while the last checkpoint is written in the background, and returns
  only once it is on disk; a failed write is raised (one W2VError), after the vectors were written."""
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(**TINY)
  order = []

  def slow(workdir):   # the write waits (up to 30 s) for the vectors: they come while it is pending, or never
    deadline = time.monotonic() + 30.0
    while not (workdir / "vectors.txt").exists() and time.monotonic() < deadline:
      time.sleep(0.05)
    order.append(("checkpoint", (workdir / "vectors.txt").exists()))
  _before_the_final_checkpoint(monkeypatch, slow)
  result = api.train(cfg, [path], tmp_path / "a", cache_dir=tmp_path / "cache", checkpoint_every_s=0.0)
  assert order == [("checkpoint", True)] and (tmp_path / "a" / "checkpoint.npz").exists()
  assert result.summary["train_seconds"] > 0

  def failing(workdir):
    time.sleep(0.5)
    raise W2VError(f"cannot write {workdir / 'checkpoint.npz'}: No space left on device")
  monkeypatch.undo()
  _before_the_final_checkpoint(monkeypatch, failing)
  with pytest.raises(W2VError, match="No space left"):
    api.train(cfg, [path], tmp_path / "b", cache_dir=tmp_path / "cache", checkpoint_every_s=0.0)
  assert (tmp_path / "b" / "vectors.txt").exists()   # the finished work was written first


def test_loss_png_is_redrawn_at_most_every_10_s(tmp_path, monkeypatch):
  """The plotter skips log steps within MIN_INTERVAL_S (or 50x its last redraw) of the previous redraw, the
  first included: at every log step it took 12-20% off the main job's words/s."""
  clock = [100.0]
  drawn = []
  monkeypatch.setattr(api.time, "perf_counter", lambda: clock[0])
  monkeypatch.setattr(api, "draw_loss", lambda workdir, cfg, records: drawn.append(len(records)))
  plotter = api._Plotter(tmp_path, TrainConfig(**TINY))
  for second in range(1, 26):   # a log step each second
    clock[0] = 100.0 + second
    plotter.draw([{}] * second)
    plotter.wait()
  assert drawn == [10, 20]   # at 10 s and 20 s, not at 1..9, 11..19, 21..25


def test_the_auto_duplicate_cap_follows_k():
  assert TrainConfig().dup_cap == 32.0                                  # K = 5: the cap measured with it
  assert TrainConfig(neg=2).dup_cap == 32.0
  assert TrainConfig(neg=15).dup_cap == 12.0                            # 192 predictions' worth
  assert TrainConfig(model="cbow", neg=0).dup_cap == 32.0               # no negatives
  assert TrainConfig(neg=15, max_dup=32.0).dup_cap == 32.0              # a number is taken as given
  assert TrainConfig(neg=15, max_dup=None).dup_cap is None
  with pytest.raises(W2VError, match="--max_dup"):
    TrainConfig(max_dup="often").validate()


@pytest.mark.parametrize("kw, cap, says", [
    (dict(neg=15), 12.0, "duplicate cap 12 (--max_dup=auto"),
    (dict(neg=15, max_dup=20.0), 20.0, "duplicate cap 20;"),
    (dict(max_dup=None), None, "no duplicate cap (--max_dup=0)"),
    (dict(optimizer="adam"), None, "lazy adam")])
def test_the_run_says_which_duplicate_cap_it_applies(kw, cap, says):
  """The first line (spec.reason) and summary["engine"] carry the cap in effect, not just "auto"."""
  e = engine.select_step(TrainConfig(model="sgram_neg", **kw)).describe()
  assert e["dup_cap"] == cap and says in e["step"] + e["reason"], e
  if cap is None:
    assert "duplicate cap " not in e["reason"].replace("no duplicate cap", "")


def test_sgram_neg_with_k_15_trains_at_word2vecs_lr_on_real_text(tmp_path):
  """Levy et al.'s k = 15 at word2vec.c's lr 0.025, on the shipped English corpus: a fixed cap of 32
  summed updates blew up in the second epoch (a frequent word's stale updates, each carrying K + 1
  predictions); the auto cap (12 at K = 15) trains, and the vectors learn word similarity."""
  cfg = TrainConfig(model="sgram_neg", neg=15)
  with pytest.raises(loop.Diverged, match="blew up|non-finite"):
    api.train(dataclasses.replace(cfg, max_dup=32.0), cache_dir=tmp_path)
  run = api.train(cfg, cache_dir=tmp_path)
  assert run.summary["status"] == "finished" and run.summary["engine"]["dup_cap"] == 12.0
  assert run.summary["ws353_spearman"] > 0.08 and run.summary["analogy_accuracy"] > 0.01, run.summary


def test_the_final_loss_is_the_last_epochs_whatever_the_log_interval(tmp_path):
  # summary["final_loss"] is the last epoch's mean loss per prediction. A log record used to run on across
  # an epoch's end, so with a long interval the "last epoch" took in earlier, higher losses, and two runs
  # of the same vectors reported different final losses.
  from w2v_jax import corpus
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(**{**TINY, "model": "cbow_neg"})
  vocab, enc = corpus.prepare([path], cfg.min_count, cache_dir=tmp_path / "cache")
  finals = []
  for every_s in (0.0, 1e9):   # a record per chunk; a record per epoch
    fit = loop.fit(cfg, vocab, enc, log_every_s=every_s)
    if every_s:
      assert [r["epoch"] for r in fit.history] == list(range(1, cfg.epochs + 1))
    finals.append(api.make_summary(cfg, vocab, enc, fit, _no_evaluation())["final_loss"])
  first_epoch = [r for r in fit.history if r["epoch"] == 1][0]["loss"]
  assert finals[0] == pytest.approx(finals[1], rel=1e-5) and finals[1] < first_epoch


def _no_evaluation():
  nan = float("nan")
  return {"analogy": {"accuracy": nan, "semantic": nan, "syntactic": nan, "n_total": 0},
          "word_similarity": {"spearman": nan, "oov_rate": nan},
          "simlex999": {"spearman": nan, "oov_rate": nan}}


def test_epochs_drawn_ahead_are_the_epochs_drawn_in_turn(tmp_path, monkeypatch):
  """loop.fit draws epoch e + 1's data on a thread while epoch e trains (loop.EpochsAhead): each epoch
  must get exactly epoch_data's arrays, whether asked in order or from a resumed epoch, and an error in
  drawing an epoch must reach the caller when that epoch is asked for, not before and not lost."""
  from w2v_jax import corpus
  cfg = TrainConfig(**{**TINY, "epochs": 4})
  vocab, enc = corpus.prepare([planted_corpus(tmp_path / "planted.txt")], cfg.min_count,
                              cache_dir=tmp_path / "cache")

  def same(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

  ahead = loop.EpochsAhead(cfg, vocab, enc, first_epoch=0)   # epoch 0 drawn from the start, as in fit
  try:
    got = [ahead.get(e) for e in range(cfg.epochs)]
  finally:
    ahead.close()
  for e, data in enumerate(got):
    assert same(data, loop.epoch_data(cfg, vocab, enc, e)), e
  assert not same(got[0], got[1])   # the epochs differ: the comparison can fail

  resumed = loop.EpochsAhead(cfg, vocab, enc, first_epoch=0)   # a guess that turns out wrong
  try:
    assert same(resumed.get(2), got[2]) and same(resumed.get(3), got[3])
  finally:
    resumed.close()

  real = loop.epoch_data
  def fails_in_epoch_1(cfg, vocab, corpus, epoch, noise=None):
    if epoch == 1:
      raise W2VError("kept no words in epoch 1")
    return real(cfg, vocab, corpus, epoch, noise)
  monkeypatch.setattr(loop, "epoch_data", fails_in_epoch_1)
  failing = loop.EpochsAhead(cfg, vocab, enc, first_epoch=0)
  try:
    assert same(failing.get(0), got[0])   # epoch 1 is being drawn, and fails, behind this
    with pytest.raises(W2VError, match="epoch 1"):
      failing.get(1)
  finally:
    failing.close()


def test_memory_is_checked_against_the_machine_before_training(monkeypatch):
  """The tables (2 x V x D float32) against physical memory: refused where two copies cannot fit, a warning
  where the run's peak (about 4 copies) may not; the batches of a call likewise."""
  pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": (1 << 30) // 4096}   # a 1 GiB machine
  monkeypatch.setattr(loop.os, "sysconf", lambda name: pages[name])
  cfg = TrainConfig(dim=100)
  assert loop.check_memory(cfg, 100_000) is None                    # 80 MB of tables
  assert "may run out of memory" in loop.check_memory(cfg, 500_000)   # 400 MB: 4 copies do not fit
  with pytest.raises(W2VError, match="the tables need 1.6 GB .2 x 2,000,000 words x dim 100"):
    loop.check_memory(cfg, 2_000_000)
  with pytest.raises(W2VError, match="lower --batch_size or --steps_per_call"):
    loop.check_memory(TrainConfig(batch_size=1 << 20), 1000)


def test_an_ablation_run_stopped_before_its_record_is_finished_from_its_checkpoint(tmp_path, monkeypatch):
  """experiments/ablations: a run trained, but stopped in its extra evaluations (before ablation.json): the
  rerun writes its files from the final checkpoint (api.train refuses to resume a finished run otherwise),
  training nothing and keeping the first session's timing."""
  from experiments.ablations import shared
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(**TINY)

  def stop(result):
    raise KeyboardInterrupt
  with pytest.raises(KeyboardInterrupt):
    shared.train_run(cfg, str(path), tmp_path / "run", tmp_path / "cache", extra=stop)
  first = json.loads((tmp_path / "run" / "summary.json").read_text())
  assert (tmp_path / "run" / "checkpoint.npz").exists() and not (tmp_path / "run" / shared.RECORD).exists()
  record = shared.train_run(cfg, str(path), tmp_path / "run", tmp_path / "cache")
  assert record["words_per_sec"] == first["words_per_sec"] and record["final_loss"] == first["final_loss"]
  assert (tmp_path / "run" / shared.RECORD).exists()
