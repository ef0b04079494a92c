// Row arithmetic for the fused steps, in one fixed order, in one pass over a row's d floats.
//
// Each function here gives the same bits as its plain loop (written beside it), but reads its rows and
// writes its result once: a window's 1 + K dot products in one pass over h, ∂L/∂h = Σ_t g_t T_t in one
// pass instead of 1 + K read-modify-writes of it. The plain loops ran one after another, each waiting on
// the last (the dot's 16-lane sum, then its tree, then the scalar that scales the next loop;
// docs/performance.md, "This round: one pass over each row", has the cycle counts).
//
// The 16 lanes. Every sum over a row runs in 16 lanes (lane j adds the terms i ≡ j mod 16, over whole
// blocks of 16 floats), then a fixed tree over the lanes (Tree16), then the tail (d mod 16 floats) in
// scalars, in order, as the plain loops ran it. The 16-lane order is part of the maths: it is the same on
// every target, so every build (-march=x86-64, x86-64-v3, native, aarch64, GCC or clang) gives the same
// bits. A Lanes16 carries the 16 lanes in the registers the target has: one 512-bit register with
// AVX-512, two 256-bit halves with AVX, four 128-bit quarters otherwise (SSE2, NEON). One GCC/clang
// vector of 16 floats on a target narrower than 512 bits was kept in memory: each update of an
// accumulator stored it and reloaded part of it (a store-to-load forwarding stall that halved the CBOW
// step on AVX2; docs/performance.md, "2026-12-07: portable speed"). -ffp-contract=off keeps a · b + c two roundings.
#ifndef W2V_JAX_NATIVE_ROW_MATH_H_
#define W2V_JAX_NATIVE_ROW_MATH_H_

#include <cstdint>
#include <cstring>

namespace w2v {

#if defined(__AVX512F__)
constexpr int kLaneWidth = 16;   // floats in one register
#elif defined(__AVX__)
constexpr int kLaneWidth = 8;
#else
constexpr int kLaneWidth = 4;
#endif
constexpr int kParts = 16 / kLaneWidth;

typedef float VReg __attribute__((vector_size(4 * kLaneWidth)));
typedef float V4 __attribute__((vector_size(16)));

// 16 float lanes as kParts registers: lane j is lane j mod kLaneWidth of part j / kLaneWidth.
struct Lanes16 {
  VReg part[kParts];
};

inline VReg LoadReg(const float* p) {
  VReg v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline Lanes16 Zero16() {
  Lanes16 a;
  for (int q = 0; q < kParts; ++q) a.part[q] = VReg{};
  return a;
}
inline Lanes16 Load16(const float* p) {
  Lanes16 a;
  for (int q = 0; q < kParts; ++q) a.part[q] = LoadReg(p + q * kLaneWidth);
  return a;
}
inline void Store16(float* p, const Lanes16& a) {
  for (int q = 0; q < kParts; ++q) std::memcpy(p + q * kLaneWidth, &a.part[q], sizeof a.part[q]);
}
// acc += x ⊙ y, lane by lane.
inline void AddProduct(Lanes16& acc, const Lanes16& x, const Lanes16& y) {
  for (int q = 0; q < kParts; ++q) acc.part[q] += x.part[q] * y.part[q];
}
// acc += c · y, lane by lane.
inline void AddScaledLanes(Lanes16& acc, float c, const Lanes16& y) {
  for (int q = 0; q < kParts; ++q) acc.part[q] += c * y.part[q];
}
inline void DivideLanes(Lanes16& acc, float div) {
  for (int q = 0; q < kParts; ++q) acc.part[q] /= div;
}

// Lanes 4r .. 4r + 3 of a, for r < 4.
template <int R>
inline V4 Quarter(const Lanes16& a) {
  constexpr int q = (4 * R) / kLaneWidth, at = (4 * R) % kLaneWidth;
  V4 v;
  std::memcpy(&v, reinterpret_cast<const float*>(&a.part[q]) + at, sizeof v);
  return v;
}

// The tree over 16 lanes: lane j += lane j + s for s = 8, 4; then (c0 + c2) + (c1 + c3). As quarters
// q_r = lanes 4r .. 4r + 3: b = (q0 + q2, q1 + q3), c = (q0 + q2) + (q1 + q3), the same additions in the
// same order for every lane width.
inline float Tree16(const Lanes16& a) {
  const V4 c = (Quarter<0>(a) + Quarter<2>(a)) + (Quarter<1>(a) + Quarter<3>(a));
  return (c[0] + c[2]) + (c[1] + c[3]);
}

// a · b over d floats: 16 lanes (acc_j += a_i b_i for i ≡ j mod 16, over whole blocks of 16), the tree
// over the lanes, then + the tail's sum taken in order from 0.
inline float Dot(const float* a, const float* b, int64_t d) {
  Lanes16 acc = Zero16();
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) AddProduct(acc, Load16(a + i), Load16(b + i));
  float tail = 0.0f;
  for (; i < d; ++i) tail += a[i] * b[i];
  return Tree16(acc) + tail;
}

// out[t] = Dot(h, rows[t], d) for t < nt: G ≤ 6 rows at a time, in one pass over h.
template <int G>
inline void DotsG(const float* h, const float* const* rows, int64_t d, float* out) {
  Lanes16 acc[G];
  for (int t = 0; t < G; ++t) acc[t] = Zero16();
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const Lanes16 x = Load16(h + i);
    for (int t = 0; t < G; ++t) AddProduct(acc[t], x, Load16(rows[t] + i));
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
    Lanes16 acc = Zero16();
    for (int64_t t = 0; t < nt; ++t) AddScaledLanes(acc, c[t], Load16(rows[t] + i));
    if (div != 1.0f) DivideLanes(acc, div);
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
    const Lanes16 v = Load16(x + i);
    for (int64_t t = 0; t < nt; ++t) {
      Lanes16 o = Load16(outs[t] + i);
      AddScaledLanes(o, g[t], v);
      Store16(outs[t] + i, o);
    }
  }
  for (; i < d; ++i)
    for (int64_t t = 0; t < nt; ++t) outs[t][i] += g[t] * x[i];
}

}  // namespace w2v

#endif  // W2V_JAX_NATIVE_ROW_MATH_H_
