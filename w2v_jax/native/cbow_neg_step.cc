// w2v_cbow_neg_step: one whole cbow_neg training step on a SpanBatch, in place on both tables, on the
// calling thread and the other threads of XLA's CPU pool.
//
// It computes what the pure-JAX step computes (native.cbow_neg_span_step_reference: kernels.py's
// cbow_neg_span_parts, then apply_span_rows and apply_rows), from the same snapshot of the tables:
//   h_b  = Σ_j m_bj v(tokens[W + b + o_j]) / max(n_b, 1)      n_b = Σ_j m_bj, o = (-W..-1, 1..W)
//   s    = (u_center · h_b, u_neg_k · h_b)                      loss_b = softplus(−s₀) + Σ_k softplus(s_k)
//   g    = (σ(s₀) − 1, σ(s_k)) (0 where n_b = 0)               ∂L/∂h_b = g₀ u_center + Σ_k g_k u_neg_k
//   W_out[center_b] += scale · damp(g₀ h_b),  W_out[neg_bk] += scale · damp(g_k h_b)
//   W_in[tokens[p]] += scale · damp(Σ_{slots (b, j) at p} coef_bj ∂L/∂h_b)   coef = m (sum) or m / n (mean)
// with damp the cap of step.damp_duplicates. Unlike the apply kernels it is not the same bits as the
// reference: its dot products and sums run in a fixed order of its own (16 lanes, then a tree), and
// XLA's in another. tests/test_native.py checks it against the reference to float rounding.
//
// Deterministic on any number of threads. Phase 1 (per window) and phase 2 (per span position) write
// disjoint scratch; phase 3 splits the rows by word id (blocks of 16 ids, dealt round 8 owners), and every word's updates are
// applied by one thread in the reference's order. So the tables after a step depend only on the
// inputs, never on which thread ran which chunk.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"
#include "rows.h"

namespace ffi = xla::ffi;

namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// fn(i) for i in [0, n). Chunks are handed out one at a time to this thread and to the pool's other
// threads as they pick up the scheduled task. This thread waits only for chunks that were started, so
// a helper that never gets a core costs nothing: the caller runs every chunk itself. A helper that
// starts late finds no chunk left and returns without touching fn.
template <class F>
void ParallelFor(ffi::ThreadPool* pool, int64_t max_threads, int64_t n, const F& fn) {
  const int64_t threads = max_threads > 0 ? std::min<int64_t>(max_threads, pool->num_threads()) : pool->num_threads();
  const int64_t helpers = std::min<int64_t>(threads - 1, n - 1);
  if (helpers <= 0) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
  };
  auto state = std::make_shared<State>();
  const F* f = &fn;
  auto work = [state, n, f]() {
    for (int64_t i; (i = state->next.fetch_add(1, std::memory_order_relaxed)) < n;) {
      (*f)(i);
      state->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t t = 0; t < helpers; ++t) {
    auto task = work;
    pool->Schedule(std::move(task));
  }
  work();
  while (state->done.load(std::memory_order_acquire) < n) CpuRelax();
}

// a · b over d floats in a fixed order: 16 lanes, a tree over the lanes, then the tail.
inline float Dot(const float* a, const float* b, int64_t d) {
  float acc[16] = {0.0f};
  int64_t i = 0;
  for (; i + 16 <= d; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  for (int s = 8; s >= 1; s /= 2)
    for (int j = 0; j < s; ++j) acc[j] += acc[j + s];
  float tail = 0.0f;
  for (; i < d; ++i) tail += a[i] * b[i];
  return acc[0] + tail;
}

// σ(x) and softplus(±x) from one exp: e = exp(−|x|), σ(x) = 1/(1+e) or e/(1+e), softplus(x) = max(x, 0) +
// log(1+e). log(1+e), not log1p(e): log1pf took a third of the per-window time, and the two differ by
// less than e·2⁻²⁴ (where 1+e rounds), far below the loss's own rounding.
struct Logistic {
  float sigmoid, softplus_pos, softplus_neg;   // σ(x), softplus(x), softplus(−x)
};
inline Logistic Logistic_(float x) {
  const float e = std::exp(-std::fabs(x));
  const float l = std::log(1.0f + e);
  return {x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e), std::max(x, 0.0f) + l, std::max(-x, 0.0f) + l};
}

// A row id as a read sees it: negative ids count from the end, the rest are clamped into the table
// (JAX's gather clamps). Training never passes ids out of range.
inline int64_t ReadRow(int32_t i, int64_t v) {
  const int64_t k = i < 0 ? int64_t{i} + v : int64_t{i};
  return std::min<int64_t>(std::max<int64_t>(k, 0), v - 1);
}

inline void Prefetch(const float* row, int64_t d) {
  for (int64_t i = 0; i < d; i += 16) __builtin_prefetch(row + i);
}

// For a row about to be written: the lines in exclusive state (prefetchw), so the write needs no
// second trip to take them from the other core's cache.
inline void PrefetchForWrite(const float* row, int64_t d) {
  for (int64_t i = 0; i < d; i += 16) __builtin_prefetch(row + i, 1);
}

constexpr int64_t kOwners = 8;     // phase 3: word id mod kOwners picks the chunk that applies its rows
constexpr int64_t kBlock = 16;    // phase 3: rows per block of consecutive word ids with one owner
constexpr int64_t kWindows = 32;   // phase 1 chunk
constexpr int64_t kPositions = 64; // phase 2 chunk
constexpr int64_t kAheadWindows = 4;  // phase 1: windows whose rows are prefetched ahead
constexpr int64_t kAheadRows = 4;     // phase 3: rows prefetched ahead

// The phase-3 chunk that applies row r's updates: blocks of kBlock consecutive rows go round the
// owners. Whole blocks, so neighbouring rows (whose cache lines overlap: 400-byte rows at D = 100) and
// neighbouring counts are written by one thread, not two.
inline int64_t Owner(int64_t r) { return (r / kBlock) % kOwners; }

struct Entry {
  int64_t row;   // the table row it updates
  int64_t src;   // the window b (W_out: g · h_b) or the span position p (W_in: its sum)
  float g;       // W_out: the score's coefficient g
};
using Lists = std::vector<std::vector<Entry>>;   // [chunk * kOwners + owner]

// Scratch kept between calls; the counts stay zeroed (only touched entries are reset). One call at a
// time: training runs one step at a time, and a second concurrent call waits.
struct Scratch {
  std::mutex mu;
  std::vector<float> h, dh, sums, count_in, count_out, n;
  Lists centers, negatives, positions;
};
Scratch& GetScratch() {
  static Scratch* s = new Scratch;
  return *s;
}

void Resize(Lists& lists, int64_t chunks) {
  lists.resize(chunks * kOwners);
  for (auto& l : lists) l.clear();
}

// dst += scale · (x · f) (with a cap) or scale · x, as the reference orders the operations.
inline void AddRow(float* dst, const float* x, float scale, bool cap, float f, int64_t d) {
  if (!cap) {
    for (int64_t i = 0; i < d; ++i) dst[i] += scale * x[i];
  } else {
    for (int64_t i = 0; i < d; ++i) dst[i] += scale * (x[i] * f);
  }
}

// The same with x = gt · h: scale · ((gt · h) · f).
inline void AddScaledRow(float* dst, float gt, const float* h, float scale, bool cap, float f, int64_t d) {
  if (!cap) {
    for (int64_t i = 0; i < d; ++i) dst[i] += scale * (gt * h[i]);
  } else {
    for (int64_t i = 0; i < d; ++i) dst[i] += scale * ((gt * h[i]) * f);
  }
}

ffi::Error CbowNegStepImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> w_in_buf, ffi::Buffer<ffi::F32> w_out_buf,
                           ffi::Buffer<ffi::F32> scale_buf, ffi::Buffer<ffi::S32> tokens_buf,
                           ffi::Buffer<ffi::F32> mask_buf, ffi::Buffer<ffi::S32> neg_buf,
                           ffi::Result<ffi::Buffer<ffi::F32>> w_in_out, ffi::Result<ffi::Buffer<ffi::F32>> w_out_out,
                           ffi::Result<ffi::Buffer<ffi::F32>> loss_out, float max_dup, int32_t mean_grad,
                           int32_t threads) {
  if (w_in_buf.dimensions().size() != 2 || w_out_buf.dimensions().size() != 2 ||
      w_out_buf.dimensions()[0] != w_in_buf.dimensions()[0] || w_out_buf.dimensions()[1] != w_in_buf.dimensions()[1] ||
      mask_buf.dimensions().size() != 2 || neg_buf.dimensions().size() != 2)
    return ffi::Error::InvalidArgument("w2v_cbow_neg_step: tables [V, D] (equal), mask [B, 2W], negatives [B, K]");
  const int64_t v = w_in_buf.dimensions()[0], d = w_in_buf.dimensions()[1];
  const int64_t nb = mask_buf.dimensions()[0], c = mask_buf.dimensions()[1], w = c / 2;
  const int64_t k = neg_buf.dimensions()[1], np = tokens_buf.element_count();
  if (c % 2 != 0 || np != nb + c || neg_buf.dimensions()[0] != nb || loss_out->element_count() != nb)
    return ffi::Error::InvalidArgument("w2v_cbow_neg_step: tokens [B+2W], mask [B, 2W], negatives [B, K]");
  float* win = w_in_out->typed_data();
  float* wout = w_out_out->typed_data();
  if (win != w_in_buf.typed_data()) std::memcpy(win, w_in_buf.typed_data(), sizeof(float) * v * d);
  if (wout != w_out_buf.typed_data()) std::memcpy(wout, w_out_buf.typed_data(), sizeof(float) * v * d);
  const float scale = scale_buf.typed_data()[0];
  const int32_t* tok = tokens_buf.typed_data();
  const float* mask = mask_buf.typed_data();
  const int32_t* neg = neg_buf.typed_data();
  float* loss = loss_out->typed_data();
  const bool cap = max_dup > 0.0f;
  std::vector<int64_t> offset(c);
  for (int64_t j = 0; j < c; ++j) offset[j] = j < w ? j - w : j - w + 1;
  const int64_t window_chunks = (nb + kWindows - 1) / kWindows;
  const int64_t position_chunks = (np + kPositions - 1) / kPositions;

  Scratch& s = GetScratch();
  std::lock_guard<std::mutex> lock(s.mu);
  s.h.resize(nb * d);
  s.dh.resize(nb * d);
  s.n.resize(nb);
  s.sums.resize(np * d);
  Resize(s.centers, window_chunks);
  Resize(s.negatives, window_chunks);
  Resize(s.positions, position_chunks);
  if (cap && static_cast<int64_t>(s.count_in.size()) < v) {
    s.count_in.assign(v, 0.0f);
    s.count_out.assign(v, 0.0f);
  }
  float *h = s.h.data(), *dh = s.dh.data(), *nvec = s.n.data(), *sums = s.sums.data();

  // Phase 1, per window: h, the scores, g, the loss and ∂L/∂h, from the tables as they were; the
  // W_out rows to apply, g · h_b, listed by owner. A zero row (no context word, or h = 0, or g = 0)
  // changes nothing and counts for no word (step.damp_duplicates), so it is not listed.
  auto window = [&](int64_t b, int64_t chunk, float* gb) {
    const float* m = mask + b * c;
    float n = 0.0f;
    for (int64_t j = 0; j < c; ++j) n += m[j];
    float* hb = h + b * d;
    std::fill(hb, hb + d, 0.0f);
    for (int64_t j = 0; j < c; ++j) {
      if (m[j] == 0.0f) continue;
      const float* row = win + ReadRow(tok[w + b + offset[j]], v) * d;
      const float mj = m[j];
      for (int64_t i = 0; i < d; ++i) hb[i] += mj * row[i];
    }
    const float denom = std::max(n, 1.0f);
    for (int64_t i = 0; i < d; ++i) hb[i] /= denom;
    nvec[b] = n;
    float* db = dh + b * d;
    if (!(n > 0.0f)) {   // no real context word: loss 0, no update
      std::fill(db, db + d, 0.0f);
      loss[b] = 0.0f;
      return;
    }
    const int64_t center = ReadRow(tok[w + b], v);
    const float* u = wout + center * d;
    Logistic z = Logistic_(Dot(u, hb, d));
    float l = z.softplus_neg;
    gb[0] = z.sigmoid - 1.0f;
    for (int64_t i = 0; i < d; ++i) db[i] = gb[0] * u[i];
    for (int64_t t = 0; t < k; ++t) {
      const float* un = wout + ReadRow(neg[b * k + t], v) * d;
      z = Logistic_(Dot(un, hb, d));
      l += z.softplus_pos;
      gb[t + 1] = z.sigmoid;
      for (int64_t i = 0; i < d; ++i) db[i] += gb[t + 1] * un[i];
    }
    loss[b] = l;
    if (!w2v::AnyNonZero(hb, d)) return;
    auto list = [&](Lists& lists, int32_t id, float gt) {
      const int64_t r = w2v::Normalize(id, v);
      if (r >= 0 && gt != 0.0f) lists[chunk * kOwners + Owner(r)].push_back({r, b, gt});
    };
    list(s.centers, tok[w + b], gb[0]);
    for (int64_t t = 0; t < k; ++t) list(s.negatives, neg[b * k + t], gb[t + 1]);
  };
  auto windows = [&](int64_t chunk) {
    std::vector<float> g(k + 1);   // the window's coefficients (σ(s₀) − 1, σ(s_k))
    const int64_t lo = chunk * kWindows, hi = std::min(nb, lo + kWindows);
    for (int64_t b = lo; b < hi; ++b) {
      if (b + kAheadWindows < nb) {   // the rows of a later window, while this one computes
        const int64_t a = b + kAheadWindows;
        Prefetch(win + ReadRow(tok[a + c], v) * d, d);
        Prefetch(wout + ReadRow(tok[w + a], v) * d, d);
        for (int64_t t = 0; t < k; ++t) Prefetch(wout + ReadRow(neg[a * k + t], v) * d, d);
      }
      window(b, chunk, g.data());
    }
  };

  // Phase 2, per span position: the sum of what its context slots receive, listed by owner if nonzero.
  auto positions = [&](int64_t chunk) {
    const int64_t lo = chunk * kPositions, hi = std::min(np, lo + kPositions);
    for (int64_t p = lo; p < hi; ++p) {
      float* sp = sums + p * d;
      std::fill(sp, sp + d, 0.0f);
      for (int64_t j = 0; j < c; ++j) {
        const int64_t b = p - w - offset[j];
        if (b < 0 || b >= nb) continue;
        const float mj = mask[b * c + j];
        if (mj == 0.0f) continue;
        const float coef = mean_grad ? mj / std::max(nvec[b], 1.0f) : mj;
        const float* db = dh + b * d;
        for (int64_t i = 0; i < d; ++i) sp[i] += coef * db[i];
      }
      const int64_t r = w2v::Normalize(tok[p], v);
      if (r >= 0 && w2v::AnyNonZero(sp, d)) s.positions[chunk * kOwners + Owner(r)].push_back({r, p, 0.0f});
    }
  };

  // Phase 3, per owner: the rows of words with id mod kOwners == o, in the reference's order (W_out:
  // the centers, then the negatives; W_in: the span positions), damped by their count of rows.
  float* cin = cap ? s.count_in.data() : nullptr;
  float* cout = cap ? s.count_out.data() : nullptr;
  struct Todo {
    float* dst;
    const float* src;
    float g;       // W_out: g (the row is g · h_b); W_in: 0 (the row is the position's sum)
    float* count;  // where its word's count is (with a cap)
    bool out;      // a W_out row
  };
  auto apply = [&](int64_t o) {
    // The owner's rows in the reference's order, then counted, applied (prefetching ahead) and reset.
    thread_local std::vector<Todo> todo;
    todo.clear();
    for (const Lists* lists : {&s.centers, &s.negatives})
      for (int64_t ch = 0; ch < window_chunks; ++ch)
        for (const Entry& e : (*lists)[ch * kOwners + o])
          todo.push_back({wout + e.row * d, h + e.src * d, e.g, cap ? cout + e.row : nullptr, true});
    for (int64_t ch = 0; ch < position_chunks; ++ch)
      for (const Entry& e : s.positions[ch * kOwners + o])
        todo.push_back({win + e.row * d, sums + e.src * d, 0.0f, cap ? cin + e.row : nullptr, false});
    if (cap)
      for (const Todo& t : todo) *t.count += 1.0f;
    const int64_t n = todo.size();
    for (int64_t i = 0; i < n; ++i) {
      if (i + kAheadRows < n) PrefetchForWrite(todo[i + kAheadRows].dst, d);
      const Todo& t = todo[i];
      const float f = cap ? std::min(1.0f, max_dup / std::max(*t.count, 1.0f)) : 1.0f;
      if (t.out) {
        AddScaledRow(t.dst, t.g, t.src, scale, cap, f, d);
      } else {
        AddRow(t.dst, t.src, scale, cap, f, d);
      }
    }
    if (cap)
      for (const Todo& t : todo) *t.count = 0.0f;
  };

  ParallelFor(&pool, threads, window_chunks, windows);
  ParallelFor(&pool, threads, position_chunks, positions);
  ParallelFor(&pool, threads, kOwners, apply);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vCbowNegStep, CbowNegStepImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // W_in [V, D]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // W_out [V, D]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // scale [] (−lr)
                                  .Arg<ffi::Buffer<ffi::S32>>()   // tokens [B + 2W]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // mask [B, 2W]
                                  .Arg<ffi::Buffer<ffi::S32>>()   // negatives [B, K]
                                  .Ret<ffi::Buffer<ffi::F32>>()   // W_in, aliased
                                  .Ret<ffi::Buffer<ffi::F32>>()   // W_out, aliased
                                  .Ret<ffi::Buffer<ffi::F32>>()   // loss [B]
                                  .Attr<float>("max_dup")         // <= 0: no cap
                                  .Attr<int32_t>("mean_grad")     // 1: coef = m / n; 0: coef = m
                                  .Attr<int32_t>("threads"));     // 0: the pool's; 1: the caller's only
