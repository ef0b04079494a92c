// The XLA FFI handlers of the native kernels: each checks its buffers' shapes, makes its output alias its
// input (copying when XLA did not alias them), and calls the kernel in kernels.h. This is the only file
// that includes XLA's FFI headers; native/__init__.py compiles it with -O1 (it only unpacks arguments),
// the kernels with -O3.
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"
#include "kernels.h"

namespace ffi = xla::ffi;

namespace {

// XLA's CPU thread pool as the kernels' Pool.
class XlaPool : public w2v::Pool {
 public:
  explicit XlaPool(ffi::ThreadPool* pool) : pool_(pool) {}
  int64_t NumThreads() const override { return pool_->num_threads(); }
  void Schedule(std::function<void()> task) override { pool_->Schedule(std::move(task)); }

 private:
  ffi::ThreadPool* pool_;
};

// The output's data, holding the input's (XLA aliases them when the table is donated; else a copy).
float* InPlace(ffi::Buffer<ffi::F32> in, ffi::Result<ffi::Buffer<ffi::F32>>& out, int64_t elements) {
  float* data = out->typed_data();
  if (data != in.typed_data()) std::memcpy(data, in.typed_data(), sizeof(float) * elements);
  return data;
}

ffi::Error ApplyRowsImpl(ffi::Buffer<ffi::F32> table, ffi::Buffer<ffi::F32> scale_buf,
                         ffi::RemainingArgs args, ffi::Result<ffi::Buffer<ffi::F32>> out, float max_dup) {
  auto dims = table.dimensions();
  if (dims.size() != 2) return ffi::Error::InvalidArgument("w2v_apply_rows: the table must be 2-D");
  const int64_t v = dims[0], d = dims[1];
  float* w = InPlace(table, out, v * d);
  if (args.size() % 2 != 0) return ffi::Error::InvalidArgument("w2v_apply_rows: parts come as (idx, rows) pairs");
  std::vector<w2v::Part> parts;
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
  w2v::ApplyRows(w, v, d, parts, scale_buf.typed_data()[0], max_dup);
  return ffi::Error::Success();
}

ffi::Error ApplySpanRowsImpl(ffi::Buffer<ffi::F32> table, ffi::Buffer<ffi::F32> scale_buf,
                             ffi::Buffer<ffi::S32> tokens, ffi::Buffer<ffi::F32> coef,
                             ffi::Buffer<ffi::F32> vecs, ffi::Result<ffi::Buffer<ffi::F32>> out,
                             float max_dup) {
  if (table.dimensions().size() != 2 || coef.dimensions().size() != 2 || vecs.dimensions().size() != 2)
    return ffi::Error::InvalidArgument("w2v_apply_span_rows: table, coef and vecs must be 2-D");
  const int64_t v = table.dimensions()[0], d = table.dimensions()[1];
  const int64_t b_size = coef.dimensions()[0], c = coef.dimensions()[1];
  if (c % 2 != 0 || tokens.element_count() != b_size + c || vecs.dimensions()[0] != b_size ||
      vecs.dimensions()[1] != d)
    return ffi::Error::InvalidArgument("w2v_apply_span_rows: shapes must be tokens [B+2W], coef [B, 2W], vecs [B, D]");
  w2v::ApplySpanRows(InPlace(table, out, v * d), v, d, tokens.typed_data(), coef.typed_data(), vecs.typed_data(),
                     b_size, c, scale_buf.typed_data()[0], max_dup);
  return ffi::Error::Success();
}

// The arguments both fused steps take, checked: one step's (tokens [B+2W], mask [B, 2W], negatives [B, K],
// scale [], loss [B]), or S steps stacked on a leading axis (scale [S], loss [S, B]). Sets *s to the first
// step's StepArgs and *steps to S (1 without the leading axis).
ffi::Error Unpack(const char* name, ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> w_out,
                  ffi::Buffer<ffi::F32> scale, ffi::Buffer<ffi::S32> tokens, ffi::Buffer<ffi::F32> mask,
                  ffi::Buffer<ffi::S32> neg, ffi::Result<ffi::Buffer<ffi::F32>>& w_in_out,
                  ffi::Result<ffi::Buffer<ffi::F32>>& w_out_out, ffi::Result<ffi::Buffer<ffi::F32>>& loss,
                  w2v::StepArgs* s, int64_t* steps) {
  auto bad = [&](const char* what) { return ffi::Error::InvalidArgument(std::string(name) + ": " + what); };
  if (w_in.dimensions().size() != 2 || w_out.dimensions().size() != 2 ||
      w_out.dimensions()[0] != w_in.dimensions()[0] || w_out.dimensions()[1] != w_in.dimensions()[1])
    return bad("the tables must be [V, D], both the same shape");
  const size_t rank = mask.dimensions().size();
  if ((rank != 2 && rank != 3) || neg.dimensions().size() != rank)
    return bad("mask [B, 2W], negatives [B, K], or both with a leading steps axis");
  const int64_t lead = rank == 3 ? 1 : 0;
  *steps = rank == 3 ? mask.dimensions()[0] : 1;
  s->v = w_in.dimensions()[0];
  s->d = w_in.dimensions()[1];
  s->nb = mask.dimensions()[lead];
  s->c = mask.dimensions()[lead + 1];
  s->w = s->c / 2;
  s->k = neg.dimensions()[lead + 1];
  s->np = s->nb + s->c;
  if (s->c % 2 != 0 || tokens.element_count() != *steps * s->np || neg.dimensions()[lead] != s->nb ||
      (rank == 3 && neg.dimensions()[0] != *steps) || loss->element_count() != *steps * s->nb ||
      scale.element_count() != *steps)
    return bad("shapes must be tokens [B+2W], mask [B, 2W], negatives [B, K], scale [] (or all [S, ...])");
  s->win = InPlace(w_in, w_in_out, s->v * s->d);
  s->wout = InPlace(w_out, w_out_out, s->v * s->d);
  s->loss = loss->typed_data();
  s->tok = tokens.typed_data();
  s->neg = neg.typed_data();
  s->mask = mask.typed_data();
  s->scale = scale.typed_data()[0];
  return ffi::Error::Success();
}

// Step i of the S that Unpack found, in order: the same tables, step i's batch, lr and loss.
template <class F>
void EachStep(const w2v::StepArgs& first, const float* scale, int64_t steps, const F& step) {
  for (int64_t i = 0; i < steps; ++i) {
    w2v::StepArgs s = first;
    s.tok += i * s.np;
    s.mask += i * s.nb * s.c;
    s.neg += i * s.nb * s.k;
    s.loss += i * s.nb;
    s.scale = scale[i];
    step(s);
  }
}

ffi::Error CbowNegStepImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> w_out,
                           ffi::Buffer<ffi::F32> scale, ffi::Buffer<ffi::S32> tokens, ffi::Buffer<ffi::F32> mask,
                           ffi::Buffer<ffi::S32> neg, ffi::Result<ffi::Buffer<ffi::F32>> w_in_out,
                           ffi::Result<ffi::Buffer<ffi::F32>> w_out_out, ffi::Result<ffi::Buffer<ffi::F32>> loss_out,
                           float max_dup, int32_t mean_grad, int32_t threads, int32_t hogwild) {
  w2v::StepArgs s;
  int64_t steps;
  if (auto e = Unpack("w2v_cbow_neg_step", w_in, w_out, scale, tokens, mask, neg, w_in_out, w_out_out, loss_out, &s, &steps);
      e.failure())
    return e;
  XlaPool p(&pool);
  EachStep(s, scale.typed_data(), steps, [&](const w2v::StepArgs& si) { w2v::CbowNegStep(p, si, max_dup, mean_grad != 0, threads, hogwild != 0); });
  return ffi::Error::Success();
}

ffi::Error SgramNegStepImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> w_out,
                            ffi::Buffer<ffi::F32> scale, ffi::Buffer<ffi::S32> tokens, ffi::Buffer<ffi::F32> mask,
                            ffi::Buffer<ffi::S32> neg, ffi::Result<ffi::Buffer<ffi::F32>> w_in_out,
                            ffi::Result<ffi::Buffer<ffi::F32>> w_out_out, ffi::Result<ffi::Buffer<ffi::F32>> loss_out,
                            float max_dup, int32_t threads, int32_t hogwild) {
  w2v::StepArgs s;
  int64_t steps;
  if (auto e = Unpack("w2v_sgram_neg_step", w_in, w_out, scale, tokens, mask, neg, w_in_out, w_out_out, loss_out, &s, &steps);
      e.failure())
    return e;
  XlaPool p(&pool);
  EachStep(s, scale.typed_data(), steps, [&](const w2v::StepArgs& si) { w2v::SgramNegStep(p, si, max_dup, threads, hogwild != 0); });
  return ffi::Error::Success();
}

// The tree of the hierarchical-softmax steps, checked against the tables (v rows): up and bit [2v − 1].
ffi::Error UnpackTree(const char* name, ffi::Buffer<ffi::S32> up, ffi::Buffer<ffi::S8> bit, int64_t v, int32_t depth,
                      w2v::HsTree* tree) {
  if (up.element_count() != 2 * v - 1 || bit.element_count() != 2 * v - 1 || depth < 1)
    return ffi::Error::InvalidArgument(std::string(name) + ": the tree must be up [2V − 1], bit [2V − 1], depth >= 1");
  *tree = {up.typed_data(), reinterpret_cast<const int8_t*>(bit.typed_data()), depth};
  return ffi::Error::Success();
}

ffi::Error CbowHsStepImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> w_out,
                          ffi::Buffer<ffi::F32> scale, ffi::Buffer<ffi::S32> tokens, ffi::Buffer<ffi::F32> mask,
                          ffi::Buffer<ffi::S32> neg, ffi::Buffer<ffi::S32> up, ffi::Buffer<ffi::S8> bit,
                          ffi::Result<ffi::Buffer<ffi::F32>> w_in_out, ffi::Result<ffi::Buffer<ffi::F32>> w_out_out,
                          ffi::Result<ffi::Buffer<ffi::F32>> loss_out, float max_dup, int32_t depth, int32_t mean_grad,
                          int32_t threads) {
  w2v::StepArgs s;
  w2v::HsTree tree;
  int64_t steps;
  if (auto e = Unpack("w2v_cbow_hs_step", w_in, w_out, scale, tokens, mask, neg, w_in_out, w_out_out, loss_out, &s, &steps);
      e.failure())
    return e;
  if (auto e = UnpackTree("w2v_cbow_hs_step", up, bit, s.v, depth, &tree); e.failure()) return e;
  XlaPool p(&pool);
  EachStep(s, scale.typed_data(), steps, [&](const w2v::StepArgs& si) { w2v::CbowHsStep(p, si, tree, max_dup, mean_grad != 0, threads); });
  return ffi::Error::Success();
}

ffi::Error SgramHsStepImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> w_out,
                           ffi::Buffer<ffi::F32> scale, ffi::Buffer<ffi::S32> tokens, ffi::Buffer<ffi::F32> mask,
                           ffi::Buffer<ffi::S32> neg, ffi::Buffer<ffi::S32> up, ffi::Buffer<ffi::S8> bit,
                           ffi::Result<ffi::Buffer<ffi::F32>> w_in_out, ffi::Result<ffi::Buffer<ffi::F32>> w_out_out,
                           ffi::Result<ffi::Buffer<ffi::F32>> loss_out, float max_dup, int32_t depth, int32_t threads) {
  w2v::StepArgs s;
  w2v::HsTree tree;
  int64_t steps;
  if (auto e = Unpack("w2v_sgram_hs_step", w_in, w_out, scale, tokens, mask, neg, w_in_out, w_out_out, loss_out, &s, &steps);
      e.failure())
    return e;
  if (auto e = UnpackTree("w2v_sgram_hs_step", up, bit, s.v, depth, &tree); e.failure()) return e;
  XlaPool p(&pool);
  EachStep(s, scale.typed_data(), steps, [&](const w2v::StepArgs& si) { w2v::SgramHsStep(p, si, tree, max_dup, threads); });
  return ffi::Error::Success();
}

ffi::Error HugePageCopyImpl(ffi::AnyBuffer in, ffi::Result<ffi::AnyBuffer> out,
                            ffi::Result<ffi::Buffer<ffi::S32>> advised, int64_t huge_page) {
  if (in.size_bytes() != out->size_bytes())
    return ffi::Error::InvalidArgument("w2v_huge_page_copy: the output must be the input's size");
  if (advised->element_count() != 1)
    return ffi::Error::InvalidArgument("w2v_huge_page_copy: the page count is one int32");
  const int64_t n = w2v::CopyToHugePages(in.untyped_data(), out->untyped_data(), in.size_bytes(), huge_page);
  advised->typed_data()[0] = static_cast<int32_t>(n);
  return ffi::Error::Success();
}

ffi::Error HugePageZerosImpl(ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::Buffer<ffi::S32>> advised,
                             int64_t huge_page) {
  if (advised->element_count() != 1)
    return ffi::Error::InvalidArgument("w2v_huge_page_zeros: the page count is one int32");
  const int64_t n = w2v::CopyToHugePages(nullptr, out->untyped_data(), out->size_bytes(), huge_page);
  advised->typed_data()[0] = static_cast<int32_t>(n);
  return ffi::Error::Success();
}

// The arguments and results both fused steps take; each adds its attributes.
auto StepBinding() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<ffi::Buffer<ffi::F32>>()   // W_in [V, D]
      .Arg<ffi::Buffer<ffi::F32>>()   // W_out [V, D]
      .Arg<ffi::Buffer<ffi::F32>>()   // scale [] (−lr)            or [S]: S steps in one call, in order
      .Arg<ffi::Buffer<ffi::S32>>()   // tokens [B + 2W]           or [S, B + 2W]
      .Arg<ffi::Buffer<ffi::F32>>()   // mask [B, 2W]              or [S, B, 2W]
      .Arg<ffi::Buffer<ffi::S32>>()   // negatives [B, K]          or [S, B, K]
      .Ret<ffi::Buffer<ffi::F32>>()   // W_in, aliased
      .Ret<ffi::Buffer<ffi::F32>>()   // W_out, aliased
      .Ret<ffi::Buffer<ffi::F32>>()   // loss [B]                  or [S, B]
      .Attr<float>("max_dup");        // <= 0: no cap
}


// The hierarchical-softmax steps' arguments and results: the fused steps' (negatives [B, 0]) and the tree.
auto HsStepBinding() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<ffi::Buffer<ffi::F32>>()   // W_in [V, D]
      .Arg<ffi::Buffer<ffi::F32>>()   // W_out [V, D]
      .Arg<ffi::Buffer<ffi::F32>>()   // scale [] (−lr)            or [S]: S steps in one call, in order
      .Arg<ffi::Buffer<ffi::S32>>()   // tokens [B + 2W]           or [S, B + 2W]
      .Arg<ffi::Buffer<ffi::F32>>()   // mask [B, 2W]              or [S, B, 2W]
      .Arg<ffi::Buffer<ffi::S32>>()   // negatives [B, 0]          or [S, B, 0]
      .Arg<ffi::Buffer<ffi::S32>>()   // up [2V − 1]: each tree node's parent
      .Arg<ffi::Buffer<ffi::S8>>()    // bit [2V − 1]: each node's branch bit
      .Ret<ffi::Buffer<ffi::F32>>()   // W_in, aliased
      .Ret<ffi::Buffer<ffi::F32>>()   // W_out, aliased
      .Ret<ffi::Buffer<ffi::F32>>()   // loss [B]                  or [S, B]
      .Attr<float>("max_dup")         // <= 0: no cap
      .Attr<int32_t>("depth");        // the tree's longest path
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

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vHugePageCopy, HugePageCopyImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()          // x
                                  .Ret<ffi::AnyBuffer>()          // a copy of x, on huge pages where it can be
                                  .Ret<ffi::Buffer<ffi::S32>>()   // [] pages advised, or -errno
                                  .Attr<int64_t>("huge_page"));   // the huge page's size in bytes

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vHugePageZeros, HugePageZerosImpl,
                              ffi::Ffi::Bind()
                                  .Ret<ffi::AnyBuffer>()          // zeros, on huge pages where they can be
                                  .Ret<ffi::Buffer<ffi::S32>>()   // [] pages advised, or -errno
                                  .Attr<int64_t>("huge_page"));   // the huge page's size in bytes

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vCbowNegStep, CbowNegStepImpl,
                              StepBinding()
                                  .Attr<int32_t>("mean_grad")     // 1: coef = m / n; 0: coef = m
                                  .Attr<int32_t>("threads")       // 0: the pool's (or 1, as Pace measures); 1: the caller's only
                                  .Attr<int32_t>("hogwild"));     // 1: unsynchronised per-window updates

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vSgramNegStep, SgramNegStepImpl,
                              StepBinding()
                                  .Attr<int32_t>("threads")       // 0: the pool's (or 1, as Pace measures); 1: the caller's only
                                  .Attr<int32_t>("hogwild"));     // 1: unsynchronised per-window updates

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vCbowHsStep, CbowHsStepImpl,
                              HsStepBinding()
                                  .Attr<int32_t>("mean_grad")     // 1: coef = m / n; 0: coef = m
                                  .Attr<int32_t>("threads"));     // 0: the pool's (or 1, as Pace measures); 1: the caller's only

XLA_FFI_DEFINE_HANDLER_SYMBOL(W2vSgramHsStep, SgramHsStepImpl,
                              HsStepBinding()
                                  .Attr<int32_t>("threads"));     // 0: the pool's (or 1, as Pace measures); 1: the caller's only

// For ctypes (native.contention()): w2v::ContentionCounts.
extern "C" void W2vContentionCounts(int64_t* out) { w2v::ContentionCounts(out); }

// For ctypes (native.core_round_trip_ns()): w2v::CoreRoundTrip.
extern "C" double W2vCoreRoundTrip(int64_t trips, int32_t cpu_a, int32_t cpu_b) {
  return w2v::CoreRoundTrip(trips, cpu_a, cpu_b);
}

// For ctypes (native.text_rows()): w2v::FormatTextRows.
extern "C" int64_t W2vFormatTextRows(const char* words, const int64_t* word_ends, const float* vectors, int64_t rows,
                                     int64_t d, char* out, int64_t cap) {
  return w2v::FormatTextRows(words, word_ends, vectors, rows, d, out, cap);
}
