"""w2v_jax: word2vec in JAX. Public names are re-exported here one by one."""
from w2v_jax import models
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, Params

__all__ = ["Batch", "Params", "W2VError", "models"]
