"""Fixed-shape batches: structure against a slow reference, word2vec.c's statistics, determinism, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from w2v_jax import batches, corpus, sampling
from w2v_jax.errors import W2VError

B, W, K = 64, 3, 4
COUNTS = np.array([50, 40, 30, 20, 10, 5, 5, 2], dtype=np.int64)


def _sentences(seed=0, n_sent=40):
  """tokens = positions (so a context id says where it came from) and sentence ids of random lengths."""
  lengths = np.random.default_rng(seed).integers(1, 12, size=n_sent)
  sent = np.repeat(np.arange(n_sent), lengths).astype(np.int32)
  return np.arange(len(sent), dtype=np.int32), sent


def _full_mask(sent, start, batch_size, window):
  """The slow reference: neighbour in range, same sentence, real center; every |offset| <= window."""
  n, offsets = len(sent), batches.context_offsets(window)
  mask = np.zeros((batch_size, 2 * window), bool)
  for i in range(batch_size):
    p = start + i
    for j, o in enumerate(offsets):
      mask[i, j] = p < n and 0 <= p + o < n and sent[p + o] == sent[p]
  return mask


_step_batch = jax.jit(batches.step_batch, static_argnames=('batch_size', 'window', 'neg', 'reduced_window'))


def _batch(tokens, sent, step, *, reduced_window, batch_size=B, window=W, neg=K, key=None):
  key = batches.epoch_key(0, 0) if key is None else key
  noise = sampling.noise_alias(np.ones(100, np.int64))
  return jax.device_get(_step_batch(jnp.asarray(tokens), jnp.asarray(sent), key, np.int32(step), noise,
                                    batch_size=batch_size, window=window, neg=neg,
                                    reduced_window=reduced_window))


def test_without_reduced_window_the_batch_is_exactly_the_reference():
  tokens, sent = _sentences()
  n = len(tokens)
  for step in range(batches.num_batches(n, B)):  # the last batch is partial
    b = _batch(tokens, sent, step, reduced_window=False)
    assert b.center.dtype == b.context.dtype == b.negatives.dtype == np.int32
    assert b.mask.dtype == np.float32
    assert b.center.shape == (B,) and b.context.shape == b.mask.shape == (B, 2 * W)
    assert b.negatives.shape == (B, K)
    mask = _full_mask(sent, step * B, B, W)
    np.testing.assert_array_equal(b.mask, mask)
    pos = step * B + np.arange(B)
    np.testing.assert_array_equal(b.center, np.where(pos < n, pos, 0))
    np.testing.assert_array_equal(b.context, np.where(mask, pos[:, None] + batches.context_offsets(W), 0))


def test_reduced_window_keeps_offsets_up_to_b_and_padding_is_masked():
  tokens, sent = _sentences(seed=1)
  n, offsets = len(tokens), np.abs(batches.context_offsets(W))
  for step in range(batches.num_batches(n, B)):
    b = _batch(tokens, sent, step, reduced_window=True)
    full = _full_mask(sent, step * B, B, W)
    assert np.all(b.mask <= full)  # never crosses a sentence, never past the ends
    for row, full_row in zip(b.mask.astype(bool), full):
      widest = offsets[row].max(initial=0)  # b >= the widest kept offset, and nothing within it is lost
      np.testing.assert_array_equal(row, full_row & (offsets <= widest))
    pad = step * B + np.arange(B) >= n
    assert np.all(b.mask[pad] == 0) and np.all(b.center[pad] == 0) and np.all(b.context[pad] == 0)
  assert pad.any()


def test_reduced_window_b_is_uniform_over_1_to_window_and_independent_of_its_neighbour():
  window, batch_size = 5, 4096
  tokens = np.arange(batch_size + 2 * window, dtype=np.int32)  # one long sentence: all rows interior
  b = np.concatenate([_batch(tokens, np.zeros_like(tokens), 0, reduced_window=True, batch_size=batch_size,
                             window=window, key=jax.random.PRNGKey(s)).mask[window:-window].sum(1) / 2
                      for s in range(3)]).astype(int)
  assert b.min() == 1 and b.max() == window
  assert stats.chisquare(np.bincount(b - 1, minlength=window)).pvalue > 1e-3
  pairs = (b[:-1] - 1) * window + b[1:] - 1
  assert stats.chisquare(np.bincount(pairs, minlength=window * window)).pvalue > 1e-3


def test_make_batch_works_with_a_traced_start_in_scan_and_vmap():
  tokens, sent = _sentences(seed=2)
  key, noise = batches.epoch_key(5, 1), sampling.noise_alias(COUNTS)
  settings = dict(batch_size=B, window=W, neg=K)

  @jax.jit
  def scanned(tokens, sent):
    body = lambda c, i: (c, batches.step_batch(tokens, sent, key, i, noise, **settings))
    return jax.lax.scan(body, 0, jnp.arange(4, dtype=jnp.int32))[1]
  by_scan = jax.device_get(scanned(tokens, sent))
  by_vmap = jax.device_get(jax.jit(lambda t, s: batches.make_batches(t, s, key, 0, noise, num_steps=4,
                                                                     **settings))(tokens, sent))
  for step in range(4):
    one = jax.device_get(_step_batch(tokens, sent, key, np.int32(step), noise, **settings))
    for a, s, v in zip(one, by_scan, by_vmap):
      np.testing.assert_array_equal(a, s[step])
      np.testing.assert_array_equal(a, v[step])
  start = 3 * B  # a Python int closed over: the untraced path, on the partial last batch
  direct = jax.jit(lambda t, s: batches.make_batch(t, s, start, jax.random.fold_in(key, 3), noise,
                                                   **settings))(tokens, sent)
  assert len(tokens) < 4 * B
  for a, d in zip(one, jax.device_get(direct)):
    np.testing.assert_array_equal(a, d)


def test_numpy_twin_has_the_same_structure():
  tokens, sent = _sentences(seed=3)
  cdf = sampling.noise_cdf(COUNTS)
  for step in range(batches.num_batches(len(tokens), B)):
    ref = _batch(tokens, sent, step, reduced_window=False)
    b = batches.make_batch_np(tokens, sent, step * B, np.random.default_rng(0), cdf, batch_size=B,
                              window=W, neg=K, reduced_window=False)
    for name in ('center', 'context', 'mask'):
      np.testing.assert_array_equal(getattr(b, name), getattr(ref, name))
    assert b.negatives.shape == (B, K) and b.negatives.max() < len(COUNTS)
    reduced = batches.make_batch_np(tokens, sent, step * B, np.random.default_rng(0), cdf, batch_size=B,
                                    window=W, neg=K)
    assert np.all(reduced.mask <= ref.mask)


def _lined_corpus(tmp_path, n_lines=60):
  """Each line uses its own words ('l7_2'), so a context word names the line it came from."""
  rng = np.random.default_rng(4)
  lengths = rng.integers(1, 15, size=n_lines)
  lines = [' '.join(f'l{i}_{j}' for j in rng.integers(0, 3, size=length)) for i, length in enumerate(lengths)]
  path = tmp_path / 'lines.txt'
  path.write_text('\n'.join(lines) + '\n')
  return corpus.prepare(path, min_count=1)


def test_iter_batches_never_crosses_a_line_and_visits_every_kept_token_once(tmp_path):
  vocab, enc = _lined_corpus(tmp_path)
  settings = dict(seed=1, epoch=2, batch_size=B, window=W, neg=K, sample=0.0)
  line = np.array([int(w[1:].split('_')[0]) for w in vocab.words])
  centers = []
  for b in batches.iter_batches(enc, vocab.counts, **settings):
    centers.append(b.center)
    m = b.mask.astype(bool)
    assert np.all(line[b.context][m] == np.broadcast_to(line[b.center][:, None], m.shape)[m])
  n = len(enc.tokens)
  np.testing.assert_array_equal(np.concatenate(centers)[:n], enc.tokens)
  assert np.all(np.concatenate(centers)[n:] == 0)


def test_same_seed_same_stream_other_seed_or_epoch_differs(tmp_path):
  vocab, enc = _lined_corpus(tmp_path)
  def stream(seed, epoch, sample=1e-2):
    return [jax.tree.map(np.copy, b) for b in batches.iter_batches(
        enc, vocab.counts, seed=seed, epoch=epoch, batch_size=B, window=W, neg=K, sample=sample)]
  a, again = stream(0, 0), stream(0, 0)
  assert len(a) == len(again)
  for x, y in zip(a, again):
    for u, v in zip(x, y):
      np.testing.assert_array_equal(u, v)
  for other in (stream(1, 0), stream(0, 1), stream(0, 1, sample=0.0)):
    first, alt = a[0], other[0]
    assert not np.array_equal(first.negatives, alt.negatives)
    assert not (np.array_equal(first.center, alt.center) and np.array_equal(first.mask, alt.mask))


def test_batch_negatives_follow_the_noise_distribution(tmp_path):
  vocab, enc = _lined_corpus(tmp_path, n_lines=6)
  negs = np.concatenate([b.negatives.ravel() for b in batches.iter_batches(
      enc, vocab.counts, seed=0, epoch=0, batch_size=4096, window=1, neg=14, sample=0.0)])
  probs = sampling.noise_probs(vocab.counts)
  assert len(negs) >= 50_000
  assert stats.chisquare(np.bincount(negs, minlength=len(probs)), probs * len(negs)).pvalue > 1e-3


@pytest.mark.parametrize('change, message, static', [
    (dict(window=0), 'window must be >= 1', True),
    (dict(neg=-1), 'K must be >= 0', True),
    (dict(batch_size=0), 'batch_size must be >= 1', True),
    (dict(neg=8), 'has 8 words, too few for 8 negatives', False),
    (dict(sample=-1.0), 'sample must be >= 0', False),
    (dict(seed=-1), 'seed and epoch must be >= 0', False),
])
def test_bad_settings_raise_a_clear_error(change, message, static):
  enc = corpus.EncodedCorpus(np.arange(8, dtype=np.int32), np.array([0, 8]), corpus.CorpusStats(1, 8, 0))
  settings = dict(seed=0, epoch=0, batch_size=4, window=2, neg=2, sample=0.0) | change
  with pytest.raises(W2VError, match=message):
    next(batches.iter_batches(enc, COUNTS, **settings))
  if static:  # make_batch checks what is static when traced: B, W, K
    shape = {k: settings[k] for k in ('batch_size', 'window', 'neg')}
    with pytest.raises(W2VError, match=message):
      batches.make_batch(jnp.arange(8, dtype=jnp.int32), jnp.zeros(8, jnp.int32), 0, jax.random.PRNGKey(0),
                         sampling.noise_alias(COUNTS), **shape)
