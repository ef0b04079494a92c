// FormatTextRows (kernels.h): word2vec's text format for a block of rows, "word f_1 ... f_D\n" each, with
// every float as C's "%.9g" prints it (vectors_io.save_text's format), byte for byte: std::to_chars with
// the general format and 9 significant digits is specified to give printf's "%.*g" in the C locale, and
// both format the float's exact value. NaN is "nan" whatever its sign bit, as Python's "%.9g" writes it.
// Python's own formatting took about 0.2 us a float (0.42 s for the dev corpus's 21,861 x 100 vectors);
// this about 0.07 us on one thread, and native.text_rows runs two blocks at once. Where the C++ library
// has no float to_chars (GCC before 11), snprintf("%.9g") does it, so this file never fails the build.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "kernels.h"

namespace w2v {

int64_t FormatTextRows(const char* words, const int64_t* word_ends, const float* vectors, int64_t rows, int64_t d,
                       char* out, int64_t cap) {
  char* p = out;
  char* const end = out + cap;
  int64_t start = 0;   // this row's word: words[start, word_ends[r])
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = word_ends[r] - start;
    if (end - p < n + 1 + d * kMaxFloatChars + 1) return -1;
    std::memcpy(p, words + start, static_cast<size_t>(n));
    p += n;
    start = word_ends[r] + 1;   // past the separator
    const float* v = vectors + r * d;
    for (int64_t j = 0; j < d; ++j) {
      *p++ = ' ';
      if (std::isnan(v[j])) {
        std::memcpy(p, "nan", 3);
        p += 3;
        continue;
      }
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
      const std::to_chars_result res = std::to_chars(p, end, v[j], std::chars_format::general, 9);
      if (res.ec != std::errc()) return -1;
      p = res.ptr;
#else   // a library without float to_chars (GCC < 11): printf itself, slower, the same bytes on glibc
      const int len = std::snprintf(p, static_cast<size_t>(end - p), "%.9g", static_cast<double>(v[j]));
      if (len < 0 || len >= end - p) return -1;
      p += len;
#endif
    }
    *p++ = '\n';
  }
  return p - out;
}

}  // namespace w2v
