"""Building the native kernels: the compiler, its flags, the cache of built libraries and their checks.

The sources of this folder (*.cc, *.h) are compiled with the system C++ compiler (CXX, or c++, g++,
clang++), one compiler per file at once: the kernels (fused_steps.cc, apply_rows.cc, pages.cc, cores.cc,
text_rows.cc, probe.cc, behind kernels.h, free of XLA) at -O3, and ffi_handlers.cc, the XLA FFI handlers
against jaxlib's bundled FFI headers, at -O1; into $W2V_JAX_NATIVE_DIR or ~/.cache/w2v_jax/native.

The target. `-march=$W2V_JAX_NATIVE_MARCH` (default `native`: this CPU's every extension). Any other value
(x86-64 for SSE2, x86-64-v3 for AVX2, x86-64-v4 for AVX-512, armv8-a, ...) is built and cached apart, so
that one machine can measure every build it can execute; every build gives the same bits (row_math.h keeps
16 lanes on every target, in registers of 4, 8 or 16 floats: probe.cc's W2vLaneWidth says which). A build
for another target is probed (probe.cc's W2vProbe, in a child process, before the library is loaded here:
the CPU asked for each extension the target uses, then a dot product) so that one this CPU cannot
execute is one line, not a crash; `native` is built for this CPU, whose flags are part of its key.

The cache. A library's name carries its target and a key of the sources, jaxlib's version, the compiler,
the flags and (for `native`) the machine. Beside it, `<name>.json` keeps its size and SHA-256, the target
the compiler resolved `-march` to, and the compiler: a library that does not match its record (a truncated
copy, a damaged disk) is rebuilt, and the run says so in one line. Builds go to a temporary file renamed
into place, under a lock file, so two processes filling the same entry never leave half a library. A
failed build leaves its compiler log and a `.failed` marker: later processes read the marker and do not
try again (`python -m w2v_jax.native build --force` retries); a build that failed for want of disk space
leaves none, and says where to make room. A read-only cache (a prebuilt image) is used where its library
matches its record.
"""
import fcntl
import hashlib
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple

import jax
import jaxlib

from w2v_jax.atomic import read_json, write_atomic
from w2v_jax.errors import W2VError

SOURCE_DIR = pathlib.Path(__file__).parent
SOURCES = sorted(SOURCE_DIR.glob("*.cc"))
HEADERS = sorted(SOURCE_DIR.glob("*.h"))
MARCH_ENV = "W2V_JAX_NATIVE_MARCH"
_COMMON_FLAGS = ["-ffp-contract=off", "-std=c++17", "-fPIC", "-w"]
# The kernels at -O3; ffi_handlers.cc, which only unpacks arguments but parses XLA's FFI headers (most of a
# build's time), at -O1: a cold build went from 6.5 s to 4.1 s on 2 cores.
_OPT = {"ffi_handlers.cc": "-O1"}


class Library(NamedTuple):
  """A built library: where it is, its build record (.json), and a line for the run when it was rebuilt
  because its cached copy was damaged ("" otherwise)."""
  path: pathlib.Path
  record: dict
  note: str


def march() -> str:
  """The -march value the kernels are built for: $W2V_JAX_NATIVE_MARCH, default `native`."""
  value = os.environ.get(MARCH_ENV, "") or "native"
  if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}", value):
    raise W2VError(f"{MARCH_ENV}={value!r}: expected a -march value of the C++ compiler, such as native, "
                   "x86-64 (SSE2), x86-64-v3 (AVX2), x86-64-v4 (AVX-512) or armv8-a")
  return value


def flags(target: str) -> list[str]:
  return [f"-march={target}", *_COMMON_FLAGS]


def build_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get("W2V_JAX_NATIVE_DIR")
                      or pathlib.Path.home() / ".cache" / "w2v_jax" / "native")


def compiler() -> str | None:
  return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def _opt(src: pathlib.Path) -> str:
  return _OPT.get(src.name, "-O3")


def _cpu_flags() -> str:
  """The CPU's feature flags as the kernel lists them ("" where it does not): a `native` build is for them."""
  try:
    with open("/proc/cpuinfo") as f:
      return next((line for line in f if line.startswith(("flags", "Features"))), "")
  except OSError:
    return ""


def library_path(cxx: str, target: str) -> pathlib.Path:
  """Where the library for (compiler, target) is cached. `native` is for this CPU only, hence the node,
  the processor and the CPU's flags in its key (a cache shared by machines of one name but other CPUs
  builds one library for each)."""
  sources = [p.read_text() for p in SOURCES + HEADERS]
  machine = [platform.node(), platform.processor(), _cpu_flags()] if target == "native" else []
  key = hashlib.sha256("\0".join([*sources, jaxlib.__version__, cxx, platform.machine(), *machine,
                                  *flags(target), *map(_opt, SOURCES)]).encode()).hexdigest()[:16]
  return build_dir() / f"w2v_native-{target}-{key}.so"


def resolved_target(cxx: str, target: str) -> str:
  """What the compiler makes of -march=target (e.g. native -> znver4): GCC's -Q --help=target, or clang's
  -target-cpu; the target itself where neither answers."""
  for args, pattern in (([f"-march={target}", "-Q", "--help=target"], r"^\s*-march=\s+(\S+)"),
                        ([f"-march={target}", "-###", "-x", "c++", "-c", os.devnull], r'"-target-cpu" "([^"]+)"')):
    try:
      out = subprocess.run([cxx, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
      continue
    found = re.search(pattern, out.stdout + out.stderr, re.MULTILINE)
    if out.returncode == 0 and found:
      return found.group(1)
  return target


def compile_library(cxx: str, target: str, lib_path: pathlib.Path, log_path: pathlib.Path) -> str | None:
  """Builds the library at lib_path; None, or what went wrong (the compiler's output is in log_path)."""
  with tempfile.TemporaryDirectory(dir=lib_path.parent) as tmp:
    out = pathlib.Path(tmp) / lib_path.name
    objects = [pathlib.Path(tmp) / f"{src.stem}.o" for src in SOURCES]
    logs = [pathlib.Path(tmp) / f"{src.stem}.log" for src in SOURCES]
    try:   # one compiler per source, at once (each takes seconds), then a link
      jobs = []
      for src, obj, log in zip(SOURCES, objects, logs):
        with open(log, "wb") as f:   # the child keeps its own copy of the descriptor
          jobs.append(subprocess.Popen([cxx, _opt(src), *flags(target), f"-I{jax.ffi.include_dir()}", "-c",
                                        str(src), "-o", str(obj)], stdout=f, stderr=subprocess.STDOUT))
      codes = [job.wait() for job in jobs]
      link = None
      if not any(codes):
        link = subprocess.run([cxx, "-shared", *flags(target), *map(str, objects), "-o", str(out)],
                              capture_output=True)
    except OSError as e:
      log_path.write_text(f"{cxx}: {e}\n")
      return f"the C++ compiler {cxx!r} could not be run ({e.strerror})"
    log_path.write_bytes(b"".join(log.read_bytes() for log in logs if log.exists())
                         + (link.stdout + link.stderr if link is not None else b""))
    if any(codes) or link is None or link.returncode:
      return f"compiling with {cxx} for -march={target} failed"
    os.replace(out, lib_path)   # atomic: a concurrent reader never sees half a library
  return None


def _digest(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def _damage(lib_path: pathlib.Path, record: dict | None) -> str:
  """Why the cached library does not match its record ("" when it does)."""
  if record is None:
    return "its record (.json) is missing or damaged"
  size = lib_path.stat().st_size
  if size != record.get("bytes"):
    return f"{size:,} bytes where {record.get('bytes')} were written"
  if _digest(lib_path) != record.get("sha256"):
    return "its SHA-256 differs from the one written"
  return ""


def runs_here(lib_path: pathlib.Path) -> str:
  """"" when the library loads and its vector code runs on this CPU (probe.cc, in a child process, so
  that an illegal instruction kills the child, not this process); else why not, in a few words."""
  code = "import ctypes, sys; sys.exit({1: 0, 2: 4}.get(ctypes.CDLL(sys.argv[1]).W2vProbe(), 3))"
  try:
    child = subprocess.run([sys.executable, "-c", code, str(lib_path)], capture_output=True, timeout=60)
  except (OSError, subprocess.TimeoutExpired) as e:
    return f"its probe could not run ({e})"
  if child.returncode == 0:
    return ""
  if child.returncode == -4:   # SIGILL
    return "this CPU lacks an instruction the target uses (illegal instruction)"
  if child.returncode == 4:
    return "this CPU lacks an extension the target uses (the probe's __builtin_cpu_supports)"
  if child.returncode == 3:
    return "its probe computed a wrong dot product"
  return f"its probe failed (exit {child.returncode}): {child.stderr.decode(errors='replace').strip()[-200:]}"


def ensure(cxx: str, target: str) -> Library | str:
  """The library for (compiler, target), built or rebuilt as needed; or why there is none, in a clause."""
  lib_path = library_path(cxx, target)
  try:
    lib_path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(lib_path.with_suffix(".lock"), "a")   # one build of an entry at a time, across processes
  except OSError as e:   # a read-only cache (a prebuilt image): its library is used if it matches its record
    if lib_path.exists() and not _damage(lib_path, read_json(lib_path.with_suffix(".json"))):
      return Library(lib_path, read_json(lib_path.with_suffix(".json")), "")
    return (f"the native build cache {lib_path.parent} is not writable ({e.strerror or e}) and holds no intact "
            f"library for -march={target}; set W2V_JAX_NATIVE_DIR to a writable directory")
  with lock:   # (closing it releases the flock; so does the process's death)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return _ensure_locked(cxx, target, lib_path)


def _ensure_locked(cxx: str, target: str, lib_path: pathlib.Path) -> Library | str:
  failed, log_path = lib_path.with_suffix(".failed"), lib_path.with_suffix(".log")
  record_path = lib_path.with_suffix(".json")
  if failed.exists():
    return (f"their build failed before ({failed.read_text().strip()}); compiler log: {log_path}; retry "
            "with `python -m w2v_jax.native build --force`")
  note = ""
  if lib_path.exists():
    why = _damage(lib_path, read_json(record_path))
    if not why:
      return Library(lib_path, read_json(record_path), "")
    note = f"the cached native library {lib_path} was damaged ({why}): rebuilt it"
  try:
    error = compile_library(cxx, target, lib_path, log_path)
    if error is not None and (short := _short_of_space(lib_path.parent, log_path)):
      return short   # not remembered as a failure: the next run, with room, builds
    if error is not None:
      failed.write_text(error + "\n")
      return f"{error}; compiler log: {log_path}"
    record = {"bytes": lib_path.stat().st_size, "sha256": _digest(lib_path), "march": target,
              "resolved": resolved_target(cxx, target), "compiler": cxx}
    write_atomic(record_path, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))
  except (OSError, W2VError) as e:
    return _short_of_space(lib_path.parent, log_path) or f"the native build cache {lib_path.parent}: {e}"
  return Library(lib_path, record, note)


_BUILD_BYTES = 64 << 20   # a build's objects, library and log take a few MB; less free than this is short


def _short_of_space(where: pathlib.Path, log_path: pathlib.Path) -> str:
  """Why a build failed for space, in a clause ("" where it did not)."""
  try:
    free = shutil.disk_usage(where).free
    said = log_path.exists() and b"No space left" in log_path.read_bytes()
  except OSError:
    return ""
  if free >= _BUILD_BYTES and not said:
    return ""
  return (f"no room to build them in {where} ({free / 1e6:,.1f} MB free there): free space, or set "
          "W2V_JAX_NATIVE_DIR to a directory with room")


def forget_failure(cxx: str, target: str) -> None:
  library_path(cxx, target).with_suffix(".failed").unlink(missing_ok=True)
