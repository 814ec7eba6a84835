// File: core/verdict.h
// The result of evaluating evidence: a value with reasons, not an error
// status. It fails closed: a Verdict passes only when the evaluator declared
// that every check it owes has run and none recorded a failure. A default
// constructed Verdict is a FAIL. Each failure names its rule as a Rule
// (rule.h; RuleName gives the stable text). Pure value type; not
// synchronised.
//
//   Verdict v;
//   if (!nonce_ok) v.AddFailure(Rule::kQuoteNonce, "extraData differs");
//   v.MarkComplete();
//   if (v.passed()) ...
#ifndef VOUCH_CORE_VERDICT_H_
#define VOUCH_CORE_VERDICT_H_

#include <string>
#include <utility>
#include <vector>

#include "core/rule.h"

namespace vouch::core {

struct Failure {
  Rule rule;           // What failed; RuleName(rule) is e.g. "quote.nonce".
  std::string detail;  // For operators; never holds an expected secret.
};

class Verdict {
 public:
  void AddFailure(Rule rule, std::string detail) {
    failures_.push_back({rule, std::move(detail)});
  }
  // Declares that every check ran. Without it the verdict stays FAIL.
  void MarkComplete() { complete_ = true; }
  // Folds another verdict's failures in (and its incompleteness).
  void Merge(const Verdict& other) {
    failures_.insert(failures_.end(), other.failures_.begin(),
                     other.failures_.end());
    complete_ = complete_ && other.complete_;
  }

  bool passed() const { return complete_ && failures_.empty(); }
  bool complete() const { return complete_; }
  const std::vector<Failure>& failures() const { return failures_; }

 private:
  bool complete_ = false;
  std::vector<Failure> failures_;
};

}  // namespace vouch::core

#endif  // VOUCH_CORE_VERDICT_H_
