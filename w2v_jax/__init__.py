"""w2v_jax: word2vec in JAX. Public names are re-exported here one by one.

    from w2v_jax import Batch, Params, TrainConfig, api, models, vectors
"""
from w2v_jax import models
from w2v_jax import hsoftmax  # noqa: F401  (registers cbow_hs and sgram_hs through models.register)
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, Params, RowGrads, SpanBatch

__all__ = ["Batch", "Params", "RowGrads", "SpanBatch", "TrainConfig", "W2VError", "models"]
