// The configuration a server process starts with: a file (--config) or the embedded default,
// with --listen / --metrics_listen overrides applied and validated once for the process's role.
#ifndef SLM_COMMON_PROCESS_CONFIG_H_
#define SLM_COMMON_PROCESS_CONFIG_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config/gateway_config.h"

namespace slm {

struct ProcessConfigFlags {
  std::string config_path;     // empty: the embedded default (slm-gateway only)
  std::string listen_address;  // empty: keep the file's
  std::string metrics_address;
};

absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> LoadProcessConfig(
    const ProcessConfigFlags& flags, config::ConfigRole role);

// The models directory: the flag when set, else $SLM_MODELS_DIR, else the source tree's models/.
std::string ResolveModelsDir(const std::string& flag_value);

}  // namespace slm

#endif  // SLM_COMMON_PROCESS_CONFIG_H_
