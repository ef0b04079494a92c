"""CPU kernels for what XLA:CPU does slowly here: scatter-adding rows, and word2vec's small per-window work.

Fused steps. `cbow_neg_span_step(params, span, lr, ...)` and `sgram_neg_span_step(params, span, lr, ...)`
run a whole training step on a SpanBatch as one custom call (native/fused_steps.cc): the forward pass,
the closed-form gradient and both tables' updates, in place on the donated tables, on the calling
thread and the other threads of XLA's CPU pool. Each equals its pure-JAX step
(`*_span_step_reference`: the kernels.py maths, then the row kernels below) to float rounding, not bit
for bit, since its dot products add in an order of its own; and each is deterministic, whatever the
number of threads (tests/test_native.py checks both, and a whole CLI run against the JAX path). Measured
with scripts/profile_step.py on the dev corpus at B = 1024, 2 cores: cbow_neg 1.0-1.2 ms a step (2.5 ms
with XLA doing the maths and the row kernels applying the rows; 3.7 ms all XLA), sgram_neg 2.1-2.5 ms
(4.5 ms). Why it is faster: the window's rows stay in cache between its products, the two cores both
work (XLA kept 1.1-1.3 busy), and nothing is written out as [B, C, D] arrays.

Row kernels. `apply_rows(table, parts, scale, max_dup)` returns
    table.at[concat(idx)].add(scale * damp_duplicates(concat(idx), concat(rows), V, max_dup))
for parts = [(idx, rows), ...]: step.damp_duplicates and one scatter-add, the pure-JAX definition
that `apply_rows_reference` spells out. The kernel performs the same float operations in the same
order, so both give the same bits (tests/test_native.py). `apply_span_rows(table, tokens, coef, vecs,
scale, max_dup)` is CBOW's input side on a SpanBatch: context slot (b, j) receives coef[b, j] · vecs[b],
each of the B + 2W span positions sums its slots, and B + 2W rows are applied instead of B·2W
(`apply_span_rows_reference`; again the same bits). They serve the bucketed layout and the references:
XLA:CPU lowers a scatter-add to a scalar loop (about 9M rows/s at D = 100 here).

Where they run: on the CPU backend, when a C++ compiler is found (CXX, c++, g++ or clang++). They are
built on first use from native/*.cc against jaxlib's bundled XLA FFI headers (6-8 s), into
$W2V_JAX_NATIVE_DIR or ~/.cache/w2v_jax/native, keyed by the sources, jaxlib's version, the compiler
and the machine. Elsewhere (GPU, TPU, no compiler, a failed build) or with W2V_JAX_NATIVE=0 the JAX
references run: the same vectors as the row kernels, and the fused steps' vectors to float rounding.
"""
import ctypes
import functools
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from w2v_jax import kernels, models
from w2v_jax.types import Params

_SOURCE_DIR = pathlib.Path(__file__).parent / "native"
_SOURCES = [_SOURCE_DIR / name for name in ("apply_rows.cc", "fused_steps.cc")]
_HEADERS = [_SOURCE_DIR / "rows.h"]
_TARGET = "w2v_apply_rows"
_SPAN_TARGET = "w2v_apply_span_rows"
_CBOW_NEG_TARGET = "w2v_cbow_neg_step"
_SGRAM_NEG_TARGET = "w2v_sgram_neg_step"
_FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-std=c++17", "-shared", "-fPIC", "-w"]


def _build_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get("W2V_JAX_NATIVE_DIR")
                      or pathlib.Path.home() / ".cache" / "w2v_jax" / "native")


def _compiler() -> str | None:
  return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


@functools.cache
def _load() -> bool:
  """Builds (once per build directory) and registers the kernel; False when it cannot be had here."""
  if os.environ.get("W2V_JAX_NATIVE", "1") == "0" or (cxx := _compiler()) is None:
    return False
  # -march=native: the library is for this machine, hence the node and processor in the key.
  sources = [p.read_text() for p in _SOURCES + _HEADERS]
  key = hashlib.sha256("\0".join([*sources, jaxlib.__version__, cxx, platform.machine(),
                                  platform.node(), platform.processor(), *_FLAGS]).encode()).hexdigest()[:16]
  lib_path = _build_dir() / f"w2v_native-{key}.so"
  try:
    if not lib_path.exists():
      lib_path.parent.mkdir(parents=True, exist_ok=True)
      with tempfile.TemporaryDirectory(dir=lib_path.parent) as tmp:
        out = pathlib.Path(tmp) / lib_path.name
        # One compiler per source, at once (each takes several seconds, mostly XLA's FFI headers), then a link.
        objects = [pathlib.Path(tmp) / f"{src.stem}.o" for src in _SOURCES]
        jobs = [subprocess.Popen([cxx, *_FLAGS, f"-I{jax.ffi.include_dir()}", "-c", str(src), "-o", str(obj)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for src, obj in zip(_SOURCES, objects)]
        if any(job.wait() != 0 for job in jobs):
          return False
        if subprocess.run([cxx, *_FLAGS, *map(str, objects), "-o", str(out)], capture_output=True).returncode:
          return False
        os.replace(out, lib_path)   # atomic: a concurrent build never sees half a library
    lib = ctypes.cdll.LoadLibrary(str(lib_path))
  except OSError:   # no writable build directory, or a library that does not load: use the reference
    return False
  jax.ffi.register_ffi_target(_TARGET, jax.ffi.pycapsule(lib.W2vApplyRows), platform="cpu")
  jax.ffi.register_ffi_target(_SPAN_TARGET, jax.ffi.pycapsule(lib.W2vApplySpanRows), platform="cpu")
  jax.ffi.register_ffi_target(_CBOW_NEG_TARGET, jax.ffi.pycapsule(lib.W2vCbowNegStep), platform="cpu")
  jax.ffi.register_ffi_target(_SGRAM_NEG_TARGET, jax.ffi.pycapsule(lib.W2vSgramNegStep), platform="cpu")
  return True


def available() -> bool:
  """Whether the kernel can run for the default backend (the CPU, with a compiler)."""
  return jax.default_backend() == "cpu" and _load()


def apply_rows_reference(table, parts, scale, max_dup: float | None):
  """The pure-JAX definition the kernel reproduces: step.damp_duplicates, then one scatter-add."""
  from w2v_jax.step import damp_duplicates   # step imports this module
  idx = jnp.concatenate([i.reshape(-1) for i, _ in parts])
  rows = jnp.concatenate([r.reshape(-1, table.shape[1]) for _, r in parts])
  if max_dup is not None:
    rows = damp_duplicates(idx, rows, table.shape[0], max_dup)
  return table.at[idx].add((scale * rows).astype(table.dtype))


def apply_rows(table, parts, scale, max_dup: float | None, *, native: bool = True):
  """table + scale · damp(rows) at idx, for parts [(idx [N], rows [N, D]), ...]: the kernel when
  `native` and available (float32 tables), else `apply_rows_reference`. The same bits either way."""
  if not (native and table.dtype == jnp.float32 and available()):
    return apply_rows_reference(table, parts, scale, max_dup)
  args = [a for idx, rows in parts
          for a in (idx.reshape(-1).astype(jnp.int32), rows.reshape(-1, table.shape[1]).astype(jnp.float32))]
  call = jax.ffi.ffi_call(_TARGET, jax.ShapeDtypeStruct(table.shape, table.dtype),
                          input_output_aliases={0: 0}, vmap_method="sequential")
  return call(table, jnp.asarray(scale, jnp.float32), *args,
              max_dup=np.float32(max_dup if max_dup is not None else 0.0))


def apply_span_rows_reference(table, tokens, coef, vecs, scale, max_dup: float | None):
  """The pure-JAX definition of the span kernel: slot (b, j) receives coef[b, j] · vecs[b], each span
  position sums its slots (kernels._unslots), and the B + 2W position rows are applied."""
  rows = kernels._unslots(coef[:, :, None] * vecs[:, None, :], coef.shape[1] // 2)
  return apply_rows_reference(table, [(tokens, rows)], scale, max_dup)


def apply_span_rows(table, tokens, coef, vecs, scale, max_dup: float | None, *, native: bool = True):
  """`apply_span_rows_reference` by the kernel when `native` and available: the same bits.

  tokens int32 [B + 2W] (a SpanBatch's), coef [B, 2W] (what each context slot's row is scaled by),
  vecs [B, D] (one vector per window, CBOW's ∂L/∂h). B·2W slot rows become B + 2W table rows."""
  if not (native and table.dtype == jnp.float32 and available()):
    return apply_span_rows_reference(table, tokens, coef, vecs, scale, max_dup)
  call = jax.ffi.ffi_call(_SPAN_TARGET, jax.ShapeDtypeStruct(table.shape, table.dtype),
                          input_output_aliases={0: 0}, vmap_method="sequential")
  return call(table, jnp.asarray(scale, jnp.float32), tokens.astype(jnp.int32), coef.astype(jnp.float32),
              vecs.astype(jnp.float32), max_dup=np.float32(max_dup if max_dup is not None else 0.0))


def cbow_neg_span_step_reference(params, span, lr, cbow_context_grad: str, max_dup: float | None,
                                 *, native: bool = False):
  """One cbow_neg step on a SpanBatch in JAX: (params, loss [B]). kernels.cbow_neg_span_parts, then the
  input side by `apply_span_rows` and the output side by `apply_rows` (by their kernels when `native`:
  the same bits)."""
  loss, coef, dh, out_parts = kernels.cbow_neg_span_parts(params, span, cbow_context_grad)
  apply = dict(scale=-lr, max_dup=max_dup, native=native)
  return Params(apply_span_rows(params.W_in, span.tokens, coef, dh, **apply),
                apply_rows(params.W_out, out_parts, **apply)), loss


def _fused_step(target: str, params, span, lr, max_dup: float | None, threads: int, **attrs):
  """The fused kernel `target` on (params, span): (Params, loss [B]), the tables updated in place."""
  W_in, W_out = params
  call = jax.ffi.ffi_call(target, (jax.ShapeDtypeStruct(W_in.shape, W_in.dtype),
                                   jax.ShapeDtypeStruct(W_out.shape, W_out.dtype),
                                   jax.ShapeDtypeStruct((span.mask.shape[0],), jnp.float32)),
                          input_output_aliases={0: 0, 1: 1}, vmap_method="sequential")
  W_in, W_out, loss = call(W_in, W_out, jnp.asarray(-lr, jnp.float32), span.tokens.astype(jnp.int32),
                           span.mask.astype(jnp.float32), span.negatives.astype(jnp.int32),
                           max_dup=np.float32(max_dup if max_dup is not None else 0.0),
                           threads=np.int32(threads), **attrs)
  return Params(W_in, W_out), loss


def _fused_available(params, native: bool) -> bool:
  return native and all(t.dtype == jnp.float32 for t in params) and available()


def cbow_neg_span_step(params, span, lr, cbow_context_grad: str, max_dup: float | None, *, native: bool = True,
                       threads: int = 0):
  """`cbow_neg_span_step_reference` as one fused kernel (native/fused_steps.cc) when `native` and
  available: the whole step, forward, gradient and both tables' updates, on the calling thread and the
  other threads of XLA's CPU pool, in place on the donated tables.

  Equal to the reference to float rounding, not bit for bit: its dot products and sums add in an order of
  their own (tests/test_native.py). Deterministic: the tables after a step depend only on the inputs, not
  on the number of threads or on which thread ran which part (threads: at most this many, 0 for all of
  XLA's CPU pool; the tests compare 1 with all). Elsewhere: the reference."""
  if not _fused_available(params, native):
    return cbow_neg_span_step_reference(params, span, lr, cbow_context_grad, max_dup)
  if cbow_context_grad not in models.CBOW_CONTEXT_GRADS:
    models.context_scale(span.mask, None, cbow_context_grad)   # raises its W2VError
  return _fused_step(_CBOW_NEG_TARGET, params, span, lr, max_dup, threads,
                     mean_grad=np.int32(cbow_context_grad == "mean"))


def sgram_neg_span_step_reference(params, span, lr, max_dup: float | None, *, native: bool = False):
  """One sgram_neg step (word2vec.c's swapped form, kernels.py) on a SpanBatch in JAX: (params, loss [B]).
  kernels.sgram_neg_swapped_span_row_grads, then `apply_rows` on each table (its kernel when `native`)."""
  loss, rg = kernels.sgram_neg_swapped_span_row_grads(params, span)
  apply = dict(scale=-lr, max_dup=max_dup, native=native)
  return Params(apply_rows(params.W_in, [(rg.in_idx, rg.in_rows)], **apply),
                apply_rows(params.W_out, [(rg.out_idx, rg.out_rows)], **apply)), loss


def sgram_neg_span_step(params, span, lr, max_dup: float | None, *, native: bool = True, threads: int = 0):
  """`sgram_neg_span_step_reference` as one fused kernel, as `cbow_neg_span_step` is for cbow_neg (the
  same threads, the same determinism, equal to the reference to float rounding)."""
  if not _fused_available(params, native):
    return sgram_neg_span_step_reference(params, span, lr, max_dup)
  return _fused_step(_SGRAM_NEG_TARGET, params, span, lr, max_dup, threads)
