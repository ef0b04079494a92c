// Prints the bits of every row_math.h function on fixed pseudo-random rows, after checking each against
// its plain loop over the 16 lanes written here in scalars: tests/test_native_builds.py compiles this for
// every target and compiler it can (SSE2, AVX2, AVX-512, GCC, clang, aarch64 under qemu) and asserts the
// outputs are identical, byte for byte. Exit 1 (and a line on stderr) where a function differs from its
// plain loop.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "row_math.h"

namespace {

uint32_t state = 12345u;
float Next() {   // a fixed LCG: the same floats on every target
  state = state * 1664525u + 1013904223u;
  return static_cast<float>(static_cast<int32_t>(state >> 8) - (1 << 23)) / static_cast<float>(1 << 23);
}

uint32_t Bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// The plain loops, in scalars: lane j adds the terms i ≡ j mod 16 of the whole blocks, then the tree
// (j += j + 8, then j += j + 4, then (c0 + c2) + (c1 + c3)), then + the tail taken in order.
float PlainDot(const float* a, const float* b, int64_t d) {
  float lane[16] = {};
  int64_t i = 0;
  for (; i + 16 <= d; i += 16)
    for (int j = 0; j < 16; ++j) lane[j] += a[i + j] * b[i + j];
  float tail = 0.0f;
  for (; i < d; ++i) tail += a[i] * b[i];
  float b8[8], c4[4];
  for (int j = 0; j < 8; ++j) b8[j] = lane[j] + lane[j + 8];
  for (int j = 0; j < 4; ++j) c4[j] = b8[j] + b8[j + 4];
  return ((c4[0] + c4[2]) + (c4[1] + c4[3])) + tail;
}

int failures = 0;
void Expect(bool same, const char* what, int64_t d, int64_t nt) {
  if (!same && failures++ < 5) std::fprintf(stderr, "%s differs from its plain loop (d=%lld, nt=%lld)\n", what,
                                            static_cast<long long>(d), static_cast<long long>(nt));
}

}  // namespace

int main() {
  const int64_t dims[] = {1, 7, 15, 16, 17, 31, 32, 50, 100, 128, 300};
  for (int64_t d : dims) {
    for (int64_t nt = 1; nt <= 13; ++nt) {
      std::vector<std::vector<float>> rows(nt, std::vector<float>(d));
      std::vector<float> h(d), c(nt);
      for (auto& r : rows)
        for (float& x : r) x = Next();
      for (float& x : h) x = Next();
      for (float& x : c) x = Next();
      std::vector<const float*> ptrs;
      for (auto& r : rows) ptrs.push_back(r.data());

      std::vector<float> dots(nt);
      w2v::Dots(h.data(), ptrs.data(), nt, d, dots.data());
      for (int64_t t = 0; t < nt; ++t) {
        Expect(Bits(dots[t]) == Bits(PlainDot(h.data(), ptrs[t], d)), "Dots", d, nt);
        Expect(Bits(w2v::Dot(h.data(), ptrs[t], d)) == Bits(dots[t]), "Dot", d, nt);
        std::printf("%08x ", Bits(dots[t]));
      }

      const float div = 1.0f + static_cast<float>(nt);
      std::vector<float> sum(d), plain(d);
      w2v::WeightedSum(c.data(), ptrs.data(), nt, d, sum.data(), div);
      for (int64_t i = 0; i < d; ++i) {
        float acc = 0.0f;
        for (int64_t t = 0; t < nt; ++t) acc += c[t] * rows[t][i];
        plain[i] = acc / div;
        Expect(Bits(sum[i]) == Bits(plain[i]), "WeightedSum", d, nt);
        std::printf("%08x ", Bits(sum[i]));
      }

      std::vector<std::vector<float>> outs = rows;
      std::vector<float*> out_ptrs;
      for (auto& r : outs) out_ptrs.push_back(r.data());
      w2v::AddScaled(c.data(), h.data(), nt, d, out_ptrs.data());
      for (int64_t t = 0; t < nt; ++t)
        for (int64_t i = 0; i < d; ++i) {
          Expect(Bits(outs[t][i]) == Bits(rows[t][i] + c[t] * h[i]), "AddScaled", d, nt);
          std::printf("%08x ", Bits(outs[t][i]));
        }
      std::printf("\n");
    }
  }
  return failures ? 1 : 0;
}
