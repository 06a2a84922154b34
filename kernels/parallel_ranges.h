// Elementwise passes (norms, activations, quantization) split across the caller's OpenMP
// threads when they are big enough to pay for waking them (kernels-internal).
//
//   ParallelRanges(rows, /*work_per_item=*/cols, [&](int64_t first, int64_t last) {
//     for (int64_t r = first; r < last; ++r) NormalizeRow(r);
//   });
//
// body(first, last) runs over contiguous, disjoint ranges covering [0, count): on up to
// omp_get_max_threads() threads when count * work_per_item >= kMinParallelWork and no parallel
// region is active, else once on the calling thread as body(0, count). Each item is computed
// by exactly one call, so results do not depend on the thread count (as long as body's items
// are independent). Decode-sized passes (<= 16 rows of a few thousand elements) stay on one
// thread: waking another costs more than they take.
#ifndef SLM_KERNELS_PARALLEL_RANGES_H_
#define SLM_KERNELS_PARALLEL_RANGES_H_

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace slm::kernels::internal {

inline constexpr int64_t kMinParallelWork = 65536;  // elements

template <typename Body>
void ParallelRanges(int64_t count, int64_t work_per_item, Body&& body) {
  const int threads = omp_in_parallel() || count * work_per_item < kMinParallelWork
                          ? 1
                          : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), count));
  if (threads <= 1) {
    if (count > 0) body(int64_t{0}, count);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t first = count * t / n, last = count * (t + 1) / n;
    if (first < last) body(first, last);
  }
}

}  // namespace slm::kernels::internal

#endif  // SLM_KERNELS_PARALLEL_RANGES_H_
