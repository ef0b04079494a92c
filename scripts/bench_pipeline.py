"""python scripts/bench_pipeline.py --corpus ../shared/data/dev_corpus.txt.gz

Measures the data pipeline alone: vocabulary + encoding (cold and cached), subsampling per epoch, and batch
building on the host (numpy) and on the device (jitted jnp, one batch per call and many per call).
Raw words/s = examples/s x (raw corpus words / kept centers per epoch), the unit gensim reports.
Goal: >= 5M raw words/s, and >= 3x what the training step consumes (gensim skip-gram NS: 535k words/s).
"""
import argparse
import functools
import pathlib
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # runs without `pip install -e .`
from w2v_jax import batches, corpus, sampling  # pylint: disable=g-import-not-at-top

GENSIM_SG_WORDS_PER_S = 535e3


def timed(fn, repeats=1):
  """Best wall time of `repeats` calls, and the last result."""
  best, out = float('inf'), None
  for _ in range(repeats):
    t = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - t)
  return best, out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--corpus', default='../shared/data/dev_corpus.txt.gz')
  parser.add_argument('--min_count', type=int, default=5)
  parser.add_argument('--window', type=int, default=5)
  parser.add_argument('--neg', type=int, default=5)
  parser.add_argument('--batch_size', type=int, default=1024)
  parser.add_argument('--sample', type=float, default=1e-3)
  parser.add_argument('--steps_per_call', type=int, default=64)
  args = parser.parse_args()
  settings = dict(batch_size=args.batch_size, window=args.window, neg=args.neg)
  print(f'jax {jax.__version__} on {jax.default_backend()}, x64={jax.config.jax_enable_x64}; '
        f'window {args.window}, K {args.neg}, B {args.batch_size}, sample {args.sample}')

  with tempfile.TemporaryDirectory() as cache:
    cold, (vocab, enc) = timed(lambda: corpus.prepare(args.corpus, args.min_count, None, cache))
    warm, _ = timed(lambda: corpus.prepare(args.corpus, args.min_count, None, cache), repeats=3)
    enc = corpus.EncodedCorpus(np.array(enc.tokens), np.array(enc.offsets), enc.stats)  # off the tmp dir
  print(f'corpus: {enc.raw_words:,} raw words, {len(enc.tokens):,} in vocabulary ({len(vocab):,} words), '
        f'{enc.num_sentences:,} sentences, {enc.stats.replaced_chars} replaced chars')
  print(f'vocab + encode: cold {cold:.2f} s, cached {warm * 1e3:.0f} ms')

  keep = sampling.keep_probs(vocab.counts, args.sample)
  sub, (tokens, sent) = timed(lambda: sampling.subsample(enc, keep, 0, 0), repeats=3)
  n_kept = len(tokens)
  words_per_center = enc.raw_words / n_kept
  steps = batches.num_batches(n_kept, args.batch_size)
  print(f'subsample: {sub * 1e3:.0f} ms per epoch, keeps {n_kept:,} centers '
        f'({n_kept / len(enc.tokens):.1%}), {steps} batches of {args.batch_size}')

  goal = max(5e6, 3 * GENSIM_SG_WORDS_PER_S)  # raw words/s
  verdicts = []

  def report(name, seconds, examples):
    rate = examples / seconds
    words = rate * words_per_center
    print(f'  {name:<44s} {rate / 1e6:6.2f}M examples/s  {words / 1e6:6.2f}M words/s')
    if not name.startswith('(ref)'):
      verdicts.append(f'{name.split()[0]} {"meets" if words >= goal else "misses"}')

  print('batch building:')
  cdf = sampling.noise_cdf(vocab.counts)
  rng = np.random.default_rng(0)
  host_steps = min(steps, 400)
  t, _ = timed(lambda: [batches.make_batch_np(tokens, sent, i * args.batch_size, rng, cdf, **settings)
                        for i in range(host_steps)], repeats=2)
  report('(a) numpy make_batch_np, host', t, host_steps * args.batch_size)

  tok_d, sent_d = jnp.asarray(tokens), jnp.asarray(sent)
  alias_s, noise = timed(lambda: sampling.noise_alias(vocab.counts))
  noise = jax.tree.map(jnp.asarray, noise)
  print(f'  alias table of the {len(vocab):,}-word noise distribution: {alias_s * 1e3:.0f} ms, once per run')
  key = batches.epoch_key(0, 0)
  one = jax.jit(functools.partial(batches.step_batch, **settings))

  def run_single():
    outs = [one(tok_d, sent_d, key, np.int32(i), noise) for i in range(steps)]
    return jax.block_until_ready(outs[-1])
  run_single()
  t, _ = timed(run_single, repeats=2)
  report('(b1) jit make_batch, 1 batch/call, on device', t, steps * args.batch_size)

  t, _ = timed(lambda: list(batches.iter_batches(enc, vocab.counts, seed=0, epoch=0, sample=args.sample,
                                                 **settings)), repeats=2)
  report('(b2) iter_batches, fetched to host numpy', t, steps * args.batch_size)

  n_calls = -(-steps // args.steps_per_call)

  @jax.jit
  def scan_sum(first):
    # What a training scan does: consume each batch inside the same jit, so nothing goes back to the host.
    def body(acc, i):
      b = batches.step_batch(tok_d, sent_d, key, first + i, noise, **settings)
      return acc + b.center.sum() + b.context.sum() + b.mask.sum().astype(jnp.int32) + b.negatives.sum(), None
    return jax.lax.scan(body, jnp.int32(0), jnp.arange(args.steps_per_call, dtype=jnp.int32))[0]

  def run_scan():
    return jax.block_until_ready([scan_sum(np.int32(c * args.steps_per_call)) for c in range(n_calls)])
  run_scan()
  t, _ = timed(run_scan, repeats=2)
  report(f'(b3) jit lax.scan, {args.steps_per_call} batches/call, consumed', t,
         n_calls * args.steps_per_call * args.batch_size)

  @jax.jit
  def vmapped(first):
    step_ids = first + jnp.arange(args.steps_per_call, dtype=jnp.int32)
    return jax.vmap(lambda i: batches.step_batch(tok_d, sent_d, key, i, noise, **settings))(step_ids)

  def run_vmap():
    return jax.block_until_ready([vmapped(np.int32(c * args.steps_per_call)) for c in range(n_calls)][-1])
  run_vmap()
  t, _ = timed(run_vmap, repeats=2)
  report(f'(b4) jit vmap, {args.steps_per_call} batches/call, materialised', t,
         n_calls * args.steps_per_call * args.batch_size)

  # Why sampling.random_bits and not jax.random.bits: threefry alone, for the same draws per batch.
  draws = args.batch_size * (2 * args.neg + 1)  # b, then a column and an accept draw per negative
  threefry = jax.jit(jax.vmap(lambda i: jax.random.bits(jax.random.fold_in(key, i), (draws,), jnp.uint32)))
  steps_ids = jnp.arange(args.steps_per_call, dtype=jnp.int32)
  jax.block_until_ready(threefry(steps_ids))
  t, _ = timed(lambda: jax.block_until_ready([threefry(steps_ids) for _ in range(n_calls)]), repeats=2)
  report('(ref) jax.random.bits (threefry) draws alone', t, n_calls * args.steps_per_call * args.batch_size)

  print(f'goal: >= {goal / 1e6:.2f}M words/s = max(5M, 3x gensim skip-gram NS at '
        f'{GENSIM_SG_WORDS_PER_S / 1e3:.0f}k words/s, what a step at parity consumes)')
  print(f'  {", ".join(verdicts)}')


if __name__ == '__main__':
  main()
