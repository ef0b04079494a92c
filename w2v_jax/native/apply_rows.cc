// ApplyRows: table[idx[i]] += scale * damp(rows[i]), in place, for several (idx, rows) parts; the kernel
// behind native.apply_rows (its FFI handler is in ffi_handlers.cc). It computes what the pure-JAX path
// computes (native.apply_rows_reference):
//     W = W.at[concat(idx)].add(scale * damp_duplicates(concat(idx), concat(rows), V, max_dup))
// with the same float operations in the same order, so the result is the same bits (checked by
// tests/test_native.py). XLA:CPU emits a scatter-add as a scalar loop; this one is vectorised, and it
// joins the parts (one per window-size bucket) without copying them into one array first.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace w2v {

void ApplyRows(float* w, int64_t v, int64_t d, const std::vector<Part>& parts, float scale, float max_dup) {
  ApplyParts(w, v, d, parts, scale, max_dup);
}

// ApplySpanRows: the input side of a CBOW step on a SpanBatch (rewrites.py). Window b's context slot j is
// position b + W + o_j of the span, o = (-W..-1, 1..W), and receives coef[b, j] * vecs[b]; a position sums
// what its slots receive, and its word's row gets scale * damp(that sum), as
//     native.apply_rows_reference(table, [(tokens, rewrites._unslots(coef[:, :, None] * vecs[:, None], W))])
// computes it, in the same order (slots j = 0..C-1 per position). So B + 2W rows are written, not B·C.
void ApplySpanRows(float* tab, int64_t v, int64_t d, const int32_t* tok, const float* cf, const float* vc,
                   int64_t b_size, int64_t c, float scale, float max_dup) {
  const int64_t w = c / 2, p_size = b_size + c;
  // Each position's summed row, then the rows applied as one part, as the reference does.
  thread_local std::vector<float> sums;
  sums.assign(p_size * d, 0.0f);
  for (int64_t p = 0; p < p_size; ++p) {
    float* g = sums.data() + p * d;
    for (int64_t j = 0; j < c; ++j) {
      const int64_t b = p - w - (j < w ? j - w : j - w + 1);
      if (b < 0 || b >= b_size) continue;   // the reference adds a zero pad here
      const float k = cf[b * c + j];
      const float* x = vc + b * d;
      for (int64_t i = 0; i < d; ++i) g[i] += k * x[i];
    }
  }
  ApplyParts(tab, v, d, {{tok, sums.data(), p_size}}, scale, max_dup);
}

}  // namespace w2v
