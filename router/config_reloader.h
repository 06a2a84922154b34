// Hot reload of the --config file: a thread polls the file's contents every `interval`; when they
// change, `load` parses and validates them and `apply` swaps the result in. A file that fails
// either step is logged and counted, and the configuration in use stays. Every distinct content
// is tried once (a bad file is not re-reported every poll; fixing it is a new content).
//
//   ConfigReloader reloader(path, std::chrono::milliseconds(1000),
//       [&] { return LoadProcessConfig(flags, role); },
//       [&](auto config) { return service->Reload(std::move(config)); }, metrics);
//   reloader.Start();  // stops in the destructor
//
// Metric: slmgw_router_config_reloads_total{outcome="applied|invalid|rejected|unreadable"}
// (invalid: validation failed; rejected: valid but could not be applied; unreadable: the file
// could not be read). Thread-safety: CheckOnce is meant for one thread (the poller, or a test
// that does not Start).
#ifndef SLM_ROUTER_CONFIG_RELOADER_H_
#define SLM_ROUTER_CONFIG_RELOADER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "router/gateway_service.h"
#include "router/router_metrics.h"
#include "slmgw/config/v1/config.pb.h"

namespace slm::router {

class ConfigReloader {
 public:
  using Load =
      std::function<absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>>()>;
  using Apply =
      std::function<absl::Status(std::shared_ptr<const slmgw::config::v1::GatewayConfig>)>;

  enum class Outcome { kUnchanged, kApplied, kInvalid, kRejected, kUnreadable };

  // Remembers the file's contents now as the ones in use.
  ConfigReloader(std::string path, std::chrono::milliseconds interval, Load load, Apply apply,
                 std::shared_ptr<RouterMetrics> metrics);
  ~ConfigReloader();

  void Start();
  // One poll: reads the file and reloads when its contents changed.
  Outcome CheckOnce();

 private:
  const std::string path_;
  const std::chrono::milliseconds interval_;
  const Load load_;
  const Apply apply_;
  const std::shared_ptr<RouterMetrics> metrics_;
  std::string last_contents_;  // the last contents tried (poller thread only)
  bool last_unreadable_ = false;

  absl::Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

// For the binaries: watches `path` every running->server().config_poll_interval_ms and reloads
// `service` (which must outlive the returned reloader). Returns null when `path` is empty (the
// embedded default) or the interval is 0. The server section (addresses, drain) and in-process
// workers are not reloaded: a change to them is logged as needing a restart.
std::unique_ptr<ConfigReloader> StartConfigReloader(
    const std::string& path, std::shared_ptr<const slmgw::config::v1::GatewayConfig> running,
    ConfigReloader::Load load, GatewayServiceImpl* service, std::shared_ptr<RouterMetrics> metrics);

}  // namespace slm::router

#endif  // SLM_ROUTER_CONFIG_RELOADER_H_
