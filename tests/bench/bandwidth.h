// The memory read bandwidth this machine reaches, for decode benchmarks to report against (a
// batch-1 decode step streams every weight once, so bytes / bandwidth is its roofline time).
//
//   const double bandwidth = MeasureReadBandwidthGBs(/*threads=*/1);  // e.g. 25.3
//
// Thread-safety: not for concurrent use; it runs an OpenMP team of `threads` for its duration
// (without changing the caller's default thread count).
#ifndef SLM_TESTS_BENCH_BANDWIDTH_H_
#define SLM_TESTS_BENCH_BANDWIDTH_H_

#include <cstdint>

namespace slm::bench {

// Buffer size streamed: 8x a 32 MiB L3, so the figure is DRAM bandwidth, not cache.
inline constexpr int64_t kBandwidthBufferBytes = int64_t{256} << 20;

// Streams a 256 MiB buffer with AVX-512 loads (4 interleaved streams per thread; scalar where
// the CPU lacks AVX-512), split across `threads` OpenMP threads, about 0.3 s per window; returns
// the best of three windows in GB/s (1e9 bytes per second).
double MeasureReadBandwidthGBs(int threads);

// Seconds on CLOCK_THREAD_CPUTIME_ID (calling thread's CPU time) or CLOCK_MONOTONIC.
double BenchClockSeconds(bool thread_cpu_time);

// The same probe, kept allocated so a benchmark can interleave short bandwidth windows with its
// own (on a shared machine, a ratio of figures taken seconds apart means little).
class BandwidthProbe {
 public:
  BandwidthProbe();
  ~BandwidthProbe();
  BandwidthProbe(const BandwidthProbe&) = delete;
  BandwidthProbe& operator=(const BandwidthProbe&) = delete;
  // GB/s of whole passes over the buffer with `threads` threads for at least `seconds`. With one
  // thread the time is the calling thread's CPU time (so time slices lost to other processes on a
  // shared machine do not count); with more it is wall-clock time.
  double Measure(int threads, double seconds);

 private:
  char* buffer_;
};

}  // namespace slm::bench

#endif  // SLM_TESTS_BENCH_BANDWIDTH_H_
