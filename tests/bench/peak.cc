#include "tests/bench/peak.h"

#include <omp.h>
#include <time.h>

#include <iostream>
#include <random>
#include <vector>

#include "kernels/linear.h"

namespace slm::bench {

double MeasurePeakGops(kernels::DType dtype, int threads, bool thread_cpu_time) {
  const int64_t m = kPeakRows, k = kPeakFeatures, n = kPeakFeatures;
  std::mt19937 generator(42);
  std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
  std::vector<float> weight(n * k), x(m * k), y(m * n);
  for (float& value : weight) value = distribution(generator) * 0.02f;
  for (float& value : x) value = distribution(generator);
  // oneDNN fixes a primitive's thread team when it is created: set the count first.
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto linear =
      kernels::Linear::Create(weight.data(), nullptr, n, k, dtype, kernels::Activation::kNone, m);
  if (!linear.ok()) {
    std::cerr << "MeasurePeakGops: " << linear.status() << "\n";
    omp_set_num_threads(previous_threads);
    return 0.0;
  }
  (*linear)->Forward(x.data(), m, y.data()).IgnoreError();  // warm up caches and OpenMP threads
  const clockid_t clock = thread_cpu_time && threads == 1 ? CLOCK_THREAD_CPUTIME_ID
                                                           : CLOCK_MONOTONIC;
  auto now = [clock] {
    timespec value;
    clock_gettime(clock, &value);
    return static_cast<double>(value.tv_sec) + 1e-9 * static_cast<double>(value.tv_nsec);
  };
  const double start = now();
  int64_t iterations = 0;
  double seconds = 0.0;
  do {
    (*linear)->Forward(x.data(), m, y.data()).IgnoreError();
    ++iterations;
    seconds = now() - start;
  } while (seconds < 0.3);
  omp_set_num_threads(previous_threads);
  return 2.0 * m * k * n * iterations / seconds / 1e9;
}

}  // namespace slm::bench
