// Shared by the CPU kernels of w2v_jax/native.py: how a step's rows are applied to a table.
#ifndef W2V_JAX_NATIVE_ROWS_H_
#define W2V_JAX_NATIVE_ROWS_H_

#include <algorithm>
#include <cstdint>
#include <vector>

namespace w2v {

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
inline float* Counts(int64_t v) {
  thread_local std::vector<float> count;
  if (static_cast<int64_t>(count.size()) < v) count.assign(v, 0.0f);
  return count.data();
}

// The factor rows.damp_duplicates scales a word's rows by: min(1, max_dup / its count of nonzero rows).
inline float Damp(float max_dup, float count) { return std::min(1.0f, max_dup / std::max(count, 1.0f)); }

// table[idx[i]] += scale * (rows[i] * f_i) over the parts in order, f_i = min(1, max_dup / count of
// idx[i]'s nonzero rows) when max_dup > 0: rows.damp_duplicates, then one scatter-add. Padding slots
// carry an all-zero row: not updates, so they count for no word.
inline void ApplyParts(float* w, int64_t v, int64_t d, const std::vector<Part>& parts, float scale, float max_dup) {
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
        const float f = Damp(max_dup, count[k]);
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

}  // namespace w2v

#endif  // W2V_JAX_NATIVE_ROWS_H_
