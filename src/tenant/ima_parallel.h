// File: tenant/ima_parallel.h
// A whole IMA log checked on two threads (vouchctl ima check): this thread
// replays the log (core's pass 1) while a second one loads the policy and
// then checks the content of the entries already proven (pass 2). Core
// itself starts no thread; this is where its two passes meet.
//
//   auto r = EvaluateImaLogWhileLoading({}, log, std::nullopt, key,
//                                       [&] { return LoadPolicy(); });
#ifndef VOUCH_TENANT_IMA_PARALLEL_H_
#define VOUCH_TENANT_IMA_PARALLEL_H_

#include <functional>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/ima/ima_evaluator.h"

namespace vouch::tenant {

// EvaluateImaLog's result with the policy `load_policy` returns, which it
// runs on the second thread (once, also when the log fails: a caller may
// report a bad policy first). The policy must have been loaded with `key`
// (kInvalidArgument otherwise); the load's error is returned as is.
absl::StatusOr<core::ima::ImaEvaluation> EvaluateImaLogWhileLoading(
    const core::ima::ImaReplayState& state, absl::string_view chunk,
    const std::optional<core::ima::QuotedPcr10>& quoted,
    const core::ima::PathHashKey& key,
    std::function<absl::StatusOr<const core::ima::RuntimePolicy*>()>
        load_policy,
    const core::ima::ImaEvalOptions& options = {});

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_IMA_PARALLEL_H_
