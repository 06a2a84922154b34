#include "router/retry_budget.h"

#include <algorithm>

namespace slm::router {

RetryBudget::RetryBudget(double ratio, double min_per_second, Clock::time_point now)
    : ratio_(std::clamp(ratio, 0.0, 1.0)),
      max_deposit_(std::max(1.0, ratio_ * kMaxDepositedRequests)),
      floor_(min_per_second, min_per_second > 0 ? std::max(1.0, min_per_second) : 0.0, now) {}

void RetryBudget::OnRequest() {
  absl::MutexLock lock(&mutex_);
  deposit_ = std::min(max_deposit_, deposit_ + ratio_);
}

bool RetryBudget::TryRetry(Clock::time_point now) {
  {
    absl::MutexLock lock(&mutex_);
    // A small epsilon: ten deposits of 0.1 add up to 0.9999999.
    if (deposit_ >= 1.0 - 1e-9) {
      deposit_ = std::max(0.0, deposit_ - 1.0);
      return true;
    }
  }
  return floor_.TryTake(now);
}

}  // namespace slm::router
