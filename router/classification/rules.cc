#include "router/classification/rules.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace slm::router {
namespace {

bool IsWordByte(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace

bool ContainsKeyword(absl::string_view text, absl::string_view keyword) {
  if (keyword.empty() || keyword.size() > text.size()) return false;
  const size_t last = text.size() - keyword.size();
  for (size_t at = 0; at <= last; ++at) {
    if (at > 0 && IsWordByte(text[at - 1])) continue;
    size_t k = 0;
    while (k < keyword.size() &&
           absl::ascii_tolower(static_cast<unsigned char>(text[at + k])) == keyword[k]) {
      ++k;
    }
    if (k != keyword.size()) continue;
    const size_t end = at + keyword.size();
    if (end < text.size() && IsWordByte(text[end])) continue;
    return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<RuleSet>> RuleSet::Create(
    const google::protobuf::RepeatedPtrField<slmgw::config::v1::RuleConfig>& rules) {
  auto set = std::make_unique<RuleSet>();
  for (const auto& config : rules) {
    Rule rule;
    rule.name = config.name();
    rule.route = config.route();
    for (const std::string& keyword : config.keywords()) {
      rule.keywords.push_back(absl::AsciiStrToLower(keyword));
    }
    for (const std::string& pattern : config.patterns()) {
      auto regex = std::make_unique<RE2>(pattern, RE2::Quiet);
      if (!regex->ok()) {
        return absl::InvalidArgumentError(absl::StrCat("classification.rules '", config.name(),
                                                       "': invalid RE2 pattern '", pattern,
                                                       "': ", regex->error()));
      }
      rule.patterns.push_back(std::move(regex));
    }
    rule.tenants.assign(config.tenants().begin(), config.tenants().end());
    for (const auto& [key, value] : config.metadata()) rule.metadata.emplace_back(key, value);
    rule.min_length = config.min_length();
    rule.max_length = config.max_length();
    set->rules_.push_back(std::move(rule));
  }
  return set;
}

const RuleSet::Rule* RuleSet::Match(absl::string_view text,
                                    const slmgw::v1::RequestOptions& options) const {
  for (const Rule& rule : rules_) {
    if (rule.min_length > 0 && text.size() < rule.min_length) continue;
    if (rule.max_length > 0 && text.size() > rule.max_length) continue;
    if (!rule.tenants.empty()) {
      bool listed = false;
      for (const std::string& tenant : rule.tenants) listed |= tenant == options.tenant();
      if (!listed) continue;
    }
    bool metadata_ok = true;
    for (const auto& [key, value] : rule.metadata) {
      auto it = options.metadata().find(key);
      if (it == options.metadata().end() || it->second != value) {
        metadata_ok = false;
        break;
      }
    }
    if (!metadata_ok) continue;
    if (!rule.keywords.empty()) {
      bool found = false;
      for (const std::string& keyword : rule.keywords) {
        if (ContainsKeyword(text, keyword)) {
          found = true;
          break;
        }
      }
      if (!found) continue;
    }
    if (!rule.patterns.empty()) {
      const re2::StringPiece piece(text.data(), text.size());
      bool found = false;
      for (const auto& pattern : rule.patterns) {
        if (RE2::PartialMatch(piece, *pattern)) {
          found = true;
          break;
        }
      }
      if (!found) continue;
    }
    return &rule;
  }
  return nullptr;
}

}  // namespace slm::router
