// What the library was built for, and a probe that it runs on this CPU. builder.runs_here calls W2vProbe
// in a child process before the library is loaded, so that a target this CPU cannot execute (an AVX-512
// build on an AVX2 CPU, a `native` build from a shared cache made on another CPU) costs the child an
// illegal instruction or a refusal, not the run a crash.
#include <cstdint>

#include "row_math.h"

// The floats in one register of the 16-lane sums (row_math.h): 16 (AVX-512), 8 (AVX), 4 (SSE2, NEON).
extern "C" int W2vLaneWidth() { return w2v::kLaneWidth; }

namespace {

// 1 when the CPU has every x86 extension this build's compiler was told it may use; the vector code
// below would fault on some of them, but the scalar code the compiler emits anywhere may use the others
// (BMI2, FMA, ...), so each is asked of the CPU.
int CpuHasTargetFeatures() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
#define W2V_NEED(macro, name) \
  if (!__builtin_cpu_supports(name)) return 0;
#ifdef __SSE4_2__
  W2V_NEED(__SSE4_2__, "sse4.2")
#endif
#ifdef __AVX__
  W2V_NEED(__AVX__, "avx")
#endif
#ifdef __AVX2__
  W2V_NEED(__AVX2__, "avx2")
#endif
#ifdef __FMA__
  W2V_NEED(__FMA__, "fma")
#endif
#ifdef __BMI2__
  W2V_NEED(__BMI2__, "bmi2")
#endif
#ifdef __AVX512F__
  W2V_NEED(__AVX512F__, "avx512f")
#endif
#ifdef __AVX512BW__
  W2V_NEED(__AVX512BW__, "avx512bw")
#endif
#ifdef __AVX512VL__
  W2V_NEED(__AVX512VL__, "avx512vl")
#endif
#undef W2V_NEED
#endif
  return 1;
}

}  // namespace

// 1: this CPU runs the build and its vector code computes a known dot product; 2: the CPU lacks an
// extension the build uses; 0: a wrong dot product.
extern "C" int W2vProbe() {
  if (!CpuHasTargetFeatures()) return 2;
  volatile float seed = 1.0f;   // volatile: the compiler cannot fold the dot away
  float a[37], b[37];
  for (int i = 0; i < 37; ++i) {
    a[i] = seed * static_cast<float>(i % 5);
    b[i] = seed * static_cast<float>(3 - i % 3);
  }
  float expect = 0.0f;   // small integers: every order of summation gives the same float
  for (int i = 0; i < 37; ++i) expect += a[i] * b[i];
  return w2v::Dot(a, b, 37) == expect ? 1 : 0;
}
