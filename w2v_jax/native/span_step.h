// A synchronous span step whose maths lives in another file: fused_steps.cc runs its three phases (per
// window, per span position, per owner of rows: threads, Pace, the duplicate cap, the same bits on any
// number of threads) around a model's `SpanWindows` (hs_steps.cc's hierarchical softmax). Also the
// small pieces both files' window maths share: LossTerms and ReadRow.
#ifndef W2V_JAX_NATIVE_SPAN_STEP_H_
#define W2V_JAX_NATIVE_SPAN_STEP_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "kernels.h"

namespace w2v {

// Where phase 1 lists a window's W_out updates: table row `row` += scale · damp(g · src), applied in
// phase 3 in the order listed (windows in order). src must live until the step ends.
class OutRows {
 public:
  virtual ~OutRows() = default;
  virtual void Add(int64_t row, const float* src, float g) = 0;
};

// A model's half of a span step. Window and Slot are called from several threads at once, for
// different windows; each window's results go to memory of its own.
class SpanWindows {
 public:
  virtual ~SpanWindows() = default;
  // Phase 1, window b: writes the window's loss (StepArgs::loss[b]) and lists its W_out rows.
  virtual void Window(int64_t b, OutRows& out) = 0;
  // Phase 2: what real context slot (b, j) adds to its span position's W_in row: coef · row (d floats,
  // written in phase 1).
  virtual std::pair<float, const float*> Slot(int64_t b, int64_t j) const = 0;
};

// The kernels that run through RunSpanStep, each timed apart (fused_steps.cc, Pace).
enum class SpanKernel { kCbowHs, kSgramHs };

// One synchronous step of `windows` on the span s: phase 1 per window, phase 2 per span position
// (Σ over its real slots of coef · row, listed for W_in where nonzero), phase 3 both tables' rows,
// table += s.scale · damp(row) with the cap max_dup (<= 0: none), as native.apply_rows orders them.
// threads: at most this many (0: the pool's, or one where one measured faster).
void RunSpanStep(Pool& pool, int32_t threads, SpanKernel kernel, const StepArgs& s, float max_dup,
                 SpanWindows& windows);

// The loss terms of one input vector's predictions, each a score s with its branch (positive: the
// target is the positive word, or the 0-branch of a tree node): σ of each, and the loss
// Σ softplus(∓s), with e = exp(−|s|), σ(s) = 1/(1+e) or e/(1+e), softplus(±s) = max(±s, 0) + log(1+e).
// The log terms are summed as one log of their product, log Π (1+e) (each factor in (1, 2]): one logf per
// input vector, not one per score (logf per score took a third of cbow_neg's per-window time). It differs
// from Σ log1p(e) by a few float roundings, far below the loss's own. The product is logged every 64
// factors (≤ 2⁶⁴: no overflow).
class LossTerms {
 public:
  // σ(s) for score s (positive: its loss term is softplus(−s), else softplus(s)), adding its loss term.
  float Add(float s, bool positive) {
    const float e = std::exp(-std::fabs(s));
    linear_ += std::max(positive ? -s : s, 0.0f);
    product_ *= 1.0f + e;
    if (++factors_ == 64) Flush();
    return s >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
  float Loss() {
    Flush();
    return linear_ + log_;
  }

 private:
  void Flush() {
    log_ += std::log(product_);
    product_ = 1.0f;
    factors_ = 0;
  }
  float linear_ = 0.0f, log_ = 0.0f, product_ = 1.0f;
  int factors_ = 0;
};

// A row id as a read sees it: negative ids count from the end, the rest are clamped into the table
// (JAX's gather clamps). Training never passes ids out of range.
inline int64_t ReadRow(int32_t i, int64_t v) {
  const int64_t k = i < 0 ? int64_t{i} + v : int64_t{i};
  return std::min<int64_t>(std::max<int64_t>(k, 0), v - 1);
}

}  // namespace w2v

#endif  // W2V_JAX_NATIVE_SPAN_STEP_H_
