// CoreRoundTrip: how long a cache line takes to go from one CPU to another and back: what every row that
// one thread of a fused step writes and another reads pays (fused_steps.cc, Pace). On this project's
// 2-vCPU machine it has spells of several times its usual value (the host placing the vCPUs apart), and
// the two-thread steps slow down with it (docs/performance.md, "The slow spells"); scripts/bench.py samples it during
// each run it times, so that each figure says which spell it ran in.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "kernels.h"

namespace w2v {
namespace {

bool Pin(int cpu) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
#else
  return false;
#endif
}

}  // namespace

double CoreRoundTrip(int64_t trips, int32_t cpu_a, int32_t cpu_b) {
  constexpr int64_t kBatch = 16;   // trips timed together (one clock read per trip would double them)
  const int64_t batches = std::max<int64_t>(trips / kBatch, 1);
  alignas(64) std::atomic<int64_t> ball{0};   // odd: at b's side; even: back at a's
  std::atomic<int> pinned{0}, failed{0};
  std::vector<double> ns(static_cast<size_t>(batches));
  auto side = [&](int cpu, bool first) {
    if (!Pin(cpu)) failed.fetch_add(1);
    pinned.fetch_add(1);
    while (pinned.load() < 2) {}
    if (failed.load() > 0) return;
    int64_t i = 0;
    for (int64_t batch = 0; batch < batches; ++batch) {
      const auto start = std::chrono::steady_clock::now();
      for (int64_t end = i + kBatch; i < end; ++i) {
        if (first) {
          ball.store(2 * i + 1, std::memory_order_release);
          while (ball.load(std::memory_order_acquire) != 2 * i + 2) {}
        } else {
          while (ball.load(std::memory_order_acquire) != 2 * i + 1) {}
          ball.store(2 * i + 2, std::memory_order_release);
        }
      }
      if (first)
        ns[batch] = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
                    kBatch;
    }
  };
  std::thread a(side, cpu_a, true), b(side, cpu_b, false);
  a.join();
  b.join();
  if (failed.load() > 0) return -1.0;
  // The 10th percentile of the batches, not their mean: a batch during which either thread lost its CPU
  // to a busy process takes a scheduler's slice, and on a busy machine many do; the rest show the cache.
  auto tenth = ns.begin() + static_cast<std::ptrdiff_t>(ns.size() / 10);
  std::nth_element(ns.begin(), tenth, ns.end());
  return *tenth;
}

}  // namespace w2v
