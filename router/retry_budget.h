// A retry budget: retries (and hedges) may be at most `ratio` of the requests plus a small floor
// of `min_per_second`, so that retrying cannot multiply the load on a pool that is failing.
//
//   RetryBudget budget(/*ratio=*/0.1, /*min_per_second=*/5, Clock::now());
//   budget.OnRequest();                        // every first attempt deposits `ratio`
//   if (budget.TryRetry(Clock::now())) Retry(); else CountExhausted();
//
// Deposits are capped (kMaxDepositedRequests requests' worth) so a long quiet period after busy
// traffic cannot build up a burst. A retry spends a deposited token first, else one from the
// floor's token bucket (rate min_per_second, capacity max(1, min_per_second)).
// Thread-safety: all methods may be called concurrently.
#ifndef SLM_ROUTER_RETRY_BUDGET_H_
#define SLM_ROUTER_RETRY_BUDGET_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "router/token_bucket.h"

namespace slm::router {

class RetryBudget {
 public:
  // How many requests' deposits the budget holds at most.
  static constexpr double kMaxDepositedRequests = 1000;

  RetryBudget(double ratio, double min_per_second, Clock::time_point now);

  void OnRequest();
  bool TryRetry(Clock::time_point now);

 private:
  const double ratio_;
  const double max_deposit_;
  TokenBucket floor_;
  absl::Mutex mutex_;
  double deposit_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_RETRY_BUDGET_H_
