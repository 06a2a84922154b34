// Defaults and validation of the routing-classification parts of a GatewayConfig: the
// `classification` section (rules, learned tiers, out-of-domain detection) and each route's
// confidence_threshold and fallback chain. Called by gateway_config.cc's Finalizer; internal to
// slm_config.
//
// Rules checked (errors name the field path, through `positions`, and what was expected):
// thresholds in [0, 1]; routes named by rules, label maps, out_of_domain.route and fallback exist;
// a fallback chain names no route twice and not its own route; rule names are unique and each
// rule sets at least one condition; RE2 patterns compile; min_length <= max_length; a learned
// tier with labels has a model_path and the reverse; the encoder's dtype is f32, bf16 or int8;
// the out-of-domain label is not mapped to a route.
//
// Thread-safety: reentrant; no state.
#ifndef SLM_COMMON_CONFIG_CLASSIFICATION_CONFIG_H_
#define SLM_COMMON_CONFIG_CLASSIFICATION_CONFIG_H_

#include "absl/status/status.h"
#include "common/config/yaml_proto.h"
#include "slmgw/config/v1/config.pb.h"

namespace slm::config {

// Encoder tier: dtype "f32" and threads 1 when absent (absent = empty/zero).
void ApplyClassificationDefaults(slmgw::config::v1::GatewayConfig* config);

absl::Status ValidateClassification(const slmgw::config::v1::GatewayConfig& config,
                                    const YamlSourceMap& positions);

}  // namespace slm::config

#endif  // SLM_COMMON_CONFIG_CLASSIFICATION_CONFIG_H_
