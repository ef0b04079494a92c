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
#include "rows.h"

namespace ffi = xla::ffi;
using w2v::ApplyParts;
using w2v::Part;

namespace {

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
