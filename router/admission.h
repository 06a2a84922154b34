// Admission control: per-route and per-tenant concurrency limits and token-bucket rate limits,
// checked before a request is dispatched. A request over a limit is shed at once (no queue) with
// a reason and a retry-after hint.
//
//   SLM_ASSIGN_OR_RETURN(auto admission, AdmissionController::Create(*config, previous, now));
//   AdmissionResult result = admission->Admit(route, tenant, Clock::now());
//   if (!result.admitted) return ResourceExhausted(result.reason, result.retry_after);
//   keep result.ticket until the request is answered (it releases the concurrency slots).
//
// Tenants are the configured `tenants`; a tenant named "default" covers every request whose
// tenant is not listed (they share its limits); without it, unlisted tenants have no tenant
// limit. Limiters whose limits did not change are carried over from `previous` on reload, so a
// reload neither refills buckets nor forgets requests in flight.
// Thread-safety: immutable after Create; Admit may be called concurrently. Tickets may outlive
// the controller (they own their limiters).
#ifndef SLM_ROUTER_ADMISSION_H_
#define SLM_ROUTER_ADMISSION_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "router/token_bucket.h"
#include "slmgw/config/v1/config.pb.h"

namespace slm::router {

struct AdmissionLimits {
  uint32_t max_concurrency = 0;    // 0: unlimited
  double requests_per_second = 0;  // 0: unlimited
  uint32_t burst = 0;
  bool operator==(const AdmissionLimits& other) const {
    return max_concurrency == other.max_concurrency &&
           requests_per_second == other.requests_per_second && burst == other.burst;
  }
};

// One route's or tenant's limits and their live state.
class Limiter {
 public:
  Limiter(const AdmissionLimits& limits, Clock::time_point now);
  const AdmissionLimits& limits() const { return limits_; }
  int in_flight() const { return in_flight_.load(); }

 private:
  friend class AdmissionController;
  friend class AdmissionTicket;
  const AdmissionLimits limits_;
  std::unique_ptr<TokenBucket> bucket_;  // null: no rate limit
  std::atomic<int> in_flight_{0};
};

// Holds concurrency slots; releases them when destroyed. Move-only.
class AdmissionTicket {
 public:
  AdmissionTicket() = default;
  AdmissionTicket(AdmissionTicket&&) = default;
  AdmissionTicket& operator=(AdmissionTicket&& other);
  AdmissionTicket(const AdmissionTicket&) = delete;
  AdmissionTicket& operator=(const AdmissionTicket&) = delete;
  ~AdmissionTicket() { Release(); }

  void Release();

 private:
  friend class AdmissionController;
  std::vector<std::shared_ptr<Limiter>> held_;
};

struct AdmissionResult {
  bool admitted = false;
  AdmissionTicket ticket;
  // When shed: "route_concurrency", "route_rate", "tenant_concurrency" or "tenant_rate".
  const char* reason = "";
  std::chrono::milliseconds retry_after{0};
};

class AdmissionController {
 public:
  // Retry-after hint for requests shed for concurrency (no rate tells when a slot frees).
  static constexpr std::chrono::milliseconds kConcurrencyRetryAfter{100};

  // `previous` may be null.
  static std::unique_ptr<AdmissionController> Create(const slmgw::config::v1::GatewayConfig& config,
                                                     const AdmissionController* previous,
                                                     Clock::time_point now);

  AdmissionResult Admit(const std::string& route, const std::string& tenant,
                        Clock::time_point now) const;

 private:
  AdmissionController() = default;

  absl::flat_hash_map<std::string, std::shared_ptr<Limiter>> routes_;
  absl::flat_hash_map<std::string, std::shared_ptr<Limiter>> tenants_;
  std::shared_ptr<Limiter> default_tenant_;  // may be null
};

}  // namespace slm::router

#endif  // SLM_ROUTER_ADMISSION_H_
