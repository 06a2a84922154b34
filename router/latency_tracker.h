// Recent latencies of one route, for hedging after a latency percentile.
//
//   LatencyTracker tracker(/*percentile=*/95);
//   tracker.Record(elapsed);
//   std::chrono::microseconds p95 = tracker.Current();  // 0 until kMinSamples were seen
//
// Keeps the last kCapacity samples in a ring; the percentile is recomputed every
// kRecomputeEvery samples and read without locking in between.
// Thread-safety: all methods may be called concurrently.
#ifndef SLM_ROUTER_LATENCY_TRACKER_H_
#define SLM_ROUTER_LATENCY_TRACKER_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace slm::router {

class LatencyTracker {
 public:
  static constexpr size_t kCapacity = 512;
  static constexpr size_t kMinSamples = 20;
  static constexpr size_t kRecomputeEvery = 16;

  explicit LatencyTracker(double percentile) : percentile_(percentile) {}

  void Record(std::chrono::microseconds latency) {
    absl::MutexLock lock(&mutex_);
    samples_[next_ % kCapacity] = latency.count();
    ++next_;
    if (next_ >= kMinSamples && next_ % kRecomputeEvery == 0) {
      const size_t count = std::min<size_t>(next_, kCapacity);
      std::array<int64_t, kCapacity> sorted;
      std::copy(samples_.begin(), samples_.begin() + count, sorted.begin());
      const size_t rank = std::min(
          count - 1, static_cast<size_t>(percentile_ / 100.0 * static_cast<double>(count)));
      std::nth_element(sorted.begin(), sorted.begin() + rank, sorted.begin() + count);
      cached_us_.store(sorted[rank]);
    }
  }

  // The configured percentile of the recent samples; 0 until there are enough.
  std::chrono::microseconds Current() const { return std::chrono::microseconds(cached_us_.load()); }

 private:
  const double percentile_;
  std::atomic<int64_t> cached_us_{0};
  absl::Mutex mutex_;
  std::array<int64_t, kCapacity> samples_ ABSL_GUARDED_BY(mutex_){};
  size_t next_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace slm::router

#endif  // SLM_ROUTER_LATENCY_TRACKER_H_
