#include "router/config_reloader.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "google/protobuf/util/message_differencer.h"

namespace slm::router {
namespace {

// Larger files are not configuration (the loader enforces its own limit too).
constexpr size_t kMaxBytes = 16 << 20;

absl::StatusOr<std::string> ReadContents(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot open config file '", path, "': ", std::strerror(errno)));
  }
  std::string text;
  char buffer[1 << 14];
  size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof(buffer), file)) > 0 && text.size() <= kMaxBytes) {
    text.append(buffer, read);
  }
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return absl::UnavailableError(absl::StrCat("cannot read config file '", path, "'"));
  return text;
}

}  // namespace

ConfigReloader::ConfigReloader(std::string path, std::chrono::milliseconds interval, Load load,
                               Apply apply, std::shared_ptr<RouterMetrics> metrics)
    : path_(std::move(path)),
      interval_(interval),
      load_(std::move(load)),
      apply_(std::move(apply)),
      metrics_(std::move(metrics)) {
  absl::StatusOr<std::string> contents = ReadContents(path_);
  if (contents.ok()) last_contents_ = *std::move(contents);
  for (const char* outcome : {"applied", "invalid", "rejected", "unreadable"}) {
    metrics_->config_reloads.Add({{"outcome", outcome}});
  }
}

ConfigReloader::~ConfigReloader() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ConfigReloader::Start() {
  thread_ = std::thread([this] {
    while (true) {
      {
        absl::MutexLock lock(&mutex_);
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stopping_; };
        mutex_.AwaitWithTimeout(absl::Condition(&stopping), absl::Milliseconds(interval_.count()));
        if (stopping_) return;
      }
      CheckOnce();
    }
  });
}

ConfigReloader::Outcome ConfigReloader::CheckOnce() {
  absl::StatusOr<std::string> contents = ReadContents(path_);
  if (!contents.ok()) {
    // An editor replacing the file may leave it missing for a moment: report once.
    if (last_unreadable_) return Outcome::kUnchanged;
    last_unreadable_ = true;
    SLM_LOG(WARNING) << "config reload: " << contents.status().message()
                     << "; keeping the configuration in use";
    metrics_->config_reloads.Add({{"outcome", "unreadable"}}).Increment();
    return Outcome::kUnreadable;
  }
  last_unreadable_ = false;
  if (*contents == last_contents_) return Outcome::kUnchanged;
  last_contents_ = *std::move(contents);
  absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> config = load_();
  if (!config.ok()) {
    SLM_LOG(ERROR) << "config reload rejected, keeping the configuration in use: "
                   << config.status().message();
    metrics_->config_reloads.Add({{"outcome", "invalid"}}).Increment();
    return Outcome::kInvalid;
  }
  if (absl::Status applied = apply_(*std::move(config)); !applied.ok()) {
    SLM_LOG(ERROR) << "config reload could not be applied, keeping the configuration in use: "
                   << applied.message();
    metrics_->config_reloads.Add({{"outcome", "rejected"}}).Increment();
    return Outcome::kRejected;
  }
  SLM_LOG(INFO) << "config reloaded from " << path_;
  metrics_->config_reloads.Add({{"outcome", "applied"}}).Increment();
  return Outcome::kApplied;
}

std::unique_ptr<ConfigReloader> StartConfigReloader(
    const std::string& path, std::shared_ptr<const slmgw::config::v1::GatewayConfig> running,
    ConfigReloader::Load load, GatewayServiceImpl* service,
    std::shared_ptr<RouterMetrics> metrics) {
  const uint32_t interval_ms = running->server().config_poll_interval_ms();
  if (path.empty() || interval_ms == 0) return nullptr;
  auto apply = [service, running](std::shared_ptr<const slmgw::config::v1::GatewayConfig> next) {
    using google::protobuf::util::MessageDifferencer;
    if (!MessageDifferencer::Equals(running->server(), next->server())) {
      SLM_LOG(WARNING) << "config reload: changes to server: take effect on restart";
    }
    bool same_workers = running->workers_size() == next->workers_size();
    for (int i = 0; same_workers && i < running->workers_size(); ++i) {
      same_workers = MessageDifferencer::Equals(running->workers(i), next->workers(i));
    }
    if (!same_workers) {
      SLM_LOG(WARNING) << "config reload: changes to workers: take effect on restart "
                          "(in-process workers are not reloaded)";
    }
    return service->Reload(std::move(next));
  };
  auto reloader =
      std::make_unique<ConfigReloader>(path, std::chrono::milliseconds(interval_ms),
                                       std::move(load), std::move(apply), std::move(metrics));
  reloader->Start();
  return reloader;
}

}  // namespace slm::router
