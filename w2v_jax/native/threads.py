"""The fused steps' use of threads (fused_steps.cc's Contention and Pace counts) and the CPUs' cache-line
round trip (cores.cc): what a run's `threads:` line and the benchmarks report."""
import ctypes
import os
from typing import NamedTuple

from w2v_jax.native import library

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
  if library._LIB is None:
    return Contention(0, 0, 0)
  out = (ctypes.c_int64 * 6)()
  library._LIB.W2vContentionCounts(out)
  return Contention(*out)


def core_round_trip_ns(trips: int = 2000) -> float | None:
  """The time of a cache line's round trip between the first two CPUs this process may run on, in ns
  (cores.cc: two threads pinned there pass a counter back and forth `trips` times, timed 16 at a time;
  the 10th percentile of those, so that a busy machine's scheduling shows less): what a row written by
  one thread of a fused step and read by another costs. None without the kernels, with fewer than two CPUs, or where the
  threads cannot be pinned."""
  cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  if len(cpus) < 2 or not library.status().available:
    return None
  ns = library._LIB.W2vCoreRoundTrip(trips, cpus[0], cpus[1])
  return ns if ns >= 0 else None


