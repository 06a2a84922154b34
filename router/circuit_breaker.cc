#include "router/circuit_breaker.h"

#include <algorithm>

namespace slm::router {

const char* CircuitStateName(CircuitState state) {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(int failures_to_open, std::chrono::nanoseconds cooldown)
    : failures_to_open_(std::max(1, failures_to_open)), cooldown_(cooldown) {}

bool CircuitBreaker::Available(Clock::time_point now) const {
  if (closed_.load(std::memory_order_acquire)) return true;
  absl::MutexLock lock(&mutex_);
  switch (state_) {
    case CircuitState::kClosed:
      return true;
    case CircuitState::kOpen:
      return now >= open_until_;
    case CircuitState::kHalfOpen:
      return !probe_in_flight_;
  }
  return true;
}

bool CircuitBreaker::TryAcquire(Clock::time_point now) {
  if (closed_.load(std::memory_order_acquire)) return true;
  absl::MutexLock lock(&mutex_);
  switch (state_) {
    case CircuitState::kClosed:
      return true;
    case CircuitState::kOpen:
      if (now < open_until_) return false;
      state_ = CircuitState::kHalfOpen;
      probe_in_flight_ = true;
      return true;
    case CircuitState::kHalfOpen:
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::OnSuccess() {
  absl::MutexLock lock(&mutex_);
  state_ = CircuitState::kClosed;
  closed_.store(true, std::memory_order_release);
  consecutive_failures_ = 0;
  probe_in_flight_ = false;
}

bool CircuitBreaker::OnFailure(Clock::time_point now) {
  absl::MutexLock lock(&mutex_);
  ++consecutive_failures_;
  switch (state_) {
    case CircuitState::kClosed:
      if (consecutive_failures_ < failures_to_open_) return false;
      break;
    case CircuitState::kOpen:
      return false;  // a call that started before the circuit opened
    case CircuitState::kHalfOpen:
      break;  // the probe failed
  }
  state_ = CircuitState::kOpen;
  closed_.store(false, std::memory_order_release);
  open_until_ = now + cooldown_;
  probe_in_flight_ = false;
  return true;
}

void CircuitBreaker::OnNeutral() {
  absl::MutexLock lock(&mutex_);
  if (state_ == CircuitState::kHalfOpen) probe_in_flight_ = false;
}

CircuitState CircuitBreaker::state(Clock::time_point now) const {
  absl::MutexLock lock(&mutex_);
  if (state_ == CircuitState::kOpen && now >= open_until_) return CircuitState::kHalfOpen;
  return state_;
}

}  // namespace slm::router
