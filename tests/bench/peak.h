// The matmul throughput this machine reaches through kernels::Linear, for benchmarks to report
// their own numbers against (e.g. "the encoder runs at 60% of peak int8 GOP/s").
//
//   const double peak = MeasurePeakGops(kernels::DType::kBF16, /*threads=*/1);
//
// Thread-safety: not for concurrent use; it sets the OpenMP thread count for its duration and
// restores the previous value before returning.
#ifndef SLM_TESTS_BENCH_PEAK_H_
#define SLM_TESTS_BENCH_PEAK_H_

#include <cstdint>

#include "kernels/dtype.h"

namespace slm::bench {

// The "peak" shape: a compute-bound 512 x 2048 x 2048 matmul.
inline constexpr int64_t kPeakRows = 512;
inline constexpr int64_t kPeakFeatures = 2048;

// Times Linear(2048 -> 2048, `dtype`) on 512 rows for about 0.3 s with `threads` OpenMP threads
// and returns billions of multiply-add operations (2 per MAC) per second; 0 if the layer cannot
// be created (its error is printed to stderr). Wall-clock time, or with thread_cpu_time and one
// thread the calling thread's CPU time (as benchmarks that time themselves so on a shared
// machine).
double MeasurePeakGops(kernels::DType dtype, int threads, bool thread_cpu_time = false);

}  // namespace slm::bench

#endif  // SLM_TESTS_BENCH_PEAK_H_
