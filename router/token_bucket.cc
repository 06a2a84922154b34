#include "router/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace slm::router {

TokenBucket::TokenBucket(double rate_per_second, double capacity, Clock::time_point now)
    : rate_(std::max(0.0, rate_per_second)),
      capacity_(std::max(0.0, capacity)),
      tokens_(capacity_),
      last_(now) {}

void TokenBucket::RefillLocked(Clock::time_point now) {
  if (now <= last_) return;
  const double seconds = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(capacity_, tokens_ + seconds * rate_);
  last_ = now;
}

bool TokenBucket::TryTake(Clock::time_point now, std::chrono::nanoseconds* wait) {
  absl::MutexLock lock(&mutex_);
  RefillLocked(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  if (wait != nullptr) {
    if (rate_ <= 0) {
      *wait = std::chrono::hours(1);
    } else {
      *wait =
          std::chrono::nanoseconds(static_cast<int64_t>(std::ceil((1.0 - tokens_) / rate_ * 1e9)));
    }
  }
  return false;
}

double TokenBucket::Available(Clock::time_point now) {
  absl::MutexLock lock(&mutex_);
  RefillLocked(now);
  return tokens_;
}

}  // namespace slm::router
