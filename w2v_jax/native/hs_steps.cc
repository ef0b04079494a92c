// CbowHsStep, SgramHsStep (kernels.h): one whole hierarchical-softmax training step on a SpanBatch, in
// place on both tables. This file holds the per-window maths; fused_steps.cc's RunSpanStep (span_step.h)
// runs the three phases around it (the threads, the duplicate cap, the same bits on any number of
// threads). The FFI handlers w2v_cbow_hs_step and w2v_sgram_hs_step (ffi_handlers.cc) check the buffers
// and call these.
//
// Each computes what its pure-JAX step computes (native.<model>_span_step_reference: hsoftmax.py's span
// forms, then rows.py's update), from the same snapshot of the tables. Window b's center has the path
// p_0 .. p_{len−1} (inner nodes, leaf first, as hsoftmax._path walks it; len ≤ depth), u_i = W_out row of
// p_i, labels l_i = 1 − code_i (word2vec.c's g = (1 − code − σ)·alpha is −lr·g_i below); slot (b, j) is
// span position W + b + o_j, o = (−W..−1, 1..W), m its mask, v = W_in rows:
//
//  cbow_hs (hsoftmax.cbow_hs_span_parts):
//   h_b = Σ_j m_bj v(slot b, j) / max(n_b, 1), n_b = Σ_j m_bj;  s_i = u_i · h_b;  g_i = σ(s_i) − l_i
//   loss_b = Σ_i softplus(−(2 l_i − 1) s_i);  ∂L/∂h_b = Σ_i g_i u_i;  W_out row p_i: g_i h_b
//   W_in row of position p: Σ over its slots (b, j) of coef_bj ∂L/∂h_b, coef = m (sum) or m / max(n, 1)
//   (mean); a window with n_b = 0 has loss 0 and changes nothing.
//  sgram_hs, word2vec.c's orientation (hsoftmax.sgram_hs_span_row_grads):
//   h_bj = v(slot b, j);  s_bji = h_bj · u_i;  G_bji = m_bj (σ(s_bji) − l_i)
//   loss_b = Σ_j m_bj Σ_i softplus(−(2 l_i − 1) s_bji)
//   W_out row p_i: Σ_j G_bji h_bj;  W_in row of position p: Σ over its slots (b, j) of Σ_i G_bji u_i
// and then table += scale · damp(row) for every row (RunSpanStep; scale = −lr).
//
// Not the same bits as the reference: the dot products and sums run in row_math.h's order, XLA's in
// another. tests/test_native.py checks both kernels against their reference.
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "kernels.h"
#include "row_math.h"
#include "span_step.h"

namespace w2v {
namespace {

// A window's path and its terms, and CBOW's context rows: one per thread, kept between calls.
struct PathScratch {
  static PathScratch& Local(int64_t depth, int64_t c) {
    thread_local PathScratch p;
    p.ids.resize(depth), p.zero_branch.resize(depth), p.rows.resize(depth);
    p.score.resize(depth), p.g.resize(depth), p.coef.resize(c), p.ctx.resize(c), p.g_by_node.resize(depth * c);
    return p;
  }
  std::vector<int32_t> ids;          // the path's W_out rows, leaf first
  std::vector<char> zero_branch;     // label 1 (code 0): loss softplus(−s), g = σ(s) − 1
  std::vector<const float*> rows;    // u_i
  std::vector<float> score, g;
  std::vector<float> coef;           // the window's real slots' coefficients and W_in rows
  std::vector<const float*> ctx;
  std::vector<float> g_by_node;      // sgram: G_bji at [i · c + r] for the r-th real slot j
};

// What a step keeps per window for phases 2 and 3: one call at a time (training runs one step at a time).
struct HsScratch {
  std::mutex mu;
  std::vector<float> h, dh, n, out_rows;
};
HsScratch& GetHsScratch() {
  static HsScratch* x = new HsScratch;
  return *x;
}

// The step's arguments, the tree, and the context offsets o_j.
class HsWindows : public SpanWindows {
 protected:
  HsWindows(const StepArgs& s, const HsTree& tree) : s_(s), tree_(tree), offset_(s.c) {
    for (int64_t j = 0; j < s.c; ++j) offset_[j] = j < s.w ? j - s.w : j - s.w + 1;
  }
  // The W_in row of slot (b, j).
  const float* SlotRow(int64_t b, int64_t j) const {
    return s_.win + ReadRow(s_.tok[s_.w + b + offset_[j]], s_.v) * s_.d;
  }
  // Window b's center's path into p (ids, branches, rows): from the node above its leaf up to the root,
  // at most depth nodes, as hsoftmax._path walks it. Returns its length.
  int64_t Path(int64_t b, PathScratch& p) const {
    const int64_t root = 2 * s_.v - 2;
    int64_t node = ReadRow(s_.tok[s_.w + b], s_.v), n = 0;
    for (; n < tree_.depth && node != root; ++n) {
      const int64_t row = tree_.up[node] - s_.v;
      p.ids[n] = static_cast<int32_t>(row);
      p.zero_branch[n] = tree_.bit[node] == 0;
      p.rows[n] = s_.wout + row * s_.d;
      node = tree_.up[node];
    }
    return n;
  }
  // Input vector h (mask m) against the path's n nodes: s_i = h · u_i (p.score), g_i = m (σ(s_i) − l_i)
  // (p.g); returns m Σ_i softplus(−(2 l_i − 1) s_i).
  float Terms(const float* h, float m, int64_t n, PathScratch& p) const {
    Dots(h, p.rows.data(), n, s_.d, p.score.data());
    LossTerms loss;
    for (int64_t i = 0; i < n; ++i) {
      const float sig = loss.Add(p.score[i], p.zero_branch[i]);
      p.g[i] = m * (p.zero_branch[i] ? sig - 1.0f : sig);
    }
    return m * loss.Loss();
  }
  const StepArgs& s_;
  const HsTree& tree_;
  std::vector<int64_t> offset_;
};

class CbowHs final : public HsWindows {
 public:
  CbowHs(const StepArgs& s, const HsTree& tree, bool mean_grad, HsScratch& x)
      : HsWindows(s, tree), mean_grad_(mean_grad), x_(x) {
    x.h.resize(s.nb * s.d), x.dh.resize(s.nb * s.d), x.n.resize(s.nb);
  }
  // h_b, the path's terms, the loss, ∂L/∂h_b; the W_out rows g_i h_b listed where nonzero (a zero row
  // changes nothing and counts for no word: rows.damp_duplicates).
  void Window(int64_t b, OutRows& out) override {
    const int64_t d = s_.d, c = s_.c;
    PathScratch& p = PathScratch::Local(tree_.depth, c);
    const float* m = s_.mask + b * c;
    float n = 0.0f;
    int64_t real = 0;
    for (int64_t j = 0; j < c; ++j) {
      n += m[j];
      if (m[j] != 0.0f) {
        p.coef[real] = m[j];
        p.ctx[real++] = SlotRow(b, j);
      }
    }
    float* hb = x_.h.data() + b * d;
    float* db = x_.dh.data() + b * d;
    WeightedSum(p.coef.data(), p.ctx.data(), real, d, hb, std::max(n, 1.0f));
    x_.n[b] = n;
    s_.loss[b] = 0.0f;
    if (!(n > 0.0f)) {   // no real context word: loss 0, no update
      std::fill(db, db + d, 0.0f);
      return;
    }
    const int64_t len = Path(b, p);
    s_.loss[b] = Terms(hb, 1.0f, len, p);
    WeightedSum(p.g.data(), p.rows.data(), len, d, db);   // ∂L/∂h_b = Σ_i g_i u_i
    if (!AnyNonZero(hb, d)) return;
    for (int64_t i = 0; i < len; ++i)
      if (p.g[i] != 0.0f) out.Add(p.ids[i], hb, p.g[i]);
  }
  std::pair<float, const float*> Slot(int64_t b, int64_t j) const override {
    const float mj = s_.mask[b * s_.c + j];
    return {mean_grad_ ? mj / std::max(x_.n[b], 1.0f) : mj, x_.dh.data() + b * s_.d};
  }

 private:
  bool mean_grad_;
  HsScratch& x_;
};

class SgramHs final : public HsWindows {
 public:
  SgramHs(const StepArgs& s, const HsTree& tree, HsScratch& x) : HsWindows(s, tree), x_(x) {
    x.dh.resize(s.nb * s.c * s.d), x.out_rows.resize(s.nb * tree.depth * s.d);
  }
  // Per real slot: its terms against the center's path, the loss, ∂L/∂h_bj = Σ_i G_bji u_i. Then per
  // node, its W_out row Σ_j G_bji h_bj (one pass over the slots' rows, written once, in window b's own
  // part of out_rows), listed where nonzero.
  void Window(int64_t b, OutRows& out) override {
    const int64_t d = s_.d, c = s_.c;
    PathScratch& p = PathScratch::Local(tree_.depth, c);
    const float* m = s_.mask + b * c;
    const int64_t len = Path(b, p);
    float loss = 0.0f;
    int64_t real = 0;
    for (int64_t j = 0; j < c; ++j) {
      if (m[j] == 0.0f) continue;   // phase 2 skips masked slots: their ∂L/∂h is not read
      const float* hj = SlotRow(b, j);
      loss += Terms(hj, m[j], len, p);
      WeightedSum(p.g.data(), p.rows.data(), len, d, x_.dh.data() + (b * c + j) * d);
      for (int64_t i = 0; i < len; ++i) p.g_by_node[i * c + real] = p.g[i];
      p.ctx[real++] = hj;
    }
    s_.loss[b] = loss;
    if (real == 0) return;
    float* ob = x_.out_rows.data() + b * tree_.depth * d;
    for (int64_t i = 0; i < len; ++i) {
      float* row = ob + i * d;
      WeightedSum(p.g_by_node.data() + i * c, p.ctx.data(), real, d, row);   // in order j
      if (AnyNonZero(row, d)) out.Add(p.ids[i], row, 1.0f);
    }
  }
  std::pair<float, const float*> Slot(int64_t b, int64_t j) const override {
    return {1.0f, x_.dh.data() + (b * s_.c + j) * s_.d};
  }

 private:
  HsScratch& x_;
};

}  // namespace

void CbowHsStep(Pool& pool, const StepArgs& s, const HsTree& tree, float max_dup, bool mean_grad, int32_t threads) {
  HsScratch& x = GetHsScratch();
  std::lock_guard<std::mutex> lock(x.mu);
  CbowHs windows(s, tree, mean_grad, x);
  RunSpanStep(pool, threads, SpanKernel::kCbowHs, s, max_dup, windows);
}

void SgramHsStep(Pool& pool, const StepArgs& s, const HsTree& tree, float max_dup, int32_t threads) {
  HsScratch& x = GetHsScratch();
  std::lock_guard<std::mutex> lock(x.mu);
  SgramHs windows(s, tree, x);
  RunSpanStep(pool, threads, SpanKernel::kSgramHs, s, max_dup, windows);
}

}  // namespace w2v
