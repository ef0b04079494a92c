"""Small shared test helpers: random batches with the awkward cases built in."""
import numpy as np
import jax.numpy as jnp

from w2v_jax import Batch, Params


def random_params(rng, V, D, dtype=np.float64):
  """Both tables random (W_out = 0 at init would hide half of every gradient)."""
  return Params(jnp.asarray(rng.normal(size=(V, D)) * 0.5, dtype),
                jnp.asarray(rng.normal(size=(V, D)) * 0.5, dtype))


def awkward_batch(rng, V, B, C, K, dtype=np.float64):
  """A batch with repeated words, a negative equal to the positive, padding, and an empty example."""
  center = rng.integers(0, V, size=B)
  context = rng.integers(0, min(V, 4), size=(B, C))        # few distinct ids -> many repeats
  mask = (rng.random((B, C)) < 0.7).astype(dtype)
  mask[0] = 0.0                                            # fully masked example
  mask[1] = 1.0                                            # fully populated example
  negatives = rng.integers(0, V, size=(B, K))
  if K:
    negatives[2 % B, 0] = center[2 % B]                    # negative == positive (center / cbow target)
    negatives[3 % B, :] = context[3 % B, 0]                # negative == a context word (sgram positive)
  center[4 % B] = center[5 % B]                            # repeated centers
  return Batch(jnp.asarray(center, jnp.int32), jnp.asarray(context, jnp.int32),
               jnp.asarray(mask, dtype), jnp.asarray(negatives, jnp.int32))


def planted_corpus(path, *, groups=4, words_per_group=12, sentences=600, length=12, seed=0):
  """A corpus whose sentences each use the words of one group only: neighbours must find the groups."""
  rng = np.random.default_rng(seed)
  lines = []
  for _ in range(sentences):
    g = rng.integers(groups)
    lines.append(" ".join(f"g{g}w{w}" for w in rng.integers(0, words_per_group, length)))
  path.write_text("\n".join(lines) + "\n")
  return path


def group_purity(words, vectors, k=5):
  """Fraction of each word's k nearest neighbours (cosine) that share its group."""
  u = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
  sims = u @ u.T
  np.fill_diagonal(sims, -np.inf)
  group = np.array([w.split("w")[0] for w in words])
  top = np.argsort(-sims, axis=1)[:, :k]
  return float(np.mean(group[top] == group[:, None]))


def jax_step(model: str, layout: str = "batch", max_dup=None, **cfg):
  """The engine's pure-JAX fast step (no native kernels) for `model` on one device: a StepSpec."""
  from w2v_jax import engine, native
  from w2v_jax.config import TrainConfig
  return engine.select_step(TrainConfig(model=model, layout=layout, max_dup=max_dup, **cfg),
                            backend_status=native.Status(False, "off in this test"))
