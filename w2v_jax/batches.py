"""Fixed-shape `Batch`es from an epoch's kept tokens, built on the device from explicit PRNG keys.

Step i of epoch e uses centers i*B .. i*B+B-1 of the kept tokens and the key
fold_in(fold_in(PRNGKey(seed), e), i), so a stream is a pure function of (corpus, settings, seed, epoch).
"""
import functools
from typing import Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import buckets, sampling
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, SpanBatch, context_offsets

_WINDOW_SALT, _NEGATIVES_SALT = 1, 2  # fold_in constants: independent streams from one step key


def check_settings(*, batch_size: int, window: int, neg: int, vocab_size: int | None = None) -> None:
  """Raises W2VError for settings no batch can be built with (vocab_size V is checked when given)."""
  if batch_size < 1:
    raise W2VError(f'batch_size must be >= 1, got {batch_size}')
  if window < 1:
    raise W2VError(f'window must be >= 1, got {window}')
  if neg < 0:
    raise W2VError(f'the number of negatives K must be >= 0, got {neg}')
  if vocab_size is not None and vocab_size < neg + 1:
    raise W2VError(f'the vocabulary has {vocab_size} words, too few for {neg} negatives (it needs at least '
                   f'{neg + 1}); lower --neg or --min_count, or give a larger corpus')


def num_batches(n_kept: int, batch_size: int) -> int:
  """Steps in an epoch: the last batch is padded, never dropped."""
  return -(-n_kept // batch_size)


class EpochData(NamedTuple):
  """What a chunk of steps reads on the device: the epoch's kept tokens, padded to a fixed length."""
  tokens: jax.Array     # int32 [N]  kept tokens, then padding (or [G, N/G]: one row per corpus block)
  sent: jax.Array       # int32 [N]  sentence id, -1 on padding (masks it out of every window)
  noise: sampling.AliasTable
  key: jax.Array        # the epoch's key, epoch_key(seed, epoch)
  steps: jax.Array      # int32 []   real steps in this epoch (the lr schedule's denominator)
  epoch: jax.Array      # int32 []


def epoch_key(seed: int, epoch: int) -> jax.Array:
  """The key of an epoch; step i's key is fold_in(epoch_key, i)."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), epoch)


def to_batch(span: SpanBatch) -> Batch:
  """The `Batch` a `SpanBatch` stands for (context ids 0 where masked)."""
  B, C = span.mask.shape
  window = C // 2
  ctx = jnp.stack([span.tokens[window + o:window + o + B] for o in context_offsets(window)], axis=1)
  return Batch(center=span.tokens[window:window + B], context=jnp.where(span.mask > 0, ctx, 0),
               mask=span.mask, negatives=span.negatives)


def make_batch(tokens: jax.Array, sent: jax.Array, start: jax.Array, key: jax.Array,
               noise: sampling.AliasTable, *, batch_size: int, window: int, neg: int,
               reduced_window: bool = True) -> Batch:
  """The batch of centers start..start+B-1 of the kept tokens; pure and jittable, `start` may be traced.

  tokens, sent: int32 [N'] from `sampling.subsample`; noise: from `sampling.noise_alias`.
  """
  return to_batch(make_span_batch(tokens, sent, start, key, noise, batch_size=batch_size, window=window,
                                  neg=neg, reduced_window=reduced_window))


def make_span_batch(tokens: jax.Array, sent: jax.Array, start: jax.Array, key: jax.Array,
                    noise: sampling.AliasTable, *, batch_size: int, window: int, neg: int,
                    reduced_window: bool = True) -> SpanBatch:
  """`make_batch`'s batch as a `SpanBatch`: the same draws from the same key."""
  check_settings(batch_size=batch_size, window=window, neg=neg)  # V is not static: iter_batches checks it
  n = tokens.shape[0]
  if n == 0:
    raise W2VError('no tokens to batch: subsampling kept none; lower --sample or give a larger corpus')
  start = jnp.asarray(start, dtype=jnp.int32)
  # One contiguous gather of B + 2W positions (clipped at the ends, masked below), then C static slices:
  # far cheaper than gathering [B, C] indices, and it needs no padded copy of the token array.
  span = start - window + jnp.arange(batch_size + 2 * window, dtype=jnp.int32)  # [B+2W]
  span_idx = jnp.clip(span, 0, n - 1)
  span_tok = tokens[span_idx]
  span_sent = jnp.where((span >= 0) & (span < n), sent[span_idx], -1)  # -1: no sentence
  offsets = context_offsets(window)  # [C] static

  def at(a, o):  # the [B] slice of a span array at offset o from the centers
    return a[window + o:window + o + batch_size]

  center_sent = at(span_sent, 0)                                                        # [B]
  # Slots are stacked as [C, B] and transposed at the end: 3x faster on the CPU than stacking on axis 1.
  ok = jnp.stack([at(span_sent, o) == center_sent for o in offsets]) & (center_sent >= 0)  # [C, B]
  if reduced_window:
    # word2vec.c draws b uniformly from 1..W per center and keeps |offset| <= b.
    bits = sampling.random_bits(jax.random.fold_in(key, _WINDOW_SALT), (batch_size,))
    b = (bits % jnp.uint32(window)).astype(jnp.int32) + 1                              # [B]
    ok &= np.abs(offsets)[:, None] <= b[None, :]
  # Ids in padding are 0, a valid row, so a gather in any model stays in bounds.
  negs = sampling.negatives(jax.random.fold_in(key, _NEGATIVES_SALT), noise, (batch_size, neg))  # [B, K]
  return SpanBatch(tokens=jnp.where(span_sent >= 0, span_tok, 0), mask=ok.astype(jnp.float32).T,
                   negatives=negs)


def step_batch(tokens: jax.Array, sent: jax.Array, key: jax.Array, step: jax.Array,
               noise: sampling.AliasTable, *,
               batch_size: int, window: int, neg: int, reduced_window: bool = True,
               layout: str = "batch"):
  """Batch `step` of an epoch whose key is `key` (from `epoch_key`): the stream's one contract.

  layout "batch" gives a `Batch`, "span" the same batch as a `SpanBatch`, "buckets" the W per-window-size
  `Batch`es of buckets.make_bucketed_batch (reduced window only)."""
  step = jnp.asarray(step, dtype=jnp.int32)
  start, step_key = step * batch_size, jax.random.fold_in(key, step)
  if layout == "buckets" and reduced_window:
    return buckets.make_bucketed_batch(tokens, sent, start, step_key, noise, batch_size=batch_size,
                                       window=window, neg=neg)
  make = make_span_batch if layout == "span" else make_batch
  return make(tokens, sent, start, step_key, noise,
              batch_size=batch_size, window=window, neg=neg, reduced_window=reduced_window)


def make_batches(tokens: jax.Array, sent: jax.Array, key: jax.Array, first_step: jax.Array,
                 noise: sampling.AliasTable, *, num_steps: int, batch_size: int, window: int, neg: int,
                 reduced_window: bool = True, layout: str = "batch"):
  """Batches first_step .. first_step+num_steps-1 stacked on a leading axis [S]: vmap of `step_batch`.

  On the CPU, one vmap over S batches builds them faster than one batch per lax.scan iteration
  (scripts/bench_pipeline.py), so a training loop can build a chunk this way and scan its step over it.
  """
  steps = jnp.asarray(first_step, dtype=jnp.int32) + jnp.arange(num_steps, dtype=jnp.int32)  # [S]
  return jax.vmap(lambda step: step_batch(tokens, sent, key, step, noise, batch_size=batch_size,
                                          window=window, neg=neg, reduced_window=reduced_window,
                                          layout=layout))(steps)


def make_batch_np(tokens: np.ndarray, sent: np.ndarray, start: int, rng: np.random.Generator,
                  cdf: np.ndarray, *, batch_size: int, window: int, neg: int,
                  reduced_window: bool = True) -> Batch:
  """The numpy twin of `make_batch` (same layout, numpy's random stream), to measure the host path."""
  n = len(tokens)
  span = np.clip(np.arange(start - window, start + batch_size + window), -1, n)  # [B+2W], -1/n: outside
  span_tok = tokens[np.clip(span, 0, n - 1)]
  span_sent = np.where((span >= 0) & (span < n), sent[np.clip(span, 0, n - 1)], -1)
  offsets = context_offsets(window)
  slots = np.arange(batch_size)[:, None] + (window + offsets)  # [B, C] positions in the span
  center_sent = span_sent[window:window + batch_size]                                # [B]
  ok = (span_sent[slots] == center_sent[:, None]) & (center_sent >= 0)[:, None]      # [B, C]
  if reduced_window:
    ok &= np.abs(offsets) <= rng.integers(1, window + 1, batch_size)[:, None]
  center = np.where(center_sent >= 0, span_tok[window:window + batch_size], 0)
  return Batch(center=center.astype(np.int32), context=np.where(ok, span_tok[slots], 0).astype(np.int32),
               mask=ok.astype(np.float32), negatives=sampling.negatives_np(rng, cdf, (batch_size, neg)))


_STEPS_PER_FETCH = 64


@functools.partial(jax.jit, static_argnames=('num_steps', 'batch_size', 'window', 'neg', 'reduced_window'))
def _make_batches_jit(tokens, sent, key, first_step, noise, **settings):
  return make_batches(tokens, sent, key, first_step, noise, **settings)


def iter_batches(corpus, counts: np.ndarray, *, seed: int, epoch: int, batch_size: int,
                 window: int, neg: int, sample: float, ns_exponent: float = 0.75,
                 reduced_window: bool = True) -> Iterator[Batch]:
  """One epoch's batches of a corpus.EncodedCorpus as numpy arrays, for tests and scripts; the last one is
  padded."""
  check_settings(batch_size=batch_size, window=window, neg=neg, vocab_size=len(counts))
  if seed < 0 or epoch < 0:
    raise W2VError(f'seed and epoch must be >= 0, got seed={seed}, epoch={epoch}')
  tokens, sent = sampling.subsample(corpus, sampling.keep_probs(counts, sample), seed, epoch)
  noise = jax.tree.map(jnp.asarray, sampling.noise_alias(counts, ns_exponent))
  steps = num_batches(len(tokens), batch_size)
  tokens, sent, key = jnp.asarray(tokens), jnp.asarray(sent), epoch_key(seed, epoch)
  # Steps are fetched in chunks, as one transfer per batch is slow; a power of two bounds recompiles.
  chunk = min(_STEPS_PER_FETCH, 1 << max(steps - 1, 0).bit_length())
  for first in range(0, steps, chunk):
    stacked = jax.device_get(_make_batches_jit(tokens, sent, key, np.int32(first), noise, num_steps=chunk,
                                               batch_size=batch_size, window=window, neg=neg,
                                               reduced_window=reduced_window))
    for i in range(min(chunk, steps - first)):
      yield Batch(*(a[i] for a in stacked))
