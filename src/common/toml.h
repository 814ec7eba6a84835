// File: common/toml.h
// toml++ as Vouch uses it: header-only with exceptions off, so a parse
// failure is a value, not a throw (house rule: no exceptions in project
// code). Include this, never <toml++/toml.h> directly. Thread-safe as
// toml++ is (parsing shares nothing).
//
// toml++ 3.3 also states internal assumptions about its input as assert() in
// debug builds and as __builtin_assume() (undefined behaviour if false) in
// release builds with clang. fuzz/fuzz_config found input that breaks one
// ("[=" reaches parse_key), after which toml++ itself reports a clean parse
// error. So its assertions are compiled as no-ops in both modes: NDEBUG is
// hidden while the header is read, which routes TOML_ASSERT_ASSUME to our
// TOML_ASSERT instead of to __builtin_assume.
//
//   toml::parse_result parsed = toml::parse(text, path);
//   if (!parsed) return Error(parsed.error().description());
#ifndef VOUCH_COMMON_TOML_H_
#define VOUCH_COMMON_TOML_H_

#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#pragma push_macro("NDEBUG")
#undef NDEBUG
#define TOML_ASSERT(expr) static_cast<void>(0)
#include <toml++/toml.h>
#pragma pop_macro("NDEBUG")

#endif  // VOUCH_COMMON_TOML_H_
