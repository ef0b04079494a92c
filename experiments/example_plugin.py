"""An example --plugin file: a new loss in a few lines, trained by the fast engine without a closed form.

    python -m experiments.train --plugin=experiments/example_plugin.py --model=my_sgns --workdir=runs/mine

`my_sgns` is skip-gram with negative sampling written as one example's loss; it reads the tables only at
the ids its example names, so the engine trains it by autodiff on those rows (models.autodiff_row_grads).
`my_sgns_cf` is the same loss with its closed form, which `models.check_gradients` checks.
"""
import jax
import jax.numpy as jnp

from w2v_jax import Batch, Params, RowGrads, models


def my_sgns(params: Params, ex: Batch) -> jax.Array:
  """Σ_j m_j [−log σ(u_{c_j}·v) − Σ_k log σ(−u_{n_k}·v)], v = v_center: doc 002's skip-gram."""
  v = params.W_in[ex.center]
  pos = jax.nn.softplus(-params.W_out[ex.context] @ v)               # [C]
  neg = jnp.sum(jax.nn.softplus(params.W_out[ex.negatives] @ v))      # shared by the C context words
  return jnp.sum(ex.mask * (pos + neg))


def my_sgns_rows(params: Params, batch: Batch):
  """Its closed form: ∂/∂u_c = m (σ(s)−1) v, ∂/∂u_n = n σ(s) v, ∂/∂v = Σ of both times u."""
  v, n = params.W_in[batch.center], batch.mask.sum(1)                 # [B, D], [B]
  u_c, u_n = params.W_out[batch.context], params.W_out[batch.negatives]
  s_c, s_n = jnp.einsum("bcd,bd->bc", u_c, v), jnp.einsum("bkd,bd->bk", u_n, v)
  loss = (batch.mask * jax.nn.softplus(-s_c)).sum(1) + n * jax.nn.softplus(s_n).sum(1)
  g = jnp.concatenate([batch.mask * (jax.nn.sigmoid(s_c) - 1), n[:, None] * jax.nn.sigmoid(s_n)], 1)
  u = jnp.concatenate([u_c, u_n], 1)
  out_idx = jnp.concatenate([batch.context, batch.negatives], 1).reshape(-1)
  return loss, RowGrads(batch.center, jnp.einsum("bt,btd->bd", g, u), out_idx,
                        (g[:, :, None] * v[:, None, :]).reshape(-1, v.shape[1]))


models.register("my_sgns", my_sgns)
models.register("my_sgns_cf", my_sgns, row_grads=my_sgns_rows)
