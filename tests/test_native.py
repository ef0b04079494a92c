"""The native CPU backend: its kernels give the bits (row kernels) or the values to rounding (fused steps) of
their pure-JAX definitions, the engine's JAX span step included, and a failed build is said and remembered."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import jax_step, planted_corpus
from tests.test_cli import ROOT, TINY
from w2v_jax import buckets, native, rows as rows_lib
from w2v_jax import step as step_lib

needs_kernel = pytest.mark.skipif(native.builder.compiler() is None or os.environ.get("W2V_JAX_NATIVE") == "0",
                                  reason="no C++ compiler here: the reference path runs instead")


@needs_kernel
def test_the_kernel_builds_and_registers_on_the_cpu():
  assert native.available()


def _parts(rng, V, D, sizes):
  """Rows with the cases a step produces: repeated ids, all-zero (padding) rows, ids out of range."""
  parts = []
  for n in sizes:
    idx = rng.integers(0, 6, n).astype(np.int32)               # few ids: many repeats
    idx[rng.random(n) < 0.3] = rng.integers(0, V, 1)[0]        # one very frequent word
    idx[0], idx[-1] = V, -1                                    # dropped; counted from the end
    rows = rng.normal(size=(n, D)).astype(np.float32)
    rows[rng.random(n) < 0.2] = 0.0                            # padding slots
    parts.append((jnp.asarray(idx), jnp.asarray(rows)))
  return parts


@needs_kernel
@pytest.mark.parametrize("max_dup", [None, 3.0, 32.0])
def test_kernel_equals_reference_bit_for_bit(max_dup):
  rng = np.random.default_rng(0)
  V, D = 40, 24
  table = jnp.asarray(rng.normal(size=(V, D)), jnp.float32)
  parts = _parts(rng, V, D, [20, 7, 40])
  scale = jnp.float32(-0.37)

  def run(native_flag, cap):
    # In a donated scan, as the trainer runs it: the kernel updates the carried table in place. The
    # rows are arguments, not constants, which XLA would fold with other arithmetic than it compiles.
    f = jax.jit(lambda t, parts, scale: jax.lax.scan(
        lambda t, _: ((native.apply_rows if native_flag else rows_lib.apply_rows_reference)(t, parts, scale, cap),
                      None),
        t, None, length=3)[0], donate_argnums=0)
    return np.asarray(f(jnp.array(table), parts, scale))

  want = run(False, max_dup)
  assert np.array_equal(run(True, max_dup), want)
  # The frequent word has more than 3 rows per call and fewer than 32: only the cap of 3 binds, so
  # the comparison above covers the damping.
  assert np.array_equal(want, run(False, None)) == (max_dup != 3.0)


@needs_kernel
@pytest.mark.parametrize("max_dup", [None, 2.0])
def test_span_kernel_equals_reference_bit_for_bit(max_dup):
  rng = np.random.default_rng(1)
  V, D, B, W = 30, 16, 40, 3
  table = jnp.asarray(rng.normal(size=(V, D)), jnp.float32)
  tokens = jnp.asarray(rng.integers(0, 5, B + 2 * W), jnp.int32)          # few words: repeats
  coef = jnp.asarray((rng.random((B, 2 * W)) < 0.6) * rng.normal(size=(B, 2 * W)), jnp.float32)
  vecs = jnp.asarray(rng.normal(size=(B, D)), jnp.float32)

  def run(native_flag, cap):
    apply = native.apply_span_rows if native_flag else rows_lib.apply_span_rows_reference
    f = jax.jit(lambda t, tok, c, v: apply(t, tok, c, v, jnp.float32(-0.3), cap), donate_argnums=0)
    return np.asarray(f(jnp.array(table), tokens, coef, vecs))

  want = run(False, max_dup)
  assert np.array_equal(run(True, max_dup), want)
  assert np.array_equal(want, run(False, None)) == (max_dup is None)   # a cap of 2 binds here
  # And the reference is the per-slot update: slot (b, j) adds coef[b, j] * vecs[b] at its position.
  if max_dup is None:
    slots = np.asarray(kernels_ctx_ids(tokens, B, W))
    rows = (np.asarray(coef)[:, :, None] * np.asarray(vecs)[:, None, :]).reshape(-1, D)
    expect = np.asarray(table).copy()
    np.add.at(expect, slots.reshape(-1), -0.3 * rows)
    np.testing.assert_allclose(want, expect, rtol=1e-5, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("model,rule", [("cbow_neg", "sum"), ("cbow_neg", "mean"), ("sgram_neg", "sum")])
def test_engine_span_step_in_jax_equals_the_fused_kernel(model, rule):
  """What a mesh runs on the span layout (the model's span rows, then rows.py's update) is what the fused
  kernel does on one device, to float rounding."""
  params, span = _cbow_case(6)
  spec = jax_step(model, "span", max_dup=2.0, cbow_context_grad=rule)
  got, m = jax.jit(spec.step)(step_lib.TrainState(params), span, jnp.float32(0.2))
  kernel = native.FUSED_STEPS[spec.model.native_step]
  want, loss = jax.jit(lambda p, s: kernel(p, s, jnp.float32(0.2), 2.0, **dict(spec.model.native_options)))(
      params, span)
  for a, b in zip(got.params, want):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(m.loss_sum, np.sum(loss), rtol=1e-5)
  assert not np.allclose(got.params.W_in, params.W_in)


def test_a_failed_build_is_said_once_and_remembered(tmp_path):
  """CXX pointing nowhere: the run says the kernels are off and where the log is, a second process does not
  try again, and training goes on with the JAX step."""
  env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "W2V_JAX_NATIVE_DIR": str(tmp_path / "native"),
         "JAX_PLATFORMS": "cpu", "W2V_JAX_CACHE": str(tmp_path / "cache")}
  code = "from w2v_jax import native; s = native.status(); print(s.available, s.reason)"
  first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
  assert first.stdout.startswith("False") and "could not be run" in first.stdout and ".log" in first.stdout
  assert list((tmp_path / "native").glob("*.failed"))
  again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
  assert "failed before" in again.stdout
  corpus = planted_corpus(tmp_path / "c.txt")
  out = subprocess.run([sys.executable, "-m", "experiments.train", f"--corpus={corpus}",
                        f"--workdir={tmp_path / 'run'}", *TINY], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  first_line = out.stdout.splitlines()[0]
  assert "native kernels: off" in first_line and "failed before" in first_line, out.stdout
  import json
  engine = json.loads((tmp_path / "run" / "summary.json").read_text())["engine"]
  assert engine["native"] is False and engine["layout"] == "buckets"


def kernels_ctx_ids(tokens, B, W):
  """[B, 2W] word ids of the context slots of a span: slot j of window b is position b + W + o_j."""
  offsets = np.concatenate([np.arange(-W, 0), np.arange(1, W + 1)])
  return np.asarray(tokens)[np.arange(B)[:, None] + W + offsets]


@needs_kernel
def test_training_with_and_without_the_kernels(tmp_path):
  """The fused steps (their own order of adds in the dot products) give the JAX path's vectors to float
  rounding, over a whole (short) run."""
  corpus = planted_corpus(tmp_path / "c.txt")
  tables = {}
  for flag in ("1", "0"):
    for model in ("cbow_neg", "sgram_neg"):
      workdir = tmp_path / f"{model}-{flag}"
      env = {**os.environ, "W2V_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu",
             "W2V_JAX_NATIVE": flag}
      out = subprocess.run([sys.executable, "-m", "experiments.train", f"--corpus={corpus}",
                            f"--workdir={workdir}", f"--model={model}", "--layout=span", *TINY], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
      assert out.returncode == 0, out.stderr
      with np.load(workdir / "checkpoint.npz") as saved:
        tables[model, flag] = {k: saved[k] for k in saved.files}
  for model in ("cbow_neg", "sgram_neg"):
    a, b = tables[model, "1"], tables[model, "0"]
    assert a.keys() == b.keys()
    for k in a:
      if a[k].dtype.kind != "f":
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{model} {k}")
      else:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5, err_msg=f"{model} {k}")


def test_random_permutation_is_a_uniform_permutation():
  n, draws = 8, 4000
  perms = np.asarray(jax.vmap(lambda i: buckets.random_permutation(jax.random.fold_in(jax.random.PRNGKey(0), i),
                                                                   n))(jnp.arange(draws)))
  assert all(sorted(p) == list(range(n)) for p in perms[:200])
  # Where each position lands: uniform over the n places (chi-square, n-1 = 7 dof per position).
  counts = np.stack([np.bincount(perms[:, i], minlength=n) for i in range(n)])
  chi2 = ((counts - draws / n) ** 2 / (draws / n)).sum(axis=1)
  assert chi2.max() < 30, chi2           # p ~ 1e-4 for 7 dof; argsort by position would give ~28000
  # Large n falls back to argsort and is still a permutation.
  big = np.asarray(buckets.random_permutation(jax.random.PRNGKey(1), (1 << 16) + 3))
  assert np.array_equal(np.sort(big), np.arange((1 << 16) + 3))


def _cbow_case(seed=4, words=(6, 8)):
  """A SpanBatch with the awkward cases: few words (repeats everywhere), a window with no real
  context word, masked slots, negatives equal to the center, D not a multiple of the kernel's 16 lanes.
  `words`: how many of the V = 30 words the tokens and the negatives are drawn from."""
  from w2v_jax.types import Params, SpanBatch
  rng = np.random.default_rng(seed)
  V, D, B, W, K = 30, 20, 60, 3, 4
  params = Params(jnp.asarray(rng.normal(size=(V, D)) * 0.3, jnp.float32),
                  jnp.asarray(rng.normal(size=(V, D)) * 0.3, jnp.float32))
  tokens = rng.integers(0, words[0], B + 2 * W).astype(np.int32)
  mask = (rng.random((B, 2 * W)) < 0.7).astype(np.float32)
  mask[7] = 0.0
  negatives = rng.integers(0, words[1], (B, K)).astype(np.int32)
  negatives[3, 0] = tokens[W + 3]
  return params, SpanBatch(jnp.asarray(tokens), jnp.asarray(mask), jnp.asarray(negatives))


def _step(model, rule, cap, native_flag, threads=0):
  """The jitted span step of `model` (the fused kernel, or its JAX reference), tables donated."""
  if model == "cbow_neg":
    fn = (lambda p, s: native.cbow_neg_span_step(p, s, jnp.float32(0.2), cap, cbow_context_grad=rule,
                                                 threads=threads)) if native_flag else \
        (lambda p, s: native.cbow_neg_span_step_reference(p, s, jnp.float32(0.2), cap, cbow_context_grad=rule))
  else:
    fn = (lambda p, s: native.sgram_neg_span_step(p, s, jnp.float32(0.2), cap, threads=threads)) \
        if native_flag else (lambda p, s: native.sgram_neg_span_step_reference(p, s, jnp.float32(0.2), cap))
  f = jax.jit(fn, donate_argnums=0)
  return lambda params, span: jax.tree.map(np.asarray, f(jax.tree.map(jnp.array, params), span))


@needs_kernel
@pytest.mark.parametrize("model,rule", [("cbow_neg", "sum"), ("cbow_neg", "mean"), ("sgram_neg", None)])
@pytest.mark.parametrize("max_dup", [None, 2.0])
def test_fused_step_equals_the_jax_step(model, rule, max_dup):
  params, span = _cbow_case()
  (w_in, w_out), loss = _step(model, rule, max_dup, True)(params, span)
  (r_in, r_out), r_loss = _step(model, rule, max_dup, False)(params, span)
  np.testing.assert_allclose(loss, r_loss, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(w_in, r_in, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(w_out, r_out, rtol=1e-5, atol=1e-6)
  assert loss[7] == 0.0 and np.all(loss[np.arange(60) != 7] > 0)
  # The step moved both tables by far more than the tolerance, and a cap of 2 binds on these words.
  assert np.abs(w_in - params.W_in).max() > 1e-2 and np.abs(w_out - params.W_out).max() > 1e-2
  uncapped = _step(model, rule, None, False)(params, span)[0]
  assert np.array_equal(uncapped.W_in, r_in) == (max_dup is None)


@needs_kernel
@pytest.mark.parametrize("model", ["cbow_neg", "sgram_neg"])
def test_fused_step_is_deterministic_across_threads(model):
  params, span = _cbow_case(5)
  runs = [_step(model, "sum", 32.0, True, threads)(params, span) for threads in (0, 1, 0)]
  for run in runs[1:]:
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(run)):
      assert np.array_equal(a, b)


def _random_spans(V: int, D: int, B: int, calls: int) -> str:
  """The start of a script that a test runs in its own process (with its own W2V_JAX_PACE, or beside busy
  loops): seeded random `params` [V, D], `calls` SpanBatches of S = 16 steps of B windows (W = 5, K = 5),
  and `lrs`."""
  return f"""
import jax, jax.numpy as jnp, numpy as np
from w2v_jax import native
from w2v_jax.types import Params, SpanBatch
rng = np.random.default_rng(0)
V, D, B, W, K, S = {V}, {D}, {B}, 5, 5, 16
params = Params(jnp.asarray(rng.normal(size=(V, D)) * 0.1, jnp.float32), jnp.zeros((V, D), jnp.float32))
spans = [SpanBatch(jnp.asarray(rng.integers(0, V, (S, B + 2 * W)).astype(np.int32)),
                   jnp.asarray((rng.random((S, B, 2 * W)) < 0.6).astype(np.float32)),
                   jnp.asarray(rng.integers(0, V, (S, B, K)).astype(np.int32))) for _ in range({calls})]
lrs = jnp.full((S,), 0.05, jnp.float32)
"""


_PACED = _random_spans(V=2000, D=32, B=256, calls=5) + r"""
def train(model, threads):
  if model == "cbow_neg":
    f = lambda p, s: native.cbow_neg_span_step(p, s, lrs, 32.0, cbow_context_grad="sum", threads=threads)[0]
  else:
    f = lambda p, s: native.sgram_neg_span_step(p, s, lrs, 32.0, threads=threads)[0]
  f = jax.jit(f, donate_argnums=0)
  p = jax.tree.map(jnp.array, params)
  for s in spans:
    p = f(p, s)
  return jax.tree.map(np.asarray, p)
for model in ("cbow_neg", "sgram_neg"):
  one = train(model, 1)
  before = native.contention()
  paced = train(model, 0)
  c = native.contention() - before
  print(model, "same", all(np.array_equal(a, b) for a, b in zip(one, paced)), "counts", c.steps, c.one, c.loops)
"""


@needs_kernel
@pytest.mark.parametrize("pace", ["auto", "all", "one"])
def test_paced_steps_time_one_thread_now_and_then_and_keep_their_bits(pace):
  """Asked for all threads (threads=0), each synchronous step times itself and runs on all threads or on
  one, whichever measured faster, with a few steps of each period on the other (fused_steps.cc, Pace): in
  80 steps, the first period's last 8 steps at least ran on one thread, and no loop of a one-thread step
  was counted as parallel. The tables are the same bits as with threads=1 throughout. W2V_JAX_PACE=all
  turns it off (every step on all threads, none counted), W2V_JAX_PACE=one puts every step on one thread
  (no parallel loop)."""
  if (os.cpu_count() or 1) < 2:
    pytest.skip("one CPU: XLA's pool has no second thread to pace")
  out = subprocess.run([sys.executable, "-c", _PACED], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "W2V_JAX_PACE": pace})
  assert out.returncode == 0, out.stderr[-3000:]
  for model in ("cbow_neg", "sgram_neg"):
    line = next(l for l in out.stdout.splitlines() if l.startswith(model + " "))
    assert "same True" in line, out.stdout
    steps, one, loops = (int(x) for x in line.split("counts")[1].split())
    if pace == "auto":
      assert steps == 80 and 8 <= one <= 80 and loops == 3 * (steps - one), line
    else:
      assert steps == 0 and one == 0 and loops == (3 * 80 if pace == "all" else 0), line


def _sequential_sgd(model, params, span, lr, rule="sum"):
  """word2vec.c's update, window after window, in float64: what --hogwild computes on one thread. CBOW:
  h = mean of the real context rows; per target t (the center, then the negatives) g = σ(u_t·h) − [t = 0],
  dh += g u_t (u_t before its update), u_t −= lr g h; then each context row −= lr coef dh. Skip-gram (the
  swapped form): per real slot j, the same with h = v_j and g scaled by m_j, then v_j −= lr dh."""
  w_in, w_out = (np.array(t, np.float64) for t in params)
  tokens, mask, neg = (np.asarray(a) for a in span)
  B, C = mask.shape
  W = C // 2
  offsets = [j - W if j < W else j - W + 1 for j in range(C)]
  sig = lambda x: 1.0 / (1.0 + np.exp(-x))
  loss = np.zeros(B)
  for b in range(B):
    m = mask[b]
    ctx = [tokens[W + b + o] for o in offsets]
    targets = [tokens[W + b], *neg[b]]
    if model == "cbow_neg":
      n = m.sum()
      if n == 0:
        continue
      h = sum(m[j] * w_in[ctx[j]] for j in range(C)) / n
      dh = np.zeros_like(h)
      for t, u in enumerate(targets):
        s = w_out[u] @ h
        loss[b] += np.logaddexp(0, -s if t == 0 else s)
        g = sig(s) - (t == 0)
        dh += g * w_out[u]
        w_out[u] -= lr * g * h
      for j in range(C):
        if m[j]:
          w_in[ctx[j]] -= lr * (m[j] / n if rule == "mean" else m[j]) * dh
    else:
      for j in range(C):
        if not m[j]:
          continue
        h = w_in[ctx[j]].copy()
        dh = np.zeros_like(h)
        for t, u in enumerate(targets):
          s = w_out[u] @ h
          loss[b] += m[j] * np.logaddexp(0, -s if t == 0 else s)
          g = m[j] * (sig(s) - (t == 0))
          dh += g * w_out[u]
          w_out[u] -= lr * g * h
        w_in[ctx[j]] -= lr * dh
  return (w_in, w_out), loss


@needs_kernel
@pytest.mark.parametrize("model,rule", [("cbow_neg", "sum"), ("cbow_neg", "mean"), ("sgram_neg", "sum")])
@pytest.mark.parametrize("words", [(6, 8), (30, 30)])
def test_hogwild_on_one_thread_is_word2vec_sequential_sgd(model, rule, words):
  """With few words (6, 8) most windows have a target twice, and the kernel goes target by target;
  over all 30, most windows' 1 + K targets are distinct and it takes the batched form (fused_steps.cc,
  Distinct): both must be word2vec.c's order."""
  params, span = _cbow_case(words=words)
  targets = np.concatenate([np.asarray(span.tokens)[3:-3, None], np.asarray(span.negatives)], 1)
  distinct = np.mean([len(set(t)) == len(t) for t in targets])
  assert (distinct < 0.25) if words == (6, 8) else (distinct > 0.5)
  if model == "cbow_neg":
    fn = lambda p, s: native.cbow_neg_span_step(p, s, jnp.float32(0.2), 32.0, cbow_context_grad=rule, threads=1,
                                                hogwild=True)
  else:
    fn = lambda p, s: native.sgram_neg_span_step(p, s, jnp.float32(0.2), 32.0, threads=1, hogwild=True)
  (w_in, w_out), loss = jax.tree.map(np.asarray, jax.jit(fn)(params, span))
  (r_in, r_out), r_loss = _sequential_sgd(model, params, span, 0.2, rule)
  np.testing.assert_allclose(loss, r_loss, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(w_in, r_in, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(w_out, r_out, rtol=1e-4, atol=1e-5)
  # Not the synchronous step: on these repeated words the two differ by far more than the tolerance.
  (s_in, _), _ = _step(model, rule, None, True, 1)(params, span)
  assert np.abs(s_in - r_in).max() > 1e-2


def test_hogwild_is_named_and_refused_where_it_cannot_run():
  from w2v_jax import engine
  from w2v_jax.config import TrainConfig
  from w2v_jax.errors import W2VError
  on = native.Status(True, "native CPU kernels built")
  spec = engine.select_step(TrainConfig(model="cbow_neg", hogwild=True), backend_status=on)
  assert "Hogwild" in spec.name and "no longer gives the same bytes" in spec.reason
  with pytest.raises(W2VError, match="--hogwild runs in the fused native CPU kernels.*off: W2V_JAX_NATIVE=0"):
    engine.select_step(TrainConfig(model="sgram_neg", hogwild=True),
                       backend_status=native.Status(False, "native CPU kernels off: W2V_JAX_NATIVE=0"))
  with pytest.raises(W2VError, match="sgram_neg on the buckets layout has none"):
    engine.select_step(TrainConfig(model="sgram_neg", hogwild=True, layout="buckets"), backend_status=on)
  with pytest.raises(W2VError, match="cbow_hs on the"):
    engine.select_step(TrainConfig(model="cbow_hs", hogwild=True), backend_status=on)


@needs_kernel
@pytest.mark.parametrize("model", ["cbow_neg", "sgram_neg"])
def test_hogwild_learns_on_the_shipped_corpus(model, tmp_path):
  # Real text, two threads racing: number words end up far more alike than frequent words at large
  # (untrained vectors: no difference), and the loss falls.
  from w2v_jax import api
  from w2v_jax.config import TrainConfig
  # A record per chunk (log_every_s=0): the whole run can end within a longer interval, leaving one record.
  result = api.train(TrainConfig(model=model, dim=32, epochs=2, min_count=20, hogwild=True), None, None,
                     cache_dir=tmp_path / "cache", log_every_s=0.0)
  assert "Hogwild" in result.summary["engine"]["step"]
  losses = [r["loss"] for r in result.history]
  assert losses[-1] < losses[0]
  v = np.asarray(result.params.W_in)
  u = v / np.linalg.norm(v, axis=1, keepdims=True)
  nums = [result.vocab.index[w] for w in "two three four five six seven eight ten".split()]
  mean_cos = lambda ids: float((u[ids] @ u[ids].T)[np.triu_indices(len(ids), 1)].mean())
  assert mean_cos(nums) - mean_cos(list(range(50, 450, 50))) > 0.1   # untrained: about 0


_IDLE_AFTER_STEPS = """
import time, jax, jax.numpy as jnp, numpy as np
from tests.test_native import _cbow_case, _step
params, span = _cbow_case(5)
step = _step("{model}", "sum", 32.0, True)
for i in range(1500):   # calls close together (helpers linger between them) and, every 50th, apart
  params, _ = step(params, span)
  if i % 50 == 0:
    time.sleep(0.002)
time.sleep(0.05)   # past any helper's linger (200 us)
t = time.process_time()
time.sleep(0.5)
print("idle cpu", time.process_time() - t)
"""


@needs_kernel
@pytest.mark.parametrize("model", ["cbow_neg", "sgram_neg"])
def test_the_kernels_helpers_stop_lingering_when_training_stops(model):
  """The fused kernels' helper threads spin for a while after a phase, waiting for the next (fused_steps.cc,
  Crew), and must then go back to XLA's pool. One that spun forever held a pool thread: a later 4-device
  computation waited for it in an all-to-all until XLA aborted (tests/test_distributed.py caught that),
  and it burnt a core. So after many steps the process must be idle."""
  out = subprocess.run([sys.executable, "-c", _IDLE_AFTER_STEPS.format(model=model)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  idle = float(out.stdout.split("idle cpu")[1])
  assert idle < 0.1, f"{idle:.2f} s of CPU in 0.5 s after training stopped: a helper is still spinning"


@needs_kernel
@pytest.mark.parametrize("model,extra", [("cbow_neg", {}), ("cbow_neg", {"hogwild": True}),
                                         ("sgram_neg", {"neg": 15})])
def test_a_chunk_in_one_kernel_call_equals_one_call_per_step(model, extra, tmp_path):
  """engine.make_chunk runs the fused kernels' S steps in one call (StepSpec.steps); lax.scan over the
  one-step kernel is the same arithmetic in the same order, so the tables and losses agree bit for bit,
  through the epoch's end (steps past it are all padding)."""
  from w2v_jax import corpus as corpus_lib, engine, models, loop
  from w2v_jax.config import TrainConfig
  vocab, enc = corpus_lib.prepare(str(planted_corpus(tmp_path / "c.txt")), 1)
  cfg = TrainConfig(model=model, dim=20, window=3, batch_size=64, steps_per_call=8, sample=0, **extra)
  spec = engine.select_step(cfg, backend_status=native.Status(True, "test"), counts=vocab.counts)
  assert spec.steps is not None
  if cfg.hogwild:   # its threads race: on one thread it is deterministic
    kernel = native.FUSED_STEPS[model]
    options = dict(spec.model.native_options, hogwild=True, threads=1)
    spec = spec._replace(step=step_lib.make_fused_step(kernel, options, None, False),
                         steps=step_lib.make_fused_steps(kernel, options, None, False))
  data = loop.epoch_data(cfg, vocab, enc, 0)
  runs = []
  for s in (spec, spec._replace(steps=None)):
    chunk = jax.jit(engine.make_chunk(s, cfg), donate_argnums=0)
    state = s.init(models.init(jax.random.PRNGKey(0), len(vocab.words), cfg.dim))
    losses = []
    for first in range(0, int(data.steps) + 8, 8):
      state, m = chunk(state, data, jnp.int32(first))
      losses.append(float(m.loss_sum))
    runs.append((jax.tree.map(np.asarray, state.params), losses))
  (p, loss), (q, ref_loss) = runs
  assert np.array_equal(p.W_in, q.W_in) and np.array_equal(p.W_out, q.W_out)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
  assert loss[0] > loss[-2] > 0 and loss[-1] == 0.0


_CROWDED = _random_spans(V=20000, D=64, B=1024, calls=12) + r"""
import os, subprocess, sys, time
f = jax.jit(lambda p, s: native.cbow_neg_span_step(p, s, lrs, 32.0, cbow_context_grad="sum")[0],
            donate_argnums=0)
def train():
  p = jax.tree.map(jnp.array, params)
  for _ in range(4):
    for s in spans:
      p = f(p, s)
  return jax.tree.map(np.asarray, p)
alone = train()
# Two busy loops per core; rounds until one stalled (a round usually has several, but not always).
busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * os.cpu_count())]
try:
  time.sleep(0.2)
  for round in range(8):
    before = native.contention()
    crowded = train()
    c = native.contention() - before
    print("same", all(np.array_equal(a, b) for a, b in zip(alone, crowded)))
    if c.stalls:
      break
finally:
  for b in busy:
    b.kill()
print("counts", c.loops, c.alone, c.stalls, "rounds", round + 1)
"""


@needs_kernel
def test_a_crowded_machine_stalls_the_fused_steps_but_not_their_bits():
  """With a busy process on every core, a helper thread that took a chunk loses its core mid-phase and the
  phase waits for it (fused_steps.cc, Contention): the kernel counts the stall and runs the next phases on
  the calling thread alone. The tables must be the same bits as on an idle machine, and the counts must
  be the round's: 3 parallel loops per cbow step (windows, span positions, owners). A round does not always
  stall (one of four CI runs had none), so up to 8 rounds run until one does. Pace is off here
  (W2V_JAX_PACE=all): with it, the busy loops could make one thread the faster, and no helper would stall."""
  out = subprocess.run([sys.executable, "-c", _CROWDED], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "W2V_JAX_PACE": "all"})
  assert out.returncode == 0, out.stderr[-3000:]
  assert "same False" not in out.stdout and "same True" in out.stdout, out.stdout
  loops, alone, stalls = (int(x) for x in out.stdout.split("counts")[1].split()[:3])
  assert loops == 3 * 4 * 12 * 16
  assert stalls > 0 and 0 < alone < loops, out.stdout


def test_the_threads_line_says_how_many_steps_ran_on_one_thread_and_why():
  """native.Contention.describe, the run's `threads:` line: Pace's steps on one thread and switches, then
  the parallel loops and their stalls; nothing when no fused step could run on several threads."""
  assert native.Contention(0, 0, 0).describe() == ""
  paced = native.Contention(loops=300, alone=0, stalls=0, steps=120, one=20, switches=1).describe()
  assert paced.startswith("20 of 120 steps (17%) on one thread, 1 switch (") and "whichever is faster" in paced
  assert paced.endswith("; all 300 parallel loops of the fused steps on every thread of XLA's CPU pool (no stall)")
  stalled = native.Contention(loops=300, alone=30, stalls=2, steps=100, one=0, switches=0).describe()
  assert "0 of 100 steps (0%) on one thread, 0 switches" in stalled
  assert "2 stalls (a helper thread lost its core" in stalled and "30 of 300 parallel loops (10%)" in stalled
  alone = native.Contention(loops=0, alone=0, stalls=0, steps=64, one=64, switches=1).describe()
  assert alone.startswith("64 of 64 steps (100%) on one thread") and "parallel loops" not in alone
  assert (native.Contention(5, 1, 1, 9, 3, 2) - native.Contention(1, 1, 0, 4, 1, 1)) == (4, 0, 1, 5, 2, 1)
