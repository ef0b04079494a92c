// The native kernels' computations, free of XLA: plain pointers in, tables updated in place. The XLA FFI
// handlers that unpack buffers and call these live in ffi_handlers.cc, the one file that includes XLA's
// FFI headers (they take most of a build's time, so that file is compiled with less optimisation, and the
// kernels below, built in their own files, do not parse them).
#ifndef W2V_JAX_NATIVE_KERNELS_H_
#define W2V_JAX_NATIVE_KERNELS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "rows.h"

namespace w2v {

// The threads a kernel may use: XLA's CPU pool behind an interface (ffi_handlers.cc adapts it).
class Pool {
 public:
  virtual ~Pool() = default;
  virtual int64_t NumThreads() const = 0;
  virtual void Schedule(std::function<void()> task) = 0;
};

// One fused step's arguments, checked by the handler: tables [v, d] (updated in place), tokens [np = nb + c]
// of the span, mask [nb, c], negatives [nb, k], loss [nb] (written), scale = -lr.
struct StepArgs {
  int64_t v, d, nb, c, w, k, np;
  float *win, *wout, *loss;
  const int32_t *tok, *neg;
  const float* mask;
  float scale;
};

// fused_steps.cc: one negative-sampling training step (see there for the maths); hogwild: word2vec.c's
// unsynchronised per-window updates instead of the synchronous step.
void CbowNegStep(Pool& pool, const StepArgs& s, float max_dup, bool mean_grad, int32_t threads, bool hogwild);
void SgramNegStep(Pool& pool, const StepArgs& s, float max_dup, int32_t threads, bool hogwild);

// A vocabulary's Huffman tree as hsoftmax.Tree holds it: node n < v is word n's leaf, node v + a the inner
// node of W_out row a, the root 2v − 2; up [2v − 1] each node's parent (the root's is itself), bit [2v − 1]
// each node's branch bit under its parent; depth, the longest path (no walk goes further).
struct HsTree {
  const int32_t* up;
  const int8_t* bit;
  int64_t depth;
};
// hs_steps.cc: one hierarchical-softmax training step on the span layout (see there for the maths): the
// synchronous step only (no Hogwild form).
void CbowHsStep(Pool& pool, const StepArgs& s, const HsTree& tree, float max_dup, bool mean_grad, int32_t threads);
void SgramHsStep(Pool& pool, const StepArgs& s, const HsTree& tree, float max_dup, int32_t threads);
// The fused steps' thread use since the library was loaded: out[0] parallel loops, out[1] of them run on
// the calling thread alone after a stall, out[2] stalls (fused_steps.cc, Contention); out[3] synchronous
// steps asked to run on all threads, out[4] of them run on one because one was measured faster or to
// measure it, out[5] switches between all and one (fused_steps.cc, Pace).
void ContentionCounts(int64_t* out);

// apply_rows.cc: table += scale * damp(rows) over parts (ApplyParts), and the span layout's input side.
void ApplyRows(float* w, int64_t v, int64_t d, const std::vector<Part>& parts, float scale, float max_dup);
void ApplySpanRows(float* table, int64_t v, int64_t d, const int32_t* tokens, const float* coef,
                   const float* vecs, int64_t b_size, int64_t c, float scale, float max_dup);

// pages.cc: dst = src (bytes), dst's whole huge pages (huge_page bytes each) advised MADV_HUGEPAGE before
// the copy touches them; returns how many pages were advised, or -errno where madvise refused.
int64_t CopyToHugePages(const void* src, void* dst, int64_t bytes, int64_t huge_page);   // src null: zeros

// cores.cc: the time of a round trip of one cache line between CPUs cpu_a and cpu_b (two threads pinned
// there pass a counter back and forth `trips` times, timed 16 at a time; the 10th percentile of those
// means), in ns; -1 where the threads cannot be pinned.
double CoreRoundTrip(int64_t trips, int32_t cpu_a, int32_t cpu_b);

// text_rows.cc: rows [0, rows) of `vectors` [rows, d] in word2vec's text format, "word f_1 ... f_D\n" with
// the floats as "%.9g" prints them, into out[0, cap); row r's word is words[e_{r-1} + 1, e_r) with
// e = word_ends (e_{-1} = -1: one separator byte after each word). Returns the bytes written, or -1 if
// cap is short (each row needs its word's bytes + 2 + d * kMaxFloatChars).
constexpr int64_t kMaxFloatChars = 16;   // " -1.23456789e-38": a space and "%.9g"'s longest float
int64_t FormatTextRows(const char* words, const int64_t* word_ends, const float* vectors, int64_t rows, int64_t d,
                       char* out, int64_t cap);

}  // namespace w2v

#endif  // W2V_JAX_NATIVE_KERNELS_H_
