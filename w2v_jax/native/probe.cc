// A probe that the library runs on this CPU: builder.runs_here calls W2vProbe in a child process before
// a library built for another -march is loaded, so that a target this CPU cannot execute (an AVX-512 build
// on an AVX2 CPU) costs the child an illegal instruction, not the run a crash.
#include <cstdint>

#include "row_math.h"

extern "C" int W2vProbe() {
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
