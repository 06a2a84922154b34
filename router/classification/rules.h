// Routing rules from configuration (classification.rules), compiled once: keywords (ASCII
// case-insensitive, whole words), RE2 patterns, tenants, request metadata and text length. A rule
// matches when every condition it sets holds; rules are tried in order and the first match wins.
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<RuleSet> rules, RuleSet::Create(config.rules()));
//   const RuleSet::Rule* rule = rules->Match(text, request.options());
//
// Thread-safety: immutable after Create; Match may be called concurrently (RE2 is thread-safe)
// and does not allocate except inside RE2.
#ifndef SLM_ROUTER_CLASSIFICATION_RULES_H_
#define SLM_ROUTER_CLASSIFICATION_RULES_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "re2/re2.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/types.pb.h"

namespace slm::router {

class RuleSet {
 public:
  struct Rule {
    std::string name;
    std::string route;
    std::vector<std::string> keywords;  // lowercased
    std::vector<std::unique_ptr<RE2>> patterns;
    std::vector<std::string> tenants;
    std::vector<std::pair<std::string, std::string>> metadata;
    uint32_t min_length = 0;
    uint32_t max_length = 0;
  };

  // InvalidArgument naming the rule and pattern when a pattern does not compile.
  static absl::StatusOr<std::unique_ptr<RuleSet>> Create(
      const google::protobuf::RepeatedPtrField<slmgw::config::v1::RuleConfig>& rules);

  // The first rule that matches, or nullptr.
  const Rule* Match(absl::string_view text, const slmgw::v1::RequestOptions& options) const;

  bool empty() const { return rules_.empty(); }

 private:
  std::vector<Rule> rules_;
};

// True when `keyword` (lowercase ASCII, may contain spaces) occurs in `text` ignoring ASCII case,
// with no letter or digit right before or after it. Exposed for tests.
bool ContainsKeyword(absl::string_view text, absl::string_view keyword);

}  // namespace slm::router

#endif  // SLM_ROUTER_CLASSIFICATION_RULES_H_
