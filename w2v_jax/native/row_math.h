// Row arithmetic for the fused steps, in one fixed order, in one pass over a row's d floats.
//
// Each function here gives the same bits as its plain loop (written beside it), but reads its rows and
// writes its result once: a window's 1 + K dot products in one pass over h, ∂L/∂h = Σ_t g_t T_t in one
// pass instead of 1 + K read-modify-writes of it. The plain loops ran one after another, each waiting on
// the last (the dot's 16-lane sum, then its tree, then the scalar that scales the next loop;
// docs/performance.md, "This round: one pass over each row", has the cycle counts). GCC's vector extensions fix the lanes
// (16 floats; split in two where the CPU has no 512-bit registers) and the order of every sum,
// -ffp-contract=off keeps a · b + c two roundings, and the tail (d mod 16 floats) runs in scalars, in order,
// as the plain loops ran it.
#ifndef W2V_JAX_NATIVE_ROW_MATH_H_
#define W2V_JAX_NATIVE_ROW_MATH_H_

#include <cstdint>
#include <cstring>

namespace w2v {

typedef float V16 __attribute__((vector_size(64)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V4 __attribute__((vector_size(16)));

inline V16 Load16(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void Store16(float* p, V16 v) { std::memcpy(p, &v, sizeof v); }

// The tree over 16 lanes: lane j += lane j + s for s = 8, 4, 2, 1; lane 0.
inline float Tree16(V16 a) {
  V8 lo, hi;
  std::memcpy(&lo, &a, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&a) + sizeof lo, sizeof hi);
  const V8 b = lo + hi;
  V4 l4, h4;
  std::memcpy(&l4, &b, sizeof l4);
  std::memcpy(&h4, reinterpret_cast<const char*>(&b) + sizeof l4, sizeof h4);
  const V4 c = l4 + h4;
  return (c[0] + c[2]) + (c[1] + c[3]);
}

// a · b over d floats: 16 lanes (acc_j += a_i b_i for i ≡ j mod 16, over whole blocks of 16), the tree
// over the lanes, then + the tail's sum taken in order from 0.
inline float Dot(const float* a, const float* b, int64_t d) {
  V16 acc = {};
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) acc += Load16(a + i) * Load16(b + i);
  float tail = 0.0f;
  for (; i < d; ++i) tail += a[i] * b[i];
  return Tree16(acc) + tail;
}

// out[t] = Dot(h, rows[t], d) for t < nt: G ≤ 6 rows at a time, in one pass over h.
template <int G>
inline void DotsG(const float* h, const float* const* rows, int64_t d, float* out) {
  V16 acc[G] = {};
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const V16 x = Load16(h + i);
    for (int t = 0; t < G; ++t) acc[t] += x * Load16(rows[t] + i);
  }
  float tail[G] = {};
  for (; i < d; ++i)
    for (int t = 0; t < G; ++t) tail[t] += h[i] * rows[t][i];
  for (int t = 0; t < G; ++t) out[t] = Tree16(acc[t]) + tail[t];
}
inline void Dots(const float* h, const float* const* rows, int64_t nt, int64_t d, float* out) {
  int64_t t = 0;
  for (; t + 6 <= nt; t += 6) DotsG<6>(h, rows + t, d, out + t);
  switch (nt - t) {
    case 5: DotsG<5>(h, rows + t, d, out + t); break;
    case 4: DotsG<4>(h, rows + t, d, out + t); break;
    case 3: DotsG<3>(h, rows + t, d, out + t); break;
    case 2: DotsG<2>(h, rows + t, d, out + t); break;
    case 1: DotsG<1>(h, rows + t, d, out + t); break;
    default: break;
  }
}

// out = (Σ_t c_t rows[t]) / div over d floats, the sum from 0 in order t (the plain loop: out = 0, then
// out += c_t rows[t] for each t, then out /= div; div = 1 skips the division, which would not change a bit).
inline void WeightedSum(const float* c, const float* const* rows, int64_t nt, int64_t d, float* out,
                        float div = 1.0f) {
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    V16 acc = {};
    for (int64_t t = 0; t < nt; ++t) acc += c[t] * Load16(rows[t] + i);
    if (div != 1.0f) acc /= div;
    Store16(out + i, acc);
  }
  for (; i < d; ++i) {
    float acc = 0.0f;
    for (int64_t t = 0; t < nt; ++t) acc += c[t] * rows[t][i];
    out[i] = div != 1.0f ? acc / div : acc;
  }
}

// outs[t] += g_t x over d floats for t < nt (the plain loop: one Axpy per t), in one pass over x.
inline void AddScaled(const float* g, const float* x, int64_t nt, int64_t d, float* const* outs) {
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const V16 v = Load16(x + i);
    for (int64_t t = 0; t < nt; ++t) Store16(outs[t] + i, Load16(outs[t] + i) + g[t] * v);
  }
  for (; i < d; ++i)
    for (int64_t t = 0; t < nt; ++t) outs[t][i] += g[t] * x[i];
}

}  // namespace w2v

#endif  // W2V_JAX_NATIVE_ROW_MATH_H_
