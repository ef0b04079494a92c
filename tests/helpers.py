"""Small shared test helpers: random batches with the awkward cases built in."""
import numpy as np
import jax.numpy as jnp

from w2v_jax import Batch, Params


def random_params(rng, V, D, dtype=np.float64):
  """Both tables random (W_out = 0 at init would hide half of every gradient)."""
  return Params(jnp.asarray(rng.normal(size=(V, D)) * 0.5, dtype),
                jnp.asarray(rng.normal(size=(V, D)) * 0.5, dtype))


def awkward_batch(rng, V, B, C, K, dtype=np.float64):
  """A batch with repeated words, a negative equal to the positive, padding, and an empty example: the
  batch the public gradient checker uses (models.random_check_batch)."""
  from w2v_jax import models
  return models.random_check_batch(rng, V, B, C, K, dtype)


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
