// What the agent gives back between pushes (agent/idle_memory.h): which
// segments of a loaded object may be dropped, and, in this process, that
// dropping them lowers the resident file pages while code, relocated
// read-only data, written data and the heap stay intact.
#include "agent/idle_memory.h"

#include <elf.h>
#include <openssl/sha.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"

namespace vouch::agent {
namespace {

constexpr size_t kPage = 4096;

ElfW(Phdr) Load(uintptr_t vaddr, size_t filesz, size_t memsz, int flags) {
  ElfW(Phdr) ph{};
  ph.p_type = PT_LOAD;
  ph.p_vaddr = vaddr;
  ph.p_filesz = filesz;
  ph.p_memsz = memsz;
  ph.p_flags = flags;
  return ph;
}

dl_phdr_info Object(const std::vector<ElfW(Phdr)>& phdrs, uintptr_t base) {
  dl_phdr_info info{};
  info.dlpi_addr = base;
  info.dlpi_phdr = phdrs.data();
  info.dlpi_phnum = static_cast<ElfW(Half)>(phdrs.size());
  return info;
}

TEST_CASE("read-only segments: whole pages of the non-writable loads",
          "[agent][memory]") {
  const uintptr_t base = 0x7f0000000000;
  std::vector<ElfW(Phdr)> phdrs = {
      Load(0x0, 0x1234, 0x1234, PF_R),            // headers, rodata
      Load(0x2000, 0x5100, 0x5100, PF_R | PF_X),  // text
      Load(0x9000, 0x300, 0x2000, PF_R),          // file part, then zeros
      Load(0xc000, 0x800, 0x900, PF_R | PF_W),    // data, RELRO, bss
  };
  const std::vector<PageRange> got =
      ReadOnlySegments(Object(phdrs, base), kPage);
  REQUIRE(got.size() == 2);
  CHECK(got[0].begin == base);
  CHECK(got[0].end == base + 0x2000);
  CHECK(got[1].begin == base + 0x2000);
  CHECK(got[1].end == base + 0x8000);
  // The third load maps less than a page of file: nothing whole to drop.
}

TEST_CASE("read-only segments: never a page of a writable segment",
          "[agent][memory]") {
  std::vector<ElfW(Phdr)> phdrs = {
      Load(0x1000, 0x1800, 0x1800, PF_R | PF_X),  // ends mid-page 0x2000
      Load(0x2800, 0x400, 0x400, PF_R | PF_W),    // starts in that page
  };
  const std::vector<PageRange> got = ReadOnlySegments(Object(phdrs, 0), kPage);
  REQUIRE(got.size() == 1);
  CHECK(got[0].begin == 0x1000);
  CHECK(got[0].end == 0x2000);

  // Wholly inside a writable one: nothing.
  phdrs = {Load(0x4000, 0x3000, 0x3000, PF_R | PF_W),
           Load(0x5000, 0x800, 0x800, PF_R)};
  CHECK(ReadOnlySegments(Object(phdrs, 0), kPage).empty());
}

TEST_CASE("read-only segments: objects with text relocations are skipped",
          "[agent][memory]") {
  for (const bool as_flag : {false, true}) {
    ElfW(Dyn) dyn[3]{};
    if (as_flag) {
      dyn[0].d_tag = DT_FLAGS;
      dyn[0].d_un.d_val = DF_BIND_NOW | DF_TEXTREL;
    } else {
      dyn[0].d_tag = DT_TEXTREL;
    }
    dyn[1].d_tag = DT_NULL;
    ElfW(Phdr) dynamic{};
    dynamic.p_type = PT_DYNAMIC;
    dynamic.p_vaddr = reinterpret_cast<uintptr_t>(dyn);
    dynamic.p_memsz = sizeof dyn;
    std::vector<ElfW(Phdr)> phdrs = {Load(0x1000, 0x4000, 0x4000, PF_R | PF_X),
                                     dynamic};
    CHECK(ReadOnlySegments(Object(phdrs, 0), kPage).empty());
    // The same object without the text relocation: its text is dropped.
    dyn[0].d_tag = DT_FLAGS;
    dyn[0].d_un.d_val = DF_BIND_NOW;
    CHECK(ReadOnlySegments(Object(phdrs, 0), kPage).size() == 1);
  }
}

TEST_CASE("read-only segments: a page size that is not a power of two",
          "[agent][memory]") {
  std::vector<ElfW(Phdr)> phdrs = {Load(0x0, 0x4000, 0x4000, PF_R | PF_X)};
  CHECK(ReadOnlySegments(Object(phdrs, 0), 0).empty());
  CHECK(ReadOnlySegments(Object(phdrs, 0), 3000).empty());
}

// Resident file-backed memory of this process, in kB.
long RssFileKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssFile:", 0) == 0) return std::stol(line.substr(8));
  }
  return -1;
}

struct Shape {
  virtual ~Shape() = default;
  virtual int Sides() const = 0;
};
struct Triangle : Shape {
  int Sides() const override { return 3; }
};

// Pointers the loader relocates, kept read-only afterwards (RELRO).
const char* const kRelocated[] = {"quote", "ima", "boot log"};
int g_written = 0;  // Written at run time: a private page of .data.

std::string Sha256Hex(const std::string& s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return absl::BytesToHexString(
      std::string(reinterpret_cast<const char*>(d), sizeof d));
}

TEST_CASE("releasing idle memory in a running process", "[agent][memory]") {
  g_written = 4242;
  auto heap = std::make_unique<std::string>(100000, 'h');
  std::unique_ptr<Shape> shape = std::make_unique<Triangle>();
  REQUIRE(Sha256Hex("abc").size() == 64);  // libcrypto's pages are in use.

  const long before = RssFileKb();
  REQUIRE(before > 0);
  const IdleMemoryReleased r = ReleaseIdleMemory(/*measure_resident=*/true);
  const long after = RssFileKb();

  CHECK(r.objects >= 2);  // This program and its shared libraries.
  CHECK(r.bytes > 1024 * 1024);
  CHECK(r.rss_before > 0);
  CHECK(r.rss_after > 0);
  CHECK(after < before);

  // Everything still works and reads the same.
  CHECK(g_written == 4242);
  CHECK(std::strcmp(kRelocated[2], "boot log") == 0);
  CHECK(shape->Sides() == 3);
  CHECK(*heap == std::string(100000, 'h'));
  CHECK(Sha256Hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  // And again: a second release finds the same objects; unmeasured, it
  // leaves the resident sizes 0.
  const IdleMemoryReleased again = ReleaseIdleMemory(false);
  CHECK(again.objects == r.objects);
  CHECK(again.rss_before == 0);
  CHECK(again.rss_after == 0);
}

}  // namespace
}  // namespace vouch::agent
