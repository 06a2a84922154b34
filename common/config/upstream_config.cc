#include "common/config/upstream_config.h"

#include <cmath>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/config/string_view_compat.h"
#include "common/status_macros.h"

namespace slm::config {
namespace {

using slmgw::config::v1::GatewayConfig;
using slmgw::config::v1::RouteConfig;
using slmgw::config::v1::UpstreamConfig;

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

std::string Indexed(absl::string_view field, int index) {
  return absl::StrCat(field, "[", index, "]");
}

bool IsName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

bool IsEnvironmentVariable(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

class Checker {
 public:
  Checker(const GatewayConfig& config, const YamlSourceMap& positions)
      : config_(config), positions_(positions) {}

  absl::Status Run(bool worker_role) {
    if (worker_role && config_.upstreams_size() > 0) {
      return Error("upstreams", "must be empty for the worker");
    }
    for (int i = 0; i < config_.upstreams_size(); ++i) {
      SLM_RETURN_IF_ERROR(CheckUpstream(config_.upstreams(i), Indexed("upstreams", i)));
    }
    for (int i = 0; i < config_.routes_size(); ++i) {
      SLM_RETURN_IF_ERROR(CheckRoute(config_.routes(i), Indexed("routes", i)));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const std::string& path, absl::string_view message) const {
    return positions_.Error(path, ToStd(message));
  }

  std::string KnownUpstreams() const {
    std::vector<std::string> names;
    for (const auto& upstream : config_.upstreams()) names.push_back(upstream.name());
    return names.empty() ? "none" : absl::StrJoin(names, ", ");
  }

  absl::Status CheckUpstream(const UpstreamConfig& upstream, const std::string& path) {
    if (!IsName(upstream.name())) {
      return Error(path + ".name",
                   absl::StrCat("expected a name of letters, digits, '_', '.' and '-', got ",
                                Quote(upstream.name())));
    }
    if (!names_.insert(upstream.name()).second) {
      return Error(path + ".name",
                   absl::StrCat("duplicate upstream name ", Quote(upstream.name())));
    }
    const std::string& url = upstream.base_url();
    absl::string_view rest(url);
    if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) {
      return Error(
          path + ".base_url",
          absl::StrCat("expected http://HOST[:PORT][/PATH] or https://..., got ", Quote(url)));
    }
    if (rest.empty() || rest.front() == '/' ||
        rest.find_first_of(" \t\r\n?#") != absl::string_view::npos) {
      return Error(
          path + ".base_url",
          absl::StrCat("expected a host and no query, fragment or whitespace, got ", Quote(url)));
    }
    if (upstream.model().empty()) return Error(path + ".model", "required field missing");
    if (!upstream.api_key_env().empty() && !upstream.api_key_file().empty()) {
      return Error(path + ".api_key_file", "set api_key_env or api_key_file, not both");
    }
    if (!upstream.api_key_env().empty() && !IsEnvironmentVariable(upstream.api_key_env())) {
      return Error(path + ".api_key_env",
                   absl::StrCat("expected an environment variable name, got ",
                                Quote(upstream.api_key_env())));
    }
    if (upstream.timeout_ms() < 1 || upstream.timeout_ms() > 600000) {
      return Error(path + ".timeout_ms",
                   absl::StrCat("expected 1..600000, got ", upstream.timeout_ms()));
    }
    if (upstream.max_concurrency() < 1 || upstream.max_concurrency() > 100000) {
      return Error(path + ".max_concurrency",
                   absl::StrCat("expected 1..100000, got ", upstream.max_concurrency()));
    }
    return absl::OkStatus();
  }

  absl::Status CheckRoute(const RouteConfig& route, const std::string& path) const {
    if (!route.upstream().empty()) {
      if (!route.pool().empty()) {
        return Error(path + ".upstream", "set either pool or upstream, not both");
      }
      if (!names_.contains(route.upstream())) {
        return Error(path + ".upstream", absl::StrCat("unknown upstream ", Quote(route.upstream()),
                                                      " (upstreams: ", KnownUpstreams(), ")"));
      }
    }
    const float threshold = route.cascade_threshold();
    if (!std::isfinite(threshold) || threshold < 0.0f || threshold > 1.0f) {
      return Error(path + ".cascade_threshold",
                   absl::StrCat("expected a confidence in [0, 1], got ", threshold));
    }
    if (threshold > 0.0f && route.fallback().empty()) {
      return Error(path + ".cascade_threshold",
                   "set, but the route has no fallback to escalate to (routes[].fallback)");
    }
    absl::flat_hash_set<std::string> labels;
    for (int l = 0; l < route.labels_size(); ++l) {
      const std::string label_path = Indexed(path + ".labels", l);
      if (route.labels(l).empty()) return Error(label_path, "must not be empty");
      if (!labels.insert(route.labels(l)).second) {
        return Error(label_path, absl::StrCat("duplicate label ", Quote(route.labels(l))));
      }
    }
    return absl::OkStatus();
  }

  const GatewayConfig& config_;
  const YamlSourceMap& positions_;
  absl::flat_hash_set<std::string> names_;
};

}  // namespace

void ApplyUpstreamDefaults(GatewayConfig* config) {
  for (UpstreamConfig& upstream : *config->mutable_upstreams()) {
    if (upstream.timeout_ms() == 0) upstream.set_timeout_ms(kDefaultUpstreamTimeoutMs);
    if (upstream.max_concurrency() == 0) {
      upstream.set_max_concurrency(kDefaultUpstreamMaxConcurrency);
    }
  }
}

absl::Status ValidateUpstreams(const GatewayConfig& config, const YamlSourceMap& positions,
                               bool worker_role) {
  return Checker(config, positions).Run(worker_role);
}

}  // namespace slm::config
