#include "agent/idle_memory.h"

#include <elf.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace vouch::agent {
namespace {

// True when the object's dynamic section asks for text relocations.
bool HasTextRelocations(const dl_phdr_info& object) {
  for (ElfW(Half) i = 0; i < object.dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = object.dlpi_phdr[i];
    if (ph.p_type != PT_DYNAMIC) continue;
    const auto* dyn =
        reinterpret_cast<const ElfW(Dyn)*>(object.dlpi_addr + ph.p_vaddr);
    const size_t count = ph.p_memsz / sizeof(ElfW(Dyn));
    for (size_t k = 0; k < count && dyn[k].d_tag != DT_NULL; ++k) {
      if (dyn[k].d_tag == DT_TEXTREL) return true;
      if (dyn[k].d_tag == DT_FLAGS && (dyn[k].d_un.d_val & DF_TEXTREL) != 0) {
        return true;
      }
    }
  }
  return false;
}

// Resident bytes from /proc/self/statm ("size resident ..." in pages);
// 0 when it can't be read. No stdio: fewer code pages touched per push.
size_t ResidentBytes() {
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char* end = nullptr;
  std::strtoul(buf, &end, 10);  // size
  const unsigned long resident = std::strtoul(end, nullptr, 10);
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

struct Walk {
  size_t page_size = 0;
  uintptr_t vdso = 0;
  IdleMemoryReleased* out = nullptr;
};

int DropObject(dl_phdr_info* object, size_t, void* data) {
  Walk& walk = *static_cast<Walk*>(data);
  // The vDSO is the kernel's, not a file mapping: left alone.
  const auto phdr = reinterpret_cast<uintptr_t>(object->dlpi_phdr);
  if (walk.vdso != 0 && phdr >= walk.vdso && phdr - walk.vdso < 64 * 1024) {
    return 0;
  }
  bool dropped = false;
  for (const PageRange& r : ReadOnlySegments(*object, walk.page_size)) {
    if (madvise(reinterpret_cast<void*>(r.begin), r.end - r.begin,
                MADV_DONTNEED) == 0) {
      walk.out->bytes += r.end - r.begin;
      dropped = true;
    }
  }
  if (dropped) ++walk.out->objects;
  return 0;
}

}  // namespace

std::vector<PageRange> ReadOnlySegments(const dl_phdr_info& object,
                                        size_t page_size) {
  std::vector<PageRange> out;
  if (page_size == 0 || (page_size & (page_size - 1)) != 0) return out;
  if (HasTextRelocations(object)) return out;
  const uintptr_t mask = ~(page_size - 1);
  std::vector<PageRange> writable;
  for (ElfW(Half) i = 0; i < object.dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = object.dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    const uintptr_t start = object.dlpi_addr + ph.p_vaddr;
    if ((ph.p_flags & PF_W) != 0) {
      writable.push_back(
          {start & mask, (start + ph.p_memsz + page_size - 1) & mask});
      continue;
    }
    // Only whole pages the file maps: past p_filesz the loader maps
    // zero-filled anonymous memory.
    const uintptr_t file_end = start + ph.p_filesz;
    PageRange r{start & mask, file_end & mask};
    if (ph.p_filesz == ph.p_memsz) r.end = (file_end + page_size - 1) & mask;
    if (r.end > r.begin) out.push_back(r);
  }
  // A page shared with a writable segment is left alone (no linker lays
  // segments out like that, but nothing here depends on it).
  std::vector<PageRange> kept;
  for (PageRange r : out) {
    for (const PageRange& w : writable) {
      if (w.end <= r.begin || w.begin >= r.end) continue;
      if (w.begin <= r.begin)
        r.begin = std::min(r.end, w.end);
      else
        r.end = w.begin;
    }
    if (r.end > r.begin) kept.push_back(r);
  }
  return kept;
}

IdleMemoryReleased ReleaseIdleMemory(bool measure_resident) {
  IdleMemoryReleased out;
  if (measure_resident) out.rss_before = ResidentBytes();
  Walk walk;
  walk.page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  walk.vdso = static_cast<uintptr_t>(getauxval(AT_SYSINFO_EHDR));
  walk.out = &out;
  dl_iterate_phdr(DropObject, &walk);
  malloc_trim(0);
  if (measure_resident) out.rss_after = ResidentBytes();
  return out;
}

}  // namespace vouch::agent
