#include "tests/bench/bandwidth.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace slm::bench {
namespace {

// Sums 64-bit lanes of [begin, end) (bytes, multiple of 1024) so the loads cannot be elided. The
// range is read as 4 interleaved streams (its quarters, 256 bytes of each in turn): on this
// machine that reaches 1.15-1.2x the bandwidth of one sequential stream (more misses in flight per
// core), which is what the packed GEMV kernels' multi-row layouts and prefetches also get.
__attribute__((target("avx512f"))) uint64_t ReadAvx512(const char* begin, const char* end) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  const int64_t quarter = (end - begin) / 4 / 256 * 256;
  for (int64_t offset = 0; offset < quarter; offset += 256) {
    for (int stream = 0; stream < 4; ++stream) {
      const char* p = begin + stream * quarter + offset;
      a = _mm512_add_epi64(a, _mm512_load_si512(p));
      b = _mm512_add_epi64(b, _mm512_load_si512(p + 64));
      c = _mm512_add_epi64(c, _mm512_load_si512(p + 128));
      d = _mm512_add_epi64(d, _mm512_load_si512(p + 192));
    }
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
  uint64_t sum = 0;
  for (uint64_t lane : lanes) sum += lane;
  return sum;
}

uint64_t ReadPortable(const char* begin, const char* end) {
  uint64_t sum[4] = {};
  for (const char* p = begin; p < end; p += 32) {
    for (int i = 0; i < 4; ++i) {
      uint64_t value;
      std::memcpy(&value, p + 8 * i, sizeof(value));
      sum[i] += value;
    }
  }
  return sum[0] + sum[1] + sum[2] + sum[3];
}

}  // namespace

double BenchClockSeconds(bool thread_cpu_time) {
  timespec now;
  clock_gettime(thread_cpu_time ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

BandwidthProbe::BandwidthProbe()
    : buffer_(static_cast<char*>(std::aligned_alloc(64, static_cast<size_t>(kBandwidthBufferBytes)))) {
  // Non-zero contents, so no page is the shared zero page.
  std::memset(buffer_, 1, static_cast<size_t>(kBandwidthBufferBytes));
}

BandwidthProbe::~BandwidthProbe() { std::free(buffer_); }

double BandwidthProbe::Measure(int threads, double seconds_wanted) {
  const int64_t bytes = kBandwidthBufferBytes;
  const bool avx512 = __builtin_cpu_supports("avx512f");
  threads = std::max(1, threads);
  char* buffer = buffer_;
  volatile uint64_t sink = 0;
  const bool cpu_time = threads == 1;
  const double start = BenchClockSeconds(cpu_time);
  int64_t passes = 0;
  double seconds = 0.0;
  do {
#pragma omp parallel num_threads(threads)
    {
      const int64_t n = omp_get_num_threads(), id = omp_get_thread_num();
      const int64_t chunk = bytes / n / 1024 * 1024;
      const char* begin = buffer + id * chunk;
      const uint64_t sum =
          avx512 ? ReadAvx512(begin, begin + chunk) : ReadPortable(begin, begin + chunk);
      if (sum == 42) sink = sink + 1;
    }
    ++passes;
    seconds = BenchClockSeconds(cpu_time) - start;
  } while (seconds < seconds_wanted);
  return static_cast<double>(passes) * static_cast<double>(bytes) / seconds / 1e9;
}

double MeasureReadBandwidthGBs(int threads) {
  BandwidthProbe probe;
  probe.Measure(threads, 0.05);  // warm up (page faults, frequency)
  double best = 0.0;
  for (int window = 0; window < 3; ++window) best = std::max(best, probe.Measure(threads, 0.3));
  return best;
}

}  // namespace slm::bench
