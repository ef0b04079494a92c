"""JAX's persistent compilation cache (experiments' --compile_cache), with entries that are checked and heal.

JAX's own file cache (jax._src.lru_cache) writes an entry in place (a crash, a full disk or a second
process writing the same entry can leave half of one) and, on reading a damaged entry, warns in two lines
("Error reading persistent compilation cache entry ..."), compiles again and never replaces it: every later
run warns and compiles again. `HealingCache` takes its place (`install`):

- each entry `<key>-cache` is written to a temporary file and moved into place, beside a record
  `<key>-cache.json` of its size and CRC-32, under an exclusive flock on `.w2v_jax.lock` (readers take it
  shared), so two processes filling one entry never leave a half-written one;
- an entry read back is checked against its record; a damaged one (or one without a record that does not
  decompress: an older cache's) is removed, said in one line to `on_notice`, and JAX compiles the step
  again and writes it anew; an entry without a record that does decompress is adopted (its record written);
- a write that fails (a full disk) is said in one line, and the run goes on without that entry.

It uses JAX's private cache hook (jax._src.compilation_cache._cache): where this JAX has none, `install`
returns False and JAX's own cache is used, as before.
"""
import fcntl
import json
import os
import pathlib
import zlib
from typing import Callable

from w2v_jax.atomic import read_json, write_atomic

SUFFIX = "-cache"
LOCK = ".w2v_jax.lock"


def _check(data: bytes) -> dict:
  return {"bytes": len(data), "crc32": zlib.crc32(data)}


def _damage(data: bytes, record) -> str | None:
  """Why `data` does not match its record, or None where it does."""
  if not isinstance(record, dict):
    return "its record is unreadable"
  if len(data) != record.get("bytes"):
    said = record.get("bytes")
    return f"{len(data):,} bytes, its record says {f'{said:,}' if isinstance(said, int) else said}"
  return None if zlib.crc32(data) == record.get("crc32") else "its checksum differs from its record"


def _decompresses(data: bytes) -> bool:
  try:
    from jax._src import compilation_cache
    compilation_cache.decompress_executable(data)
    return True
  except Exception:   # noqa: BLE001  whatever the codec raises for damaged bytes
    return False


try:
  from jax._src.compilation_cache_interface import CacheInterface as _Base
except ImportError:   # a JAX without it: install() says no
  _Base = object


class HealingCache(_Base):
  """A directory of compiled executables, each with a record of its size and CRC-32 (see the module doc)."""

  def __init__(self, path, on_notice: Callable[[str], None]):
    self.path = self._path = pathlib.Path(path)
    self.path.mkdir(parents=True, exist_ok=True)
    self.on_notice = on_notice
    self.failed_write = False

  def _locked(self, how: int):
    f = open(self.path / LOCK, "a+")
    fcntl.flock(f, how)
    return f   # closing it unlocks

  def get(self, key: str) -> bytes | None:
    entry = self.path / f"{key}{SUFFIX}"
    record_path = entry.with_name(entry.name + ".json")
    with self._locked(fcntl.LOCK_SH):
      try:
        data = entry.read_bytes()
      except FileNotFoundError:
        return None
      except OSError as e:
        data, damage = None, f"unreadable: {e.strerror or e}"
      has_record = record_path.exists()
      record = read_json(record_path) if has_record else None
    if data is not None:
      if has_record:
        damage = _damage(data, record)
      else:   # an entry written before these records (or by JAX itself): adopted if it decompresses
        damage = None if _decompresses(data) else "it does not decompress"
        if damage is None:
          self._write(key, data, entry_too=False)
      if damage is None:
        return data
    self.on_notice(f"the compiled-step cache entry {entry} was damaged ({damage}): removed, and the step is "
                   "compiled again")
    with self._locked(fcntl.LOCK_EX):
      try:
        if entry.exists() and read_json(record_path) == _check(entry.read_bytes()):
          return None   # another process wrote it anew meanwhile
        for p in (entry, record_path):
          p.unlink(missing_ok=True)
      except OSError:
        pass
    return None

  def put(self, key: str, value: bytes) -> None:
    self._write(key, value, entry_too=True)

  def _write(self, key: str, value: bytes, entry_too: bool) -> None:
    entry = self.path / f"{key}{SUFFIX}"
    record = json.dumps(_check(value)).encode()
    try:
      with self._locked(fcntl.LOCK_EX):
        if entry_too:
          write_atomic(entry, lambda f: f.write(value))
        write_atomic(entry.with_name(entry.name + ".json"), lambda f: f.write(record))
    except (OSError, ValueError) as e:   # (disk.NoSpace is a W2VError, a ValueError)
      if not self.failed_write:   # said once a run
        self.failed_write = True
        self.on_notice(f"cannot keep a compiled step in the cache {self.path} ({e}): it is compiled again next run")


def install(path, on_notice: Callable[[str], None]) -> bool:
  """Makes `path` JAX's persistent compilation cache, kept by HealingCache; False where this JAX's cache
  cannot be replaced (then the caller leaves JAX's own cache in place). OSError where `path` cannot be made."""
  try:
    from jax._src import compilation_cache as cc
    if _Base is object or not hasattr(cc, "_cache") or not hasattr(cc, "_cache_initialized_mutex"):
      return False
    cache = HealingCache(path, on_notice)
    cc.reset_cache()
    with cc._cache_initialized_mutex:
      cc._cache, cc._cache_initialized = cache, True
    return True
  except (ImportError, AttributeError):
    return False


def installed() -> HealingCache | None:
  try:
    from jax._src import compilation_cache as cc
  except ImportError:
    return None
  cache = getattr(cc, "_cache", None)
  return cache if isinstance(cache, HealingCache) else None
