"""The native library in this process: built (builder.py) and loaded once, its XLA FFI targets registered,
and whether the kernels run here and why not (`status()`, one line). The target names the steps call
(steps.py) are here, with the symbols that implement them."""
import ctypes
import functools
import os
import threading
from typing import NamedTuple

import jax

from w2v_jax.errors import W2VError
from w2v_jax.native import builder

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


_LIB = None   # the loaded library (ctypes), for threads.py and text.py
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


