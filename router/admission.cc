#include "router/admission.h"

#include <algorithm>
#include <utility>

namespace slm::router {
namespace {

constexpr char kDefaultTenant[] = "default";

AdmissionLimits LimitsOf(uint32_t max_concurrency, double requests_per_second, uint32_t burst) {
  return AdmissionLimits{max_concurrency, requests_per_second, burst};
}

bool Unlimited(const AdmissionLimits& limits) {
  return limits.max_concurrency == 0 && limits.requests_per_second <= 0;
}

// The previous controller's limiter for `name` when its limits are the same, else a new one.
std::shared_ptr<Limiter> Reuse(
    const absl::flat_hash_map<std::string, std::shared_ptr<Limiter>>* previous,
    const std::string& name, const AdmissionLimits& limits, Clock::time_point now) {
  if (previous != nullptr) {
    auto it = previous->find(name);
    if (it != previous->end() && it->second->limits() == limits) return it->second;
  }
  return std::make_shared<Limiter>(limits, now);
}

}  // namespace

Limiter::Limiter(const AdmissionLimits& limits, Clock::time_point now) : limits_(limits) {
  if (limits.requests_per_second > 0) {
    bucket_ = std::make_unique<TokenBucket>(limits.requests_per_second,
                                            std::max<double>(1, limits.burst), now);
  }
}

AdmissionTicket& AdmissionTicket::operator=(AdmissionTicket&& other) {
  if (this != &other) {
    Release();
    held_ = std::move(other.held_);
  }
  return *this;
}

void AdmissionTicket::Release() {
  for (const auto& limiter : held_) limiter->in_flight_--;
  held_.clear();
}

std::unique_ptr<AdmissionController> AdmissionController::Create(
    const slmgw::config::v1::GatewayConfig& config, const AdmissionController* previous,
    Clock::time_point now) {
  auto controller = std::unique_ptr<AdmissionController>(new AdmissionController());
  for (const auto& route : config.routes()) {
    AdmissionLimits limits =
        LimitsOf(route.max_concurrency(), route.requests_per_second(), route.burst());
    if (Unlimited(limits)) continue;
    controller->routes_[route.name()] =
        Reuse(previous ? &previous->routes_ : nullptr, route.name(), limits, now);
  }
  for (const auto& tenant : config.tenants()) {
    AdmissionLimits limits =
        LimitsOf(tenant.max_concurrency(), tenant.requests_per_second(), tenant.burst());
    auto limiter = Reuse(previous ? &previous->tenants_ : nullptr, tenant.name(), limits, now);
    if (tenant.name() == kDefaultTenant) controller->default_tenant_ = limiter;
    controller->tenants_[tenant.name()] = std::move(limiter);
  }
  return controller;
}

AdmissionResult AdmissionController::Admit(const std::string& route, const std::string& tenant,
                                           Clock::time_point now) const {
  AdmissionResult result;
  std::shared_ptr<Limiter> route_limiter;
  if (auto it = routes_.find(route); it != routes_.end()) route_limiter = it->second;
  std::shared_ptr<Limiter> tenant_limiter = default_tenant_;
  if (auto it = tenants_.find(tenant); it != tenants_.end()) tenant_limiter = it->second;

  // Concurrency first (a refused request must not spend rate tokens), then the rates.
  struct Check {
    const std::shared_ptr<Limiter>* limiter;
    const char* concurrency_reason;
    const char* rate_reason;
  };
  const Check checks[] = {{&route_limiter, "route_concurrency", "route_rate"},
                          {&tenant_limiter, "tenant_concurrency", "tenant_rate"}};
  for (const Check& check : checks) {
    const std::shared_ptr<Limiter>& limiter = *check.limiter;
    if (limiter == nullptr || limiter->limits_.max_concurrency == 0) continue;
    const int now_in_flight = ++limiter->in_flight_;
    result.ticket.held_.push_back(limiter);
    if (now_in_flight > static_cast<int>(limiter->limits_.max_concurrency)) {
      result.ticket.Release();
      result.reason = check.concurrency_reason;
      result.retry_after = kConcurrencyRetryAfter;
      return result;
    }
  }
  for (const Check& check : checks) {
    const std::shared_ptr<Limiter>& limiter = *check.limiter;
    if (limiter == nullptr || limiter->bucket_ == nullptr) continue;
    std::chrono::nanoseconds wait{0};
    if (!limiter->bucket_->TryTake(now, &wait)) {
      result.ticket.Release();
      result.reason = check.rate_reason;
      result.retry_after = std::max(std::chrono::milliseconds(1),
                                    std::chrono::ceil<std::chrono::milliseconds>(wait));
      return result;
    }
  }
  result.admitted = true;
  return result;
}

}  // namespace slm::router
