#include "core/ima/ima_evaluator.h"

#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/huge_pages.h"
#include "common/openssl_handle.h"
#include "common/status_macros.h"
#include "core/ima/hash_alg.h"
#include "core/ima/ima_signature.h"

namespace vouch::core::ima {

absl::string_view ImaReasonName(Rule reason) {
  // "ima.<reason>": the part after the area (RuleName is the one spelling).
  absl::string_view name = RuleName(reason);
  const size_t dot = name.find('.');
  return dot == absl::string_view::npos ? name : name.substr(dot + 1);
}

std::string DisplayPath(absl::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t len = (c & 0xe0) == 0xc0   ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
      if (len != 0 && i + len <= raw.size() &&
          IsValidUtf8(raw.substr(i, len))) {
        out.append(raw.data() + i, len);
        i += len;
        continue;
      }
    }
    absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    ++i;
  }
  return out;
}

namespace {

std::string DigestText(const ImaEntry& e) {
  return absl::StrCat(HashAlgName(e.digest_alg), ":",
                      HexEncode(ByteSpan(e.digest, e.digest_size)));
}

}  // namespace

ContentChecker::ContentChecker(const RuntimePolicy& policy,
                               const ImaEvalOptions& options,
                               std::vector<LearnedKey>* learned)
    : policy_(policy), options_(options), learned_(learned) {
  for (const std::string& hex : options.boot_aggregates) {
    absl::StatusOr<PolicyDigest> d = ParsePolicyDigest(hex);
    if (d.ok()) boot_aggregates_.push_back(*d);
  }
}

const std::vector<VerificationKey>& ContentChecker::LearnedVerificationKeys() {
  // Decoded when a signature first needs them (most rounds verify none),
  // then kept up with Learn(). Stored keys were checked when learned and
  // when decoded; one that does not parse verifies nothing (fails closed).
  for (; decoded_ < learned_->size(); ++decoded_) {
    absl::StatusOr<VerificationKey> vk =
        ToVerificationKey((*learned_)[decoded_]);
    if (vk.ok()) learned_keys_.push_back(*std::move(vk));
  }
  return learned_keys_;
}

std::optional<std::pair<Rule, std::string>> ContentChecker::Learn(
    LearnedKey key) {
  for (const LearnedKey& k : *learned_) {
    if (k == key) return std::nullopt;
  }
  if (learned_->size() >= kMaxLearnedKeys) {
    return std::make_pair(
        Rule::kImaKeyringNotAllowed,
        absl::StrCat("more than ", kMaxLearnedKeys,
                     " keys measured into keyrings in one boot"));
  }
  learned_->push_back(std::move(key));
  return std::nullopt;
}

SignatureCheck ContentChecker::VerifySignature(const ImaEntry& e) {
  SignatureCheck s = VerifyImaSignature(policy_.verification_keys(), e.extra,
                                        e.digest_alg, e.digest, e.digest_size);
  if ((s == SignatureCheck::kNoKey || s == SignatureCheck::kInvalid) &&
      !learned_->empty()) {
    SignatureCheck t =
        VerifyImaSignature(LearnedVerificationKeys(), e.extra, e.digest_alg,
                           e.digest, e.digest_size);
    // A key with the signature's id in either set makes it kInvalid.
    if (t == SignatureCheck::kValid || s == SignatureCheck::kNoKey) s = t;
  }
  return s;
}

std::optional<std::pair<Rule, std::string>> ContentChecker::Check(
    const ImaEntry& e, const PathHash& path_hash) {
  using Result = std::optional<std::pair<Rule, std::string>>;
  if (e.pcr != kImaPcr) {
    return Result({Rule::kImaWrongPcr, absl::StrCat("entry is for PCR ", e.pcr,
                                                    ", IMA uses PCR 10")});
  }
  if (e.violation && !options_.allow_violations) {
    return Result({Rule::kImaViolation,
                   "all-zero template hash: ToMToU or open-writers violation"});
  }
  // The reject list before anything that could accept the entry.
  if (policy_.has_reject()) {
    switch (policy_.Rejects(path_hash, e.digest_alg, e.digest, e.digest_size)) {
      case RejectMatch::kDigest:
        return Result(
            {Rule::kImaRejected,
             absl::StrCat(DigestText(e), " is on the policy's reject list")});
      case RejectMatch::kPath:
        return Result(
            {Rule::kImaRejected, "path is on the policy's reject list"});
      case RejectMatch::kNone:
        break;
    }
  }
  KeyringBuffer keyring;
  if (e.tmpl == ImaTemplate::kImaBuf) keyring = ParseKeyringBuffer(e.extra);
  const bool keyring_entry = keyring.is_key;
  // An ignored keyring's key is not learned (as Keylime).
  if (keyring_entry && policy_.IsKeyringIgnored(e.path)) return std::nullopt;

  const DigestTable& table = e.tmpl != ImaTemplate::kImaBuf ? policy_.digests()
                             : keyring_entry                ? policy_.keyrings()
                                                            : policy_.ima_buf();
  // Allowed digest first: the cheapest test, and a pass whatever else holds.
  DigestMatch m =
      table.Lookup(path_hash, e.digest_alg, e.digest, e.digest_size);
  if (m == DigestMatch::kMatch) {
    // Only a key the policy names by digest is learned: one that passes by
    // an exclude alone is not (Keylime would learn it).
    if (keyring.key) return Learn(*std::move(keyring.key));
    return std::nullopt;
  }
  if (e.tmpl != ImaTemplate::kImaBuf && e.path == "boot_aggregate") {
    for (const PolicyDigest& d : boot_aggregates_) {
      if (d.size == e.digest_size && (!d.alg || *d.alg == e.digest_alg) &&
          std::memcmp(d.bytes, e.digest, d.size) == 0) {
        return std::nullopt;
      }
    }
  }
  // Excludes apply to every kind of entry (keylime/ima/ima.py).
  if (policy_.has_excludes() && policy_.IsExcluded(e.path)) {
    return std::nullopt;
  }
  std::string sig_note;
  // As Keylime: signatures count only when there are keys (the policy's
  // or learned ones); otherwise an ima-sig entry is judged by its digest
  // like ima-ng.
  if (e.tmpl == ImaTemplate::kImaSig && !e.extra.empty() &&
      (!policy_.verification_keys().empty() || !learned_->empty())) {
    SignatureCheck s = VerifySignature(e);
    if (s == SignatureCheck::kValid) return std::nullopt;
    sig_note = s == SignatureCheck::kNoKey ? "; no verification key has the "
                                             "signature's key id"
               : s == SignatureCheck::kInvalid ? "; signature does not verify"
               : s == SignatureCheck::kAlgMismatch
                   ? "; signature hash algorithm differs from the digest's"
                   : "; signature header is malformed";
    if (m == DigestMatch::kNotListed) {
      return Result({Rule::kImaBadSignature,
                     absl::StrCat("path not in policy", sig_note)});
    }
  }
  if (m == DigestMatch::kNotListed) {
    if (keyring_entry) {
      return Result({Rule::kImaKeyringNotAllowed,
                     "keyring not in the policy's keyrings"});
    }
    return Result(
        {Rule::kImaNotInPolicy, e.tmpl == ImaTemplate::kImaBuf
                                    ? "buffer name not in the policy's ima-buf"
                                    : "path not in the policy"});
  }
  return Result(
      {Rule::kImaDigestMismatch,
       absl::StrCat(DigestText(e), " is not an allowed digest", sig_note)});
}

namespace {

struct Replayer {
  explicit Replayer(const ImaEvalOptions& options)
      : sha1(HashAlg::kSha1),
        sha256(HashAlg::kSha256),
        replay_sha1(options.replay_sha1),
        replay_sha256(options.replay_sha256) {}

  // Verifies the entry's template hash and extends the banks. False when the
  // template hash is wrong.
  absl::StatusOr<bool> Apply(const ImaEntry& e, ImaReplayState* s) {
    uint8_t h_sha1[20];
    uint8_t h_sha256[32];
    bool have_sha1 = false;
    bool have_sha256 = false;
    if (e.violation) {
      std::memset(h_sha1, 0xff, sizeof h_sha1);
      std::memset(h_sha256, 0xff, sizeof h_sha256);
      have_sha1 = have_sha256 = true;
    } else {
      uint8_t computed[kMaxDigestSize];
      Digester* d = e.template_hash_alg == HashAlg::kSha1     ? &sha1
                    : e.template_hash_alg == HashAlg::kSha256 ? &sha256
                                                              : nullptr;
      std::optional<Digester> other;
      if (d == nullptr) {
        other.emplace(e.template_hash_alg);
        d = &*other;
      }
      if (!d->Digest(e.template_data, computed)) {
        return absl::InternalError("template hash computation failed");
      }
      if (std::memcmp(computed, e.template_hash, d->size()) != 0) return false;
      if (e.template_hash_alg == HashAlg::kSha1) {
        std::memcpy(h_sha1, computed, 20);
        have_sha1 = true;
      } else if (e.template_hash_alg == HashAlg::kSha256) {
        std::memcpy(h_sha256, computed, 32);
        have_sha256 = true;
      }
      // Other banks get that bank's hash of the template data (kernel 5.11+,
      // ima_calc_field_array_hash per TPM bank).
      if (replay_sha1 && !have_sha1 && !sha1.Digest(e.template_data, h_sha1)) {
        return absl::InternalError("SHA-1 failed");
      }
      if (replay_sha256 && !have_sha256 &&
          !sha256.Digest(e.template_data, h_sha256)) {
        return absl::InternalError("SHA-256 failed");
      }
    }
    if (replay_sha1 &&
        !sha1.Digest2(s->pcr_sha1.data(), 20, h_sha1, 20, s->pcr_sha1.data())) {
      return absl::InternalError("SHA-1 failed");
    }
    if (replay_sha256 && !sha256.Digest2(s->pcr_sha256.data(), 32, h_sha256, 32,
                                         s->pcr_sha256.data())) {
      return absl::InternalError("SHA-256 failed");
    }
    ++s->next_entry_index;
    return true;
  }

  Digester sha1;
  Digester sha256;
  bool replay_sha1;
  bool replay_sha256;
};

// One parsed entry as the content pass needs it (views into the chunk).
struct Pending {
  PathHash hash;
  absl::string_view path;
  size_t offset = 0;
  uint32_t pcr = 0;
  size_t digest_offset = 0;  // Into the digest arena.
  ImaTemplate tmpl = ImaTemplate::kImaNg;
  HashAlg digest_alg = HashAlg::kSha1;
  uint8_t digest_size = 0;
  bool violation = false;
};

Pending Keep(const ImaEntry& e, size_t digest_offset) {
  Pending pe;
  pe.path = e.path;
  pe.offset = e.offset;
  pe.pcr = e.pcr;
  pe.digest_offset = digest_offset;
  pe.tmpl = e.tmpl;
  pe.digest_alg = e.digest_alg;
  pe.digest_size = static_cast<uint8_t>(e.digest_size);
  pe.violation = e.violation;
  return pe;
}

bool Matches(const ImaReplayState& s, const QuotedPcr10& q) {
  return (!q.sha1 || *q.sha1 == s.pcr_sha1) &&
         (!q.sha256 || *q.sha256 == s.pcr_sha256);
}

// Counts a failure in `*count` and lists it in `*list` below the cap;
// false when it was only counted.
bool ListFailure(std::vector<ImaFailure>* list, uint64_t* count,
                 const ImaEvalOptions& options, uint64_t index,
                 absl::string_view path, Rule why, std::string detail) {
  ++*count;
  if (list->size() >= options.max_listed_failures) return false;
  list->push_back({index, std::string(path), why, std::move(detail)});
  return true;
}

// A failure of the verdict: listed failures are also the verdict's.
void AddFailure(ImaEvaluation* r, const ImaEvalOptions& options, uint64_t index,
                absl::string_view path, Rule why, std::string detail) {
  if (ListFailure(&r->failures, &r->failure_count, options, index, path, why,
                  std::move(detail))) {
    r->verdict.AddFailure(
        why, absl::StrCat("entry ", index, " ", DisplayPath(path), ": ",
                          r->failures.back().detail));
  }
}

// What an update window may turn into a pass: a file whose digest (or
// signature) the active policy does not know; see ImaRollout::window.
bool WindowMayRescue(const ImaEntry& e, Rule why) {
  if (e.tmpl == ImaTemplate::kImaBuf) return false;
  return why == Rule::kImaNotInPolicy || why == Rule::kImaDigestMismatch ||
         why == Rule::kImaBadSignature;
}

}  // namespace

namespace {

absl::Status CheckArguments(const std::optional<QuotedPcr10>& quoted,
                            const ImaEvalOptions& options) {
  if (!options.replay_sha1 && !options.replay_sha256) {
    return absl::InvalidArgumentError("replay at least one PCR bank");
  }
  if (quoted) {
    if (!quoted->sha1 && !quoted->sha256) {
      return absl::InvalidArgumentError("quoted PCR 10 has no bank");
    }
    if ((quoted->sha1 && !options.replay_sha1) ||
        (quoted->sha256 && !options.replay_sha256)) {
      return absl::InvalidArgumentError(
          "a quoted PCR 10 bank is not being replayed");
    }
  }
  return absl::OkStatus();
}

// The policy and the roll-out candidates must hash paths with `key`.
absl::Status CheckKeys(const RuntimePolicy* policy, const PathHashKey& key,
                       const ImaEvalOptions& options) {
  if (policy == nullptr) return absl::InternalError("no policy to check");
  if (policy->path_hash_key() != key) {
    return absl::InvalidArgumentError(
        "the policy was loaded with another path-hash key");
  }
  for (const RuntimePolicy* p :
       {options.rollout.window, options.rollout.shadow}) {
    if (p != nullptr && p->path_hash_key() != key) {
      return absl::InvalidArgumentError(
          "a roll-out policy was loaded with another path-hash key");
    }
  }
  return absl::OkStatus();
}

// What pass 1 keeps of each entry for pass 2.
struct Kept {
  std::vector<Pending> pending;
  std::vector<uint8_t> digests;
};

// Pass 1: integrity. Parses the chunk, checks template hashes, replays, and
// finds the accepted prefix. With `kept`, keeps what the content pass needs
// of each entry (with its path hash when `key` is given: computed while the
// bytes are in cache, it lets the content pass prefetch policy slots). Tells
// `progress` now and then how many entries are proven. False when the chunk
// failed (a bad template hash or no prefix matching the quote: `r` says why
// and is final).
using Progress = absl::FunctionRef<void(uint64_t, std::optional<HashAlg>)>;

absl::StatusOr<bool> IntegrityPass(const ImaReplayState& state,
                                   const std::optional<QuotedPcr10>& quoted,
                                   const PathHashKey* key,
                                   const ImaEvalOptions& options,
                                   ImaLogParser& parser, Kept* kept,
                                   Progress progress, ImaEvaluation& r) {
  r.state = state;
  r.pcr_checked = quoted.has_value();
  r.format = parser.format();
  Replayer replayer(options);
  ImaReplayState running = state;
  ImaEntry e;
  bool matched = quoted && Matches(running, *quoted);
  ImaReplayState accepted = state;
  size_t accepted_bytes = 0;
  uint64_t accepted_entries = 0;
  constexpr uint64_t kPublishEvery = 1024;
  while (true) {
    VOUCH_ASSIGN_OR_RETURN(bool more, parser.Next(&e));
    if (!more) break;
    ++r.entries_parsed;
    if (kept != nullptr) {
      Pending& pe = kept->pending.emplace_back(Keep(e, kept->digests.size()));
      if (key != nullptr) pe.hash = SipHash128(*key, e.path);
      kept->digests.insert(kept->digests.end(), e.digest,
                           e.digest + e.digest_size);
    }
    VOUCH_ASSIGN_OR_RETURN(bool good, replayer.Apply(e, &running));
    if (!good) {
      AddFailure(&r, options, e.index, e.path, Rule::kImaBadTemplateHash,
                 absl::StrCat(HashAlgName(e.template_hash_alg),
                              " template hash does not match the ",
                              TemplateName(e.tmpl), " template data"));
      r.state = state;
      r.verdict.MarkComplete();
      return false;  // State unchanged, nothing accepted, no content checked.
    }
    if (quoted && !matched && Matches(running, *quoted)) {
      matched = true;
      accepted = running;
      accepted_bytes = parser.offset();
      accepted_entries = r.entries_parsed;
    }
    if (r.entries_parsed % kPublishEvery == 0) {
      progress(r.entries_parsed, parser.binary_hash_alg());
    }
  }
  if (!quoted) {
    accepted = running;
    accepted_bytes = parser.offset();
    accepted_entries = r.entries_parsed;
  } else if (!matched) {
    AddFailure(&r, options, state.next_entry_index + r.entries_parsed, "",
               Rule::kImaPcrMismatch,
               absl::StrCat("no prefix of the ", r.entries_parsed,
                            " entries replays to the quoted PCR 10"));
    r.state = state;
    r.verdict.MarkComplete();
    return false;
  }
  r.pcr_matched = quoted.has_value();
  r.state = accepted;
  r.bytes_accepted = accepted_bytes;
  r.entries_accepted = accepted_entries;
  return true;
}

// Pass 2: content, on kept entries in log order, a range at a time. Writes
// failures, window and shadow results into `*r`; Finish() its learned keys.
class ContentPass {
 public:
  ContentPass(const ImaReplayState& state, const RuntimePolicy& policy,
              const ImaEvalOptions& options, ImaEvaluation* r)
      : state_(state),
        options_(options),
        r_(r),
        digests_(policy.digests()),
        learned_(state.learned_keys),
        checker_(policy, options, &learned_) {
    // The window's candidate reads the same learned keys but never adds to
    // them (it judges no keyring entry); the shadow keeps its own.
    if (options.rollout.window != nullptr) {
      window_checker_.emplace(*options.rollout.window, options, &learned_);
    }
    if (options.rollout.shadow != nullptr) {
      shadow_learned_ = state.learned_keys;
      shadow_checker_.emplace(*options.rollout.shadow, options,
                              &shadow_learned_);
      r->shadow_checked = true;
    }
  }
  ContentPass(const ContentPass&) = delete;
  ContentPass& operator=(const ContentPass&) = delete;

  // Entries [begin, end) of `pending`, whose path hashes pass 1 computed.
  absl::Status Run(absl::string_view chunk,
                   std::optional<HashAlg> binary_hash_alg,
                   const Pending* pending, const uint8_t* kept_digests,
                   uint64_t begin, uint64_t end) {
    for (uint64_t i = begin; i < end; ++i) {
      if (i + kSlotAhead < end) {
        digests_.PrefetchSlot(pending[i + kSlotAhead].hash);
      }
      if (i + kDigestsAhead < end) {
        digests_.PrefetchDigests(pending[i + kDigestsAhead].hash);
      }
      VOUCH_RETURN_IF_ERROR(Check(chunk, binary_hash_alg, pending[i],
                                  kept_digests + pending[i].digest_offset, i));
    }
    return absl::OkStatus();
  }

  // The next entries of `parser` (reading the same chunk as pass 1, in
  // content-only mode) until `end` entries were checked: nothing is kept
  // per entry but a few parsed ahead, whose path hashes this pass computes
  // (for the prefetches). Called again with a larger `end` to go on.
  absl::Status RunParsed(ImaLogParser& parser, absl::string_view chunk,
                         std::optional<HashAlg> binary_hash_alg, uint64_t end,
                         const PathHashKey& key) {
    ImaEntry e;
    while (checked_ < end) {
      while (parsed_ < end && parsed_ < checked_ + kSlotAhead + 1) {
        VOUCH_ASSIGN_OR_RETURN(bool more, parser.Next(&e));
        if (!more) return absl::InternalError("IMA log changed while checked");
        Ahead& a = ring_[parsed_ % kRing];
        a.pe = Keep(e, 0);
        a.pe.hash = SipHash128(key, e.path);
        std::memcpy(a.digest, e.digest, e.digest_size);
        digests_.PrefetchSlot(a.pe.hash);
        ++parsed_;
      }
      if (checked_ + kDigestsAhead < parsed_) {
        digests_.PrefetchDigests(
            ring_[(checked_ + kDigestsAhead) % kRing].pe.hash);
      }
      const Ahead& a = ring_[checked_ % kRing];
      VOUCH_RETURN_IF_ERROR(
          Check(chunk, binary_hash_alg, a.pe, a.digest, checked_));
      ++checked_;
    }
    return absl::OkStatus();
  }

  void Finish() { r_->state.learned_keys = std::move(learned_); }
  uint64_t checked() const { return checked_; }

 private:
  static constexpr uint64_t kSlotAhead = 8;
  static constexpr uint64_t kDigestsAhead = 4;
  static constexpr uint64_t kRing = 16;  // > kSlotAhead.

  // Entry number `i` of the chunk, as kept by pass 1 (`digest`: its bytes).
  absl::Status Check(absl::string_view chunk,
                     std::optional<HashAlg> binary_hash_alg, const Pending& pe,
                     const uint8_t* digest, uint64_t i) {
    const uint64_t index = state_.next_entry_index + i;
    if (pe.tmpl == ImaTemplate::kImaSig || pe.tmpl == ImaTemplate::kImaBuf) {
      // Rare: the signature/buffer is needed; read this entry again. The
      // parser owns the decoded bytes, so it lives until the check ran.
      one_.emplace(chunk.substr(pe.offset), index, binary_hash_alg,
                   ParseMode::kContentOnly);
      VOUCH_ASSIGN_OR_RETURN(bool more, one_->Next(&e_));
      if (!more) return absl::InternalError("IMA log changed while checked");
    } else {
      e_.index = index;
      e_.offset = pe.offset;
      e_.pcr = pe.pcr;
      e_.tmpl = pe.tmpl;
      e_.violation = pe.violation;
      e_.digest_alg = pe.digest_alg;
      e_.digest_size = pe.digest_size;
      std::memcpy(e_.digest, digest, pe.digest_size);
      e_.path = pe.path;
      e_.extra = {};
      e_.template_data = {};
    }
    if (shadow_checker_) {
      if (auto bad = shadow_checker_->Check(e_, pe.hash)) {
        ListFailure(&r_->shadow_failures, &r_->shadow_failure_count, options_,
                    index, e_.path, bad->first, std::move(bad->second));
      }
    }
    if (auto bad = checker_.Check(e_, pe.hash)) {
      if (window_checker_ && WindowMayRescue(e_, bad->first) &&
          !window_checker_->Check(e_, pe.hash)) {
        ++r_->window_accepted;
        return absl::OkStatus();
      }
      AddFailure(r_, options_, index, e_.path, bad->first,
                 std::move(bad->second));
    }
    return absl::OkStatus();
  }

  struct Ahead {
    Pending pe;
    uint8_t digest[kMaxDigestSize];
  };

  const ImaReplayState& state_;
  const ImaEvalOptions& options_;
  ImaEvaluation* r_;
  const DigestTable& digests_;
  std::vector<LearnedKey> learned_;
  ContentChecker checker_;
  std::optional<ContentChecker> window_checker_;
  std::vector<LearnedKey> shadow_learned_;
  std::optional<ContentChecker> shadow_checker_;
  ImaEntry e_;
  std::optional<ImaLogParser> one_;
  // RunParsed: entries parsed so far, checked so far, the ones in between.
  uint64_t parsed_ = 0;
  uint64_t checked_ = 0;
  Ahead ring_[kRing];
};

// Integrity only: violations still count as failures.
void ListViolations(const std::vector<Pending>& pending, uint64_t accepted,
                    const ImaReplayState& state, const ImaEvalOptions& options,
                    ImaEvaluation& r) {
  if (options.allow_violations) return;
  for (uint64_t i = 0; i < accepted; ++i) {
    if (pending[i].violation) {
      AddFailure(&r, options, state.next_entry_index + i, pending[i].path,
                 Rule::kImaViolation,
                 "all-zero template hash: ToMToU or open-writers violation");
    }
  }
}

// Both entry points of the one-thread evaluation: `key` null means integrity
// only (no path hashes, no content pass); otherwise the content pass runs on
// await_policy()'s policy.
absl::StatusOr<ImaEvaluation> Evaluate(
    const ImaReplayState& state, absl::string_view chunk,
    const std::optional<QuotedPcr10>& quoted, const PathHashKey* key,
    absl::FunctionRef<absl::StatusOr<const RuntimePolicy*>()> await_policy,
    const ImaEvalOptions& options) {
  VOUCH_RETURN_IF_ERROR(CheckArguments(quoted, options));
  ImaEvaluation r;
  ImaLogParser parser(chunk, state.next_entry_index);
  // Sized once from the chunk: an ima-ng entry takes at least ~100 bytes in
  // either format, so this rarely regrows (a regrow of a 200k-entry vector
  // copies it and faults in twice the memory). Huge pages: a whole boot's
  // log makes tens of MB here, faulted in once.
  Kept kept;
  ReserveHuge(kept.pending, chunk.size() / 128 + 16);
  ReserveHuge(kept.digests, (chunk.size() / 128 + 16) * 32);
  VOUCH_ASSIGN_OR_RETURN(bool proven,
                         IntegrityPass(
                             state, quoted, key, options, parser, &kept,
                             [](uint64_t, std::optional<HashAlg>) {}, r));
  if (!proven) return r;
  if (key != nullptr) {
    VOUCH_ASSIGN_OR_RETURN(const RuntimePolicy* policy, await_policy());
    VOUCH_RETURN_IF_ERROR(CheckKeys(policy, *key, options));
    ContentPass content(state, *policy, options, &r);
    VOUCH_RETURN_IF_ERROR(content.Run(chunk, parser.binary_hash_alg(),
                                      kept.pending.data(), kept.digests.data(),
                                      0, r.entries_accepted));
    content.Finish();
  } else {
    ListViolations(kept.pending, r.entries_accepted, state, options, r);
  }
  r.verdict.MarkComplete();
  return r;
}

}  // namespace

absl::StatusOr<ImaEvaluation> EvaluateImaLog(
    const ImaReplayState& state, absl::string_view chunk,
    const std::optional<QuotedPcr10>& quoted, const RuntimePolicy* policy,
    const ImaEvalOptions& options) {
  return Evaluate(
      state, chunk, quoted, policy ? &policy->path_hash_key() : nullptr,
      [policy]() -> absl::StatusOr<const RuntimePolicy*> { return policy; },
      options);
}

absl::StatusOr<ImaEvaluation> EvaluateImaLogAwaitingPolicy(
    const ImaReplayState& state, absl::string_view chunk,
    const std::optional<QuotedPcr10>& quoted, const PathHashKey& key,
    absl::FunctionRef<absl::StatusOr<const RuntimePolicy*>()> await_policy,
    const ImaEvalOptions& options) {
  return Evaluate(state, chunk, quoted, &key, await_policy, options);
}

absl::StatusOr<ImaReplayOutcome> ReplayImaLog(
    const ImaReplayState& state, absl::string_view chunk,
    const std::optional<QuotedPcr10>& quoted, const ImaEvalOptions& options,
    absl::FunctionRef<void(uint64_t, std::optional<HashAlg>)> progress) {
  VOUCH_RETURN_IF_ERROR(CheckArguments(quoted, options));
  ImaReplayOutcome out;
  ImaLogParser parser(chunk, state.next_entry_index);
  VOUCH_ASSIGN_OR_RETURN(out.proven,
                         IntegrityPass(state, quoted, nullptr, options, parser,
                                       nullptr, progress, out.evaluation));
  out.binary_hash_alg = parser.binary_hash_alg();
  return out;
}

struct ImaContentChecks::Impl {
  Impl(const ImaReplayState& s, absl::string_view c, const RuntimePolicy& p,
       const PathHashKey& k, const ImaEvalOptions& o)
      : state(s), chunk(c), policy(p), key(k), options(o) {
    Reset();
  }
  // Starts over from the chunk's first entry.
  void Reset() {
    content = ImaEvaluation();
    pass = std::make_unique<ContentPass>(state, policy, options, &content);
    parser.reset();
  }

  const ImaReplayState state;
  const absl::string_view chunk;
  const RuntimePolicy& policy;
  const PathHashKey key;
  const ImaEvalOptions options;
  ImaEvaluation content;  // What `pass` found.
  std::unique_ptr<ContentPass> pass;
  std::optional<ImaLogParser> parser;
};

absl::StatusOr<std::unique_ptr<ImaContentChecks>> ImaContentChecks::Start(
    const ImaReplayState& state, absl::string_view chunk,
    const RuntimePolicy* policy, const PathHashKey& key,
    const ImaEvalOptions& options) {
  VOUCH_RETURN_IF_ERROR(CheckKeys(policy, key, options));
  std::unique_ptr<ImaContentChecks> checks(new ImaContentChecks());
  checks->impl_ = std::make_unique<Impl>(state, chunk, *policy, key, options);
  return checks;
}

ImaContentChecks::ImaContentChecks() = default;
ImaContentChecks::~ImaContentChecks() = default;

uint64_t ImaContentChecks::checked() const { return impl_->pass->checked(); }

absl::Status ImaContentChecks::CheckUpTo(
    uint64_t end, std::optional<HashAlg> binary_hash_alg) {
  Impl& m = *impl_;
  if (!m.parser) {
    m.parser.emplace(m.chunk, m.state.next_entry_index, binary_hash_alg,
                     ParseMode::kContentOnly);
  }
  return m.pass->RunParsed(*m.parser, m.chunk, binary_hash_alg, end, m.key);
}

absl::StatusOr<ImaEvaluation> ImaContentChecks::Complete(
    ImaReplayOutcome pass1) {
  ImaEvaluation r = std::move(pass1.evaluation);
  if (!pass1.proven) return r;  // Final: a failed chunk checks no content.
  Impl& m = *impl_;
  // Checked past the accepted prefix (a quote matched before the end):
  // those results are not this evaluation's.
  if (checked() > r.entries_accepted) m.Reset();
  VOUCH_RETURN_IF_ERROR(CheckUpTo(r.entries_accepted, pass1.binary_hash_alg));
  m.pass->Finish();
  r.verdict.Merge(m.content.verdict);
  r.failures = std::move(m.content.failures);
  r.failure_count = m.content.failure_count;
  r.window_accepted = m.content.window_accepted;
  r.shadow_checked = m.content.shadow_checked;
  r.shadow_failures = std::move(m.content.shadow_failures);
  r.shadow_failure_count = m.content.shadow_failure_count;
  r.state.learned_keys = std::move(m.content.state.learned_keys);
  r.verdict.MarkComplete();
  return r;
}

}  // namespace vouch::core::ima
