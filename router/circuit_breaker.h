// The circuit breaker of one endpoint. Closed: calls flow. `failures_to_open` consecutive
// failures open it: no calls for `cooldown`. After the cooldown it is half-open: exactly one
// probe call is let through; its success closes the circuit, its failure opens it again for
// another cooldown. A probe that ends neither way (cancelled) frees the slot for another probe.
//
//   if (breaker.Available(now) && breaker.TryAcquire(now)) { call...; breaker.OnSuccess(); }
//
// Time is passed in (tests inject it). Thread-safety: all methods may be called concurrently.
#ifndef SLM_ROUTER_CIRCUIT_BREAKER_H_
#define SLM_ROUTER_CIRCUIT_BREAKER_H_

#include <atomic>
#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "router/token_bucket.h"

namespace slm::router {

enum class CircuitState { kClosed, kOpen, kHalfOpen };

// "closed", "open", "half_open" (metric label values).
const char* CircuitStateName(CircuitState state);

class CircuitBreaker {
 public:
  CircuitBreaker(int failures_to_open, std::chrono::nanoseconds cooldown);

  // Whether TryAcquire would succeed now (no state change): closed, or open with the cooldown
  // over, or half-open with no probe in flight.
  bool Available(Clock::time_point now) const;
  // Claims a call: always in closed; in open-after-cooldown or half-open, claims the one probe.
  // Returns true when the call is now a probe (Available was true).
  bool TryAcquire(Clock::time_point now);

  void OnSuccess();
  // Returns true when this failure opened the circuit (a cooldown began).
  bool OnFailure(Clock::time_point now);
  // A call that ended without telling anything (cancelled, lost a hedge).
  void OnNeutral();

  CircuitState state(Clock::time_point now) const;

 private:
  const int failures_to_open_;
  const std::chrono::nanoseconds cooldown_;
  // Mirrors state_ == kClosed for the lock-free fast path of Available and TryAcquire (the
  // common case: every call on a healthy endpoint).
  std::atomic<bool> closed_{true};
  mutable absl::Mutex mutex_;
  CircuitState state_ ABSL_GUARDED_BY(mutex_) = CircuitState::kClosed;
  int consecutive_failures_ ABSL_GUARDED_BY(mutex_) = 0;
  Clock::time_point open_until_ ABSL_GUARDED_BY(mutex_);
  bool probe_in_flight_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_CIRCUIT_BREAKER_H_
