"""Models as values: a `Model` per loss, the registry, the public gradient checker, and autodiff on rows.

A model is one `Model` (a NamedTuple, like optax's GradientTransformation): its loss for one example,
optionally its closed-form gradient as rows, and optionally faster forms of its training update for a
layout or a backend. The engine (engine.py) asks the model for these; it never branches on a name.

    from w2v_jax import models
    models.register("my_sgns", my_example_loss)           # no closed form: autodiff on the batch's rows
    models.get("my_sgns").loss(params, batch)             # mean over the batch
    models.check_gradients("sgram_neg")                   # closed form against jax.grad, float64

The built-in models (losses.py, the four source documents) go through the same registry:
  cbow, sgram          full softmax (docs 000, 001); every step reads all V rows of W_out (`dense_out`)
  cbow_neg, sgram_neg  negative sampling (doc 002)
hsoftmax.py registers cbow_hs and sgram_hs through the public `register`, as a user would.

Autodiff on rows (`autodiff_row_grads`). A loss that reads W_in and W_out only at the ids its example
names (center, context, negatives) has, per example, a gradient that is zero outside those 1 + C + K rows
of each table. So the rows are gathered into a small local `Params` of 1 + C + K rows per example, the
example's ids are remapped to 0 (center), 1..C (context) and C+1..C+K (negatives), jax.grad runs there,
and the local gradient rows are returned with their global ids, to be scatter-added like a closed
form's. This works whichever table the loss reads at which id (skip-gram reads W_in at the center,
CBOW and word2vec.c's skip-gram read it at the context), and no dense [V, D] gradient is ever formed.
"""
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import losses, rewrites
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, Params, RowGrads

__all__ = ["Model", "RowGrads", "register", "get", "names", "NAMES", "check_gradients", "init",
           "autodiff_row_grads"]

NAMES = ("cbow", "cbow_neg", "sgram", "sgram_neg")   # the four models of the source documents


class Model(NamedTuple):
  """What the engine needs of a model. Only `name` and `example_loss` are required.

  example_loss(params, ex) -> scalar: the loss of one example (Batch fields without the batch axis).
  row_grads(params, batch) -> (loss [B], RowGrads): the closed-form gradient of the summed batch loss.
  per_pair: the loss sums one prediction per (center, context) pair (skip-gram); False: one prediction
    per example (CBOW). Sets what "loss per prediction" divides by.
  uses_negatives: the loss reads the batch's negatives (sweeps collapse the k axis of those that do not).
  dense_out: the loss reads every row of W_out (a full softmax): its out rows are all V of them.
  train_rows: the update the fast step applies on a Batch when it is not the gradient (word2vec's CBOW
    rule, word2vec.c's swapped skip-gram); None: row_grads (or autodiff rows).
  span_rows: train_rows on a SpanBatch, the W_in side as one row per span position.
  native_step, native_options: the name and attributes of a fused CPU kernel doing the whole span step
    (native.FUSED_STEPS); the engine runs it where the native backend is built.
  negatives_per_slot: the batch must carry K negatives per context slot (C·K per example).
  default_lr: the starting learning rate when a run gives none (word2vec.c's -alpha: 0.025 skip-gram,
    0.05 CBOW).
  configure_fn: (model, **options) -> Model, the model under the run's options (cbow_context_grad,
    sgram_neg_form, neg, counts: the vocabulary's counts [V] or None, words: its words [V] or None,
    min_n, max_n, buckets); options it does not know are ignored. Called by engine.select_step and
    check_gradients through `Model.configure`. Per-word data built from the vocabulary (hierarchical
    softmax's tree, the subword models' n-gram rows) is closed over here.
  extra_in_rows: rows of W_in after the V word rows (the subword models' n-gram buckets): W_in is
    [V + extra_in_rows, D], W_out stays [V, D].
  word_vectors: W_in (numpy [V + extra_in_rows, D]) -> the V words' vectors [V, D] (vectors.txt);
    None: W_in's first V rows.
  write_files: (directory, params) -> None: the model's own files beside vectors.txt (subwords.npz).
  """
  name: str
  example_loss: Callable[[Params, Batch], jax.Array]
  row_grads: Callable | None = None
  per_pair: bool = True
  uses_negatives: bool = True
  dense_out: bool = False
  train_rows: Callable | None = None
  span_rows: Callable | None = None
  native_step: str | None = None
  native_options: tuple = ()
  negatives_per_slot: bool = False
  default_lr: float = 0.025
  configure_fn: Callable | None = None
  extra_in_rows: int = 0
  word_vectors: Callable | None = None
  write_files: Callable | None = None

  @property
  def loss(self) -> Callable[[Params, Batch], jax.Array]:
    """loss(params, batch) -> scalar: the mean of `example_loss` over the batch."""
    example_loss = self.example_loss

    def loss(params: Params, batch: Batch) -> jax.Array:
      params = Params(*map(jnp.asarray, params))   # numpy tables cannot be indexed by traced ids
      return jnp.mean(jax.vmap(example_loss, in_axes=(None, 0))(params, batch))
    return loss

  @property
  def grad(self) -> Callable[[Params, Batch], Params]:
    """grad(params, batch) -> Params: the closed form of the mean loss's gradient, dense [V, D]."""
    if self.row_grads is None:
      raise W2VError(f"model {self.name!r} has no closed-form gradient; register it with row_grads=...")
    row_grads = self.row_grads

    def grad(params: Params, batch: Batch) -> Params:
      _, rg = row_grads(params, batch)
      zeros = Params(jnp.zeros_like(params.W_in), jnp.zeros_like(params.W_out))
      return losses.apply_rows(zeros, rg, 1.0 / batch.center.shape[0])
    return grad

  @property
  def rows(self) -> Callable:
    """(params, batch) -> (loss [B], RowGrads): the closed form, else autodiff on the batch's rows."""
    return self.row_grads if self.row_grads is not None else autodiff_row_grads(self.example_loss)

  @property
  def update_rows(self) -> Callable:
    """What the fast step applies on a Batch: `train_rows`, else `rows`."""
    return self.train_rows if self.train_rows is not None else self.rows

  def configure(self, **options) -> "Model":
    return self if self.configure_fn is None else self.configure_fn(self, **options)


_SLOTS = ("center", "context", "negatives")


def read_slots(example_loss: Callable, C: int = 4, K: int = 3, D: int = 3) -> tuple[tuple[bool, ...], ...]:
  """Which (table, slot group) blocks the loss reads: ((W_in at center, context, negatives), (W_out at
  ...)). Probed once per loss from the gradient of one random example with distinct ids and random
  tables (a block read with a zero derivative there is missed with probability zero)."""
  rng = np.random.default_rng(0)
  ex = Batch(jnp.int32(0), jnp.arange(1, C + 1, dtype=jnp.int32), jnp.ones((C,), jnp.float32),
             jnp.arange(C + 1, C + K + 1, dtype=jnp.int32))
  params = Params(*(jnp.asarray(rng.normal(size=(1 + C + K, D)), jnp.float32) for _ in range(2)))
  g = jax.grad(example_loss)(params, ex)
  spans = (slice(0, 1), slice(1, C + 1), slice(C + 1, C + K + 1))
  return tuple(tuple(bool(np.any(np.asarray(t)[sl] != 0)) for sl in spans) for t in g)


def autodiff_row_grads(example_loss: Callable) -> Callable:
  """(params, batch) -> (loss [B], RowGrads) by jax.grad on the rows the batch names (module docstring).

  Only the blocks the loss reads (`read_slots`) are gathered and returned: skip-gram reads W_in at the
  center and W_out at the context and negatives, so it costs 1 + C + K rows per example, as its closed form."""
  reads = None

  def row_grads(params: Params, batch: Batch):
    nonlocal reads
    if reads is None:
      with jax.ensure_compile_time_eval():   # a probe on concrete arrays, even while a step is traced
        reads = read_slots(example_loss)
    B, C = batch.context.shape
    K = batch.negatives.shape[1]
    D = params.W_in.shape[1]
    groups = (batch.center[:, None], batch.context, batch.negatives)           # [B, 1], [B, C], [B, K]
    ids = jnp.concatenate(groups, axis=1)                                      # [B, 1+C+K]
    local = (jnp.int32(0), jnp.arange(1, C + 1, dtype=jnp.int32), jnp.arange(C + 1, C + K + 1, dtype=jnp.int32))

    def gather(table, read):   # [B, 1+C+K, D]: the rows the loss reads, zeros for the blocks it does not
      return jnp.concatenate([table[g] if r else jnp.zeros(g.shape + (D,), table.dtype)
                              for g, r in zip(groups, read)], axis=1)

    def one(rows_in, rows_out, mask):   # one example on its own 1 + C + K rows of each table
      ex = Batch(local[0], local[1], mask, local[2])
      return jax.value_and_grad(example_loss)(Params(rows_in, rows_out), ex)
    loss, g = jax.vmap(one)(gather(params.W_in, reads[0]), gather(params.W_out, reads[1]), batch.mask)

    def rows(grad, read):   # the read blocks' ids and gradient rows, flattened
      cols = np.concatenate([np.arange(sl.start, sl.stop) for sl, r in zip(
          (slice(0, 1), slice(1, C + 1), slice(C + 1, C + K + 1)), read) if r]).astype(np.int32)
      if cols.size == 0:
        return jnp.zeros((0,), jnp.int32), jnp.zeros((0, D), grad.dtype)
      return ids[:, cols].reshape(-1), grad[:, cols].reshape(-1, D)
    return loss, RowGrads(*rows(g.W_in, reads[0]), *rows(g.W_out, reads[1]))
  return row_grads


# ----------------------------------------------------------------------------- the registry

_REGISTRY: dict[str, Model] = {}


def register(name: str, example_loss: Callable, row_grads: Callable | None = None, **fields) -> Model:
  """Registers a model under `name` and returns it; models.get(name) and TrainConfig(model=name) then
  know it, and api.train trains it (with autodiff on rows when row_grads is None).

  example_loss(params, ex) -> scalar, pure, reading the tables only at ex's ids; row_grads(params, batch)
  -> (loss [B], RowGrads), optional. Other `Model` fields (per_pair, dense_out, ...) may be given too.
  Registering a name again replaces that model (a plugin file imported twice gives the same model)."""
  if not isinstance(name, str) or not name or name.split() != [name]:
    raise W2VError(f"a model name must be a non-empty word without spaces, got {name!r}")
  if not callable(example_loss) or (row_grads is not None and not callable(row_grads)):
    raise W2VError(f"models.register({name!r}, ...): example_loss and row_grads must be functions")
  unknown = set(fields) - set(Model._fields)
  if unknown:
    raise W2VError(f"models.register({name!r}, ...): unknown fields {sorted(unknown)}; "
                   f"known: {', '.join(Model._fields[2:])}")
  model = Model(name=name, example_loss=example_loss, row_grads=row_grads, **fields)
  _REGISTRY[name] = model
  return model


def names() -> tuple[str, ...]:
  """Every registered model's name: the four built-ins first."""
  return tuple(_REGISTRY)


def get(name: str) -> Model:
  """The model registered as `name`."""
  if name not in _REGISTRY:
    raise W2VError(f"unknown model {name!r}: choose one of {', '.join(_REGISTRY)} (or register your own with "
                   "models.register, e.g. in a --plugin file)")
  return _REGISTRY[name]


_INIT_BLOCK = 1 << 22   # elements of W_in drawn at a time


def init(key: jax.Array, vocab_size: int, dim: int, dtype=jnp.float32, into: Params | None = None,
         extra_in_rows: int = 0) -> Params:
  """word2vec.c's initialisation: W_in ~ U[-0.5, 0.5)/D, W_out = 0. W_in has vocab_size + extra_in_rows
  rows (Model.extra_in_rows: the subword models' n-gram buckets, drawn as the word rows), W_out vocab_size.

  W_in is drawn in blocks of about 4M elements, block i from fold_in(key, i) (the last block ends at row V,
  overlapping the one before it), in one jitted loop that updates the table in place. So building it holds
  the table and one block, not the ~4 tables' worth an eager jax.random.uniform of [V, D] peaks at (its
  bits, their floats and two elementwise results: 1.6 GB above the 0.4 GB table at V = 1M, D = 100, which
  was the run's peak RSS). The same key gives the same tables on every backend.

  `into`: two zero tables of `dtype` to use, [V + extra_in_rows, D] and [V, D], consumed (pages.init_params
  passes them on huge pages): W_in is drawn into the first in place (its buffer donated), and the second
  is W_out. The same tables as without.
  """
  V, D, dtype, N = int(vocab_size), int(dim), jnp.dtype(dtype), int(extra_in_rows)
  if into is None:
    return _init(key, V, N, D, dtype)
  if any(t.shape != (rows, D) or t.dtype != dtype for t, rows in zip(into, (V + N, V))):
    raise ValueError(f"init(into=...) needs zero [{V + N}, {D}] and [{V}, {D}] {dtype} tables")
  return Params(W_in=_draw_w_in(key, into.W_in), W_out=into.W_out)


def _fill_w_in(key, w):
  """W_in's blocks (see init) written over the zero table w."""
  V, D = w.shape
  rows = max(1, min(V, _INIT_BLOCK // max(D, 1)))

  def block(i, w):
    start = jnp.minimum(i * rows, V - rows)
    u = jax.random.uniform(jax.random.fold_in(key, i), (rows, D), w.dtype)
    return jax.lax.dynamic_update_slice(w, (u - 0.5) / D, (start, 0))
  return jax.lax.fori_loop(0, -(-V // rows), block, w)


_draw_w_in = jax.jit(_fill_w_in, donate_argnums=1)


def _init(key, V: int, N: int, D: int, dtype) -> Params:
  # W_in's zeros made apart and donated: jitted as one function, XLA wrote the zeros and then copied
  # them into the loop's buffer (one more pass over a table: 386 MB at V = 1M, D = 100).
  return Params(W_in=_draw_w_in(key, jnp.zeros((V + N, D), dtype)), W_out=jnp.zeros((V, D), dtype))


# ----------------------------------------------------------------------------- the gradient checker

def random_check_batch(rng: np.random.Generator, V: int, B: int, C: int, K: int, dtype=np.float64) -> Batch:
  """A batch with repeated words, a negative equal to the positive, padding, and a fully masked example."""
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
  return Batch(jnp.asarray(center, jnp.int32), jnp.asarray(context, jnp.int32), jnp.asarray(mask, dtype),
               jnp.asarray(negatives, jnp.int32))


CHECK_WORDS = ("the", "of", "and", "walk", "walks", "walked", "walking", "talk", "talked", "naïve", "café",
               "a", "straße", "ab", "abab", "rewalk")   # shared n-grams for the subword models' checks


def check_gradients(name: str, *, trials: int = 3, seed: int = 0, vocab_size: int = 13, dim: int = 5,
                    batch_size: int = 8, window: int = 2, neg: int = 3, **options) -> float:
  """The largest relative error between model `name`'s closed form and jax.grad of its loss, in float64.

  Per trial: random tables (W_out nonzero) and a `random_check_batch` (repeated ids, padding, a fully
  masked example); per table, max |closed − autodiff| / max |autodiff|. Returns the largest over
  trials and tables: about 1e-16 for a right closed form, O(1) for a wrong one. W2VError if the model
  has no closed form. `options` go to Model.configure (e.g. buckets=7 for the subword models, so that
  n-grams share rows); W_in gets the configured model's extra_in_rows."""
  # Counts and words for models that build something from the vocabulary (hierarchical softmax's tree,
  # the subword models' n-gram rows).
  words = [CHECK_WORDS[i % len(CHECK_WORDS)] + "x" * (i // len(CHECK_WORDS)) for i in range(vocab_size)]
  model = get(name).configure(**{"counts": np.arange(vocab_size, 0, -1) * 7 % 23 + 1, "words": words, "neg": neg,
                                 **options})
  if model.row_grads is None:
    raise W2VError(f"model {name!r} has no closed-form gradient to check (it trains with autodiff on "
                   "rows); pass row_grads= to models.register")
  with jax.enable_x64(True):
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(trials):
      params = Params(*(jnp.asarray(rng.normal(size=(rows, dim)) * 0.5)
                        for rows in (vocab_size + model.extra_in_rows, vocab_size)))
      K = neg * 2 * window if model.negatives_per_slot else neg   # K per context slot: C·K in the batch
      batch = random_check_batch(rng, vocab_size, batch_size, 2 * window, K)
      want = jax.grad(model.loss)(params, batch)
      got = model.grad(params, batch)
      for w, g in zip(want, got):
        w, g = np.asarray(w, np.float64), np.asarray(g, np.float64)
        worst = max(worst, float(np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-300)))
  return worst


# ----------------------------------------------------------------------------- the built-in models

def _with_prior(model: Model, example_loss, row_grads, counts, softmax_prior: str) -> Model:
  """A full-softmax model with the fixed log-unigram output bias (losses.log_unigram_prior) when the
  vocabulary's counts are known and softmax_prior is "unigram"; the documents' model otherwise."""
  if softmax_prior not in SOFTMAX_PRIORS:
    raise W2VError(f"softmax_prior must be one of {', '.join(SOFTMAX_PRIORS)}, got {softmax_prior!r}")
  if counts is None or softmax_prior == "none":
    return model
  prior = losses.log_unigram_prior(counts)
  return model._replace(example_loss=functools.partial(example_loss, log_prior=prior),
                        row_grads=functools.partial(row_grads, log_prior=prior))


SOFTMAX_PRIORS = ("unigram", "none")


def _configure_cbow(model: Model, *, cbow_context_grad: str = "sum", counts=None, softmax_prior="unigram",
                    **_) -> Model:
  """CBOW under word2vec's context rule ("sum", word2vec.c and gensim) or the exact gradient ("mean")."""
  losses.check_context_grad(cbow_context_grad)
  model = _with_prior(model, losses.cbow_example_loss,
                      functools.partial(losses.cbow_row_grads, cbow_context_grad="mean"), counts, softmax_prior)
  prior = model.row_grads.keywords.get("log_prior") if isinstance(model.row_grads, functools.partial) else None
  return model._replace(train_rows=functools.partial(losses.cbow_row_grads, cbow_context_grad=cbow_context_grad,
                                                     log_prior=prior))


def _configure_sgram(model: Model, *, counts=None, softmax_prior="unigram", **_) -> Model:
  """Skip-gram with the prior by default: without it, lr 0.025 diverges in the first epoch and 0.0125
  learns less. Its default lr is half word2vec.c's 0.025, which blew up within 5 epochs even with the
  prior (docs/softmax.md)."""
  return _with_prior(model, losses.sgram_example_loss, losses.sgram_row_grads, counts, softmax_prior)


def _configure_cbow_neg(model: Model, *, cbow_context_grad: str = "sum", **_) -> Model:
  losses.check_context_grad(cbow_context_grad)
  return model._replace(
      train_rows=functools.partial(losses.cbow_neg_row_grads, cbow_context_grad=cbow_context_grad),
      span_rows=functools.partial(rewrites.cbow_neg_span_row_grads, cbow_context_grad=cbow_context_grad),
      native_step="cbow_neg", native_options=(("cbow_context_grad", cbow_context_grad),))


SGRAM_NEG_FORMS = ("swapped", "shared", "pairs")


def _configure_sgram_neg(model: Model, *, sgram_neg_form: str = "swapped", neg: int = 5, **_) -> Model:
  """sgram_neg's training form (rewrites.py): word2vec.c's swapped orientation with window-shared
  negatives (the default), the model as defined ("shared"), or K negatives per pair ("pairs")."""
  if sgram_neg_form == "swapped":
    return model._replace(train_rows=rewrites.sgram_neg_swapped_row_grads,
                          span_rows=rewrites.sgram_neg_swapped_span_row_grads, native_step="sgram_neg")
  if sgram_neg_form == "pairs":
    return model._replace(train_rows=functools.partial(rewrites.sgram_neg_pairs_row_grads, neg=neg),
                          negatives_per_slot=True)
  if sgram_neg_form == "shared":
    return model
  raise W2VError(f"sgram_neg_form must be one of {', '.join(SGRAM_NEG_FORMS)}, got {sgram_neg_form!r}")


register("cbow", losses.cbow_example_loss,
         functools.partial(losses.cbow_row_grads, cbow_context_grad="mean"),
         per_pair=False, uses_negatives=False, dense_out=True, default_lr=0.05, configure_fn=_configure_cbow)
register("cbow_neg", losses.cbow_neg_example_loss,
         functools.partial(losses.cbow_neg_row_grads, cbow_context_grad="mean"),
         per_pair=False, default_lr=0.05, configure_fn=_configure_cbow_neg)
register("sgram", losses.sgram_example_loss, losses.sgram_row_grads, uses_negatives=False, dense_out=True,
         default_lr=0.0125, configure_fn=_configure_sgram)
register("sgram_neg", losses.sgram_neg_example_loss, losses.sgram_neg_row_grads,
         configure_fn=_configure_sgram_neg)
