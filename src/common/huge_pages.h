// File: common/huge_pages.h
// Transparent huge pages for large buffers that are filled once and then
// read many times (an IMA log's parsed entries, a policy's digest table, a
// JSON parser's tape). Advised before the memory is first touched, the
// kernel backs each 2 MiB-aligned part with one huge page: one page fault
// per 2 MiB instead of 512, and fewer TLB misses on lookups. Advice only:
// nothing changes where THP is off ("never") or for less than 2 MiB, and
// a failing madvise is ignored. Thread-safe.
//
//   std::vector<Entry> v;
//   ReserveHuge(v, n);  // Then fill it: no reallocation below n.
#ifndef VOUCH_COMMON_HUGE_PAGES_H_
#define VOUCH_COMMON_HUGE_PAGES_H_

#include <cstddef>
#include <vector>

namespace vouch {

// MADV_HUGEPAGE on the 2 MiB-aligned pages inside [p, p + n).
void AdviseHugePages(const void* p, size_t n);

// v.reserve(n), then the advice on its storage (an empty vector gets new,
// untouched storage).
template <typename T, typename A>
void ReserveHuge(std::vector<T, A>& v, size_t n) {
  v.reserve(n);
  AdviseHugePages(v.data(), v.capacity() * sizeof(T));
}

}  // namespace vouch

#endif  // VOUCH_COMMON_HUGE_PAGES_H_
