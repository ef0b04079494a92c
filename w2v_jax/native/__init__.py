"""The native CPU backend: XLA FFI kernels for what XLA:CPU does slowly, built from this folder's C++.

Fused steps. `cbow_neg_span_step(params, span, lr, max_dup, ...)` and `sgram_neg_span_step(...)` run a whole
training step on a SpanBatch as one custom call (fused_steps.cc): the forward pass, the closed-form
gradient and both tables' updates, in place on the donated tables, on the calling thread and the other
threads of XLA's CPU pool. Each equals its pure-JAX step (`*_span_step_reference`: the rewrites.py maths,
then rows.py's update) to float rounding, not bit for bit, since its dot products add in an order of its
own; and each is deterministic, whatever the number of threads (tests/test_native.py). `FUSED_STEPS` maps
a model's `native_step` name to its kernel. Why they are faster than XLA here: docs/performance.md, "Where the time goes".

Huge pages. `huge_page_copy(x, huge_page)` is a copy of x whose memory was advised MADV_HUGEPAGE before
the copy wrote it (pages.cc); pages.py uses it to put the tables on huge pages.

Text vectors. `text_rows(words, vectors)` gives the lines of vectors_io.save_text, the same bytes as its
Python formatter ("%.9g"), from text_rows.cc (std::to_chars), two blocks at once.

Row kernels. `apply_rows(table, parts, scale, max_dup)` is rows.apply_rows_reference (the duplicate cap,
then one scatter-add) performing the same float operations in the same order: the same bits.
`apply_span_rows` is rows.apply_span_rows_reference likewise. They serve the bucketed and per-window
layouts on one device.

The build. On first use the sources here are compiled for `-march=$W2V_JAX_NATIVE_MARCH` (default
`native`) and cached (builder.py: the compiler, the flags, the cache and its checks). `python -m
w2v_jax.native build` does it ahead of time; `start_build()` does it on a background thread (api.train
calls it first, so the build overlaps reading the corpus), and `status()` waits for it. `status()` says
whether the kernels run here and, if not, why in one line: the engine puts that line in the run's first
line and summary.json, and runs the pure-JAX step instead; `build_record()` is the loaded library's build
record (its -march and what the compiler resolved it to), for summary["engine"]. W2V_JAX_NATIVE=0 switches
the backend off.
"""
import collections
import concurrent.futures
import ctypes
import functools
import os
import threading
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import losses, rewrites
from w2v_jax.errors import W2VError
from w2v_jax.native import builder
from w2v_jax.rows import apply_rows_reference, apply_span_rows_reference
from w2v_jax.types import Params

_TARGET = "w2v_apply_rows"
_SPAN_TARGET = "w2v_apply_span_rows"
_CBOW_NEG_TARGET = "w2v_cbow_neg_step"
_SGRAM_NEG_TARGET = "w2v_sgram_neg_step"
_HUGE_PAGE_COPY_TARGET = "w2v_huge_page_copy"
_HUGE_PAGE_ZEROS_TARGET = "w2v_huge_page_zeros"
_CBOW_HS_TARGET = "w2v_cbow_hs_step"
_SGRAM_HS_TARGET = "w2v_sgram_hs_step"
_TARGETS = {_TARGET: "W2vApplyRows", _SPAN_TARGET: "W2vApplySpanRows", _CBOW_NEG_TARGET: "W2vCbowNegStep",
            _SGRAM_NEG_TARGET: "W2vSgramNegStep", _HUGE_PAGE_COPY_TARGET: "W2vHugePageCopy",
            _HUGE_PAGE_ZEROS_TARGET: "W2vHugePageZeros", _CBOW_HS_TARGET: "W2vCbowHsStep",
            _SGRAM_HS_TARGET: "W2vSgramHsStep"}


class Status(NamedTuple):
  """Whether the native kernels run here, and why not when they do not (one line)."""
  available: bool
  reason: str


@functools.cache
def _load() -> Status:
  """Builds (once per build directory and target) and registers the kernels, or says why they are off."""
  global _LIB, _RECORD
  if os.environ.get("W2V_JAX_NATIVE", "1") == "0":
    return Status(False, "native CPU kernels off: W2V_JAX_NATIVE=0")
  cxx, march = builder.compiler(), builder.march()
  if cxx is None:
    return Status(False, "native CPU kernels off: no C++ compiler found (install g++ or set CXX)")
  try:
    built = builder.ensure(cxx, march)
    if isinstance(built, str):
      return Status(False, f"native CPU kernels off: {built}")
    if march != "native" and (why := builder.runs_here(built.path)):
      return Status(False, f"native CPU kernels off: the build for {builder.MARCH_ENV}={march} does not run "
                           f"on this CPU: {why}; unset {builder.MARCH_ENV} or choose another value")
    lib = ctypes.cdll.LoadLibrary(str(built.path))
  except OSError as e:   # no writable build directory, or a library that does not load
    return Status(False, f"native CPU kernels off: {e.strerror or e} ({builder.build_dir()})")
  for target, symbol in _TARGETS.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
  lib.W2vCoreRoundTrip.restype = ctypes.c_double   # (core_round_trip_ns)
  lib.W2vCoreRoundTrip.argtypes = [ctypes.c_int64, ctypes.c_int32, ctypes.c_int32]
  lib.W2vFormatTextRows.restype = ctypes.c_int64   # (text_rows)
  lib.W2vFormatTextRows.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                    ctypes.c_void_p, ctypes.c_int64]
  _LIB, _RECORD = lib, {**built.record, "note": built.note, "lanes": lib.W2vLaneWidth()}
  resolved = f" ({built.record['resolved']})" if built.record.get("resolved") not in (None, march) else ""
  return Status(True, (built.note + "; " if built.note else "")
                + f"native CPU kernels built for -march={march}{resolved}, {32 * _RECORD['lanes']}-bit registers "
                  f"({built.path})")


_LIB = None   # the loaded library, for contention()
_RECORD = None   # its build record (builder.py)


def build_record() -> dict | None:
  """The loaded library's -march, what the compiler resolved it to (a CPU's name: GCC 12 calls a Zen 4
  znver3, and enables its AVX-512 all the same), the width of the registers its sums use (vector_bits:
  128, 256 or 512), and the compiler (and "build_note" when this process rebuilt a damaged cached copy);
  None when the kernels are not loaded."""
  if _RECORD is None:
    return None
  return {"march": _RECORD.get("march"), "march_resolved": _RECORD.get("resolved"),
          "vector_bits": 32 * _RECORD["lanes"], "compiler": _RECORD.get("compiler"), **({"build_note": _RECORD["note"]} if _RECORD["note"] else {})}


class Contention(NamedTuple):
  """The fused steps' thread use since the library was loaded (fused_steps.cc, Contention and Pace):
  `loops`, the parallel loops that could run on several threads; `alone` of them run on the calling
  thread only because a helper thread had stalled them shortly before (it lost its core to another
  runnable thread); `stalls`; `steps`, the synchronous steps asked to run on all threads; `one` of them
  run on one thread, because one was measured faster or to measure it; `switches` between the two."""
  loops: int
  alone: int
  stalls: int
  steps: int = 0
  one: int = 0
  switches: int = 0

  def __sub__(self, other: "Contention") -> "Contention":
    return Contention(*(a - b for a, b in zip(self, other)))

  def describe(self) -> str:
    """One line for a run's output; "" when no fused step could run on several threads."""
    parts = []
    if self.steps:
      switches = f"{self.switches:,} switch{'' if self.switches == 1 else 'es'}"
      parts.append(f"{self.one:,} of {self.steps:,} steps ({self.one / self.steps:.0%}) on one thread, "
                   f"{switches} (each step is timed, a few on the other setting now and then, and the "
                   f"steps run on all threads or on one, whichever is faster)")
    if self.loops and self.stalls == 0 and self.alone == 0:
      parts.append(f"all {self.loops:,} parallel loops of the fused steps on every thread of XLA's CPU "
                   f"pool (no stall)")
    elif self.loops:
      # (alone > 0 with no stall of its own: a span begun by an earlier run's stall in this process)
      stalls = f"{self.stalls:,} stall{'' if self.stalls == 1 else 's'}"
      parts.append(f"{stalls} (a helper thread lost its core to another runnable thread), so {self.alone:,} "
                   f"of {self.loops:,} parallel loops ({self.alone / self.loops:.0%}) of the fused steps ran "
                   f"on one thread")
    return "; ".join(parts)


def contention() -> Contention:
  """The counts so far (all zero before the kernels are loaded)."""
  if _LIB is None:
    return Contention(0, 0, 0)
  out = (ctypes.c_int64 * 6)()
  _LIB.W2vContentionCounts(out)
  return Contention(*out)


def core_round_trip_ns(trips: int = 2000) -> float | None:
  """The time of a cache line's round trip between the first two CPUs this process may run on, in ns
  (cores.cc: two threads pinned there pass a counter back and forth `trips` times, timed 16 at a time;
  the 10th percentile of those, so that a busy machine's scheduling shows less): what a row written by
  one thread of a fused step and read by another costs. None without the kernels, with fewer than two CPUs, or where the
  threads cannot be pinned."""
  cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  if len(cpus) < 2 or not status().available:
    return None
  ns = _LIB.W2vCoreRoundTrip(trips, cpus[0], cpus[1])
  return ns if ns >= 0 else None


def text_rows(words: list[str], vectors: np.ndarray, block: int = 4096):
  """The lines of word2vec's text format for `words` and float32 `vectors` [V, D] ("word f_1 ... f_D\\n",
  floats as "%.9g" prints them: vectors_io.save_text's bytes), as an iterator of byte strings of `block`
  rows each, formatted by text_rows.cc two blocks at a time (ctypes lets go of the GIL); None where the
  kernels are not loaded (off, or not built in this process: writing a file does not start a build).
  The words must hold no b"\\n" (vectors_io checks that they hold no whitespace)."""
  if _load.cache_info().currsize == 0 or not status().available:
    return None
  vectors = np.ascontiguousarray(vectors, dtype=np.float32)
  if not words:
    return iter(())
  blob = ("\n".join(words) + "\n").encode("utf-8")
  ends = np.flatnonzero(np.frombuffer(blob, np.uint8) == 10).astype(np.int64)
  if len(ends) != len(words) or vectors.shape[0] != len(words):
    raise ValueError(f"text_rows: {len(words)} words (one holding a newline?) for {vectors.shape[0]} rows")
  d = vectors.shape[1]

  def one(lo: int) -> bytes:
    hi = min(lo + block, len(words))
    base = int(ends[lo - 1]) + 1 if lo > 0 else 0
    rel = ends[lo:hi] - base
    cap = int(ends[hi - 1]) + 1 - base + (hi - lo) * (2 + 16 * d)   # kernels.h: kMaxFloatChars = 16
    out = ctypes.create_string_buffer(cap)
    address = ctypes.cast(ctypes.c_char_p(blob), ctypes.c_void_p).value + base   # blob itself, not a copy
    n = _LIB.W2vFormatTextRows(address, rel.ctypes.data, vectors[lo:hi].ctypes.data, hi - lo, d, out, cap)
    if n < 0:
      raise RuntimeError(f"text_rows.cc: a block of {hi - lo} rows did not fit in {cap} bytes")
    return ctypes.string_at(out, n)

  def blocks():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      pending = collections.deque()
      for lo in range(0, len(words), block):
        pending.append(pool.submit(one, lo))
        if len(pending) > 2:   # at most three blocks in memory
          yield pending.popleft().result()
      while pending:
        yield pending.popleft().result()

  return blocks()


_LOCK = threading.Lock()   # one build at a time; status() waits for a build in flight
_PACE_VALUES = ("", "auto", "all", "0", "one")   # fused_steps.cc, Pace::Setting: "" and "auto" pace


def _check_environment() -> None:
  """Raises W2VError for a W2V_JAX_PACE the kernels would not know (they would pace, without a word),
  where they would run: not with W2V_JAX_NATIVE=0 or off the CPU; and for a W2V_JAX_NATIVE_MARCH that is
  not a -march value."""
  builder.march()   # a bad W2V_JAX_NATIVE_MARCH, likewise
  pace = os.environ.get("W2V_JAX_PACE", "")
  if pace in _PACE_VALUES or os.environ.get("W2V_JAX_NATIVE", "1") == "0" or jax.default_backend() != "cpu":
    return
  raise W2VError(f"W2V_JAX_PACE={pace!r}: expected auto (or unset: the fused steps pick all threads or one, "
                 "as measured), all (or 0: always all threads) or one (always one thread)")


def status() -> Status:
  """Whether the kernels run for the default backend (the CPU, with a compiler), and why not."""
  _check_environment()
  if jax.default_backend() != "cpu":
    return Status(False, f"native CPU kernels off: the backend is {jax.default_backend()}")
  with _LOCK:
    return _load()


def start_build() -> None:
  """Builds (or loads) the kernels on a background thread, so that the compile overlaps what the caller
  does next; the first status() after it waits for the result. Does nothing off the CPU or when the
  library is already loaded."""
  _check_environment()   # here, so that a bad value is the caller's one-line error, not the thread's
  if jax.default_backend() == "cpu" and _load.cache_info().currsize == 0:
    threading.Thread(target=status, name="w2v-native-build", daemon=True).start()


def available() -> bool:
  return status().available


def build(force: bool = False) -> Status:
  """Builds the kernels now (forgetting a remembered failure when `force`); returns the status."""
  _check_environment()
  cxx = builder.compiler()
  if force and cxx is not None:
    builder.forget_failure(cxx, builder.march())
  with _LOCK:
    if force:
      _load.cache_clear()
    return _load()


def _require(tables) -> bool:
  """True when the kernels apply to these tables (float32); raises if the backend is not built here: the
  engine asks `status()` first, so reaching this without the kernels is a bug, not a fallback."""
  if not all(t.dtype == jnp.float32 for t in tables):
    return False
  if not available():
    raise RuntimeError(status().reason)
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


def _fused_step(target: str, params, span, lr, max_dup: float | None, threads: int, hogwild: bool, **attrs):
  """The fused kernel `target` on (params, span): (Params, loss [B]), the tables updated in place. With S
  steps stacked on the span's leading axis and lr [S], one call runs them in order: loss [S, B]."""
  W_in, W_out = params
  call = jax.ffi.ffi_call(target, (jax.ShapeDtypeStruct(W_in.shape, W_in.dtype),
                                   jax.ShapeDtypeStruct(W_out.shape, W_out.dtype),
                                   jax.ShapeDtypeStruct(span.mask.shape[:-1], jnp.float32)),
                          input_output_aliases={0: 0, 1: 1}, vmap_method="sequential")
  W_in, W_out, loss = call(W_in, W_out, jnp.asarray(-lr, jnp.float32), span.tokens.astype(jnp.int32),
                           span.mask.astype(jnp.float32), span.negatives.astype(jnp.int32),
                           max_dup=np.float32(max_dup if max_dup is not None else 0.0),
                           threads=np.int32(threads), hogwild=np.int32(hogwild), **attrs)
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
  W_in, W_out = params
  call = jax.ffi.ffi_call(target, (jax.ShapeDtypeStruct(W_in.shape, W_in.dtype),
                                   jax.ShapeDtypeStruct(W_out.shape, W_out.dtype),
                                   jax.ShapeDtypeStruct(span.mask.shape[:-1], jnp.float32)),
                          input_output_aliases={0: 0, 1: 1}, vmap_method="sequential")
  W_in, W_out, loss = call(W_in, W_out, jnp.asarray(-lr, jnp.float32), span.tokens.astype(jnp.int32),
                           span.mask.astype(jnp.float32), span.negatives.astype(jnp.int32),
                           tree.up.astype(jnp.int32), tree.bit.astype(jnp.int8),
                           max_dup=np.float32(max_dup if max_dup is not None else 0.0), depth=np.int32(tree.L),
                           threads=np.int32(threads), **attrs)
  return Params(W_in, W_out), loss


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
