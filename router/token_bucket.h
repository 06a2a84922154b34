// A token bucket: `rate` tokens per second up to `capacity`, starting full. Used for admission
// rate limits and, inside RetryBudget, for the retry floor.
//
//   TokenBucket bucket(/*rate=*/100, /*capacity=*/20, Clock::now());
//   std::chrono::nanoseconds wait;
//   if (!bucket.TryTake(Clock::now(), &wait)) return Shed(wait);
//
// Time is passed in (tests inject it); it never goes backwards for the bucket (an earlier `now`
// counts as no time passed). Thread-safety: all methods may be called concurrently.
#ifndef SLM_ROUTER_TOKEN_BUCKET_H_
#define SLM_ROUTER_TOKEN_BUCKET_H_

#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace slm::router {

using Clock = std::chrono::steady_clock;

class TokenBucket {
 public:
  TokenBucket(double rate_per_second, double capacity, Clock::time_point now);

  // Takes one token when one is there. Otherwise returns false and, when `wait` is given, sets it
  // to the time until the next token (rate 0: one hour, i.e. "not soon").
  bool TryTake(Clock::time_point now, std::chrono::nanoseconds* wait = nullptr);

  // Tokens now (after refilling up to `now`), for tests and metrics.
  double Available(Clock::time_point now);

  double rate_per_second() const { return rate_; }
  double capacity() const { return capacity_; }

 private:
  void RefillLocked(Clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const double rate_;
  const double capacity_;
  absl::Mutex mutex_;
  double tokens_ ABSL_GUARDED_BY(mutex_);
  Clock::time_point last_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace slm::router

#endif  // SLM_ROUTER_TOKEN_BUCKET_H_
