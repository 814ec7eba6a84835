// Between pushes the agent gives back memory it will not need until the next
// one (docs/agent.md, "Memory between pushes"): its page-table entries for
// the read-only segments of the binary and the shared libraries, and free
// heap pages. The code pages stay in the kernel's page cache; the next push
// faults back in only what it runs.
#ifndef VOUCH_AGENT_IDLE_MEMORY_H_
#define VOUCH_AGENT_IDLE_MEMORY_H_

#include <link.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vouch::agent {

// An address range [begin, end), page-aligned.
struct PageRange {
  uintptr_t begin = 0;
  uintptr_t end = 0;
};

// The ranges of one loaded object that can be dropped and faulted back
// unchanged: its loadable segments that are mapped without write
// permission. The writable segment (and the RELRO part of it, written by
// the loader before it is made read-only) is never included, nor is any
// segment of an object with text relocations (its code pages are private
// copies the loader wrote). `page_size` is a power of two.
std::vector<PageRange> ReadOnlySegments(const dl_phdr_info& object,
                                        size_t page_size);

struct IdleMemoryReleased {
  size_t objects = 0;  // Loaded objects whose segments were dropped.
  size_t bytes = 0;    // Bytes of read-only segments dropped.
  // With measure_resident: resident bytes before and after
  // (/proc/self/statm); otherwise, or when statm can't be read, 0.
  size_t rss_before = 0;
  size_t rss_after = 0;
};

// Drops the page-table entries of every loaded object's ReadOnlySegments
// (not the vDSO's) and returns free heap pages to the kernel. Runs while
// holding the loader's lock (dl_iterate_phdr), so no object can be
// unloaded and its addresses reused meanwhile. Safe to call from any
// thread at any time; other threads fault the pages they run back in.
IdleMemoryReleased ReleaseIdleMemory(bool measure_resident);

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_IDLE_MEMORY_H_
