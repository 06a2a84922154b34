#include "common/process_config.h"

#include <cstdlib>
#include <utility>

namespace slm {

absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> LoadProcessConfig(
    const ProcessConfigFlags& flags, config::ConfigRole role) {
  absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> loaded =
      flags.config_path.empty()
          ? config::ParseGatewayConfig(config::DefaultConfigYaml(), "<embedded default>", role)
          : config::LoadGatewayConfigFile(flags.config_path, role);
  if (!loaded.ok()) return loaded.status();
  if (flags.listen_address.empty() && flags.metrics_address.empty()) return loaded;
  slmgw::config::v1::GatewayConfig overridden = **loaded;
  if (!flags.listen_address.empty()) {
    overridden.mutable_server()->set_listen_address(flags.listen_address);
  }
  if (!flags.metrics_address.empty()) {
    overridden.mutable_server()->set_metrics_address(flags.metrics_address);
  }
  return config::FinalizeGatewayConfig(std::move(overridden), role);
}

std::string ResolveModelsDir(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* from_environment = std::getenv("SLM_MODELS_DIR")) return from_environment;
  return SLM_DEFAULT_MODELS_DIR;
}

}  // namespace slm
