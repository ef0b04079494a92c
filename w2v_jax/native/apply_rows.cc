// w2v_apply_rows: table[idx[i]] += scale * damp(rows[i]), in place, for several (idx, rows) parts.
//
// The CPU kernel behind w2v_jax/native.py. It computes what the pure-JAX path computes
// (native.apply_rows_reference):
//     W = W.at[concat(idx)].add(scale * damp_duplicates(concat(idx), concat(rows), V, max_dup))
// with the same float operations in the same order, so the result is the same bits (checked by
// tests/test_native.py). XLA:CPU emits a scatter-add as a scalar loop; this one is vectorised, and it
// joins the parts (one per window-size bucket) without copying them into one array first.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

struct Part {
  const int32_t* idx;
  const float* rows;   // [n, d]
  int64_t n;
};

inline bool AnyNonZero(const float* row, int64_t d) {
  for (int64_t j = 0; j < d; ++j)
    if (row[j] != 0.0f) return true;
  return false;
}

// idx as JAX's .at[] reads it: negative ids count from the end, ids still out of range are dropped.
inline int64_t Normalize(int32_t i, int64_t v) {
  const int64_t k = i < 0 ? int64_t{i} + v : int64_t{i};
  return (k >= 0 && k < v) ? k : -1;
}

// Scratch counts, kept zeroed between calls (only touched entries are reset), so a call costs O(rows),
// not O(V). One buffer per thread: calls on the two tables may run at once on different threads.
float* Counts(int64_t v) {
  thread_local std::vector<float> count;
  if (static_cast<int64_t>(count.size()) < v) count.assign(v, 0.0f);
  return count.data();
}

// table[idx[i]] += scale * (rows[i] * f_i) over the parts in order, f_i = min(1, max_dup / count of
// idx[i]'s nonzero rows) when max_dup > 0: step.damp_duplicates, then one scatter-add. Padding slots
// carry an all-zero row: not updates, so they count for no word.
void ApplyParts(float* w, int64_t v, int64_t d, const std::vector<Part>& parts, float scale, float max_dup) {
  float* count = max_dup > 0.0f ? Counts(v) : nullptr;
  if (count != nullptr) {
    for (const Part& p : parts)
      for (int64_t i = 0; i < p.n; ++i) {
        const int64_t k = Normalize(p.idx[i], v);
        if (k >= 0 && AnyNonZero(p.rows + i * d, d)) count[k] += 1.0f;
      }
  }
  for (const Part& p : parts)
    for (int64_t i = 0; i < p.n; ++i) {
      const int64_t k = Normalize(p.idx[i], v);
      if (k < 0) continue;
      const float* row = p.rows + i * d;
      float* dst = w + k * d;
      // The reference's operations in its order: rows * f (damping), then scale * that.
      if (count == nullptr) {
        for (int64_t j = 0; j < d; ++j) dst[j] += scale * row[j];
      } else {
        const float f = std::min(1.0f, max_dup / std::max(count[k], 1.0f));
        for (int64_t j = 0; j < d; ++j) dst[j] += scale * (row[j] * f);
      }
    }
  if (count != nullptr) {
    for (const Part& p : parts)
      for (int64_t i = 0; i < p.n; ++i) {
        const int64_t k = Normalize(p.idx[i], v);
        if (k >= 0) count[k] = 0.0f;
      }
  }
}

ffi::Error ApplyRowsImpl(ffi::Buffer<ffi::F32> table, ffi::Buffer<ffi::F32> scale_buf,
                         ffi::RemainingArgs args, ffi::Result<ffi::Buffer<ffi::F32>> out, float max_dup) {
  auto dims = table.dimensions();
  if (dims.size() != 2) return ffi::Error::InvalidArgument("w2v_apply_rows: the table must be 2-D");
  const int64_t v = dims[0], d = dims[1];
  float* w = out->typed_data();
  if (w != table.typed_data()) std::memcpy(w, table.typed_data(), sizeof(float) * v * d);
  if (args.size() % 2 != 0) return ffi::Error::InvalidArgument("w2v_apply_rows: parts come as (idx, rows) pairs");
  const float scale = scale_buf.typed_data()[0];

  std::vector<Part> parts;
  for (size_t a = 0; a < args.size(); a += 2) {
    auto idx = args.get<ffi::Buffer<ffi::S32>>(a);
    auto rows = args.get<ffi::Buffer<ffi::F32>>(a + 1);
    if (!idx.has_value() || !rows.has_value())
      return ffi::Error::InvalidArgument("w2v_apply_rows: a part is not (int32 idx, float32 rows)");
    const int64_t n = idx->element_count();
    if (rows->element_count() != n * d)
      return ffi::Error::InvalidArgument("w2v_apply_rows: rows must be [len(idx), D]");
    parts.push_back({idx->typed_data(), rows->typed_data(), n});
  }

  ApplyParts(w, v, d, parts, scale, max_dup);
  return ffi::Error::Success();
}

// w2v_apply_span_rows: the input side of a CBOW step on a SpanBatch (kernels.py). Window b's context
// slot j is position b + W + o_j of the span, o = (-W..-1, 1..W), and receives coef[b, j] * vecs[b]; a
// position sums what its slots receive, and its word's row gets scale * damp(that sum), as
//     native.apply_rows_reference(table, [(tokens, kernels._unslots(coef[:, :, None] * vecs[:, None], W))])
// computes it, in the same order (slots j = 0..C-1 per position). So B + 2W rows are written, not B·C.
ffi::Error ApplySpanRowsImpl(ffi::Buffer<ffi::F32> table, ffi::Buffer<ffi::F32> scale_buf,
                             ffi::Buffer<ffi::S32> tokens, ffi::Buffer<ffi::F32> coef,
                             ffi::Buffer<ffi::F32> vecs, ffi::Result<ffi::Buffer<ffi::F32>> out,
                             float max_dup) {
  if (table.dimensions().size() != 2 || coef.dimensions().size() != 2 || vecs.dimensions().size() != 2)
    return ffi::Error::InvalidArgument("w2v_apply_span_rows: table, coef and vecs must be 2-D");
  const int64_t v = table.dimensions()[0], d = table.dimensions()[1];
  const int64_t b_size = coef.dimensions()[0], c = coef.dimensions()[1], w = c / 2;
  const int64_t p_size = tokens.element_count();
  if (c % 2 != 0 || p_size != b_size + c || vecs.dimensions()[0] != b_size || vecs.dimensions()[1] != d)
    return ffi::Error::InvalidArgument("w2v_apply_span_rows: shapes must be tokens [B+2W], coef [B, 2W], vecs [B, D]");
  float* tab = out->typed_data();
  if (tab != table.typed_data()) std::memcpy(tab, table.typed_data(), sizeof(float) * v * d);
  const float scale = scale_buf.typed_data()[0];
  const int32_t* tok = tokens.typed_data();
  const float* cf = coef.typed_data();
  const float* vc = vecs.typed_data();

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
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vApplyRows, ApplyRowsImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // table [V, D]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // scale []
                                  .RemainingArgs()                // (idx, rows) per part
                                  .Ret<ffi::Buffer<ffi::F32>>()   // table, aliased
                                  .Attr<float>("max_dup"));       // <= 0: no cap

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vApplySpanRows, ApplySpanRowsImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // table [V, D]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // scale []
                                  .Arg<ffi::Buffer<ffi::S32>>()   // tokens [B + 2W]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // coef [B, 2W]
                                  .Arg<ffi::Buffer<ffi::F32>>()   // vecs [B, D]
                                  .Ret<ffi::Buffer<ffi::F32>>()   // table, aliased
                                  .Attr<float>("max_dup"));       // <= 0: no cap
