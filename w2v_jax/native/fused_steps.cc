// CbowNegStep, SgramNegStep (kernels.h): one whole negative-sampling training step on a SpanBatch, in
// place on both tables, on the calling thread and the other threads of XLA's CPU pool (the FFI handlers
// w2v_cbow_neg_step and w2v_sgram_neg_step in ffi_handlers.cc check the buffers and call these).
// RunSpanStep (span_step.h) runs the same three phases around a model's maths from another file
// (hs_steps.cc: hierarchical softmax).
//
// Each computes what its pure-JAX step computes (native.<model>_span_step_reference), from the same
// snapshot of the tables. With o = (-W..-1, 1..W), slot (b, j) of window b is span position W + b + o_j,
// m its mask, v = W_in rows, u = W_out rows, T_b = (u_center_b, u_neg_b1..u_neg_bK):
//
//  cbow_neg (rewrites.cbow_neg_span_parts, then native.apply_span_rows / apply_rows):
//   h_b = Σ_j m_bj v(slot b, j) / max(n_b, 1), n_b = Σ_j m_bj;  s_bt = T_bt · h_b;  g = (σ(s₀) − 1, σ(s_k))
//   loss_b = softplus(−s_b0) + Σ_k softplus(s_bk);  ∂L/∂h_b = Σ_t g_bt T_bt;  W_out row (b, t): g_bt h_b
//   W_in row of position p: Σ over its slots (b, j) of coef_bj ∂L/∂h_b, coef = m (sum) or m / n (mean)
//  sgram_neg, swapped (rewrites.sgram_neg_swapped_span_row_grads, then native.apply_rows):
//   h_bj = v(slot b, j);  s_bjt = h_bj · T_bt;  G_bjt = m_bj (σ(s_bjt) − [t = 0])
//   loss_b = Σ_j m_bj (softplus(−s_bj0) + Σ_k softplus(s_bjk))
//   W_out row (b, t): Σ_j G_bjt h_bj;  W_in row of position p: Σ over its slots of Σ_t G_bjt T_bt
// and then table += scale · damp(row) for every row, with damp the cap of rows.damp_duplicates: a word
// with m > max_dup nonzero rows in the step has each scaled by max_dup / m.
//
// Not the same bits as the reference: the dot products and sums run in a fixed order of their own
// (16 lanes, then a tree), XLA's in another. tests/test_native.py checks both against their reference.
//
// Deterministic on any number of threads. Phase 1 (per window) and phase 2 (per span position) write
// disjoint scratch and per-chunk lists; phase 3 deals the rows out by word id (blocks of 16 ids, round
// 8 owners), and each word's updates are applied by one thread in the reference's order. So the tables
// after a step depend only on the inputs, never on which thread ran which chunk.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <sched.h>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels.h"
#include "row_math.h"
#include "span_step.h"

namespace w2v {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

// Helpers that stay a while. A helper that has run its task lingers for kLinger, spinning, and the next
// ParallelFor hands its task to a lingering helper instead of scheduling one on the pool: a sleeping pool
// thread took 10-50 us to wake, and a step has three phases. `spinners_` counts the lingering helpers that
// no task has been promised to (so spinners_ + queued tasks = lingering helpers). A poster takes one off
// the count (CAS) and then queues its task, which any lingering helper may take; a helper whose time is
// up leaves only when it can take one off the count. If no helper lingers, the task goes to the pool.
class Crew {
 public:
  static Crew& Get() {
    static Crew* c = new Crew;
    return *c;
  }
  // task runs on a helper and must call Linger() last.
  void Run(Pool* pool, std::function<void()> task) {
    for (int64_t s = spinners_.load(std::memory_order_acquire); s > 0;)
      if (spinners_.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel)) {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(task));
        pending_.fetch_add(1, std::memory_order_release);
        return;
      }
    pool->Schedule([this, task = std::move(task)]() mutable { Helper(std::move(task)); });
  }
  void Linger() { spinners_.fetch_add(1, std::memory_order_acq_rel); }

 private:
  static constexpr auto kLinger = std::chrono::microseconds(200);
  void Helper(std::function<void()> task) {
    for (;;) {
      task();
      task = nullptr;
      const auto deadline = std::chrono::steady_clock::now() + kLinger;
      for (int64_t spins = 0; !(pending_.load(std::memory_order_acquire) > 0 && Take(task)); ++spins) {
        // Past the deadline, leave as soon as a helper can be taken off the count. While the count is 0,
        // every lingering helper has a task queued or on its way, so this one will find a task, or find
        // the count raised again by a helper that took a task meant for it and then lingered.
        if ((spins & 63) == 0 && std::chrono::steady_clock::now() > deadline) {
          int64_t s = spinners_.load(std::memory_order_acquire);
          while (s > 0 && !spinners_.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel)) {}
          if (s > 0) return;
        }
        CpuRelax();
      }
    }
  }
  bool Take(std::function<void()>& task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.empty()) return false;
    task = std::move(queue_.front());
    queue_.pop_front();
    pending_.fetch_sub(1, std::memory_order_release);
    return true;
  }
  std::atomic<int64_t> spinners_{0}, pending_{0};
  std::mutex mu_;
  std::deque<std::function<void()>> queue_;
};

// Stalls. A helper that took a chunk and then lost its core holds the whole phase until the scheduler runs
// it again, milliseconds later. With more runnable threads than cores (another program, or this process's
// own, such as the thread that draws the next epoch) a step on all threads was then slower than on one
// (docs/performance.md, "Stalls: a machine in use"). So a wait for a helper's chunk far longer than the
// phase's own work (kStallMin, or 4x the caller's part) is a stall, and the next ParallelFor calls run on the
// caller alone: kFirstSpan calls, doubled while stalls come back within 4 spans of the last one's end (up to
// kMaxSpan), back to kFirstSpan once they stop. A 300 us threshold with doubling only within 1 span was no
// faster beside a busy loop (docs/performance.md has the figures). The tables are the same bits on any number
// of threads: this changes only the time. ContentionCounts reports it.
class Contention {
 public:
  static Contention& Get() {
    static Contention* c = new Contention;
    return *c;
  }
  // Whether this call runs on the caller alone.
  bool Solo() {
    const int64_t call = calls_.fetch_add(1, std::memory_order_relaxed);
    if (call >= solo_until_.load(std::memory_order_relaxed)) return false;
    solo_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  void Stalled() {
    stalls_.fetch_add(1, std::memory_order_relaxed);
    const int64_t call = calls_.load(std::memory_order_relaxed);
    const int64_t until = solo_until_.load(std::memory_order_relaxed);
    const int64_t span = span_.load(std::memory_order_relaxed);
    const int64_t next = until > 0 && call < until + 4 * span ? std::min(2 * span, kMaxSpan) : kFirstSpan;
    span_.store(next, std::memory_order_relaxed);
    solo_until_.store(call + next, std::memory_order_relaxed);
  }
  // ParallelFor calls, those run on the caller alone, stalls: since the library was loaded.
  void Counts(int64_t* out) const {
    out[0] = calls_.load(std::memory_order_relaxed);
    out[1] = solo_.load(std::memory_order_relaxed);
    out[2] = stalls_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr int64_t kFirstSpan = 16, kMaxSpan = 4096;
  std::atomic<int64_t> calls_{0}, solo_{0}, stalls_{0}, solo_until_{0}, span_{kFirstSpan};
};

// Threads that pay. On a shared host the two vCPUs of a small VM are sometimes placed far apart, for
// seconds at a time: a cache line's round trip between them then takes several times as long (cores.cc
// measures it), and so does every row that one thread of a step writes and the other reads; the
// two-thread step has then run slower than one thread (docs/performance.md, "The slow spells", has the
// figures). The bits do not depend on the threads, so a step asked to run on all of them (threads = 0) times
// itself and runs where it is faster: on all threads or on one. Each period ends with kProbe steps on the
// other setting, of which the first kSkip are not counted (they pay for moving the rows between the caches);
// the preferred changes when the other's mean is below kMargin of the preferred's running mean (1/16 of each
// of its steps). On all threads, the period doubles from kMinPeriod to kMaxPeriod while one thread keeps
// losing, or at once grows to the length whose probes cost no more than kBudget of its time, where one thread
// is far slower (one of many cores). On one thread it stays kMinPeriod: probing all threads costs little
// there, and a step left on one thread after the spell ended costs twice its time. One per kernel (their
// times differ), used under the step's lock; the counts are read from any thread.
class Pace {
 public:
  // W2V_JAX_PACE in the environment, to measure what it buys: "all" (or 0) runs every step on all threads
  // as asked, "one" every step on one thread; "auto", or nothing, paces them (native._check_environment
  // refuses any other value before the library loads).
  enum Mode { kPaced, kAll, kOne };
  static Mode Setting() {
    static const Mode mode = [] {
      const char* e = std::getenv("W2V_JAX_PACE");
      const std::string v = e == nullptr ? "" : e;
      return v == "all" || v == "0" ? kAll : v == "one" ? kOne : kPaced;
    }();
    return mode;
  }
  enum Kernel { kCbow, kSgram, kCbowHs, kSgramHs, kKernels };
  static Pace& For(Kernel kernel) {
    static Pace* p = new Pace[kKernels];
    return p[kernel];
  }
  // Whether the next step of this shape runs on one thread.
  bool One(uint64_t shape) {
    if (shape != shape_) shape_ = shape, m_ = Measure{};   // measured afresh (the counts kept)
    steps_.fetch_add(1, std::memory_order_relaxed);
    return m_.n >= m_.period - kProbe ? !m_.one : m_.one;
  }
  // The step that One() placed took `ns` for its nb windows.
  void Done(bool one, double ns, int64_t nb) {
    const double t = ns / static_cast<double>(std::max<int64_t>(nb, 1));
    Measure& m = m_;
    if (one) ones_.fetch_add(1, std::memory_order_relaxed);
    if (one == m.one) {
      m.mean = m.mean < 0.0 ? t : m.mean + (t - m.mean) / 16.0;
    } else if (m.n >= m.period - kProbe + kSkip) {   // past the first kSkip probe steps
      m.probe += t;
      ++m.probes;
    }
    if (++m.n < m.period) return;
    const double ratio = m.probes > 0 && m.mean > 0.0 ? m.probe / m.probes / m.mean : 1.0;   // other / preferred
    if (ratio < kMargin) {
      m.one = !m.one;
      m.mean = m.probe / m.probes;
      m.period = kMinPeriod;
      switches_.fetch_add(1, std::memory_order_relaxed);
    } else if (m.one) {   // on one thread: all threads probed every kMinPeriod steps, to see a spell end soon
      m.period = kMinPeriod;
    } else {   // doubled up to kMaxPeriod, and at once as long as the probes' extra time needs to stay
               // under kBudget of the period's (a probe on one thread of many)
      const double budget = kProbe * (ratio - 1.0) / kBudget;
      m.period = std::max(std::min(2 * m.period, kMaxPeriod), static_cast<int64_t>(std::min(budget, 1e9)));
    }
    m.n = 0, m.probe = 0.0, m.probes = 0;
  }
  // Over both kernels since the library was loaded: paced steps, of them on one thread, switches.
  static void Counts(int64_t* out) {
    out[0] = out[1] = out[2] = 0;
    for (int k = 0; k < kKernels; ++k) {
      const Pace& p = For(static_cast<Kernel>(k));
      out[0] += p.steps_.load(std::memory_order_relaxed), out[1] += p.ones_.load(std::memory_order_relaxed);
      out[2] += p.switches_.load(std::memory_order_relaxed);
    }
  }

 private:
  static constexpr int64_t kProbe = 8, kSkip = 3, kMinPeriod = 64, kMaxPeriod = 1024;
  static constexpr double kMargin = 0.9, kBudget = 0.005;
  struct Measure {                       // what a new shape starts afresh
    bool one = false;                    // the preferred: one thread, or all
    double mean = -1.0, probe = 0.0;     // ns a window: the preferred's running mean; the probes' sum
    int64_t probes = 0, n = 0, period = kMinPeriod;   // probes counted, steps into the period, its length
  };
  uint64_t shape_ = 0;
  Measure m_;
  std::atomic<int64_t> steps_{0}, ones_{0}, switches_{0};
};

constexpr std::chrono::microseconds kStallMin{100};   // no wait for a helper's chunk is a stall below this
constexpr int64_t kLingerWait = 1 << 12;              // spins waiting for helpers to linger

// fn(i) for i in [0, n), on at most max_threads threads (0: all of the pool's). The chunks are split into
// one contiguous segment per thread: each thread runs its own from the front, then takes what is left of
// the others' from the back. So a thread works on the same part of the batch in every phase (thread 0 on
// the first windows, then on those windows' span positions), and reads what it wrote itself, not lines from
// the other core's cache (cbow's phase 2 took 150 us a step when chunks were dealt one at a time to
// whichever thread asked, 50 us now). The caller waits only for chunks that were started, so a helper
// that never gets a core costs nothing: the caller runs every chunk itself. A helper that starts late
// finds no chunk left and returns without touching fn.
template <class F>
void ParallelFor(Pool* pool, int64_t max_threads, int64_t n, const F& fn) {
  const int64_t pool_threads = pool->NumThreads();
  const int64_t threads = max_threads > 0 ? std::min<int64_t>(max_threads, pool_threads) : pool_threads;
  const int64_t helpers = std::min<int64_t>(threads - 1, n - 1);
  if (helpers <= 0 || Contention::Get().Solo()) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const int64_t segs = helpers + 1;
  struct State {
    State(int64_t n, int64_t segs) : seg(segs) {
      for (int64_t t = 0; t < segs; ++t)
        seg[t].store(static_cast<uint64_t>(n * (t + 1) / segs) << 32 | static_cast<uint64_t>(n * t / segs));
    }
    std::vector<std::atomic<uint64_t>> seg;   // per thread: its chunks left, [front (low 32 bits), back)
    std::atomic<int64_t> arrived{1}, left{1}, done{0};   // threads that came and went (the caller: 1), chunks
  };
  auto state = std::make_shared<State>(n, segs);
  const F* f = &fn;
  auto work = [state, segs, f](bool helper) {
    const int64_t me = helper ? state->arrived.fetch_add(1, std::memory_order_acq_rel) : 0;
    auto claim = [&](int64_t t, bool front) -> int64_t {
      uint64_t v = state->seg[t].load(std::memory_order_relaxed);
      for (;;) {
        const uint64_t lo = v & 0xffffffffu, hi = v >> 32;
        if (lo >= hi) return -1;
        const uint64_t next = front ? (hi << 32 | (lo + 1)) : ((hi - 1) << 32 | lo);
        if (state->seg[t].compare_exchange_weak(v, next, std::memory_order_relaxed))
          return front ? lo : hi - 1;
      }
    };
    auto run = [&](int64_t i) {
      (*f)(i);
      state->done.fetch_add(1, std::memory_order_release);
    };
    if (me < segs) {
      for (int64_t i; (i = claim(me, true)) >= 0;) run(i);
      for (int64_t o = 1; o < segs; ++o)
        for (int64_t i; (i = claim((me + o) % segs, false)) >= 0;) run(i);
    }
    if (helper) {
      Crew::Get().Linger();
      state->left.fetch_add(1, std::memory_order_release);
    }
  };
  using Clock = std::chrono::steady_clock;
  for (int64_t t = 0; t < helpers; ++t) Crew::Get().Run(pool, [work]() { work(true); });
  const auto start = Clock::now();
  work(false);
  if (state->done.load(std::memory_order_acquire) < n) {   // a helper is still on a chunk it took
    const auto mine = Clock::now();
    const auto stall = std::max<Clock::duration>(kStallMin, 4 * (mine - start));
    bool stalled = false;
    for (int64_t spins = 1; state->done.load(std::memory_order_acquire) < n; ++spins) {
      CpuRelax();
      if ((spins & 255) == 0) {
        if (!stalled && Clock::now() - mine > stall) stalled = true;
        if (stalled) sched_yield();   // the helper may be queued behind this thread
      }
    }
    if (stalled) Contention::Get().Stalled();
  }
  // The helpers that came are lingering before this returns, so the next phase's task finds them; not
  // waited for long (one that lost its core between its last chunk and its linger would hold this up).
  for (int64_t spins = 0; spins < kLingerWait && state->left.load(std::memory_order_acquire) <
                                                     state->arrived.load(std::memory_order_acquire);
       ++spins)
    CpuRelax();
}

// y += a · x over d floats.
inline void Axpy(float a, const float* x, float* y, int64_t d) {
  for (int64_t i = 0; i < d; ++i) y[i] += a * x[i];
}

// One skip-gram slot (input row h, mask m) against its window's nt targets T (the center's row first):
//   s_t = h · T_t;  g_t = m (σ(s_t) − [t = 0]);  dh = Σ_t g_t T_t (t in order);  outs_t += g_t h
// Returns the slot's loss, m Σ_t softplus(∓s_t). One pass over d each for the scores, dh and the outs
// (row_math.h; the same bits as one Dot and two Axpys per target). `score`, `g`: nt floats of scratch.
inline float SkipGramSlot(const float* h, float m, const float* const* rows, int64_t nt, int64_t d, float* dh,
                          float* const* outs, float* score, float* g) {
  Dots(h, rows, nt, d, score);
  LossTerms loss;
  for (int64_t t = 0; t < nt; ++t) {
    const float sig = loss.Add(score[t], t == 0);
    g[t] = m * (t == 0 ? sig - 1.0f : sig);
  }
  WeightedSum(g, rows, nt, d, dh);
  AddScaled(g, h, nt, d, outs);
  return m * loss.Loss();
}

inline void Prefetch(const float* row, int64_t d) {
  for (int64_t i = 0; i < d; i += 16) __builtin_prefetch(row + i);
}

// For a row about to be written: its lines in exclusive state (prefetchw), so the write needs no second
// trip to take them from the other core's cache (cbow's phase 3: about 430 -> 300 us a step).
inline void PrefetchForWrite(const float* row, int64_t d) {
  for (int64_t i = 0; i < d; i += 16) __builtin_prefetch(row + i, 1);
}

constexpr int64_t kOwners = 8;        // phase 3 chunks
constexpr int64_t kBlock = 16;        // phase 3: consecutive word ids that share an owner
constexpr int64_t kWindows = 32;      // phase 1 chunk
constexpr int64_t kPositions = 64;    // phase 2 chunk
constexpr int64_t kAheadWindows = 4;  // phase 1: windows whose rows are prefetched ahead
constexpr int64_t kAheadRows = 4;     // phase 3: rows prefetched ahead

// The phase-3 chunk that applies row r's updates: blocks of kBlock consecutive rows go round the owners.
// Whole blocks, so neighbouring rows (whose cache lines overlap: 400-byte rows at D = 100) and
// neighbouring counts are written by one thread, not two.
inline int64_t Owner(int64_t r) { return (r / kBlock) % kOwners; }

// One row update to apply: table row `row` += scale · damp(g · src). 16 bytes: a step lists about 7,000.
struct Entry {
  int32_t row;
  float g;   // 1 where the row is src itself (g · src is then src, exactly)
  const float* src;
};

// Entries listed per (chunk, owner), so phase 1 and 2 chunks list without locks and phase 3 reads each
// owner's entries in chunk order, which is the reference's order.
class Lists {
 public:
  void Reset(int64_t chunks) {
    chunks_ = chunks;
    lists_.resize(chunks * kOwners);
    for (auto& l : lists_) l.clear();
  }
  void Add(int64_t chunk, int64_t row, const float* src, float g) {
    lists_[chunk * kOwners + Owner(row)].push_back({static_cast<int32_t>(row), g, src});
  }
  template <class F>
  void ForOwner(int64_t owner, const F& fn) const {
    for (int64_t c = 0; c < chunks_; ++c)
      for (const Entry& e : lists_[c * kOwners + owner]) fn(e);
  }

 private:
  int64_t chunks_ = 0;
  std::vector<std::vector<Entry>> lists_;
};

// Scratch kept between calls; the counts stay zeroed (only touched entries are reset). One call at a
// time: training runs one step at a time, and a second concurrent call waits.
struct Scratch {
  std::mutex mu;
  std::vector<float> h, dh, sums, out_rows, n, count_in, count_out;
  Lists out_a, out_b, in;
  void Counts(int64_t v) {
    if (static_cast<int64_t>(count_in.size()) < v) {
      count_in.assign(v, 0.0f);
      count_out.assign(v, 0.0f);
    }
  }
};
Scratch& GetScratch() {
  static Scratch* s = new Scratch;
  return *s;
}

// A table and the lists of its updates, in the reference's order.
struct Side {
  float* table;
  float* count;   // zeroed [V], or nullptr without a cap
  std::vector<const Lists*> lists;
};

// fn(side, entry) for each of an owner's entries: W_out's lists, then W_in's, each in chunk order.
template <class F>
void ForOwnerEntries(int64_t owner, const Side& out, const Side& in, const F& fn) {
  for (const Side* side : {&out, &in})
    for (const Lists* lists : side->lists) lists->ForOwner(owner, [&](const Entry& e) { fn(*side, e); });
}

// Phase 3 for one owner: its rows on both tables, counted (with a cap), applied in order as the reference
// orders the operations, scale · ((g · src) · f), each row prefetched kAheadRows entries ahead, and the
// counts reset. Straight from the lists: no copy of them.
void ApplyOwner(int64_t owner, int64_t d, float scale, float max_dup, const Side& out, const Side& in) {
  const bool cap = max_dup > 0.0f;
  if (cap) ForOwnerEntries(owner, out, in, [](const Side& side, const Entry& e) { side.count[e.row] += 1.0f; });
  struct Todo {
    float* dst;
    const float* src;
    float g;
    const float* count;
  };
  auto apply = [&](const Todo& t) {
    float* dst = t.dst;
    const float* x = t.src;
    const float g = t.g;
    if (!cap) {
      for (int64_t j = 0; j < d; ++j) dst[j] += scale * (g * x[j]);
    } else {
      const float f = w2v::Damp(max_dup, *t.count);
      for (int64_t j = 0; j < d; ++j) dst[j] += scale * ((g * x[j]) * f);
    }
  };
  constexpr int64_t kRing = kAheadRows + 1;   // the entries listed but not yet applied, oldest at head
  Todo ring[kRing];
  int64_t head = 0, size = 0;
  ForOwnerEntries(owner, out, in, [&](const Side& side, const Entry& e) {
    const Todo t{side.table + e.row * d, e.src, e.g, cap ? side.count + e.row : nullptr};
    PrefetchForWrite(t.dst, d);
    if (size < kRing) {
      ring[(head + size++) % kRing] = t;
    } else {
      apply(ring[head]);
      ring[head] = t;
      head = (head + 1) % kRing;
    }
  });
  for (; size > 0; --size, head = (head + 1) % kRing) apply(ring[head]);
  if (cap) ForOwnerEntries(owner, out, in, [](const Side& side, const Entry& e) { side.count[e.row] = 0.0f; });
}

// A step's arguments, and the context offsets o_j.
struct Step : StepArgs {
  explicit Step(const StepArgs& a) : StepArgs(a), offset(a.c) {
    for (int64_t j = 0; j < c; ++j) offset[j] = j < w ? j - w : j - w + 1;
  }
  std::vector<int64_t> offset;   // o_j
};

// The rows window b reads ahead of time: its center's and negatives' W_out rows and the W_in row of the
// span position that enters the window.
inline void PrefetchWindow(const Step& s, int64_t b) {
  Prefetch(s.win + ReadRow(s.tok[b + s.c], s.v) * s.d, s.d);
  Prefetch(s.wout + ReadRow(s.tok[s.w + b], s.v) * s.d, s.d);
  for (int64_t t = 0; t < s.k; ++t) Prefetch(s.wout + ReadRow(s.neg[b * s.k + t], s.v) * s.d, s.d);
}

// T_b's rows: the center's, then the negatives'.
inline void Targets(const Step& s, int64_t b, const float** rows, int32_t* ids) {
  ids[0] = s.tok[s.w + b];
  for (int64_t t = 0; t < s.k; ++t) ids[t + 1] = s.neg[b * s.k + t];
  for (int64_t t = 0; t <= s.k; ++t) rows[t] = s.wout + ReadRow(ids[t], s.v) * s.d;
}

// What phase 1 of a window reads and writes besides the tables: the window's 1 + K target rows and ids,
// and its coefficients g (CBOW's): one per thread, kept between calls, not allocated per chunk.
struct WindowScratch {
  // This thread's, sized for nt targets, c slots and d floats.
  static WindowScratch& Local(int64_t nt, int64_t c = 0, int64_t d = 0) {
    thread_local WindowScratch w;
    w.g.resize(nt), w.score.resize(nt), w.rows.resize(nt), w.outs.resize(std::max(nt, c)), w.ids.resize(nt);
    w.coef.resize(c), w.ctx.resize(c), w.h.resize(d), w.dh.resize(d), w.junk.resize(d);
    return w;
  }
  std::vector<float> g, score;
  std::vector<const float*> rows;
  std::vector<float*> outs;      // the rows a window updates at once: W_out (sgram; Hogwild), W_in (Hogwild cbow)
  std::vector<int32_t> ids;
  std::vector<float> coef;       // cbow: the window's real slots, their masks and W_in rows
  std::vector<const float*> ctx;
  std::vector<float> h, dh;   // Hogwild: the window's input vector and its gradient
  std::vector<float> junk;    // Hogwild: where the updates of rows that no id names go (d floats)
};

// Window b's real context slots, in order j: their masks in w.coef and their W_in rows in w.ctx; returns
// how many, and sets *n = Σ_j m_j.
inline int64_t ContextRows(const Step& s, int64_t b, WindowScratch& w, float* n) {
  const float* m = s.mask + b * s.c;
  *n = 0.0f;
  int64_t real = 0;
  for (int64_t j = 0; j < s.c; ++j) {
    *n += m[j];
    if (m[j] != 0.0f) {
      w.coef[real] = m[j];
      w.ctx[real++] = s.win + ReadRow(s.tok[s.w + b + s.offset[j]], s.v) * s.d;
    }
  }
  return real;
}

// Whether the nt rows are distinct. Hogwild's batched form (below) needs it: with a row twice among a
// window's targets, word2vec.c scores the second after the first's update.
inline bool Distinct(const float* const* rows, int64_t nt) {
  for (int64_t t = 1; t < nt; ++t)
    for (int64_t u = 0; u < t; ++u)
      if (rows[t] == rows[u]) return false;
  return true;
}

// Hogwild (hogwild = 1): word2vec.c's and gensim's update instead of the synchronous step. Each window's
// updates are applied as soon as it is done, and the pool's threads take chunks of windows without waiting
// for one another; they read and write the tables concurrently, unsynchronised. No phases 2 and 3, no
// duplicate cap (each update is applied at once), and one wait per step. With one thread this is plain
// sequential SGD over the windows, deterministic; with more, the result depends on timing.
template <class Window>
void RunHogwild(Pool* pool, int32_t threads, const Step& s, const Window& window) {
  auto windows = [&](int64_t chunk) {
    WindowScratch& scratch = WindowScratch::Local(s.k + 1, s.c, s.d);
    const int64_t lo = chunk * kWindows, hi = std::min(s.nb, lo + kWindows);
    for (int64_t b = lo; b < hi; ++b) {
      if (b + kAheadWindows < s.nb) PrefetchWindow(s, b + kAheadWindows);
      window(b, scratch);
    }
  };
  ParallelFor(pool, threads, (s.nb + kWindows - 1) / kWindows, windows);
}

// The three phases both steps share, on the pool:
//  1. window(b, chunk, scratch) per window, chunks of kWindows, the next windows' rows prefetched; it lists
//     its W_out rows in `out` (lists in the reference's order);
//  2. per span position p, the sum over its real slots (b, j) of coef · row for (coef, row) = slot(b, j),
//     listed for W_in if nonzero;
//  3. ApplyOwner per owner, on both tables.
template <class Window, class Slot>
void RunPhases(Pool* pool, int32_t threads, Pace::Kernel kernel, const Step& s, Scratch& x, float max_dup,
               std::vector<Lists*> out, const Window& window, const Slot& slot) {
  const int64_t d = s.d, nb = s.nb, c = s.c;
  const int64_t window_chunks = (nb + kWindows - 1) / kWindows;
  const int64_t position_chunks = (s.np + kPositions - 1) / kPositions;
  x.sums.resize(s.np * d);
  for (Lists* lists : out) lists->Reset(window_chunks);
  x.in.Reset(position_chunks);
  const bool cap = max_dup > 0.0f;
  if (cap) x.Counts(s.v);

  auto windows = [&](int64_t chunk) {
    WindowScratch& scratch = WindowScratch::Local(s.k + 1, c);
    const int64_t lo = chunk * kWindows, hi = std::min(nb, lo + kWindows);
    for (int64_t b = lo; b < hi; ++b) {
      if (b + kAheadWindows < nb) PrefetchWindow(s, b + kAheadWindows);
      window(b, chunk, scratch);
    }
  };
  auto positions = [&](int64_t chunk) {
    const int64_t lo = chunk * kPositions, hi = std::min(s.np, lo + kPositions);
    WindowScratch& w = WindowScratch::Local(0, c);   // coef, ctx: the position's slots
    float* coefs = w.coef.data();
    const float** rows = w.ctx.data();
    for (int64_t p = lo; p < hi; ++p) {
      float* sp = x.sums.data() + p * d;
      int64_t real = 0;
      for (int64_t j = 0; j < c; ++j) {
        const int64_t b = p - s.w - s.offset[j];
        if (b < 0 || b >= nb || s.mask[b * c + j] == 0.0f) continue;
        std::tie(coefs[real], rows[real]) = slot(b, j);
        ++real;
      }
      WeightedSum(coefs, rows, real, d, sp);   // Σ over the real slots, in order j
      const int64_t r = w2v::Normalize(s.tok[p], s.v);
      if (r >= 0 && w2v::AnyNonZero(sp, d)) x.in.Add(chunk, r, sp, 1.0f);
    }
  };
  const Side out_side{s.wout, cap ? x.count_out.data() : nullptr, {out.begin(), out.end()}};
  const Side in_side{s.win, cap ? x.count_in.data() : nullptr, {&x.in}};
  auto apply = [&](int64_t owner) { ApplyOwner(owner, d, s.scale, max_dup, out_side, in_side); };

  // threads = 0 (all): on all or on one, as Pace measures them.
  const bool asked_all = threads == 0 && pool->NumThreads() > 1;
  const bool paced = asked_all && Pace::Setting() == Pace::kPaced;
  const bool one = paced ? Pace::For(kernel).One(static_cast<uint64_t>(d) | c << 20 | s.k << 40)
                         : asked_all && Pace::Setting() == Pace::kOne;
  const int32_t use = one ? 1 : threads;
  const auto start = std::chrono::steady_clock::now();
  ParallelFor(pool, use, window_chunks, windows);
  ParallelFor(pool, use, position_chunks, positions);
  ParallelFor(pool, use, kOwners, apply);
  if (paced)
    Pace::For(kernel).Done(one, std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count(), nb);
}

}  // namespace

void ContentionCounts(int64_t* out) {
  Contention::Get().Counts(out);
  Pace::Counts(out + 3);
}

void CbowNegStep(Pool& pool, const StepArgs& args, float max_dup, bool mean_grad, int32_t threads, bool hogwild) {
  const Step s(args);
  if (hogwild) {   // per window: h, then each target's score, its W_out row updated at once; then W_in
    auto window = [&](int64_t b, WindowScratch& w) {
      const int64_t d = s.d, c = s.c;
      const float* m = s.mask + b * c;
      float n;
      int64_t real = ContextRows(s, b, w, &n);
      s.loss[b] = 0.0f;
      if (!(n > 0.0f)) return;
      float* h = w.h.data();
      float* dh = w.dh.data();
      WeightedSum(w.coef.data(), w.ctx.data(), real, d, h, n);   // h = Σ_j m_j v_j / n, one pass
      Targets(s, b, w.rows.data(), w.ids.data());
      const int64_t nt = s.k + 1;
      LossTerms loss;
      if (Distinct(w.rows.data(), nt)) {   // no target's score sees another's update: one pass each
        Dots(h, w.rows.data(), nt, d, w.score.data());
        for (int64_t t = 0; t < nt; ++t) {
          const float sig = loss.Add(w.score[t], t == 0);
          w.g[t] = t == 0 ? sig - 1.0f : sig;
        }
        WeightedSum(w.g.data(), w.rows.data(), nt, d, dh);   // dh = Σ_t g_t u_t, u_t before its update
        for (int64_t t = 0; t < nt; ++t) {
          const int64_t r = w2v::Normalize(w.ids[t], s.v);
          w.outs[t] = r >= 0 ? s.wout + r * d : w.junk.data();
          w.score[t] = s.scale * w.g[t];
        }
        AddScaled(w.score.data(), h, nt, d, w.outs.data());   // u_t += scale g_t h
      } else {   // a row twice: word2vec.c's order, target by target
        std::fill(dh, dh + d, 0.0f);
        for (int64_t t = 0; t < nt; ++t) {
          const float sig = loss.Add(Dot(w.rows[t], h, d), t == 0);
          const float g = t == 0 ? sig - 1.0f : sig;
          Axpy(g, w.rows[t], dh, d);
          const int64_t r = w2v::Normalize(w.ids[t], s.v);
          if (r >= 0) Axpy(s.scale * g, h, s.wout + r * d, d);
        }
      }
      s.loss[b] = loss.Loss();
      real = 0;   // each context row += scale coef dh, in order j (a row twice: its two updates in order)
      for (int64_t j = 0; j < c; ++j) {
        if (m[j] == 0.0f) continue;
        const int64_t r = w2v::Normalize(s.tok[s.w + b + s.offset[j]], s.v);
        w.coef[real] = s.scale * (mean_grad ? m[j] / n : m[j]);
        w.outs[real++] = r >= 0 ? s.win + r * d : w.junk.data();
      }
      AddScaled(w.coef.data(), dh, real, d, w.outs.data());
    };
    RunHogwild(&pool, threads, s, window);
    return;
  }
  const int64_t d = s.d, nb = s.nb, c = s.c, k = s.k;
  Scratch& x = GetScratch();
  std::lock_guard<std::mutex> lock(x.mu);
  x.h.resize(nb * d);
  x.dh.resize(nb * d);
  x.n.resize(nb);

  // Phase 1, per window: h, the scores, g, the loss and ∂L/∂h; the W_out rows g · h_b listed (out_a the
  // centers', out_b the negatives'). A zero row (no context word, h = 0 or g = 0) changes nothing and
  // counts for no word (rows.damp_duplicates).
  auto window = [&](int64_t b, int64_t chunk, WindowScratch& w) {
    float n;
    const int64_t real = ContextRows(s, b, w, &n);
    float* hb = x.h.data() + b * d;
    WeightedSum(w.coef.data(), w.ctx.data(), real, d, hb, std::max(n, 1.0f));   // h_b, one pass
    x.n[b] = n;
    float* db = x.dh.data() + b * d;
    s.loss[b] = 0.0f;
    if (!(n > 0.0f)) {   // no real context word: loss 0, no update
      std::fill(db, db + d, 0.0f);
      return;
    }
    Targets(s, b, w.rows.data(), w.ids.data());
    Dots(hb, w.rows.data(), k + 1, d, w.score.data());   // the 1 + K scores, one pass over h_b
    LossTerms loss;
    for (int64_t t = 0; t <= k; ++t) {
      const float sig = loss.Add(w.score[t], t == 0);
      w.g[t] = t == 0 ? sig - 1.0f : sig;
    }
    WeightedSum(w.g.data(), w.rows.data(), k + 1, d, db);   // ∂L/∂h_b = Σ_t g_t T_t, one pass
    s.loss[b] = loss.Loss();
    if (!w2v::AnyNonZero(hb, d)) return;
    for (int64_t t = 0; t <= k; ++t) {
      const int64_t r = w2v::Normalize(w.ids[t], s.v);
      if (r >= 0 && w.g[t] != 0.0f) (t == 0 ? x.out_a : x.out_b).Add(chunk, r, hb, w.g[t]);
    }
  };
  // Phase 2: slot (b, j) receives coef · ∂L/∂h_b, coef = m (sum) or m / n (mean).
  auto slot = [&](int64_t b, int64_t j) {
    const float mj = s.mask[b * c + j];
    return std::pair<float, const float*>(mean_grad ? mj / std::max(x.n[b], 1.0f) : mj, x.dh.data() + b * d);
  };
  RunPhases(&pool, threads, Pace::kCbow, s, x, max_dup, {&x.out_a, &x.out_b}, window, slot);
}

void SgramNegStep(Pool& pool, const StepArgs& args, float max_dup, int32_t threads, bool hogwild) {
  const Step s(args);
  if (hogwild) {   // per real slot: its scores against T_b, each W_out row updated at once; then its W_in row
    auto window = [&](int64_t b, WindowScratch& w) {
      const int64_t d = s.d, c = s.c;
      const float* m = s.mask + b * c;
      Targets(s, b, w.rows.data(), w.ids.data());
      const int64_t nt = s.k + 1;
      const bool distinct = Distinct(w.rows.data(), nt);
      for (int64_t t = 0; t < nt; ++t) {
        const int64_t o = w2v::Normalize(w.ids[t], s.v);
        w.outs[t] = o >= 0 ? s.wout + o * d : w.junk.data();
      }
      float* dh = w.dh.data();
      float l = 0.0f;
      for (int64_t j = 0; j < c; ++j) {
        if (m[j] == 0.0f) continue;
        const int64_t r = w2v::Normalize(s.tok[s.w + b + s.offset[j]], s.v);
        float* hj = s.win + ReadRow(s.tok[s.w + b + s.offset[j]], s.v) * d;
        LossTerms loss;
        if (distinct) {   // as in cbow's: no target's score sees another's update, one pass each
          Dots(hj, w.rows.data(), nt, d, w.score.data());
          for (int64_t t = 0; t < nt; ++t) {
            const float sig = loss.Add(w.score[t], t == 0);
            w.g[t] = m[j] * (t == 0 ? sig - 1.0f : sig);
            w.score[t] = s.scale * w.g[t];
          }
          WeightedSum(w.g.data(), w.rows.data(), nt, d, dh);
          AddScaled(w.score.data(), hj, nt, d, w.outs.data());
        } else {
          std::fill(dh, dh + d, 0.0f);
          for (int64_t t = 0; t < nt; ++t) {
            const float sig = loss.Add(Dot(hj, w.rows[t], d), t == 0);
            const float g = m[j] * (t == 0 ? sig - 1.0f : sig);
            Axpy(g, w.rows[t], dh, d);
            const int64_t o = w2v::Normalize(w.ids[t], s.v);
            if (o >= 0) Axpy(s.scale * g, hj, s.wout + o * d, d);
          }
        }
        l += m[j] * loss.Loss();
        if (r >= 0) Axpy(s.scale, dh, hj, d);
      }
      s.loss[b] = l;
    };
    RunHogwild(&pool, threads, s, window);
    return;
  }
  const int64_t d = s.d, nb = s.nb, c = s.c, k = s.k;
  Scratch& x = GetScratch();
  std::lock_guard<std::mutex> lock(x.mu);
  x.dh.resize(nb * c * d);               // ∂L/∂h per slot
  x.out_rows.resize(nb * (k + 1) * d);   // the W_out rows, Σ_j G_bjt h_bj

  // Phase 1, per window: for each real slot, its scores against T_b, G, the loss, ∂L/∂h_bj = Σ_t G_bjt T_bt;
  // the W_out rows Σ_j G_bjt h_bj, listed b-major (the center's, then the negatives') where nonzero.
  auto window = [&](int64_t b, int64_t chunk, WindowScratch& w) {
    const float* m = s.mask + b * c;
    Targets(s, b, w.rows.data(), w.ids.data());
    float* ob = x.out_rows.data() + b * (k + 1) * d;
    std::fill(ob, ob + (k + 1) * d, 0.0f);
    for (int64_t t = 0; t <= k; ++t) w.outs[t] = ob + t * d;
    float l = 0.0f;
    for (int64_t j = 0; j < c; ++j) {
      float* dj = x.dh.data() + (b * c + j) * d;
      if (m[j] == 0.0f) continue;   // phase 2 skips masked slots: dj is not read
      const float* hj = s.win + ReadRow(s.tok[s.w + b + s.offset[j]], s.v) * d;
      l += SkipGramSlot(hj, m[j], w.rows.data(), k + 1, d, dj, w.outs.data(), w.score.data(), w.g.data());
    }
    s.loss[b] = l;
    for (int64_t t = 0; t <= k; ++t) {
      const int64_t r = w2v::Normalize(w.ids[t], s.v);
      if (r >= 0 && w2v::AnyNonZero(ob + t * d, d)) x.out_a.Add(chunk, r, ob + t * d, 1.0f);
    }
  };
  // Phase 2: slot (b, j) receives its own ∂L/∂h_bj.
  auto slot = [&](int64_t b, int64_t j) { return std::pair<float, const float*>(1.0f, x.dh.data() + (b * c + j) * d); };
  RunPhases(&pool, threads, Pace::kSgram, s, x, max_dup, {&x.out_a}, window, slot);
}

namespace {

// span_step.h's OutRows on phase 1's lists: a window's rows go to its chunk's list.
class ListedRows final : public OutRows {
 public:
  ListedRows(Lists* lists, int64_t chunk) : lists_(lists), chunk_(chunk) {}
  void Add(int64_t row, const float* src, float g) override { lists_->Add(chunk_, row, src, g); }

 private:
  Lists* lists_;
  int64_t chunk_;
};

}  // namespace

void RunSpanStep(Pool& pool, int32_t threads, SpanKernel kernel, const StepArgs& args, float max_dup,
                 SpanWindows& windows) {
  const Step s(args);
  Scratch& x = GetScratch();
  std::lock_guard<std::mutex> lock(x.mu);
  auto window = [&](int64_t b, int64_t chunk, WindowScratch&) {
    ListedRows out(&x.out_a, chunk);
    windows.Window(b, out);
  };
  auto slot = [&](int64_t b, int64_t j) { return windows.Slot(b, j); };
  RunPhases(&pool, threads, kernel == SpanKernel::kCbowHs ? Pace::kCbowHs : Pace::kSgramHs, s, x, max_dup,
            {&x.out_a}, window, slot);
}

}  // namespace w2v
