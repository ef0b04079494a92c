"""fastText's subword models, `sgram_subword_neg` and `cbow_subword_neg`, and `register` for a user's own.

A word's input vector (Bojanowski et al. 2017; fastText's Model::computeHidden) is the mean of its own row
and its character n-grams' rows:

  x_w = (v_w + Σ_{g ∈ G_w} z_g) / (1 + |G_w|),   v_w = W_in[w],  z_g = W_in[V + bucket(g)],

G_w the n-grams of "<w>" for n = min_n..max_n and bucket(g) fastText's FNV-1a hash mod `buckets`
(ngrams.py: gensim's bucket ids). Where the rows live: the buckets are W_in's rows V..V + buckets − 1
(`Model.extra_in_rows`), so Params stays two tables, W_in [V + buckets, D] and W_out [V, D], and every
step, the duplicate cap and the row kernels apply unchanged: a RowGrads may name a bucket row of W_in.
The vocabulary's n-grams are a `Table` closed over at `Model.configure(words=...)`, as hierarchical
softmax closes over its tree: word w's bag is rows[w] [G] (column 0 is w itself, then V + its buckets,
padded with w) with weight[w] [G] (1 real, 0 padding), G = 1 + the most n-grams of any word, so
x_w = Σ_g ω_g W_in[r_g] / Σ_g ω_g (`word_vector`).

  sgram_subword_neg  h = x_center, L = Σ_j m_j [softplus(−u_{c_j}·h) + Σ_k softplus(u_{n_jk}·h)]: doc
                     002's skip-gram with v_center replaced by x_center and K negatives per (center,
                     context) pair, as fastText and gensim draw them (`negatives_per_slot`: the batch
                     carries C·K; a bucket of C = 2b slots uses its first C·K, rewrites.per_pair).
  cbow_subword_neg   h = Σ_j m_j s_j / Σ_j m_j c_j, s_j, c_j the bag sum and size of context word j:
                     the mean of *all* the window's rows, as fastText's CBOW builds one bag of them (not
                     the mean of the words' x), L = softplus(−u_center·h) + Σ_k softplus(u_{n_k}·h).

Gradients. With ∂L/∂h from the negative-sampling heads of losses.py, the exact gradient of row r of a bag
is ω_r ∂L/∂h / c (skip-gram: the center's bag, c = 1 + |G|) and m_j ω_r ∂L/∂h / N (CBOW: context j's bag,
N = Σ_j m_j c_j): `row_grads`, checked against jax.grad by models.check_gradients. fastText and gensim
train another rule: every input row receives the whole ∂L/∂h (fastText's Model::update adds the gradient
to each input row; only its supervised mode divides by their number), c or N times the exact gradient;
word2vec's CBOW rule on the rows. That is `train_rows` under cbow_context_grad="sum" (the default);
"mean" trains the exact gradient.

Slips in the sources. gensim 4.4's skip-gram (fasttext_inner.pyx, fasttext_fast_sentence_sg_neg) scales
the center's summed rows by 1 / |G_w| (`norm_factor = ONEF / subwords_len`), while its own
adjust_vectors (which makes wv[word]) and fastText divide by 1 + |G_w|: gensim trains on (1 + |G|) / |G|
times the vector it exports (1.04 for a word of 24 n-grams). Here training and export use the mean.
Negatives: K per (center, context) pair, as fastText and gensim draw them; without n-grams (min_n above
every word's length) the model trains as sgram_neg with sgram_neg_form="pairs" (tests/test_subword.py).

A word outside the vocabulary gets Σ_{g ∈ G} z_g / |G| (gensim's FastTextKeyedVectors.get_vector; the
zero vector if it has no n-gram): vectors.py, from the subwords.npz written beside vectors.txt.

Shape letters: B batch, C context slots, K negatives, G bag size, D dim.
"""
import functools
import hashlib
import pathlib
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import atomic, losses, models, ngrams, rewrites
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, Params, RowGrads

__all__ = ["Table", "table_for", "word_vector", "bag_sum", "register", "autodiff_row_grads", "SUBWORDS_FILE"]

SUBWORDS_FILE = "subwords.npz"   # beside vectors.txt: the bucket rows and the n-gram settings


class Table(NamedTuple):
  """A vocabulary's bags of W_in rows (module docstring)."""
  rows: jax.Array     # int32 [V, G]  column 0 the word, then V + its buckets, padded with the word
  weight: jax.Array   # float32 [V, G] 1 real, 0 padding
  min_n: int
  max_n: int
  buckets: int


_TABLES: dict[str, Table] = {}
_CACHE_SIZE = 4


def table_for(words, min_n: int = ngrams.MIN_N, max_n: int = ngrams.MAX_N, buckets: int = ngrams.BUCKETS) -> Table:
  """The bags of these words, built once (the last few vocabularies' tables are kept)."""
  h = hashlib.sha256(f"{min_n},{max_n},{buckets},{len(words)}\n".encode())
  h.update("\n".join(words).encode("utf-8", "surrogatepass"))
  key = h.hexdigest()
  if key not in _TABLES:
    rows, weight = ngrams.bag_table(*ngrams.vocab_hashes(words, min_n, max_n, buckets), len(words))
    while len(_TABLES) >= _CACHE_SIZE:
      _TABLES.pop(next(iter(_TABLES)))
    _TABLES[key] = Table(jnp.asarray(rows), jnp.asarray(weight), min_n, max_n, buckets)
  return _TABLES[key]


def bag_sum(table: Table, W_in, words):
  """(Σ_g ω_g W_in[r_g] [..., D], c = Σ_g ω_g [...]) over the bags of `words` [...]."""
  weight = table.weight[words].astype(W_in.dtype)                          # [..., G]
  return jnp.sum(weight[..., None] * W_in[table.rows[words]], axis=-2), jnp.sum(weight, axis=-1)


def word_vector(table: Table, W_in, words):
  """x_w [..., D] of `words` [...]: the mean of the word's row and its n-grams' rows."""
  s, c = bag_sum(table, W_in, words)
  return s / c[..., None]


# ----------------------------------------------------------------------------- the two models

def sgram_subword_neg_example_loss(table: Table, params: Params, ex: Batch, neg: int) -> jax.Array:
  """Σ_j m_j [−log σ(u_{c_j}·h) − Σ_k log σ(−u_{n_jk}·h)], h = x_center, slot j's negatives the j-th K of
  ex.negatives."""
  h = word_vector(table, params.W_in, ex.center)                          # [D]
  C = ex.context.shape[0]
  pos = jax.nn.softplus(-params.W_out[ex.context] @ h)                     # [C]
  negatives = ex.negatives[:C * neg].reshape(C, neg)                       # [C, K]
  return jnp.sum(ex.mask * (pos + jnp.sum(jax.nn.softplus(params.W_out[negatives] @ h), axis=1)))


def cbow_subword_neg_example_loss(table: Table, params: Params, ex: Batch) -> jax.Array:
  """−log σ(u_center·h) − Σ_k log σ(−u_{n_k}·h), h the mean of all the context words' bag rows; 0 if n = 0."""
  s, c = bag_sum(table, params.W_in, ex.context)                           # [C, D], [C]
  N = jnp.sum(ex.mask * c)
  h = jnp.sum(ex.mask[:, None] * s, axis=0) / jnp.maximum(N, 1.0)
  loss = (jax.nn.softplus(-params.W_out[ex.center] @ h)
          + jnp.sum(jax.nn.softplus(params.W_out[ex.negatives] @ h)))
  return jnp.where(N > 0, loss, 0.0)


def _bag_rows(table: Table, words, coef, dh):
  """The bag rows of `words` [...] and their gradient rows coef [..., G] · dh [..., D], flattened."""
  rows = (coef[..., None] * dh[..., None, :]).reshape(-1, dh.shape[-1])
  return table.rows[words].reshape(-1), rows


def sgram_subword_neg_row_grads(table: Table, params: Params, batch: Batch, neg: int,
                                cbow_context_grad: str = "mean"):
  """(loss [B], RowGrads): rewrites.sgram_neg_pairs_row_grads on h = x_center (its W_out rows, loss and
  ∂L/∂h, summed over the window's pairs), then row r of the center's bag gets ω_r ∂L/∂h / c ("mean",
  exact) or ω_r ∂L/∂h ("sum", fastText's)."""
  s, c = bag_sum(table, params.W_in, batch.center)                         # [B, D], [B]
  B, C = batch.context.shape
  loss, rg = rewrites.sgram_neg_pairs_row_grads(Params(s / c[:, None], params.W_out),
                                                batch._replace(center=jnp.arange(B, dtype=jnp.int32)), neg)
  dh = rg.in_rows.reshape(B, C, -1).sum(axis=1)                            # in_idx = each b, C times
  weight = table.weight[batch.center].astype(s.dtype)                      # [B, G]
  coef = weight / c[:, None] if _exact(cbow_context_grad) else weight
  return loss, RowGrads(*_bag_rows(table, batch.center, coef, dh), rg.out_idx, rg.out_rows)


def cbow_subword_neg_row_grads(table: Table, params: Params, batch: Batch, cbow_context_grad: str = "mean"):
  """(loss [B], RowGrads): losses.cbow_neg_head on h = Σ_j m_j s_j / N, then row r of context word j's bag
  gets m_j ω_r ∂L/∂h / N ("mean", exact) or m_j ω_r ∂L/∂h ("sum", fastText's and gensim's rule)."""
  s, c = bag_sum(table, params.W_in, batch.context)                        # [B, C, D], [B, C]
  N = jnp.sum(batch.mask * c, axis=1)                                      # [B]
  h = jnp.sum(batch.mask[:, :, None] * s, axis=1) / jnp.maximum(N, 1.0)[:, None]
  loss, dh, out_parts = losses.cbow_neg_head(params, h, N, batch.center, batch.negatives)
  coef = batch.mask[:, :, None] * table.weight[batch.context].astype(h.dtype)   # [B, C, G]
  if _exact(cbow_context_grad):
    coef = coef / jnp.maximum(N, 1.0)[:, None, None]
  dh = jnp.broadcast_to(dh[:, None, :], s.shape)                           # [B, C, D]
  out_idx, out_rows = (jnp.concatenate(x) for x in zip(*out_parts))
  return loss, RowGrads(*_bag_rows(table, batch.context, coef, dh), out_idx, out_rows)


def _exact(cbow_context_grad: str) -> bool:
  losses.check_context_grad(cbow_context_grad)
  return cbow_context_grad == "mean"


# ----------------------------------------------------------------------------- autodiff on a bag's rows

def _probe(example_loss: Callable, C: int, K: int) -> tuple[tuple[bool, ...], ...]:
  """models.read_slots of a subword loss on a batch's C and K: its word slots read from W_in (through their
  bags or directly) and from W_out, probed with bags of one row each (every word its own row)."""
  M = 1 + C + K
  own = Table(jnp.arange(M, dtype=jnp.int32)[:, None], jnp.ones((M, 1), jnp.float32), 0, 0, 0)
  return models.read_slots(functools.partial(example_loss, own), C=C, K=K)


def autodiff_row_grads(example_loss: Callable, table: Table) -> Callable:
  """(params, batch) -> (loss [B], RowGrads) by jax.grad on each example's own rows, for a subword loss
  example_loss(table, params, ex) without a closed form.

  As models.autodiff_row_grads, with bags: per example, the M = 1 + C + K words' rows of W_out, and of
  W_in the words' own rows and the n-gram rows of the words whose slots the loss reads from W_in (probed
  once, `_probe`). The local W_in holds the M own rows (zeros for slots not read), then the read words'
  G − 1 n-gram rows each; a local Table maps local word j to its own local rows, so the loss runs
  unchanged on them, reading W_in[j] or word_vector(table, W_in, j)."""
  probed = {}

  def row_grads(params: Params, batch: Batch):
    B, C = batch.context.shape
    K, G, D = batch.negatives.shape[1], table.rows.shape[1], params.W_in.shape[1]
    if (C, K) not in probed:
      with jax.ensure_compile_time_eval():   # a probe on concrete arrays, even while a step is traced
        probed[C, K] = _probe(example_loss, C, K)
    reads = probed[C, K]
    M = 1 + C + K
    read_in, read_out = (np.repeat(np.asarray(r), (1, C, K)) for r in reads)    # [M] each, static
    bagged = np.flatnonzero(read_in)                                        # the slots whose bags are read
    ids = jnp.concatenate([batch.center[:, None], batch.context, batch.negatives], axis=1)   # [B, M]
    ngram_ids = table.rows[ids[:, bagged]][:, :, 1:].reshape(B, -1)         # [B, |bagged|·(G−1)]
    local_rows = np.repeat(np.arange(M, dtype=np.int32)[:, None], G, axis=1)
    local_rows[bagged, 1:] = M + np.arange(bagged.size * (G - 1)).reshape(-1, G - 1)
    weight = table.weight[ids] * jnp.asarray(read_in[:, None] | (np.arange(G) == 0), jnp.float32)   # [B, M, G]
    zero = lambda x, read: jnp.where(jnp.asarray(read)[None, :, None], x, 0)
    rows_in = jnp.concatenate([zero(params.W_in[ids], read_in), params.W_in[ngram_ids]], axis=1)
    rows_out = zero(params.W_out[ids], read_out)
    local = Batch(jnp.int32(0), jnp.arange(1, C + 1, dtype=jnp.int32), None, jnp.arange(C + 1, M, dtype=jnp.int32))

    def one(rows_in, rows_out, weight, mask):   # one example on its own rows
      own = Table(jnp.asarray(local_rows), weight, table.min_n, table.max_n, table.buckets)
      return jax.value_and_grad(lambda p: example_loss(own, p, local._replace(mask=mask)))(Params(rows_in, rows_out))
    loss, g = jax.vmap(one)(rows_in, rows_out, weight, batch.mask)
    keep_in = np.concatenate([bagged, M + np.arange(bagged.size * (G - 1))])   # own rows of read slots, n-grams
    in_idx = jnp.concatenate([ids, ngram_ids], axis=1)[:, keep_in]
    out_cols = np.flatnonzero(read_out)
    return loss, RowGrads(in_idx.reshape(-1), g.W_in[:, keep_in].reshape(-1, D),
                          ids[:, out_cols].reshape(-1), g.W_out[:, out_cols].reshape(-1, D))
  return row_grads


# ----------------------------------------------------------------------------- export

def word_vectors(table: Table, W_in) -> np.ndarray:
  """x_w of every vocabulary word, float32 [V, D] (gensim's wv.vectors: adjust_vectors), in blocks of
  about 4M gathered floats."""
  rows, weight = np.asarray(table.rows), np.asarray(table.weight)
  W_in = np.asarray(W_in, np.float32)
  V, G = rows.shape
  out = np.empty((V, W_in.shape[1]), np.float32)
  step = max(1, (1 << 22) // (G * W_in.shape[1]))
  for i in range(0, V, step):
    w = weight[i:i + step]
    out[i:i + step] = np.einsum("vg,vgd->vd", w, W_in[rows[i:i + step]]) / w.sum(axis=1, keepdims=True)
  return out


def write_subwords(table: Table, directory, params: Params) -> None:
  """subwords.npz in `directory`: the bucket rows W_in[V:] float32 [buckets, D] and the n-gram settings,
  what vectors.load needs beside vectors.txt to give a word outside the vocabulary its vector."""
  V = table.rows.shape[0]
  buckets = np.asarray(params.W_in, np.float32)[V:]
  atomic.write_atomic(pathlib.Path(directory) / SUBWORDS_FILE, lambda f: np.savez(
      f, buckets=buckets, min_n=table.min_n, max_n=table.max_n, hash=np.str_("fasttext-fnv1a-int8")))


# ----------------------------------------------------------------------------- registration

def _needs_words(name: str):
  def fail(*_):
    raise W2VError(f"model {name!r} needs a vocabulary: its n-gram rows are built from the words. Use "
                   f"models.get({name!r}).configure(words=vocab.words) (api.train and loop.fit do)")
  return fail


def _checked(fn, table: Table, name: str):
  """fn(table, params, batch, ...) with W_in's rows checked against the table at trace time."""
  V = table.rows.shape[0]

  @functools.wraps(fn)
  def f(params, batch, *args, **kw):
    if params.W_in.shape[0] != V + table.buckets or params.W_out.shape[0] != V:
      raise W2VError(f"model: the tables have {params.W_in.shape[0]} and {params.W_out.shape[0]} rows, but the "
                     f"n-gram table wants {V + table.buckets} (V + buckets) and {V}; configure the model with "
                     "the words of the vocabulary it trains on")
    return fn(table, params, batch, *args, **kw)
  return f


def register(name: str, example_loss: Callable, row_grads: Callable | None = None,
             train_rows: Callable | None = None, options: tuple[str, ...] = (), **fields) -> models.Model:
  """Registers a subword model through models.register: example_loss(table, params, ex) -> scalar, reading
  W_in through the table's bags (`word_vector`, `bag_sum`) or directly, and W_out at the example's ids;
  row_grads(table, params, batch) -> (loss [B], RowGrads), its closed form, optional (without it the model
  trains by `autodiff_row_grads`); train_rows(table, params, batch, cbow_context_grad=...), optional, a
  training rule other than the gradient. `options`: run options of Model.configure (e.g. "neg") that the
  three receive as keywords. Model.configure(words=..., min_n=, max_n=, buckets=) closes them over the
  vocabulary's Table, and W_in gets `buckets` extra rows."""
  def configure(model: models.Model, *, words=None, min_n: int = ngrams.MIN_N, max_n: int = ngrams.MAX_N,
                buckets: int = ngrams.BUCKETS, cbow_context_grad: str = "sum", **run) -> models.Model:
    losses.check_context_grad(cbow_context_grad)
    if words is None:
      return model
    missing = [o for o in options if o not in run]
    if missing:
      raise W2VError(f"model {name!r} needs the options {missing} from Model.configure")
    table = table_for(list(words), min_n, max_n, buckets)
    bind = lambda fn: functools.partial(_checked(fn, table, name), **{o: run[o] for o in options})
    model = model._replace(example_loss=bind(example_loss), extra_in_rows=buckets,
                           word_vectors=functools.partial(word_vectors, table),
                           write_files=functools.partial(write_subwords, table))
    if row_grads is not None:
      model = model._replace(row_grads=bind(row_grads))
    if train_rows is not None:
      return model._replace(train_rows=functools.partial(bind(train_rows), cbow_context_grad=cbow_context_grad))
    if row_grads is None:
      auto = autodiff_row_grads(functools.partial(example_loss, **{o: run[o] for o in options}), table)
      return model._replace(train_rows=_checked(lambda _, params, batch: auto(params, batch), table, name))
    return model
  return models.register(name, _needs_words(name), configure_fn=configure, **fields)


register("sgram_subword_neg", sgram_subword_neg_example_loss,
         functools.partial(sgram_subword_neg_row_grads, cbow_context_grad="mean"), sgram_subword_neg_row_grads,
         options=("neg",), negatives_per_slot=True)
register("cbow_subword_neg", cbow_subword_neg_example_loss,
         functools.partial(cbow_subword_neg_row_grads, cbow_context_grad="mean"), cbow_subword_neg_row_grads,
         per_pair=False, default_lr=0.05)
