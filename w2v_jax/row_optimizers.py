"""Optimisers on rows: optax's sgd, adagrad, rmsprop and adam, applied only to the table rows a step touches.

The fast step's rows are the gradient of the *summed* batch loss; divided by B they are the gradient of the
mean loss that the dense research path (jax.grad + optax over the whole tables) differentiates. Here the
rows are first summed per word (`unique_rows`: a sort of the step's M row ids, O(M log M)), then each
touched word's slice of the optimiser state is gathered, updated, and scattered back with its table row.
A step costs O(M·D), not O(V·D); the state is one or two [V, D] tables (and a [V] step count for adam).

A row is *touched* when its summed gradient is not exactly zero (a padding slot's id is not a touch).
  sgd       w ← w − lr·g                                   equals optax.sgd on the whole tables
  adagrad   a ← a + g²;  w ← w − lr·g/√(a + ε)             equals optax.adagrad (a₀ = 0.1, ε = 1e-7): an
                                                            untouched row has g = 0, so optax leaves it too
  rmsprop   ν ← ρν + (1−ρ)g²;  w ← w − lr·g/√(ν + ε)        ρ = 0.9, ε = 1e-8, ν₀ = 0, as optax.rmsprop, but
                                                            lazy: optax also decays an untouched row's ν
  adam      t ← t + 1 (per row);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
            w ← w − lr·m̂/(√v̂ + ε), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)     β = (0.9, 0.999), ε = 1e-8
            "lazy" Adam: an untouched row keeps m, v and its step count t, and does not move. Dense Adam
            keeps moving every row by its momentum (m decays but stays nonzero), and its bias correction
            uses the global step, so a rare word's first update there is scaled by 1/(1−β₁^T) with T the
            global step (≈ 1), its m still tiny: rare words barely move. Here each row's bias correction
            uses its own count, as if the row had its own Adam (TensorFlow's LazyAdam keeps the global
            step instead).
No duplicate cap (rows.damp_duplicates) applies: these optimisers normalise the step themselves.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from w2v_jax.errors import W2VError
from w2v_jax.step import TrainState
from w2v_jax.types import Params

NAMES = ("sgd", "adagrad", "rmsprop", "adam")


class RowOptimizer(NamedTuple):
  name: str
  init: Callable    # table [V, D] -> its state (a tuple of arrays with V rows)
  update: Callable  # (table, state, ids [M], g [M, D], touched [M], lr) -> (table, state)


def unique_rows(idx, rows, num_rows: int):
  """(ids [M], summed rows [M, D]): rows with equal ids summed; unused slots get id num_rows (dropped
  by the scatters, which use mode="drop")."""
  M = idx.shape[0]
  ids, inverse = jnp.unique(idx, size=M, fill_value=num_rows, return_inverse=True)
  return ids, jax.ops.segment_sum(rows, inverse.reshape(-1), num_segments=M)


def _sgd():
  def update(table, state, ids, g, touched, lr):
    return table.at[ids].add((-lr * g).astype(table.dtype), mode="drop"), state
  return RowOptimizer("sgd", lambda table: (), update)


def _adagrad(initial: float = 0.1, eps: float = 1e-7):
  def update(table, state, ids, g, touched, lr):
    (acc,) = state
    a = acc.at[ids].get(mode="fill", fill_value=initial) + g * g
    step = jnp.where(touched[:, None], g * jax.lax.rsqrt(a + eps), 0.0)
    return (table.at[ids].add((-lr * step).astype(table.dtype), mode="drop"),
            (acc.at[ids].set(a.astype(acc.dtype), mode="drop"),))
  return RowOptimizer("adagrad", lambda table: (jnp.full_like(table, initial),), update)


def _rmsprop(decay: float = 0.9, eps: float = 1e-8):
  def update(table, state, ids, g, touched, lr):
    (nu,) = state
    old = nu.at[ids].get(mode="fill", fill_value=0.0)
    n = jnp.where(touched[:, None], decay * old + (1 - decay) * g * g, old)
    step = jnp.where(touched[:, None], g * jax.lax.rsqrt(n + eps), 0.0)
    return (table.at[ids].add((-lr * step).astype(table.dtype), mode="drop"),
            (nu.at[ids].set(n.astype(nu.dtype), mode="drop"),))
  return RowOptimizer("rmsprop", lambda table: (jnp.zeros_like(table),), update)


def _adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
  def init(table):
    return jnp.zeros_like(table), jnp.zeros_like(table), jnp.zeros(table.shape[:1], jnp.int32)

  def update(table, state, ids, g, touched, lr):
    m, v, t = state
    t_old = t.at[ids].get(mode="fill", fill_value=0)
    t_new = t_old + touched.astype(jnp.int32)                                   # [M]
    m_old, v_old = (x.at[ids].get(mode="fill", fill_value=0.0) for x in (m, v))
    keep = touched[:, None]
    m_new = jnp.where(keep, b1 * m_old + (1 - b1) * g, m_old)
    v_new = jnp.where(keep, b2 * v_old + (1 - b2) * g * g, v_old)
    tf = jnp.maximum(t_new, 1).astype(g.dtype)[:, None]
    m_hat, v_hat = m_new / (1 - b1 ** tf), v_new / (1 - b2 ** tf)
    step = jnp.where(keep, m_hat / (jnp.sqrt(v_hat) + eps), 0.0)
    return (table.at[ids].add((-lr * step).astype(table.dtype), mode="drop"),
            (m.at[ids].set(m_new.astype(m.dtype), mode="drop"), v.at[ids].set(v_new.astype(v.dtype), mode="drop"),
             t.at[ids].set(t_new, mode="drop")))
  return RowOptimizer("adam", init, update)


def get(name: str) -> RowOptimizer:
  makers = {"sgd": _sgd, "adagrad": _adagrad, "rmsprop": _rmsprop, "adam": _adam}
  if name not in makers:
    raise W2VError(f"no row optimiser {name!r}: choose one of {', '.join(NAMES)}")
  return makers[name]()


def make(name: str, batch_size: int):
  """(init, update) for the fast step: init(params) -> TrainState; update(state, rgs, lr) -> state, the
  row gradients of the summed loss divided by batch_size (the mean loss's gradient), per table."""
  opt = get(name)

  def init(params: Params) -> TrainState:
    return TrainState(params, tuple(opt.init(t) for t in params))

  def update_table(table, state, parts, lr):
    idx = jnp.concatenate([i.reshape(-1) for i, _ in parts])
    rows = jnp.concatenate([r.reshape(-1, table.shape[1]) for _, r in parts]) / batch_size
    ids, g = unique_rows(idx, rows, table.shape[0])
    touched = (ids < table.shape[0]) & jnp.any(g != 0, axis=1)
    return opt.update(table, state, ids, g, touched, lr)

  def update(state, rgs, lr):
    rgs = [rgs] if not isinstance(rgs, list) else rgs
    w_in, s_in = update_table(state.params.W_in, state.opt_state[0], [(r.in_idx, r.in_rows) for r in rgs], lr)
    w_out, s_out = update_table(state.params.W_out, state.opt_state[1], [(r.out_idx, r.out_rows) for r in rgs], lr)
    return TrainState(Params(w_in, w_out), (s_in, s_out))
  return init, update
