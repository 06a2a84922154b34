// libFuzzer entry point for the configuration reader: any input must yield OK or
// InvalidArgument, without crashing, hanging or leaking. Built only with clang (see
// CMakeLists.txt); the deterministic config_fuzz_test runs in every build.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/config/gateway_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (slm::config::ConfigRole role :
       {slm::config::ConfigRole::kAllInOne, slm::config::ConfigRole::kRouter,
        slm::config::ConfigRole::kWorker}) {
    auto config = slm::config::ParseGatewayConfig(text, "fuzz.yaml", role);
    if (!config.ok() && config.status().code() != absl::StatusCode::kInvalidArgument) {
      __builtin_trap();
    }
  }
  return 0;
}
