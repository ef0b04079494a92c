// CopyToHugePages: dst = src (zeros where src is null), after asking Linux to back dst with huge pages
// (pages.py says why and when). The kernel behind native.huge_page_copy and native.huge_page_zeros; their
// FFI handlers are in ffi_handlers.cc.
//
// Linux's transparent huge pages (THP, mode "madvise") back an anonymous range with huge pages (2 MB on
// x86-64) at its first touch if the range was advised so with madvise(MADV_HUGEPAGE) before; pages
// already touched stay 4 kB. XLA writes a buffer as soon as it allocates it, so the only moment to advise
// it is the one this kernel has: after XLA allocated its output, before anything wrote it. Only the part
// of [dst, dst + bytes) made of whole huge pages is advised; the ends stay on 4 kB pages.
#include <cerrno>
#include <cstdint>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "kernels.h"

namespace w2v {

int64_t CopyToHugePages(const void* src, void* dst, int64_t bytes, int64_t huge_page) {
  int64_t advised = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t page = static_cast<uintptr_t>(huge_page);
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(dst) + page - 1) / page * page;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(dst) + static_cast<uintptr_t>(bytes)) / page * page;
  if (page > 0 && hi > lo)
    advised = madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE) == 0 ? static_cast<int64_t>((hi - lo) / page)
                                                                              : -int64_t{errno};
#else
  advised = -int64_t{ENOSYS};
#endif
  if (src == nullptr) std::memset(dst, 0, static_cast<size_t>(bytes));
  else if (dst != src) std::memcpy(dst, src, static_cast<size_t>(bytes));
  return advised;
}

}  // namespace w2v
