// Defaults and validation of the fallback parts of a GatewayConfig: `upstreams` (OpenAI-compatible
// HTTP services) and each route's `upstream`, `cascade_threshold` and `labels`. Called by
// gateway_config.cc's Finalizer; internal to slm_config.
//
// Defaults: upstreams[].timeout_ms 30000, max_concurrency 16 (when absent or 0).
// Rules (errors name the field path, through `positions`, and what was expected): the worker role
// has no upstreams; upstream names are unique names; base_url is http:// or https:// with a host
// and no query, fragment or whitespace; model is set; at most one of api_key_env (an environment
// variable name) and api_key_file; timeout_ms 1..600000; max_concurrency 1..100000. A route sets
// exactly one of pool and upstream, and the upstream exists; cascade_threshold is in [0, 1] and
// needs a fallback to escalate to; labels are non-empty and unique.
//
// Thread-safety: reentrant; no state.
#ifndef SLM_COMMON_CONFIG_UPSTREAM_CONFIG_H_
#define SLM_COMMON_CONFIG_UPSTREAM_CONFIG_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/config/yaml_proto.h"
#include "slmgw/config/v1/config.pb.h"

namespace slm::config {

inline constexpr uint32_t kDefaultUpstreamTimeoutMs = 30000;
inline constexpr uint32_t kDefaultUpstreamMaxConcurrency = 16;

void ApplyUpstreamDefaults(slmgw::config::v1::GatewayConfig* config);

// `worker_role`: the configuration is a worker's (no upstreams allowed).
absl::Status ValidateUpstreams(const slmgw::config::v1::GatewayConfig& config,
                               const YamlSourceMap& positions, bool worker_role);

}  // namespace slm::config

#endif  // SLM_COMMON_CONFIG_UPSTREAM_CONFIG_H_
