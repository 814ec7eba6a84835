#include "core/label_selector.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vouch::core {
namespace {

// Characters that may appear in a key or a value (join.h); the parser takes
// the longest run of them as one word and checks it afterwards.
bool WordChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '/' || c == '-';
}

class Parser {
 public:
  Parser(absl::string_view text, absl::string_view field)
      : text_(text), field_(field) {}

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(field_, ": ", what, " at position ", pos_ + 1));
  }
  void SkipBlanks() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t'))
      ++pos_;
  }
  bool AtEnd() {
    SkipBlanks();
    return pos_ >= text_.size();
  }
  bool Take(absl::string_view token) {
    SkipBlanks();
    if (!absl::StartsWith(text_.substr(pos_), token)) return false;
    pos_ += token.size();
    return true;
  }
  std::string Word() {
    SkipBlanks();
    const size_t start = pos_;
    while (pos_ < text_.size() && WordChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }
  // "in" / "notin" followed by '(' (so a key named "in" still parses).
  bool TakeSetOp(absl::string_view op) {
    const size_t save = pos_;
    if (Word() == op && Take("(")) {
      --pos_;  // leave '(' for the set
      return true;
    }
    pos_ = save;
    return false;
  }

  absl::StatusOr<std::string> Key() {
    const std::string key = Word();
    if (!ValidLabelKey(key)) {
      return Error(
          "expected a label key (1..63 bytes of [a-z0-9._/-], starting with "
          "[a-z0-9])");
    }
    return key;
  }
  absl::StatusOr<std::string> Value() {
    const size_t start = pos_;
    const std::string value = Word();
    if (!ValidLabelValue(value)) {
      pos_ = start;
      return Error("label values are 0..63 bytes of [A-Za-z0-9._-]");
    }
    return value;
  }
  absl::Status Set(Requirement* r) {
    if (!Take("(")) return Error("expected '('");
    do {
      auto v = Value();
      if (!v.ok()) return v.status();
      if (v->empty()) return Error("expected a value in the set");
      if (r->values.size() == kMaxSetValues) {
        return Error(
            absl::StrCat("at most ", kMaxSetValues, " values in a set"));
      }
      r->values.push_back(*std::move(v));
    } while (Take(","));
    if (!Take(")")) return Error("expected ',' or ')'");
    std::sort(r->values.begin(), r->values.end());
    r->values.erase(std::unique(r->values.begin(), r->values.end()),
                    r->values.end());
    return absl::OkStatus();
  }

  absl::StatusOr<Requirement> Next() {
    Requirement r;
    if (Take("!")) {
      auto k = Key();
      if (!k.ok()) return k.status();
      r.key = *std::move(k);
      r.op = Requirement::Op::kNotExists;
      return r;
    }
    auto k = Key();
    if (!k.ok()) return k.status();
    r.key = *std::move(k);
    if (Take("!=")) {
      r.op = Requirement::Op::kNotEquals;
    } else if (Take("==") || Take("=")) {
      r.op = Requirement::Op::kEquals;
    } else if (TakeSetOp("notin")) {
      r.op = Requirement::Op::kNotIn;
      if (absl::Status s = Set(&r); !s.ok()) return s;
      return r;
    } else if (TakeSetOp("in")) {
      r.op = Requirement::Op::kIn;
      if (absl::Status s = Set(&r); !s.ok()) return s;
      return r;
    } else {
      SkipBlanks();
      if (pos_ < text_.size() && text_[pos_] != ',') {
        return Error("expected =, ==, !=, in (...), notin (...) or ','");
      }
      r.op = Requirement::Op::kExists;
      return r;
    }
    auto v = Value();
    if (!v.ok()) return v.status();
    r.values.push_back(*std::move(v));
    return r;
  }

 private:
  absl::string_view text_;
  absl::string_view field_;
  size_t pos_ = 0;
};

}  // namespace

bool ValidLabelKey(absl::string_view key) {
  if (key.empty() || key.size() > 63 ||
      !(absl::ascii_islower(static_cast<unsigned char>(key[0])) ||
        absl::ascii_isdigit(static_cast<unsigned char>(key[0])))) {
    return false;
  }
  return std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_islower(static_cast<unsigned char>(c)) ||
           absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.' ||
           c == '_' || c == '/' || c == '-';
  });
}

bool ValidLabelValue(absl::string_view value) {
  return value.size() <= 63 &&
         std::all_of(value.begin(), value.end(), [](char c) {
           return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                  c == '.' || c == '_' || c == '-';
         });
}

absl::StatusOr<Selector> ParseSelector(absl::string_view text,
                                       absl::string_view field) {
  if (text.size() > kMaxSelectorBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": a selector is at most ", kMaxSelectorBytes, " bytes"));
  }
  Selector out;
  Parser p(text, field);
  if (p.AtEnd()) return out;
  do {
    if (out.reqs_.size() == kMaxRequirements) {
      return p.Error(absl::StrCat("at most ", kMaxRequirements,
                                  " requirements in a selector"));
    }
    absl::StatusOr<Requirement> r = p.Next();
    if (!r.ok()) return r.status();
    out.reqs_.push_back(*std::move(r));
  } while (p.Take(","));
  if (!p.AtEnd()) return p.Error("expected ',' or the end");
  return out;
}

bool Selector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const Requirement& r : reqs_) {
    auto it = labels.find(r.key);
    const bool has = it != labels.end();
    auto in_set = [&] {
      return has &&
             std::binary_search(r.values.begin(), r.values.end(), it->second);
    };
    bool ok = false;
    switch (r.op) {
      case Requirement::Op::kEquals:
        ok = has && it->second == r.values[0];
        break;
      case Requirement::Op::kNotEquals:
        ok = !has || it->second != r.values[0];
        break;
      case Requirement::Op::kIn:
        ok = in_set();
        break;
      case Requirement::Op::kNotIn:
        ok = !in_set();
        break;
      case Requirement::Op::kExists:
        ok = has;
        break;
      case Requirement::Op::kNotExists:
        ok = !has;
        break;
    }
    if (!ok) return false;
  }
  return true;
}

std::string Selector::ToString() const {
  std::vector<std::string> parts;
  for (const Requirement& r : reqs_) {
    switch (r.op) {
      case Requirement::Op::kEquals:
        parts.push_back(absl::StrCat(r.key, "=", r.values[0]));
        break;
      case Requirement::Op::kNotEquals:
        parts.push_back(absl::StrCat(r.key, "!=", r.values[0]));
        break;
      case Requirement::Op::kIn:
        parts.push_back(
            absl::StrCat(r.key, " in (", absl::StrJoin(r.values, ","), ")"));
        break;
      case Requirement::Op::kNotIn:
        parts.push_back(
            absl::StrCat(r.key, " notin (", absl::StrJoin(r.values, ","), ")"));
        break;
      case Requirement::Op::kExists:
        parts.push_back(r.key);
        break;
      case Requirement::Op::kNotExists:
        parts.push_back(absl::StrCat("!", r.key));
        break;
    }
  }
  return absl::StrJoin(parts, ",");
}

}  // namespace vouch::core
