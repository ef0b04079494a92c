"""word2vec.c's sampling: subsampling of frequent words, the noise distribution, and fast random bits.

Negatives are drawn exactly (to 2**-32), by CDF search in numpy and by Walker's alias method on the device,
not from word2vec.c's 1e8-entry table, which rounds every probability to a multiple of 1e-8.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax.errors import W2VError

_TWO_32 = 2.0 ** 32


class AliasTable(NamedTuple):
  """Walker's alias table over M = 2**k >= V columns of equal mass, so a column is exactly k random bits.

  Column c gives word c if a uniform uint32 < accept[c], else word alias[c]; columns c >= V accept nothing.
  """
  accept: jax.Array  # uint32 [M]
  alias: jax.Array   # int32 [M]


def keep_probs(counts: np.ndarray, sample: float) -> np.ndarray:
  """float64 [V]: P(keep) = min(1, (sqrt(f / (s T)) + 1) (s T) / f), f a word's count, T all counts."""
  if not sample >= 0:
    raise W2VError(f'sample must be >= 0 (0 switches subsampling off), got {sample}')
  counts = np.asarray(counts, dtype=np.float64)  # [V]
  if sample == 0:
    return np.ones_like(counts)
  threshold = sample * counts.sum()  # s T; T counts vocabulary words only, as word2vec.c's train_words
  return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)


def noise_probs(counts: np.ndarray, ns_exponent: float = 0.75) -> np.ndarray:
  """float64 [V]: counts ** ns_exponent, normalised."""
  if not np.isfinite(ns_exponent):
    raise W2VError(f'ns_exponent must be a finite number, got {ns_exponent}')
  weights = np.asarray(counts, dtype=np.float64) ** ns_exponent  # [V]
  return weights / weights.sum()


def noise_cdf(counts: np.ndarray, ns_exponent: float = 0.75) -> np.ndarray:
  """float64 [V]: the CDF of `noise_probs`, its last entry exactly 1."""
  cdf = np.cumsum(noise_probs(counts, ns_exponent))
  cdf[-1] = 1.0  # so no uniform draw in [0, 1) can fall past the last word
  return cdf


def alias_columns(vocab_size: int) -> int:
  """The columns of `noise_alias`'s table over V words: a power of two >= V (at least 2), so every column
  has mass 2**-k."""
  return max(2, 1 << (vocab_size - 1).bit_length())


def noise_alias(counts: np.ndarray, ns_exponent: float = 0.75) -> AliasTable:
  """The alias table of `noise_probs` (Vose's construction), as numpy arrays; exact to 2**-32."""
  probs = noise_probs(counts, ns_exponent)
  columns = alias_columns(len(probs))
  q = (probs * columns).tolist() + [0.0] * (columns - len(probs))  # column masses, mean 1; lists: fast
  accept, alias = [1.0] * columns, list(range(columns))
  small = [i for i, x in enumerate(q) if x < 1.0]
  large = [i for i, x in enumerate(q) if x >= 1.0]
  while small and large:
    s, l = small.pop(), large[-1]
    accept[s], alias[s] = q[s], l
    q[l] -= 1.0 - q[s]  # l gives column s the mass s lacks
    if q[l] < 1.0:
      small.append(large.pop())
  # What is left over has mass 1 up to rounding: it keeps its own word (u < 2**32-1 fails once in 2**32,
  # and then gives the alias, itself).
  accept = np.array(accept)
  thresholds = np.where(accept >= 1.0, _TWO_32 - 1, np.clip(np.round(accept * _TWO_32), 0, _TWO_32 - 1))
  return AliasTable(thresholds.astype(np.uint32), np.array(alias, dtype=np.int32))


def random_bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """uint32 [*shape]: a counter hashed with the key's two words (murmur3's finaliser, twice).

  Not jax.random.bits: on the CPU threefry took more time than the rest of the batch, and this hash is
  an order of magnitude faster (scripts/bench_pipeline.py measures both). A pure function of (key, shape).
  """
  data = jax.random.key_data(key).reshape(-1)  # uint32 [2] for threefry keys
  x = jnp.arange(int(np.prod(shape)), dtype=jnp.uint32) * jnp.uint32(0x9E3779B9) + data[0]
  return _fmix32(_fmix32(x) ^ data[1]).reshape(shape)


def _fmix32(x: jax.Array) -> jax.Array:
  """murmur3's 32-bit finaliser: a bijection in which every output bit depends on every input bit."""
  x ^= x >> 16
  x *= jnp.uint32(0x85EBCA6B)
  x ^= x >> 13
  x *= jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)


def negatives(key: jax.Array, table: AliasTable, shape: tuple[int, ...]) -> jax.Array:
  """int32 [*shape] noise words: a column from the top k bits of one draw, its word or alias by another."""
  shift = 33 - table.alias.shape[0].bit_length()  # 32 - k for M = 2**k columns
  col = (random_bits(jax.random.fold_in(key, 0), shape) >> shift).astype(jnp.int32)
  keep = random_bits(jax.random.fold_in(key, 1), shape) < jnp.asarray(table.accept)[col]
  return jnp.where(keep, col, jnp.asarray(table.alias)[col])


def negatives_np(rng: np.random.Generator, cdf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
  """int32 [*shape]: word w with probability cdf[w] - cdf[w-1], by binary search in numpy."""
  return np.searchsorted(cdf, rng.random(shape), side='right').astype(np.int32)


SUBSAMPLING = ("dirty", "clean")


_SUBSAMPLE_BLOCK = 1 << 20   # tokens whose keep draws are made at a time


def subsample(corpus, keep_prob: np.ndarray, seed: int, epoch: int, mode: str = "dirty"
              ) -> tuple[np.ndarray, np.ndarray]:
  """One epoch's kept tokens of a corpus.EncodedCorpus: (tokens int32 [N'], sent int32 [N'] sentence id).

  mode "dirty" (word2vec.c, gensim): dropped words are removed before windows are formed, so a window
  reaches past them and spans more of the text. "clean" (Levy, Goldberg & Dagan 2015): they keep their
  positions as holes (sentence id −1: masked as a context word, never a center), so a window covers the
  same stretch of text as without subsampling. The same words are dropped either way. A pure function
  of its arguments: each (seed, epoch) has its own generator.
  """
  if mode not in SUBSAMPLING:
    raise W2VError(f"subsampling must be one of {', '.join(SUBSAMPLING)}, got {mode!r}")
  tokens = np.asarray(corpus.tokens)  # [N]
  sent = np.repeat(np.arange(corpus.num_sentences, dtype=np.int32), np.diff(corpus.offsets))  # [N]
  if np.all(keep_prob >= 1.0):
    return np.array(tokens, dtype=np.int32), sent
  rng = np.random.Generator(np.random.PCG64([seed, epoch]))
  # The draws in blocks: the same stream as one rng.random(N) (PCG64 continues where the last call
  # ended), without N float32 draws and N float64 probabilities alive at once (120 MB at N = 10M).
  keep = np.empty(len(tokens), bool)
  for lo in range(0, len(tokens), _SUBSAMPLE_BLOCK):
    hi = min(len(tokens), lo + _SUBSAMPLE_BLOCK)
    keep[lo:hi] = rng.random(hi - lo, dtype=np.float32) < keep_prob[tokens[lo:hi]]
  if mode == "clean":
    return np.array(tokens, dtype=np.int32), np.where(keep, sent, -1).astype(np.int32)
  return tokens[keep], sent[keep]
