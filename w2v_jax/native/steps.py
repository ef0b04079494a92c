"""The kernels as JAX functions: the row kernels (the bits of rows.py's references), the fused steps of
the negative-sampling and hierarchical-softmax models (each equal to its JAX reference to rounding), and
the tables made on huge pages. `FUSED_STEPS` maps a model's `native_step` to its kernel."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import losses, rewrites
from w2v_jax.errors import W2VError
from w2v_jax.native import library
from w2v_jax.native.library import (_CBOW_HS_TARGET, _CBOW_NEG_TARGET, _HUGE_PAGE_COPY_TARGET,
                                    _HUGE_PAGE_ZEROS_TARGET, _SGRAM_HS_TARGET, _SGRAM_NEG_TARGET, _SPAN_TARGET,
                                    _TARGET)
from w2v_jax.rows import apply_rows_reference, apply_span_rows_reference
from w2v_jax.types import Params


def _require(tables) -> bool:
  """True when the kernels apply to these tables (float32); raises if the backend is not built here: the
  engine asks `status()` first, so reaching this without the kernels is a bug, not a fallback."""
  if not all(t.dtype == jnp.float32 for t in tables):
    return False
  if not library.available():
    raise RuntimeError(library.status().reason)
  return True


def apply_rows(table, parts, scale, max_dup: float | None):
  """rows.apply_rows_reference by the row kernel: table + scale · damp(rows) at idx, for parts
  [(idx [N], rows [N, D]), ...]. The same bits. Tables other than float32 take the reference."""
  if not _require([table]):
    return apply_rows_reference(table, parts, scale, max_dup)
  args = [a for idx, rows in parts
          for a in (idx.reshape(-1).astype(jnp.int32), rows.reshape(-1, table.shape[1]).astype(jnp.float32))]
  call = jax.ffi.ffi_call(_TARGET, jax.ShapeDtypeStruct(table.shape, table.dtype),
                          input_output_aliases={0: 0}, vmap_method="sequential")
  return call(table, jnp.asarray(scale, jnp.float32), *args,
              max_dup=np.float32(max_dup if max_dup is not None else 0.0))


def apply_span_rows(table, tokens, coef, vecs, scale, max_dup: float | None):
  """rows.apply_span_rows_reference by the span kernel: the same bits.

  tokens int32 [B + 2W] (a SpanBatch's), coef [B, 2W] (what each context slot's row is scaled by),
  vecs [B, D] (one vector per window, CBOW's ∂L/∂h). B·2W slot rows become B + 2W table rows."""
  if not _require([table]):
    return apply_span_rows_reference(table, tokens, coef, vecs, scale, max_dup)
  call = jax.ffi.ffi_call(_SPAN_TARGET, jax.ShapeDtypeStruct(table.shape, table.dtype),
                          input_output_aliases={0: 0}, vmap_method="sequential")
  return call(table, jnp.asarray(scale, jnp.float32), tokens.astype(jnp.int32), coef.astype(jnp.float32),
              vecs.astype(jnp.float32), max_dup=np.float32(max_dup if max_dup is not None else 0.0))


def cbow_neg_span_step_reference(params, span, lr, max_dup: float | None, *, cbow_context_grad: str):
  """One cbow_neg step on a SpanBatch in pure JAX: (params, loss [B]). rewrites.cbow_neg_span_parts, then
  the input side by rows.apply_span_rows_reference and the output side by rows.apply_rows_reference."""
  loss, coef, dh, out_parts = rewrites.cbow_neg_span_parts(params, span, cbow_context_grad)
  return Params(apply_span_rows_reference(params.W_in, span.tokens, coef, dh, -lr, max_dup),
                apply_rows_reference(params.W_out, out_parts, -lr, max_dup)), loss


def sgram_neg_span_step_reference(params, span, lr, max_dup: float | None):
  """One sgram_neg step (word2vec.c's swapped form, rewrites.py) on a SpanBatch in pure JAX: (params,
  loss [B]). rewrites.sgram_neg_swapped_span_row_grads, then rows.apply_rows_reference on each table."""
  loss, rg = rewrites.sgram_neg_swapped_span_row_grads(params, span)
  return Params(apply_rows_reference(params.W_in, [(rg.in_idx, rg.in_rows)], -lr, max_dup),
                apply_rows_reference(params.W_out, [(rg.out_idx, rg.out_rows)], -lr, max_dup)), loss


def _no_reference(hogwild: bool) -> None:
  """The JAX reference is the synchronous step: it cannot stand in for hogwild's."""
  if hogwild:
    raise ValueError("hogwild: the fused kernels run on float32 tables only")


def _stacked(span) -> bool:
  """A span of S steps on a leading axis (mask [S, B, 2W]) rather than one step's (mask [B, 2W])."""
  return span.mask.ndim == 3


def _reference_steps(reference, params, span, lr, *args, **kwargs):
  """`reference` on one step's span, or on each of S stacked steps in order (lr [S]): (Params, loss)."""
  if not _stacked(span):
    return reference(params, span, lr, *args, **kwargs)
  def body(p, xs):
    one, step_lr = xs
    return reference(p, one, step_lr, *args, **kwargs)
  return jax.lax.scan(body, params, (span, jnp.asarray(lr)))


def _fused_step(target: str, params, span, lr, max_dup: float | None, threads: int, hogwild: bool | None,
                *extra, **attrs):
  """The fused kernel `target` on (params, span, *extra inputs): (Params, loss [B]), the tables updated in
  place. With S steps stacked on the span's leading axis and lr [S], one call runs them in order: loss
  [S, B]. `hogwild`: None for a kernel without that attribute (the hierarchical-softmax ones)."""
  W_in, W_out = params
  call = jax.ffi.ffi_call(target, (jax.ShapeDtypeStruct(W_in.shape, W_in.dtype),
                                   jax.ShapeDtypeStruct(W_out.shape, W_out.dtype),
                                   jax.ShapeDtypeStruct(span.mask.shape[:-1], jnp.float32)),
                          input_output_aliases={0: 0, 1: 1}, vmap_method="sequential")
  if hogwild is not None:
    attrs["hogwild"] = np.int32(hogwild)
  W_in, W_out, loss = call(W_in, W_out, jnp.asarray(-lr, jnp.float32), span.tokens.astype(jnp.int32),
                           span.mask.astype(jnp.float32), span.negatives.astype(jnp.int32), *extra,
                           max_dup=np.float32(max_dup if max_dup is not None else 0.0),
                           threads=np.int32(threads), **attrs)
  return Params(W_in, W_out), loss


@functools.partial(jax.jit, static_argnames="huge_page")
def huge_page_copy(x, huge_page: int):
  """(a copy of x, int32 []): the copy's whole `huge_page`-byte pages advised MADV_HUGEPAGE before it was
  written (pages.cc), and how many were (or -errno if madvise refused). Needs the kernels (status())."""
  call = jax.ffi.ffi_call(_HUGE_PAGE_COPY_TARGET, (jax.ShapeDtypeStruct(x.shape, x.dtype),
                                                   jax.ShapeDtypeStruct((), jnp.int32)))
  return call(x, huge_page=np.int64(huge_page))


def huge_page_zeros(shape, dtype, huge_page: int):
  """(zeros of shape and dtype, int32 []): written by pages.cc into memory whose whole `huge_page`-byte
  pages were advised MADV_HUGEPAGE first, and how many were (or -errno). Needs the kernels (status())."""
  call = jax.ffi.ffi_call(_HUGE_PAGE_ZEROS_TARGET, (jax.ShapeDtypeStruct(tuple(shape), dtype),
                                                    jax.ShapeDtypeStruct((), jnp.int32)))
  return call(huge_page=np.int64(huge_page))


def cbow_neg_span_step(params, span, lr, max_dup: float | None, *, cbow_context_grad: str, threads: int = 0,
                       hogwild: bool = False):
  """`cbow_neg_span_step_reference` as one fused kernel (fused_steps.cc): the whole step, forward,
  gradient and both tables' updates, on the calling thread and the other threads of XLA's CPU pool, in
  place on the donated tables.

  Equal to the reference to float rounding, not bit for bit: its dot products and sums add in an order of
  their own (tests/test_native.py). Deterministic: the tables after a step depend only on the inputs, not
  on the number of threads or on which thread ran which part (threads: at most this many; 0 for all of
  XLA's CPU pool, or for one thread in the steps where one measured faster: fused_steps.cc, Pace, off
  with W2V_JAX_PACE=all; the tests compare 1 with all).

  hogwild=True runs word2vec.c's update instead (fused_steps.cc, RunHogwild): each window's rows are
  updated as soon as it is done, by threads that never wait for one another, with no duplicate cap. With
  one thread it is sequential SGD over the windows; with more, not reproducible bit for bit.

  A span with S steps stacked on a leading axis and lr [S] runs the S steps in order in one call (loss
  [S, B]): the same tables as S calls, without XLA's work between them."""
  losses.check_context_grad(cbow_context_grad)
  if not _require(params):
    _no_reference(hogwild)
    return _reference_steps(cbow_neg_span_step_reference, params, span, lr, max_dup,
                            cbow_context_grad=cbow_context_grad)
  return _fused_step(_CBOW_NEG_TARGET, params, span, lr, max_dup, threads, hogwild,
                     mean_grad=np.int32(cbow_context_grad == "mean"))


def sgram_neg_span_step(params, span, lr, max_dup: float | None, *, threads: int = 0, hogwild: bool = False):
  """`sgram_neg_span_step_reference` as one fused kernel, as `cbow_neg_span_step` is for cbow_neg (the
  same threads, the same determinism, equal to the reference to float rounding; the same `hogwild`, and
  the same S stacked steps in one call)."""
  if not _require(params):
    _no_reference(hogwild)
    return _reference_steps(sgram_neg_span_step_reference, params, span, lr, max_dup)
  return _fused_step(_SGRAM_NEG_TARGET, params, span, lr, max_dup, threads, hogwild)


def span_step_reference(params, span, lr, max_dup: float | None, *, span_rows):
  """One step of a model's span rows in pure JAX: (params, loss [B]). span_rows(params, span) -> (loss [B],
  RowGrads) is the model's `span_rows` (for cbow_hs and sgram_hs, hsoftmax.py's span forms on its tree),
  then rows.apply_rows_reference on each table: what the engine's JAX span step computes, and the
  hierarchical-softmax kernels' reference (the model's maths come with it, so this package does not
  import the model's module)."""
  loss, rg = span_rows(params, span)
  return Params(apply_rows_reference(params.W_in, [(rg.in_idx, rg.in_rows)], -lr, max_dup),
                apply_rows_reference(params.W_out, [(rg.out_idx, rg.out_rows)], -lr, max_dup)), loss


def _hs_step(target: str, tree, params, span, lr, max_dup: float | None, threads: int, **attrs):
  """The hierarchical-softmax kernel `target` (hs_steps.cc) on (params, span) and the tree's parent links
  and branch bits: (Params, loss [B], or [S, B] for S stacked steps), the tables updated in place."""
  if tree.V != params.W_in.shape[0]:
    raise W2VError(f"the tables have {params.W_in.shape[0]} rows but the tree was built for {tree.V} words")
  return _fused_step(target, params, span, lr, max_dup, threads, None, tree.up.astype(jnp.int32),
                     tree.bit.astype(jnp.int8), depth=np.int32(tree.L), **attrs)


def cbow_hs_span_step(params, span, lr, max_dup: float | None, *, tree, span_rows, cbow_context_grad: str,
                      threads: int = 0):
  """`span_step_reference` of cbow_hs (span_rows: its Model.span_rows, under the same cbow_context_grad;
  tree: its hsoftmax.Tree) as one fused kernel (hs_steps.cc, through fused_steps.cc's phases): the whole
  step in place on the donated tables, with the threads, the determinism (the same bits whatever the
  number of threads), the tolerance to the reference (float rounding) and the S stacked steps of
  `cbow_neg_span_step`. The synchronous step only: no Hogwild form."""
  losses.check_context_grad(cbow_context_grad)
  if not _require(params):
    return _reference_steps(span_step_reference, params, span, lr, max_dup, span_rows=span_rows)
  return _hs_step(_CBOW_HS_TARGET, tree, params, span, lr, max_dup, threads,
                  mean_grad=np.int32(cbow_context_grad == "mean"))


def sgram_hs_span_step(params, span, lr, max_dup: float | None, *, tree, span_rows, threads: int = 0):
  """`span_step_reference` of sgram_hs (word2vec.c's orientation) as one fused kernel, as
  `cbow_hs_span_step` is for cbow_hs."""
  if not _require(params):
    return _reference_steps(span_step_reference, params, span, lr, max_dup, span_rows=span_rows)
  return _hs_step(_SGRAM_HS_TARGET, tree, params, span, lr, max_dup, threads)


# A model's `native_step` name -> its fused kernel, called as f(params, span, lr, max_dup, **native_options).
FUSED_STEPS = {"cbow_neg": cbow_neg_span_step, "sgram_neg": sgram_neg_span_step, "cbow_hs": cbow_hs_span_step,
               "sgram_hs": sgram_hs_span_step}
# Those of them that also run word2vec.c's unsynchronised update (hogwild=True).
HOGWILD_STEPS = frozenset({"cbow_neg", "sgram_neg"})
