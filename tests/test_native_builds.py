"""Every build of the native kernels gives the same bits: each -march this CPU runs (SSE2, AVX2, AVX-512,
native), GCC and clang, and aarch64 (cross-compiled, run under qemu where it is installed); a build this
CPU cannot run, a bad W2V_JAX_NATIVE_MARCH and a damaged cached library are each one line.

Where a compiler is missing (clang++, aarch64-linux-gnu-g++, qemu-aarch64) its test skips and says so."""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.test_cli import ROOT as _ROOT
from w2v_jax import native
from w2v_jax.native import builder

ROOT = pathlib.Path(_ROOT)
NATIVE_DIR = ROOT / "w2v_jax" / "native"
BITS_SOURCE = ROOT / "tests" / "native" / "row_math_bits.cc"
SMALL_CORPUS = ROOT / "w2v_jax" / "data" / "small_corpus.txt.gz"
GXX = shutil.which("g++")
CLANG = shutil.which("clang++")
CROSS = shutil.which("aarch64-linux-gnu-g++")
QEMU = shutil.which("qemu-aarch64")
needs_gxx = pytest.mark.skipif(GXX is None, reason="no g++ here")


def _cpu_flags() -> set[str]:
  try:
    text = pathlib.Path("/proc/cpuinfo").read_text()
  except OSError:
    return set()
  return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def _x86_targets() -> list[str]:
  """The x86-64 levels this CPU executes, then native."""
  if os.uname().machine != "x86_64":
    return ["native"]
  have = _cpu_flags()
  levels = [("x86-64", set()), ("x86-64-v2", {"sse4_2", "popcnt"}), ("x86-64-v3", {"avx2", "fma", "bmi2"}),
            ("x86-64-v4", {"avx512f", "avx512bw", "avx512vl", "avx512dq"})]
  return [name for name, need in levels if need <= have] + ["native"]


def _bits(compiler: str, march: str, tmp_path: pathlib.Path, run_with: list[str] = ()) -> str:
  exe = tmp_path / f"bits-{pathlib.Path(compiler).name}-{march}"
  subprocess.run([compiler, "-O3", f"-march={march}", "-ffp-contract=off", "-std=c++17", f"-I{NATIVE_DIR}",
                  str(BITS_SOURCE), "-o", str(exe)], check=True, capture_output=True, timeout=300)
  out = subprocess.run([*run_with, str(exe)], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, f"{compiler} -march={march}: {out.stderr}"
  assert out.stdout.count("\n") == 11 * 13   # every (d, nt) case printed
  return out.stdout


@needs_gxx
def test_row_math_gives_the_same_bits_on_every_target_and_compiler(tmp_path):
  """row_math.h's Dot, Dots, WeightedSum and AddScaled against their plain 16-lane loops (inside the
  program), and byte for byte the same output from every build: GCC at every x86-64 level this CPU runs,
  clang at native, GCC for aarch64 under qemu."""
  builds = {f"g++ {m}": _bits(GXX, m, tmp_path) for m in _x86_targets()}
  if CLANG:
    builds["clang++ native"] = _bits(CLANG, "native", tmp_path)
  if CROSS and QEMU:
    builds["aarch64 armv8-a"] = _bits(CROSS, "armv8-a", tmp_path, [QEMU, "-L", "/usr/aarch64-linux-gnu"])
  reference = builds[f"g++ {_x86_targets()[0]}"]
  assert {name: out == reference for name, out in builds.items()} == {name: True for name in builds}


_TRAIN = """
import hashlib, sys
import numpy as np
from w2v_jax import TrainConfig, api
for model in ("cbow_neg", "sgram_neg"):
  r = api.train(TrainConfig(model=model, dim=32, epochs=1, seed=3), [sys.argv[1]], None)
  assert r.summary["engine"]["native"], r.summary["engine"]
  digest = hashlib.sha256(np.asarray(r.params.W_in).tobytes() + np.asarray(r.params.W_out).tobytes())
  print(model, r.summary["engine"]["march"], r.summary["engine"]["vector_bits"], digest.hexdigest())
"""


def _train_digests(tmp_path: pathlib.Path, **env) -> str:
  full = {**os.environ, "W2V_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu", **env}
  out = subprocess.run([sys.executable, "-c", _TRAIN, str(SMALL_CORPUS)], env=full, cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout


@needs_gxx
def test_every_build_trains_the_same_vectors(tmp_path):
  """The shipped corpus, one epoch of cbow_neg and sgram_neg with each register width this CPU runs (x86-64:
  SSE2, 128-bit; x86-64-v3: AVX2, 256-bit; native: 512-bit on an AVX-512 CPU), and clang's native: the
  same tables, bit for bit, and summary["engine"] says which build ran and its register width. (The builds
  are cached in the test session's W2V_JAX_NATIVE_DIR, each apart; x86-64-v4 is native's width here, and
  row_math_bits checks it apart.)"""
  widths = {"x86-64": 128, "x86-64-v3": 256}
  marches = [m for m in widths if m in _x86_targets()] + ["native"]   # native: 512-bit on an AVX-512 CPU
  runs = {m: _train_digests(tmp_path, W2V_JAX_NATIVE_MARCH=m, CXX=GXX) for m in marches}
  if CLANG:
    runs["clang++"] = _train_digests(tmp_path, CXX=CLANG)
  digests = {name: [line.split()[3] for line in out.splitlines()] for name, out in runs.items()}
  assert len({tuple(d) for d in digests.values()}) == 1, digests
  for m in marches:
    assert [line.split()[1] for line in runs[m].splitlines()] == [m, m]
    if m in widths:
      assert [int(line.split()[2]) for line in runs[m].splitlines()] == [widths[m]] * 2


@pytest.mark.skipif(CLANG is None, reason="no clang++ here (Debian: apt-get install clang)")
def test_the_native_tests_pass_with_clang(tmp_path):
  """tests/test_native.py's kernel tests (bits of the row kernels, the fused steps against the JAX step,
  determinism across threads) with the kernels built by clang++."""
  env = {**os.environ, "CXX": CLANG, "W2V_JAX_NATIVE_DIR": str(tmp_path / "native"), "JAX_PLATFORMS": "cpu",
         "W2V_JAX_NATIVE_MARCH": "x86-64-v3" if "x86-64-v3" in _x86_targets() else "native"}
  out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_native.py", "-k",
                        "bit_for_bit or fused_step_equals or deterministic_across_threads or builds_and_registers"],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stdout[-3000:]
  assert " passed" in out.stdout.splitlines()[-1] and "skipped" not in out.stdout.splitlines()[-1]
  record = json.loads(next((tmp_path / "native").glob("*.json")).read_text())
  assert record["compiler"] == CLANG


@pytest.mark.skipif(CROSS is None, reason="no aarch64 cross compiler here (Debian: g++-aarch64-linux-gnu)")
def test_the_kernels_cross_compile_for_aarch64(tmp_path):
  """The whole library, FFI handlers included, built for armv8-a by the same code that builds it here."""
  lib = tmp_path / "w2v_native-armv8-a.so"
  error = builder.compile_library(CROSS, "armv8-a", lib, tmp_path / "build.log")
  assert error is None, (tmp_path / "build.log").read_text()[-3000:]
  assert lib.read_bytes()[:4] == b"\x7fELF" and lib.read_bytes()[18] == 183   # e_machine = EM_AARCH64


@needs_gxx
def test_a_build_this_cpu_cannot_run_is_caught_in_a_child(tmp_path):
  """builder.runs_here on a library whose probe executes an illegal instruction: a line, no crash. (Where
  this CPU lacks AVX-512, the real case: W2V_JAX_NATIVE_MARCH=x86-64-v4 turns the kernels off in one line.)"""
  src = tmp_path / "trap.cc"
  src.write_text('extern "C" int W2vProbe() { __builtin_trap(); return 1; }\n')
  lib = tmp_path / "trap.so"
  subprocess.run([GXX, "-shared", "-fPIC", str(src), "-o", str(lib)], check=True, timeout=120)
  why = builder.runs_here(lib)
  assert "illegal instruction" in why or "probe failed" in why, why
  if os.uname().machine == "x86_64" and "avx512f" not in _cpu_flags():
    code = "from w2v_jax import native; print(native.status().reason)"
    env = {**os.environ, "W2V_JAX_NATIVE_MARCH": "x86-64-v4", "W2V_JAX_NATIVE_DIR": str(tmp_path / "native")}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "does not run on this CPU" in out.stdout, out.stdout + out.stderr


def test_a_bad_march_value_is_one_line(tmp_path):
  env = {**os.environ, "W2V_JAX_NATIVE_MARCH": "native; rm -rf ~", "W2V_JAX_NATIVE_DIR": str(tmp_path / "n"),
         "W2V_JAX_CACHE": str(tmp_path / "cache")}
  out = subprocess.run([sys.executable, "-m", "experiments.train", f"--workdir={tmp_path / 'run'}"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode != 0 and "Traceback" not in out.stderr
  assert out.stderr.strip().count("\n") == 0 and "W2V_JAX_NATIVE_MARCH" in out.stderr, out.stderr
  assert not (tmp_path / "n").exists()


@needs_gxx
def test_a_damaged_cached_library_is_rebuilt_and_said(tmp_path):
  """Truncate the cached library: the next process rebuilds it, says so in one line, and loads it."""
  env = {**os.environ, "W2V_JAX_NATIVE_DIR": str(tmp_path / "native")}
  build = [sys.executable, "-m", "w2v_jax.native", "build"]
  assert native.status().available   # the session's build, copied with its record
  (tmp_path / "native").mkdir()
  built = builder.library_path(builder.compiler(), "native")
  for path in (built, built.with_suffix(".json")):
    shutil.copy(path, tmp_path / "native" / path.name)
  first = subprocess.run(build, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert first.returncode == 0 and "was damaged" not in first.stdout, first.stdout + first.stderr
  (lib,) = (tmp_path / "native").glob("*.so")
  good = hashlib.sha256(lib.read_bytes()).hexdigest()
  lib.write_bytes(lib.read_bytes()[: lib.stat().st_size // 2])
  second = subprocess.run(build, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert second.returncode == 0, second.stdout + second.stderr
  assert "was damaged" in second.stdout and "rebuilt it" in second.stdout and "built for -march=native" in second.stdout
  assert hashlib.sha256(lib.read_bytes()).hexdigest() == json.loads(lib.with_suffix(".json").read_text())["sha256"]
  assert hashlib.sha256(lib.read_bytes()).hexdigest() == good   # the whole library again, not the half
  third = subprocess.run(build, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert "was damaged" not in third.stdout and third.returncode == 0


def _mount(*args) -> bool:
  return os.geteuid() == 0 and subprocess.run(["mount", *args], capture_output=True).returncode == 0


@needs_gxx
def test_a_build_short_of_disk_space_is_said_and_not_remembered(tmp_path):
  """A build cache on a full 8 MB tmpfs: one line saying where to make room, and no `.failed` marker, so
  the next process tries again (it does not say "failed before")."""
  where = tmp_path / "small"
  where.mkdir()
  if not _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)):
    pytest.skip("cannot mount a tmpfs here (not root, or no mount)")
  try:
    filler = where / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=7"], capture_output=True)
    env = {**os.environ, "W2V_JAX_NATIVE_DIR": str(where / "native"), "CXX": GXX}
    build = [sys.executable, "-m", "w2v_jax.native", "build"]
    short = subprocess.run(build, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert short.returncode == 1 and "no room to build them in" in short.stdout, short.stdout + short.stderr
    assert "Traceback" not in short.stderr and not list((where / "native").glob("*.failed"))
    again = subprocess.run(build, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert "no room to build them in" in again.stdout and "failed before" not in again.stdout   # tried again
  finally:
    subprocess.run(["umount", str(where)], capture_output=True)


@needs_gxx
def test_a_read_only_cache_with_an_intact_library_is_used(tmp_path):
  """A prebuilt cache mounted read-only: its library matches its record and loads; a damaged one is one
  line saying to point W2V_JAX_NATIVE_DIR at a writable directory."""
  cache = tmp_path / "native"
  env = {**os.environ, "W2V_JAX_NATIVE_DIR": str(cache)}
  build = [sys.executable, "-m", "w2v_jax.native", "build"]
  assert native.status().available   # the session's build: copied, as an image would ship it (no lock file)
  cache.mkdir()
  built = builder.library_path(builder.compiler(), "native")
  for path in (built, built.with_suffix(".json")):
    shutil.copy(path, cache / path.name)
  if not (_mount("--bind", str(cache), str(cache)) and _mount("-o", "remount,ro,bind", str(cache))):
    subprocess.run(["umount", str(cache)], capture_output=True)
    pytest.skip("cannot make a read-only bind mount here")
  try:
    used = subprocess.run(build, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert used.returncode == 0 and "built for -march=native" in used.stdout, used.stdout + used.stderr
  finally:
    subprocess.run(["umount", str(cache)], capture_output=True)
  (lib,) = cache.glob("*.so")
  lib.write_bytes(lib.read_bytes()[:1000])
  assert _mount("--bind", str(cache), str(cache)) and _mount("-o", "remount,ro,bind", str(cache))
  try:
    refused = subprocess.run(build, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 1 and "is not writable" in refused.stdout and "W2V_JAX_NATIVE_DIR" in refused.stdout
  finally:
    subprocess.run(["umount", str(cache)], capture_output=True)
