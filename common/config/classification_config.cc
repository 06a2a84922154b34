#include "common/config/classification_config.h"

#include <cmath>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/string_view_compat.h"
#include "common/status_macros.h"
#include "re2/re2.h"

namespace slm::config {
namespace {

using slmgw::config::v1::ClassifierTierConfig;
using slmgw::config::v1::GatewayConfig;
using slmgw::config::v1::RuleConfig;

constexpr uint32_t kMaxTierThreads = 256;

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

std::string Indexed(absl::string_view field, int index) {
  return absl::StrCat(field, "[", index, "]");
}

class Checker {
 public:
  Checker(const GatewayConfig& config, const YamlSourceMap& positions)
      : config_(config), positions_(positions) {
    for (const auto& route : config.routes()) route_names_.insert(route.name());
  }

  absl::Status Run() const {
    for (int i = 0; i < config_.routes_size(); ++i) {
      SLM_RETURN_IF_ERROR(CheckRoute(i));
    }
    const auto& classification = config_.classification();
    absl::flat_hash_set<std::string> rule_names;
    for (int i = 0; i < classification.rules_size(); ++i) {
      SLM_RETURN_IF_ERROR(CheckRule(classification.rules(i),
                                    Indexed("classification.rules", i), &rule_names));
    }
    SLM_RETURN_IF_ERROR(CheckTier(classification.fast(), "classification.fast", false));
    SLM_RETURN_IF_ERROR(CheckTier(classification.encoder(), "classification.encoder", true));
    const auto& ood = classification.out_of_domain();
    SLM_RETURN_IF_ERROR(CheckProbability(ood.threshold(), "classification.out_of_domain.threshold"));
    if (!ood.route().empty()) {
      SLM_RETURN_IF_ERROR(CheckRouteName(ood.route(), "classification.out_of_domain.route"));
    }
    if (!ood.label().empty()) {
      for (const char* tier : {"fast", "encoder"}) {
        const ClassifierTierConfig& config =
            std::string(tier) == "fast" ? classification.fast() : classification.encoder();
        if (config.labels().contains(ood.label())) {
          return Error(absl::StrCat("classification.", tier, ".labels.", ood.label()),
                       absl::StrCat("the out-of-domain label ", Quote(ood.label()),
                                    " must not be mapped to a route (out-of-domain requests go "
                                    "to classification.out_of_domain.route)"));
        }
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const std::string& path, absl::string_view message) const {
    return positions_.Error(path, ToStd(message));
  }

  std::string KnownRoutes() const {
    std::vector<std::string> names;
    for (const auto& route : config_.routes()) names.push_back(route.name());
    return names.empty() ? "none" : absl::StrJoin(names, ", ");
  }

  absl::Status CheckRouteName(const std::string& name, const std::string& path) const {
    if (route_names_.contains(name)) return absl::OkStatus();
    return Error(path,
                 absl::StrCat("unknown route ", Quote(name), " (routes: ", KnownRoutes(), ")"));
  }

  absl::Status CheckProbability(float value, const std::string& path) const {
    if (!std::isfinite(value) || value < 0.0f || value > 1.0f) {
      return Error(path, absl::StrCat("expected a probability in [0, 1], got ", value));
    }
    return absl::OkStatus();
  }

  absl::Status CheckRoute(int index) const {
    const auto& route = config_.routes(index);
    const std::string path = Indexed("routes", index);
    SLM_RETURN_IF_ERROR(
        CheckProbability(route.confidence_threshold(), path + ".confidence_threshold"));
    absl::flat_hash_set<std::string> seen;
    for (int f = 0; f < route.fallback_size(); ++f) {
      const std::string& target = route.fallback(f);
      const std::string fallback_path = Indexed(path + ".fallback", f);
      SLM_RETURN_IF_ERROR(CheckRouteName(target, fallback_path));
      if (target == route.name()) {
        return Error(fallback_path, absl::StrCat("a route cannot fall back to itself (",
                                                 Quote(target), ")"));
      }
      if (!seen.insert(target).second) {
        return Error(fallback_path, absl::StrCat("route ", Quote(target),
                                                 " appears twice in the fallback chain"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckRule(const RuleConfig& rule, const std::string& path,
                         absl::flat_hash_set<std::string>* names) const {
    if (rule.name().empty()) return Error(path + ".name", "required field missing");
    if (!names->insert(rule.name()).second) {
      return Error(path + ".name", absl::StrCat("duplicate rule name ", Quote(rule.name())));
    }
    if (rule.route().empty()) return Error(path + ".route", "required field missing");
    SLM_RETURN_IF_ERROR(CheckRouteName(rule.route(), path + ".route"));
    if (rule.keywords().empty() && rule.patterns().empty() && rule.tenants().empty() &&
        rule.metadata().empty() && rule.min_length() == 0 && rule.max_length() == 0) {
      return Error(path, "a rule needs at least one condition (keywords, patterns, tenants, "
                         "metadata, min_length or max_length)");
    }
    for (int k = 0; k < rule.keywords_size(); ++k) {
      if (rule.keywords(k).empty()) {
        return Error(Indexed(path + ".keywords", k), "must not be empty");
      }
    }
    for (int p = 0; p < rule.patterns_size(); ++p) {
      RE2 regex(rule.patterns(p), RE2::Quiet);
      if (!regex.ok()) {
        return Error(Indexed(path + ".patterns", p),
                     absl::StrCat("invalid RE2 pattern ", Quote(rule.patterns(p)), ": ",
                                  regex.error()));
      }
    }
    for (int t = 0; t < rule.tenants_size(); ++t) {
      if (rule.tenants(t).empty()) return Error(Indexed(path + ".tenants", t), "must not be empty");
    }
    if (rule.min_length() > 0 && rule.max_length() > 0 && rule.min_length() > rule.max_length()) {
      return Error(path + ".min_length",
                   absl::StrCat("must not exceed max_length (", rule.min_length(), " > ",
                                rule.max_length(), ")"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckTier(const ClassifierTierConfig& tier, const std::string& path,
                         bool is_encoder) const {
    SLM_RETURN_IF_ERROR(CheckProbability(tier.threshold(), path + ".threshold"));
    if (tier.model_path().empty()) {
      if (!tier.labels().empty()) {
        return Error(path + ".model_path", "required when labels are mapped");
      }
      return absl::OkStatus();
    }
    if (tier.labels().empty()) {
      return Error(path + ".labels", "map every label of the model to a route");
    }
    for (const auto& [label, route] : tier.labels()) {
      SLM_RETURN_IF_ERROR(CheckRouteName(route, absl::StrCat(path, ".labels.", label)));
    }
    if (!is_encoder) {
      if (!tier.dtype().empty()) return Error(path + ".dtype", "applies to the encoder tier only");
      if (tier.threads() != 0) return Error(path + ".threads", "applies to the encoder tier only");
      return absl::OkStatus();
    }
    if (tier.dtype() != "f32" && tier.dtype() != "bf16" && tier.dtype() != "int8") {
      return Error(path + ".dtype",
                   absl::StrCat("expected one of f32, bf16, int8, got ", Quote(tier.dtype())));
    }
    if (tier.threads() < 1 || tier.threads() > kMaxTierThreads) {
      return Error(path + ".threads",
                   absl::StrCat("expected 1..", kMaxTierThreads, ", got ", tier.threads()));
    }
    return absl::OkStatus();
  }

  const GatewayConfig& config_;
  const YamlSourceMap& positions_;
  absl::flat_hash_set<std::string> route_names_;
};

}  // namespace

void ApplyClassificationDefaults(GatewayConfig* config) {
  if (!config->has_classification()) return;
  ClassifierTierConfig& encoder = *config->mutable_classification()->mutable_encoder();
  if (encoder.model_path().empty()) return;
  if (encoder.dtype().empty()) encoder.set_dtype("f32");
  if (encoder.threads() == 0) encoder.set_threads(1);
}

absl::Status ValidateClassification(const GatewayConfig& config, const YamlSourceMap& positions) {
  return Checker(config, positions).Run();
}

}  // namespace slm::config
