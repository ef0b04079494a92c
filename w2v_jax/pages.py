"""The tables on huge pages: made there (`init_params`), or copied there (`place`), on the CPU.

A training step reads and writes rows all over both [V, D] tables. Each row read needs its page's address
translation; the TLB caches a few thousand of them. On 4 kB pages that covers a few MB of table, so at
large V nearly every row a step touches costs a page walk as well as a cache miss (and under a hypervisor
a walk is two walks). On 2 MB pages the same TLB covers GBs.

By default (`enabled=None`, "auto") the tables go on huge pages when they take at least AUTO_MIN_BYTES
(512 MB: V ≥ about 670k at D = 100); `--huge_pages` / `--nohuge_pages` (True / False) force either way.
Measured in docs/results.md ("Huge pages") and docs/performance.md ("Huge pages: the measurements"): at V = 965k
(736 MB of tables) the steps ran faster on huge pages in most runs; at V = 256k (195 MB) the difference was
inside this machine's noise, and at V = 22k there was none. Below 512 MB the page tables of 4 kB pages (8
bytes per 4 kB) still fit in a core's L2 and a walk is cheap; above it they do not.

Linux backs an anonymous range with transparent huge pages (THP) when THP is "always", or when it is
"madvise" and the range was advised MADV_HUGEPAGE before its first touch; pages already touched stay
small. XLA writes a table's buffer as it makes it, so the tables are made on huge pages in the first place:
`init_params` has the native kernel `native.huge_page_zeros` write both zero tables into memory it
advised first, and models.init draws W_in into its zeros in place. `place` then copies only what is not
there yet (a resumed run's tables, an optimiser's state; each float leaf of at least one huge page)
through `native.huge_page_copy`, which advises its fresh output before writing it. (Collapsing the
buffers where they are, madvise MADV_COLLAPSE, needs no copy but took as long.) The copy holds the same
bits. Each leaf's old buffer is deleted as soon as it is copied, so the peak memory grows by one table
at most, for a moment; `place` consumes its state.

What happened is measured, not assumed: `place` reads /proc/self/smaps for how much of the tables the
kernel did put on huge pages, and says it in one line (FitResult.pages, summary.json's "pages", printed
by w2v-train), with the reason wherever it is none.
"""
import os
import pathlib
import re
import time

import jax
import jax.numpy as jnp

from w2v_jax import models, native
from w2v_jax.types import Params

_THP = pathlib.Path("/sys/kernel/mm/transparent_hugepage")
AUTO_MIN_BYTES = 512 << 20   # "auto" puts tables of at least this many bytes (all float leaves) on huge pages
SETTINGS = {"auto": None, "on": True, "off": False}   # the scripts' words for `enabled`


def thp_mode() -> str | None:
  """Linux's THP mode ("always", "madvise" or "never"), or None where there is no THP."""
  try:
    text = (_THP / "enabled").read_text()
  except OSError:
    return None
  m = re.search(r"\[(\w+)\]", text)
  return m.group(1) if m else None


def huge_page_bytes() -> int:
  """The THP page size: 2 MB on x86-64 (hpage_pmd_size where the kernel says)."""
  try:
    return int((_THP / "hpage_pmd_size").read_text())
  except (OSError, ValueError):
    return 2 << 20


def huge_bytes(arrays) -> int:
  """How many bytes of these (CPU) arrays' buffers the kernel backs with huge pages now, from
  /proc/self/smaps (AnonHugePages of each mapping inside a buffer, plus the huge pages of a mapping that
  holds a buffer, counted up to the buffer's size)."""
  spans = [(a.unsafe_buffer_pointer(), a.unsafe_buffer_pointer() + a.nbytes) for a in arrays]
  total, start, end = 0, 0, 0
  try:
    with open("/proc/self/smaps") as f:
      for line in f:
        if m := re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line):
          start, end = int(m.group(1), 16), int(m.group(2), 16)
        elif line.startswith("AnonHugePages:"):
          kb = int(line.split()[1])
          for lo, hi in spans:
            if lo < end and start < hi:   # this mapping overlaps the buffer
              total += min(kb * 1024, min(hi, end) - max(lo, start))
  except OSError:
    return 0
  return total


def _on_cpu() -> bool:
  return jax.default_backend() == "cpu" and os.name == "posix"


def _chosen(enabled: bool | None, nbytes: int) -> bool:
  """Whether the tables go on huge pages: forced, or auto (None) for nbytes >= AUTO_MIN_BYTES on the CPU."""
  if enabled is None:
    return _on_cpu() and nbytes >= AUTO_MIN_BYTES
  return bool(enabled)


def init_params(key: jax.Array, vocab_size: int, dim: int, enabled: bool | None = None,
                extra_in_rows: int = 0) -> Params:
  """models.init's tables (the same values), made on huge pages where `place(enabled)` would put them
  and THP is madvise-only: zeros written by the native kernel into advised memory, W_in drawn into its
  zeros in place. So `place` has nothing to copy: no copy time, and no third table at the peak. In any
  other case plain models.init, and `place` does what it does. W_in has `extra_in_rows` more rows."""
  V, D, N = int(vocab_size), int(dim), int(extra_in_rows)
  if not (_chosen(enabled, (2 * V + N) * D * 4) and thp_mode() == "madvise" and native.available()):
    return models.init(key, V, D, extra_in_rows=N)
  page = huge_page_bytes()
  zeros = [native.huge_page_zeros((rows, D), jnp.float32, page)[0] for rows in (V + N, V)]
  return models.init(key, V, D, into=Params(*zeros), extra_in_rows=N)


def place(state, enabled: bool | None = None):
  """(state, report): with `enabled` (None: "auto", on the CPU when the float leaves take at least
  AUTO_MIN_BYTES), state with its float leaves of at least one huge page copied onto huge pages where the
  machine allows (the same values); and one line saying how much of the tables is on them and why, or
  why none is. The copied leaves of the given state are deleted: use the returned one."""
  leaves, tree = jax.tree.flatten(state)
  page = huge_page_bytes()
  floats = [i for i, x in enumerate(leaves) if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating)]
  big = [i for i in floats if leaves[i].nbytes >= page]
  total = sum(leaves[i].nbytes for i in floats)
  size = f"{total / 2**20:,.0f} MB of tables"
  mode = thp_mode()
  cpu = _on_cpu()
  if enabled is None:
    if not cpu:
      return state, f"{size} in {jax.default_backend()} memory (huge pages are for the CPU's tables)"
    if not _chosen(None, total):   # auto's rule, as init_params applies it
      return state, (f"{size} on 4 kB pages (auto: huge pages from {AUTO_MIN_BYTES >> 20} MB of tables; "
                     "--huge_pages forces them)")
    state, line = place(state, True)
    return state, f"{line}; auto, for {AUTO_MIN_BYTES >> 20} MB of tables or more (--nohuge_pages: 4 kB pages)"
  if not enabled:
    return state, f"{size} on 4 kB pages (--nohuge_pages)"
  if not cpu:
    return state, f"huge pages not asked for on {jax.default_backend()}"
  if mode is None:
    return state, f"{size} on 4 kB pages: this system has no transparent huge pages ({_THP} is missing)"
  if mode == "never":
    return state, f"{size} on 4 kB pages: transparent huge pages are off here ({_THP}/enabled says never)"
  if not big:
    return state, f"{size} on 4 kB pages: no table fills a {page >> 20} MB page"
  t = time.perf_counter()
  how = "THP always"
  if mode == "madvise":
    status = native.status()
    if not status.available:
      return state, f"{size} on 4 kB pages: THP is madvise-only and the copy that advises needs the {status.reason}"
    errors, copied = set(), 0
    for x in {id(leaves[i]): leaves[i] for i in big}.values():   # a leaf twice in the tree: copied once
      if 2 * huge_bytes([x]) >= x.nbytes:   # made there (init_params): nothing to copy
        continue
      copied += 1
      copy, advised = native.huge_page_copy(x, page)
      leaves = [copy if y is x else y for y in leaves]
      x.delete()   # now, not when the caller lets go of the old state
      if int(advised) < 0:
        errors.add(os.strerror(-int(advised)))
    if errors:
      return jax.tree.unflatten(tree, leaves), f"{size} on 4 kB pages: madvise refused ({', '.join(sorted(errors))})"
    how = ("THP madvise; made there, none copied" if not copied else
           f"THP madvise; {copied} of {len({id(leaves[i]) for i in big})} copied in {time.perf_counter() - t:.2f} s")
  big = [leaves[i] for i in big]
  on = huge_bytes(big)
  return jax.tree.unflatten(tree, leaves), f"{on / 2**20:,.0f} of {size} on {page >> 20} MB pages ({how})"
