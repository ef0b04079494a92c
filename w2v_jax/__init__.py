"""w2v_jax: word2vec in JAX. Public names are re-exported here one by one.

    import w2v_jax
    result = w2v_jax.train(sentences_or_paths, model="sgram_neg", dim=100)   # w2v_jax/one_call.py
    result.vectors.most_similar("king")

    from w2v_jax import Batch, Params, TrainConfig, api, models, vectors
"""
from w2v_jax import models
from w2v_jax import hsoftmax  # noqa: F401  (registers cbow_hs and sgram_hs through models.register)
from w2v_jax import subword  # noqa: F401  (registers sgram_subword_neg and cbow_subword_neg the same way)
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, Params, RowGrads, SpanBatch

__all__ = ["Batch", "Params", "RowGrads", "SpanBatch", "TrainConfig", "W2VError", "models", "train"]
# public submodules reached as attributes (`w2v_jax.vectors.load(...)` after `import w2v_jax`), each
# imported on first use
_SUBMODULES = ("api", "corpus", "distributed", "evaluate", "native", "vectors")


def __getattr__(name):
  """`w2v_jax.train` and the public submodules import the run's machinery (api, the loop, the native
  kernels) on first use, so that `import w2v_jax` stays as light as the losses and models it holds."""
  if name == "train":
    from w2v_jax.one_call import train
    globals()["train"] = train
    return train
  if name in _SUBMODULES:
    import importlib
    return importlib.import_module(f"w2v_jax.{name}")   # (the import sets it on the package)
  raise AttributeError(f"module 'w2v_jax' has no attribute {name!r}")


def __dir__():
  return sorted({*globals(), "train", *_SUBMODULES})
