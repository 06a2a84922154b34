#include "kernels/kv_attention.h"

// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized once inlined (see gemv_kernels.cc).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"  // _mm512_reduce_max_ps, same cause

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <utility>
#include <type_traits>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/gemv.h"
#include "kernels/parallel_ranges.h"
#include "kernels/vector_math.h"

namespace slm::kernels {
namespace {

int64_t ElementBytes(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kBF16:
      return 2;
    case DType::kInt8:
      return 1;
  }
  return 4;
}

int64_t RoundUp64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

// Offsets inside one layer's block: keys, values, key scales, value scales.
struct LayerOffsets {
  int64_t values = 0, key_scales = 0, value_scales = 0, total = 0;
};
LayerOffsets Offsets(DType dtype, int64_t heads, int64_t head_dim, int64_t capacity) {
  const int64_t part = RoundUp64(heads * capacity * head_dim * ElementBytes(dtype));
  const int64_t scales = dtype == DType::kInt8 ? RoundUp64(heads * capacity * 4) : 0;
  LayerOffsets offsets;
  offsets.values = part;
  offsets.key_scales = 2 * part;
  offsets.value_scales = 2 * part + scales;
  offsets.total = 2 * part + 2 * scales;
  return offsets;
}

SLM_KERNELS_MULTIVERSION
void Bf16RowToFloat(const uint16_t* source, int64_t count, float* destination) {
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t bits = static_cast<uint32_t>(source[i]) << 16;
    std::memcpy(&destination[i], &bits, sizeof(float));
  }
}

SLM_KERNELS_MULTIVERSION
void Int8RowToFloat(const int8_t* source, int64_t count, float scale, float* destination) {
  for (int64_t i = 0; i < count; ++i) destination[i] = static_cast<float>(source[i]) * scale;
}

SLM_KERNELS_MULTIVERSION
float Dot(const float* a, const float* b, int64_t count) {
  constexpr int kLanes = 16;
  float partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) partial[lane] += a[i + lane] * b[i + lane];
  }
  float sum = 0.0f;
  for (; i < count; ++i) sum += a[i] * b[i];
  for (float value : partial) sum += value;
  return sum;
}

SLM_KERNELS_MULTIVERSION
void Axpy(float alpha, const float* x, int64_t count, float* y) {
  for (int64_t i = 0; i < count; ++i) y[i] += alpha * x[i];
}

SLM_KERNELS_MULTIVERSION
void ExpShifted(float* x, int64_t count, float shift, float* sum) {
  float total = 0.0f;
  for (int64_t i = 0; i < count; ++i) {
    x[i] = internal::FastExp(x[i] - shift);
    total += x[i];
  }
  *sum = total;
}

// Row `token` of head `head` of a cache part as f32 (pointer into the cache for kF32).
const float* CacheRow(const KvLayerView& cache, const void* part, const float* scales,
                      int64_t head, int64_t token, float* scratch) {
  const int64_t index = (head * cache.capacity + token) * cache.head_dim;
  switch (cache.dtype) {
    case DType::kF32:
      return static_cast<const float*>(part) + index;
    case DType::kBF16:
      Bf16RowToFloat(static_cast<const uint16_t*>(part) + index, cache.head_dim, scratch);
      return scratch;
    case DType::kInt8:
      Int8RowToFloat(static_cast<const int8_t*>(part) + index, cache.head_dim,
                     scales[head * cache.capacity + token], scratch);
      return scratch;
  }
  return scratch;
}

// FloatToBf16 (gemv.h: round to nearest even, NaN kept quiet) over a row, inlined so that it
// vectorizes (one out-of-line call per element was ~2% of SmolLM2 prefill).
SLM_KERNELS_MULTIVERSION
void RowToBf16(const float* row, int64_t count, uint16_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &row[i], sizeof(bits));
    const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    out[i] = static_cast<uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? (bits >> 16) | 0x40u
                                                                      : rounded);
  }
}

void StoreRow(const KvLayerView& cache, void* part, float* scales, int64_t head, int64_t token,
              const float* row) {
  const int64_t d = cache.head_dim;
  const int64_t index = (head * cache.capacity + token) * d;
  switch (cache.dtype) {
    case DType::kF32:
      std::memcpy(static_cast<float*>(part) + index, row, static_cast<size_t>(d) * 4);
      break;
    case DType::kBF16: {
      RowToBf16(row, d, static_cast<uint16_t*>(part) + index);
      break;
    }
    case DType::kInt8: {
      float abs_max = 0.0f;
      for (int64_t i = 0; i < d; ++i) abs_max = std::max(abs_max, std::fabs(row[i]));
      const float scale = abs_max > 0.0f ? abs_max / 127.0f : 1.0f;
      const float inverse = 1.0f / scale;
      int8_t* out = static_cast<int8_t*>(part) + index;
      for (int64_t i = 0; i < d; ++i) {
        const float value = std::min(127.0f, std::max(-127.0f, row[i] * inverse));
        out[i] = static_cast<int8_t>(static_cast<int32_t>(value + (value >= 0.0f ? 0.5f : -0.5f)));
      }
      scales[head * cache.capacity + token] = scale;
      break;
    }
  }
}

absl::Status CheckView(const KvLayerView& cache) {
  if (cache.keys == nullptr || cache.values == nullptr || cache.num_kv_heads <= 0 ||
      cache.head_dim <= 0 || cache.capacity <= 0) {
    return absl::InvalidArgumentError(
        "KV cache view: keys/values must be non-null and num_kv_heads, head_dim, capacity "
        "positive");
  }
  if (cache.dtype == DType::kInt8 && (cache.key_scales == nullptr || cache.value_scales == nullptr)) {
    return absl::InvalidArgumentError("KV cache view: int8 cache needs key_scales and value_scales");
  }
  return absl::OkStatus();
}

absl::Status CheckAttention(const KvLayerView& cache, const float* q, int64_t start,
                            int64_t num_tokens, int64_t num_heads, float* out) {
  if (absl::Status status = CheckView(cache); !status.ok()) return status;
  if (q == nullptr || out == nullptr) {
    return absl::InvalidArgumentError("CachedAttention: q or out is null");
  }
  if (num_heads <= 0 || num_heads % cache.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CachedAttention: num_heads (", num_heads, ") must be a positive multiple of num_kv_heads (",
        cache.num_kv_heads, ")"));
  }
  if (start < 0 || num_tokens < 1 || start + num_tokens > cache.capacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("CachedAttention: positions [", start, ", ", start + num_tokens,
                     ") must lie within the cache capacity ", cache.capacity));
  }
  return absl::OkStatus();
}

// First visible position for a query at `position`.
int64_t WindowStart(const AttentionOptions& options, int64_t position) {
  return options.sliding_window > 0 ? std::max<int64_t>(0, position - options.sliding_window + 1)
                                    : 0;
}

// ---------------------------------------------------------------------------------------------
// AVX-512 path: one (kv head, token) item with the G query heads of its group. Cache rows are
// widened to f32 in registers 16 elements at a time (no per-row conversion calls), the G dot
// products per key share each widened chunk, and the weighted value sum keeps G accumulators
// per 16-element chunk in registers. Same f32 math as the portable path up to summation order.
#define SLM_ATTENTION_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

std::atomic<bool> force_portable_attention{false};
std::atomic<bool> blocked_prefill_attention{true};

bool UseAvx512Attention() {
  if (force_portable_attention.load(std::memory_order_relaxed)) return false;
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }();
  return supported;
}

// Elements [c, c + 16) (masked to the row's end) of cache row `index` as f32.
SLM_ATTENTION_AVX512 inline __m512 LoadCacheChunk(const KvLayerView& cache, const void* part,
                                                  float scale, int64_t index, __mmask16 mask) {
  switch (cache.dtype) {
    case DType::kF32:
      return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(part) + index);
    case DType::kBF16: {
      const __m256i bits =
          _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(part) + index);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
    }
    case DType::kInt8: {
      const __m128i bytes = _mm_maskz_loadu_epi8(mask, static_cast<const int8_t*>(part) + index);
      return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)),
                           _mm512_set1_ps(scale));
    }
  }
  return _mm512_setzero_ps();
}

inline float RowScale(const float* scales, const KvLayerView& cache, int64_t head,
                      int64_t token) {
  return scales != nullptr ? scales[head * cache.capacity + token] : 1.0f;
}

// Rows of another item (AttentionOptions::prefetch_next) to prefetch while this one works:
// `bytes` of keys and of values from the two addresses (none when bytes == 0).
struct NextRows {
  const char* keys = nullptr;
  const char* values = nullptr;
  int64_t bytes = 0;
};

template <int G>
SLM_ATTENTION_AVX512 void AttendItemAvx512(const KvLayerView& cache, const float* q,
                                           int64_t kv_head, int64_t first, int64_t length,
                                           float scale, bool decode, const NextRows& /*next*/,
                                           float* scores, float* out) {
  const int64_t d = cache.head_dim;
  // A batched decode step walks many sequences' caches once each: short per-item streams the
  // hardware prefetcher barely starts on, so short items' rows are prefetched here: keys
  // kKeysAhead tokens ahead of the dot products, each value row while its key is used (the
  // value pass comes after all scores).
  const int64_t row_bytes =
      d * (cache.dtype == DType::kF32 ? 4 : cache.dtype == DType::kBF16 ? 2 : 1);
  const char* key_rows =
      static_cast<const char*>(cache.keys) + kv_head * cache.capacity * row_bytes;
  const char* value_rows =
      static_cast<const char*>(cache.values) + kv_head * cache.capacity * row_bytes;
  // Only for decode (one query token per sequence: prefill's query tokens reuse the same rows
  // from cache) and short contexts (longer streams are left to the hardware prefetcher; not
  // measured there).
  constexpr int64_t kKeysAhead = 8, kMaxPrefetchedLength = 128;
  const int64_t prefetched = decode && length <= kMaxPrefetchedLength ? length : 0;
  for (int64_t j = 0; j < std::min(kKeysAhead, prefetched); ++j) {
    for (int64_t b = 0; b < row_bytes; b += 64) {
      _mm_prefetch(key_rows + (first + j) * row_bytes + b, _MM_HINT_T0);
    }
  }
  // Scores: q rows of the group are at q + g * d (contiguous heads of one token). The loop is
  // instantiated with and without the prefetches (one loop testing a flag per key kept extra
  // values live and made 512-token prefill ~5% slower).
  auto score_loop = [&](auto prefetch_tag) SLM_ATTENTION_AVX512 {
    constexpr bool kPrefetch = decltype(prefetch_tag)::value;
    for (int64_t j = 0; j < length; ++j) {
      const int64_t token = first + j;
      if constexpr (kPrefetch) {
        for (int64_t b = 0; b < row_bytes; b += 64) {
          if (j + kKeysAhead < length) {
            _mm_prefetch(key_rows + (token + kKeysAhead) * row_bytes + b, _MM_HINT_T0);
          }
          _mm_prefetch(value_rows + token * row_bytes + b, _MM_HINT_T0);
        }
      }
      const int64_t row = (kv_head * cache.capacity + token) * d;
      const float key_scale = RowScale(cache.key_scales, cache, kv_head, token);
      __m512 acc[G];
      for (int g = 0; g < G; ++g) acc[g] = _mm512_setzero_ps();
      for (int64_t c = 0; c < d; c += 16) {
        const __mmask16 mask = d - c >= 16 ? static_cast<__mmask16>(0xFFFF)
                                           : static_cast<__mmask16>((1u << (d - c)) - 1u);
        const __m512 key = LoadCacheChunk(cache, cache.keys, key_scale, row + c, mask);
        for (int g = 0; g < G; ++g) {
          acc[g] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, q + g * d + c), key, acc[g]);
        }
      }
      for (int g = 0; g < G; ++g) scores[g * length + j] = scale * _mm512_reduce_add_ps(acc[g]);
    }
  };
  if (prefetched > 0) {
    score_loop(std::true_type());
  } else {
    score_loop(std::false_type());
  }
  // Softmax per query head.
  for (int g = 0; g < G; ++g) {
    float* s = scores + g * length;
    const float max = *std::max_element(s, s + length);
    float sum = 0.0f;
    ExpShifted(s, length, max, &sum);
    const float inverse = 1.0f / sum;
    for (int64_t j = 0; j < length; ++j) s[j] *= inverse;
  }
  // Weighted values, one 16-element chunk of all G outputs at a time.
  for (int64_t c = 0; c < d; c += 16) {
    const __mmask16 mask = d - c >= 16 ? static_cast<__mmask16>(0xFFFF)
                                       : static_cast<__mmask16>((1u << (d - c)) - 1u);
    __m512 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm512_setzero_ps();
    for (int64_t j = 0; j < length; ++j) {
      const int64_t token = first + j;
      const __m512 value =
          LoadCacheChunk(cache, cache.values, RowScale(cache.value_scales, cache, kv_head, token),
                         (kv_head * cache.capacity + token) * d + c, mask);
      for (int g = 0; g < G; ++g) {
        acc[g] = _mm512_fmadd_ps(_mm512_set1_ps(scores[g * length + j]), value, acc[g]);
      }
    }
    for (int g = 0; g < G; ++g) _mm512_mask_storeu_ps(out + g * d + c, mask, acc[g]);
  }
}

using AttendItemFn = void (*)(const KvLayerView&, const float*, int64_t, int64_t, int64_t, float,
                              bool, const NextRows&, float*, float*);
constexpr int kMaxAvx512Group = 8;
constexpr AttendItemFn kAttendItem[kMaxAvx512Group] = {
    AttendItemAvx512<1>, AttendItemAvx512<2>, AttendItemAvx512<3>, AttendItemAvx512<4>,
    AttendItemAvx512<5>, AttendItemAvx512<6>, AttendItemAvx512<7>, AttendItemAvx512<8>,
};

// ---------------------------------------------------------------------------------------------
// AVX-512 prefill path (num_tokens >= kMinBlockedTokens): per kv head, the visible keys are
// widened once per call into f32 scratch, keys transposed in 16-key panels ([keys / 16][head_dim]
// [16], padded with zero keys: one panel's head_dim vectors are contiguous, where a plain
// [head_dim][keys] layout put them a power-of-two stride apart and thrashed L1 sets at 512 keys)
// and values row-major ([keys][head_dim]); then each item (kv head, block of kBlockTokens query
// tokens) computes the scores of all its query rows (tokens x group heads) against the block's
// key range with R query rows per register block (one key-vector load feeds R broadcast FMAs,
// no horizontal sums), masks the causal / window edges, softmaxes each row, and accumulates the
// weighted values with R rows sharing each value load. Keys and values are thus read once per
// query block instead of once per query; the f32 math is the same up to summation order.
constexpr int64_t kMinBlockedTokens = 8;
constexpr int64_t kBlockTokens = 16;
constexpr int kRowBlock = 8;

// One kv head's visible keys [0, keys) widened to f32: kt [padded / 16][d][16], v [keys][d].
SLM_ATTENTION_AVX512 void WidenHead(const KvLayerView& cache, int64_t kv_head, int64_t keys,
                                    int64_t padded, float* kt, float* v) {
  const int64_t d = cache.head_dim;
  std::vector<float> row(static_cast<size_t>(d));
  for (int64_t j = 0; j < keys; ++j) {
    const float* key =
        CacheRow(cache, cache.keys, cache.key_scales, kv_head, j, row.data());
    float* panel = kt + (j / 16) * d * 16 + j % 16;
    for (int64_t i = 0; i < d; ++i) panel[i * 16] = key[i];
    const float* value =
        CacheRow(cache, cache.values, cache.value_scales, kv_head, j, row.data());
    std::memcpy(v + j * d, value, static_cast<size_t>(d) * sizeof(float));
  }
  for (int64_t j = keys; j < padded; ++j) {
    float* panel = kt + (j / 16) * d * 16 + j % 16;
    for (int64_t i = 0; i < d; ++i) panel[i * 16] = 0.0f;
  }
}

// scores[r][j - j0] = q_r . k_j for j in [j0, j0 + count); j0 and count multiples of 16.
template <int R>
SLM_ATTENTION_AVX512 void ScoreRows(const float* const* q, const float* kt, int64_t d,
                                    int64_t j0, int64_t count, float* const* scores) {
  for (int64_t jc = 0; jc < count; jc += 16) {
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const float* panel = kt + (j0 + jc) * d;
    for (int64_t i = 0; i < d; ++i) {
      const __m512 key = _mm512_loadu_ps(panel + i * 16);
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][i]), key, acc[r]);
    }
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(scores[r] + jc, acc[r]);
  }
}

// out_r = inverse_r * sum_j p_r[j - j0] v_j for j in [j0, j0 + count).
template <int R>
SLM_ATTENTION_AVX512 void WeightRows(const float* const* p, const float* inverse,
                                     const float* v, int64_t d, int64_t j0, int64_t count,
                                     float* const* out) {
  for (int64_t c = 0; c < d; c += 16) {
    const __mmask16 mask = d - c >= 16 ? static_cast<__mmask16>(0xFFFF)
                                       : static_cast<__mmask16>((1u << (d - c)) - 1u);
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const float* column = v + j0 * d + c;
    for (int64_t j = 0; j < count; ++j) {
      const __m512 value = _mm512_maskz_loadu_ps(mask, column + j * d);
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[r][j]), value, acc[r]);
    }
    for (int r = 0; r < R; ++r) {
      _mm512_mask_storeu_ps(out[r] + c, mask,
                            _mm512_mul_ps(acc[r], _mm512_set1_ps(inverse[r])));
    }
  }
}

// FastExp (vector_math.h) on 16 lanes.
SLM_ATTENTION_AVX512 inline __m512 Exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.0f), x));
  const __m512 shifter = _mm512_set1_ps(12582912.0f);
  const __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), shifter);
  const __m512i n =
      _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(shifter));
  const __m512 nf = _mm512_sub_ps(shifted, shifter);
  __m512 r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

// Unnormalized softmax of one score row in place: s[j] = exp(scale * (s[j] - max)) for j in
// [lo, hi), 0 elsewhere in [0, span) (span a multiple of 16); returns 1 / sum.
// Lanes of the 16 scores from j that lie in [lo, hi).
inline __mmask16 ValidLanes(int64_t j, int64_t lo, int64_t hi) {
  const int64_t begin = std::max<int64_t>(lo - j, 0), end = std::min<int64_t>(hi - j, 16);
  if (end <= begin) return static_cast<__mmask16>(0);
  return static_cast<__mmask16>(((1u << end) - 1u) & ~((1u << begin) - 1u));
}

// max of s[lo, hi) (hi > lo).
SLM_ATTENTION_AVX512 inline float MaskedRowMax(const float* s, int64_t lo, int64_t hi) {
  __m512 max = _mm512_set1_ps(-INFINITY);
  for (int64_t j = lo / 16 * 16; j < hi; j += 16) {
    max = _mm512_mask_max_ps(max, ValidLanes(j, lo, hi), max, _mm512_loadu_ps(s + j));
  }
  return _mm512_reduce_max_ps(max);
}

SLM_ATTENTION_AVX512 float SoftmaxRow(float* s, int64_t lo, int64_t hi, int64_t span,
                                      float scale) {
  auto valid = [&](int64_t j) { return ValidLanes(j, lo, hi); };
  const __m512 shift = _mm512_set1_ps(scale * MaskedRowMax(s, lo, hi));
  const __m512 scales = _mm512_set1_ps(scale);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < span; j += 16) {
    const __mmask16 mask = valid(j);
    __m512 p = _mm512_setzero_ps();
    if (mask != 0) {
      p = _mm512_maskz_mov_ps(
          mask, Exp16(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), scales, shift)));
      sum = _mm512_add_ps(sum, p);
    }
    _mm512_storeu_ps(s + j, p);
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

using ScoreRowsFn = void (*)(const float* const*, const float*, int64_t, int64_t, int64_t,
                             float* const*);
using WeightRowsFn = void (*)(const float* const*, const float*, const float*, int64_t,
                              int64_t, int64_t, float* const*);
constexpr ScoreRowsFn kScoreRows[kRowBlock] = {ScoreRows<1>, ScoreRows<2>, ScoreRows<3>,
                                               ScoreRows<4>, ScoreRows<5>, ScoreRows<6>,
                                               ScoreRows<7>, ScoreRows<8>};
constexpr WeightRowsFn kWeightRows[kRowBlock] = {WeightRows<1>, WeightRows<2>, WeightRows<3>,
                                                 WeightRows<4>, WeightRows<5>, WeightRows<6>,
                                                 WeightRows<7>, WeightRows<8>};

// ---------------------------------------------------------------------------------------------
// bf16 products (bf16 cache, AVX512_BF16, head_dim a multiple of 16), first for the blocked
// prefill path, then the per-token items below: keys and values are already bf16 in the cache,
// so they are repacked rather than widened, and each `vdpbf16ps` does 32 multiply-adds where
// an f32 FMA does 16. Blocked layouts per kv head:
//   keys   [padded / 16][d / 2][16 keys][2]: lane k of vector i holds key k's elements 2i, 2i+1;
//   values [padded / 2][d][2]: lane i of a vector holds element i of keys 2p and 2p + 1.
// Query rows are rounded to bf16 (the only rounding the scores add: keys are bf16 already) and
// the unnormalized softmax weights are rounded to bf16 before the value pass (the normalization
// stays f32). Scores, softmax and sums stay f32. Error bound: see kv_attention.h.
#define SLM_ATTENTION_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

std::atomic<bool> bf16_products_attention{true};

bool UseBf16Products(const KvLayerView& cache) {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
  }();
  return supported && cache.dtype == DType::kBF16 && cache.head_dim % 16 == 0 &&
         bf16_products_attention.load(std::memory_order_relaxed);
}

SLM_ATTENTION_BF16 inline __m512 DotBf16Pairs(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(a), reinterpret_cast<__m512bh>(b));
}

// One kv head's visible keys and values [0, keys) repacked as above (zero past `keys`).
SLM_ATTENTION_BF16 void PackHeadBf16(const KvLayerView& cache, int64_t kv_head, int64_t keys,
                                     int64_t padded, uint32_t* kt, uint32_t* vt) {
  const int64_t d = cache.head_dim, pairs = d / 2;
  const auto* key_rows = static_cast<const uint32_t*>(cache.keys) + kv_head * cache.capacity * pairs;
  const auto* value_rows = static_cast<const uint16_t*>(cache.values) + kv_head * cache.capacity * d;
  for (int64_t j = 0; j < padded; ++j) {
    uint32_t* panel = kt + (j / 16) * pairs * 16 + j % 16;
    if (j < keys) {
      const uint32_t* row = key_rows + j * pairs;
      for (int64_t i = 0; i < pairs; ++i) panel[i * 16] = row[i];
    } else {
      for (int64_t i = 0; i < pairs; ++i) panel[i * 16] = 0;
    }
  }
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t p = 0; p < padded / 2; ++p) {
    const int64_t j = 2 * p;
    for (int64_t c = 0; c < d; c += 16) {
      const __m256i even = j < keys ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                          value_rows + j * d + c))
                                    : zero;
      const __m256i odd = j + 1 < keys ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                             value_rows + (j + 1) * d + c))
                                       : zero;
      const __m512i packed = _mm512_or_si512(
          _mm512_cvtepu16_epi32(even), _mm512_slli_epi32(_mm512_cvtepu16_epi32(odd), 16));
      _mm512_storeu_si512(vt + p * d + c, packed);
    }
  }
}

// scores[r][j - j0] = q_r . k_j for j in [j0, j0 + count); q rows as bf16 pairs.
template <int R>
SLM_ATTENTION_BF16 void ScoreRowsBf16(const uint32_t* const* q, const uint32_t* kt, int64_t d,
                                      int64_t j0, int64_t count, float* const* scores) {
  const int64_t pairs = d / 2;
  for (int64_t jc = 0; jc < count; jc += 16) {
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const uint32_t* panel = kt + (j0 + jc) / 16 * pairs * 16;
    for (int64_t i = 0; i < pairs; ++i) {
      const __m512i key = _mm512_loadu_si512(panel + i * 16);
      for (int r = 0; r < R; ++r) {
        acc[r] = DotBf16Pairs(acc[r], _mm512_set1_epi32(static_cast<int>(q[r][i])), key);
      }
    }
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(scores[r] + jc, acc[r]);
  }
}

// out_r = inverse_r * sum_j p_r[j] v_(j0 + j) for j in [0, 2 * pair_count); p rows as bf16
// pairs (p_r[2m], p_r[2m + 1]).
template <int R>
SLM_ATTENTION_BF16 void WeightRowsBf16(const uint32_t* const* p, const float* inverse,
                                       const uint32_t* vt, int64_t d, int64_t j0,
                                       int64_t pair_count, float* const* out) {
  for (int64_t c = 0; c < d; c += 16) {
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const uint32_t* column = vt + (j0 / 2) * d + c;
    for (int64_t m = 0; m < pair_count; ++m) {
      const __m512i value = _mm512_loadu_si512(column + m * d);
      for (int r = 0; r < R; ++r) {
        acc[r] = DotBf16Pairs(acc[r], _mm512_set1_epi32(static_cast<int>(p[r][m])), value);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm512_storeu_ps(out[r] + c, _mm512_mul_ps(acc[r], _mm512_set1_ps(inverse[r])));
    }
  }
}

// count (a multiple of 16) f32 values rounded to bf16, nearest even (as RowToBf16, except that
// the instruction flushes denormals to zero).
SLM_ATTENTION_BF16 void RowToBf16Pairs(const float* row, int64_t count, uint32_t* out) {
  for (int64_t i = 0; i < count; i += 32) {
    if (count - i >= 32) {
      const __m512bh packed =
          _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + i + 16), _mm512_loadu_ps(row + i));
      _mm512_storeu_si512(out + i / 2, reinterpret_cast<__m512i>(packed));
    } else {
      const __m256bh packed = _mm512_cvtneps_pbh(_mm512_loadu_ps(row + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i / 2),
                          reinterpret_cast<__m256i>(packed));
    }
  }
}

// 2^t on 16 lanes for t <= 0 (softmax exponents): round, a degree-5 polynomial for 2^f on
// [-1/2, 1/2] (relative error < 3e-6, far below the bf16 rounding that follows), vscalefps.
SLM_ATTENTION_BF16 inline __m512 Exp2NonPositive16(__m512 t) {
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.3333558146e-3f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108665e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650696e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718056e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// SoftmaxRow for the bf16 path, writing the unnormalized weights straight as bf16 pairs:
// p16 covers [0, span) (zero outside [lo, hi)); returns 1 / (sum of the f32 weights).
SLM_ATTENTION_BF16 float SoftmaxRowBf16(const float* s, int64_t lo, int64_t hi, int64_t span,
                                        float scale, uint32_t* p16) {
  const float factor = scale * 1.44269504088896341f;  // exp(scale x) = 2^(factor x)
  const __m512 shift = _mm512_set1_ps(factor * MaskedRowMax(s, lo, hi));
  const __m512 factors = _mm512_set1_ps(factor);
  __m512 sum = _mm512_setzero_ps();
  auto weights = [&](int64_t j) SLM_ATTENTION_BF16 {
    const __mmask16 mask = ValidLanes(j, lo, hi);
    if (mask == 0) return _mm512_setzero_ps();
    const __m512 p = _mm512_maskz_mov_ps(
        mask, Exp2NonPositive16(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), factors, shift)));
    sum = _mm512_add_ps(sum, p);
    return p;
  };
  int64_t j = 0;
  for (; j + 32 <= span; j += 32) {
    const __m512 low = weights(j), high = weights(j + 16);
    _mm512_storeu_si512(p16 + j / 2,
                        reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(high, low)));
  }
  if (j < span) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p16 + j / 2),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(weights(j))));
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

using ScoreRowsBf16Fn = void (*)(const uint32_t* const*, const uint32_t*, int64_t, int64_t,
                                 int64_t, float* const*);
using WeightRowsBf16Fn = void (*)(const uint32_t* const*, const float*, const uint32_t*,
                                  int64_t, int64_t, int64_t, float* const*);
// 16 rows per register block: `vdpbf16ps` has several cycles of latency at two per cycle, so
// 8 independent accumulators (the f32 path's block) left it waiting.
constexpr int kRowBlockBf16 = 16;
template <int... R>
constexpr std::array<ScoreRowsBf16Fn, sizeof...(R)> ScoreRowsBf16Table(
    std::integer_sequence<int, R...>) {
  return {ScoreRowsBf16<R + 1>...};
}
template <int... R>
constexpr std::array<WeightRowsBf16Fn, sizeof...(R)> WeightRowsBf16Table(
    std::integer_sequence<int, R...>) {
  return {WeightRowsBf16<R + 1>...};
}
constexpr auto kScoreRowsBf16 =
    ScoreRowsBf16Table(std::make_integer_sequence<int, kRowBlockBf16>());
constexpr auto kWeightRowsBf16 =
    WeightRowsBf16Table(std::make_integer_sequence<int, kRowBlockBf16>());

// Lane i of the result = sum of the lanes of v[i] (16 horizontal sums in 45 shuffles and adds,
// where 16 separate reductions take ~130).
SLM_ATTENTION_BF16 inline __m512 SumLanes16(const __m512* v) {
  __m512 w[8], x[4];
  for (int i = 0; i < 8; ++i) {  // 128-bit lane l: [a, b, a', b'] partial sums of v[2i], v[2i+1]
    w[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                         _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  }
  for (int i = 0; i < 4; ++i) {  // lane l: lane-l sums of v[4i .. 4i + 3]
    const __m512d a = _mm512_castps_pd(w[2 * i]), b = _mm512_castps_pd(w[2 * i + 1]);
    x[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  const __m512 y0 = _mm512_add_ps(_mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 y1 = _mm512_add_ps(_mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(y0, y1, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(y0, y1, _MM_SHUFFLE(3, 1, 3, 1)));
}

// The per-token item (decode) with bf16 products for a bf16 cache, G query heads of one kv head:
// scores take each query row as bf16 pairs against 16 key rows at a time (2 x 32 elements per
// `vdpbf16ps`, the 16 partial sums reduced together by SumLanes16), SoftmaxRowBf16 writes the
// weights as bf16 pairs, and the value pass pairs keys j, j + 1 element-wise (16 elements per
// vector) against each head's weight pair. Same rounding as the blocked bf16 path.
template <int G>
SLM_ATTENTION_BF16 void AttendItemBf16(const KvLayerView& cache, const float* q, int64_t kv_head,
                                       int64_t first, int64_t length, float scale, bool decode,
                                       const NextRows& next, float* scores, float* out) {
  const int64_t d = cache.head_dim, row_bytes = d * 2;
  const auto* keys = static_cast<const uint16_t*>(cache.keys) +
                     (kv_head * cache.capacity + first) * d;
  const auto* values = static_cast<const uint16_t*>(cache.values) +
                       (kv_head * cache.capacity + first) * d;
  const int64_t span = (length + 15) / 16 * 16;
  // Scratch after the scores (the caller sizes `scores` for G x span floats + G x (span / 2 +
  // d / 2) words): weights and query rows as bf16 pairs.
  uint32_t* p16 = reinterpret_cast<uint32_t*>(scores + G * span);
  uint32_t* q16 = p16 + G * span / 2;
  for (int g = 0; g < G; ++g) RowToBf16Pairs(q + g * d, d, q16 + g * d / 2);
  // Short decode items: rows prefetched as in AttendItemAvx512.
  constexpr int64_t kMaxPrefetchedLength = 128;
  const bool prefetch = decode && length <= kMaxPrefetchedLength;
  if (prefetch) {
    for (int64_t j = 0; j < std::min<int64_t>(16, length); ++j) {
      for (int64_t b = 0; b < row_bytes; b += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(keys + j * d) + b, _MM_HINT_T0);
      }
    }
  }
  const int64_t chunks = (d + 31) / 32;  // 32 elements (16 pairs) per vector
  const __mmask32 last_mask = d % 32 == 0 ? ~__mmask32{0} : (__mmask32{1} << (d % 32)) - 1;
  // The next item's keys are prefetched a share per 16-key block, its values a share per
  // value-pass step (spread out: a burst of hundreds of prefetches stalls the loads behind it).
  const int64_t next_lines = (next.bytes + 63) / 64;
  const int64_t key_blocks = (length + 15) / 16;
  int64_t next_key_line = 0;
  for (int64_t j0 = 0; j0 < length; j0 += 16) {
    const int64_t count = std::min<int64_t>(16, length - j0);
    for (const int64_t until = next_lines * (j0 / 16 + 1) / key_blocks; next_key_line < until;
         ++next_key_line) {
      _mm_prefetch(next.keys + next_key_line * 64, _MM_HINT_T0);
    }
    if (prefetch) {
      for (int64_t j = j0; j < j0 + count; ++j) {
        for (int64_t b = 0; b < row_bytes; b += 64) {
          if (j + 16 < length) {
            _mm_prefetch(reinterpret_cast<const char*>(keys + (j + 16) * d) + b, _MM_HINT_T0);
          }
          _mm_prefetch(reinterpret_cast<const char*>(values + j * d) + b, _MM_HINT_T0);
        }
      }
    }
    for (int g = 0; g < G; ++g) {
      __m512 acc[16];
      for (int k = 0; k < 16; ++k) acc[k] = _mm512_setzero_ps();
      for (int64_t c = 0; c < chunks; ++c) {
        const __mmask32 mask = c + 1 == chunks ? last_mask : ~__mmask32{0};
        const __m512i query = _mm512_maskz_loadu_epi16(mask, q16 + g * d / 2 + c * 16);
        // All 16 unrolled (rows past `count` load nothing: mask 0), so acc stays in registers.
#pragma GCC unroll 16
        for (int k = 0; k < 16; ++k) {
          acc[k] = DotBf16Pairs(acc[k], query,
                                _mm512_maskz_loadu_epi16(k < count ? mask : 0,
                                                         keys + (j0 + k) * d + c * 32));
        }
      }
      _mm512_mask_storeu_ps(scores + g * span + j0, static_cast<__mmask16>((1u << count) - 1u),
                            SumLanes16(acc));
    }
  }
  float inverse[G];
  for (int g = 0; g < G; ++g) {
    inverse[g] =
        SoftmaxRowBf16(scores + g * span, 0, length, span, scale, p16 + g * span / 2);
  }
  // Values: 16 elements of keys 2m and 2m + 1 interleaved into one vector of pairs.
  const int64_t pairs = length / 2;
  const int64_t value_steps = (d / 16) * std::max<int64_t>(pairs, 1);
  // Line `next_value_line` is due once next_lines * step >= (line + 1) * value_steps, kept as a
  // running difference (an idiv per value step was 7% of this function's time).
  int64_t next_value_line = 0, value_due = 0;
  for (int64_t c = 0; c < d; c += 16) {
    __m512 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm512_setzero_ps();
    auto accumulate = [&](int64_t m, __m256i even, __m256i odd) SLM_ATTENTION_BF16 {
      const __m512i pair = _mm512_or_si512(_mm512_cvtepu16_epi32(even),
                                           _mm512_slli_epi32(_mm512_cvtepu16_epi32(odd), 16));
      for (int g = 0; g < G; ++g) {
        acc[g] = DotBf16Pairs(acc[g], _mm512_set1_epi32(static_cast<int>(p16[g * span / 2 + m])),
                              pair);
      }
    };
    for (int64_t m = 0; m < pairs; ++m) {
      for (value_due += next_lines; value_due >= value_steps && next_value_line < next_lines;
           value_due -= value_steps, ++next_value_line) {
        _mm_prefetch(next.values + next_value_line * 64, _MM_HINT_T0);
      }
      accumulate(m,
                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(values + 2 * m * d + c)),
                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(values + (2 * m + 1) * d + c)));
    }
    if (length % 2 != 0) {
      accumulate(pairs,
                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(values + 2 * pairs * d + c)),
                 _mm256_setzero_si256());
    }
    for (int g = 0; g < G; ++g) {
      _mm512_storeu_ps(out + g * d + c, _mm512_mul_ps(acc[g], _mm512_set1_ps(inverse[g])));
    }
  }
}

constexpr AttendItemFn kAttendItemBf16[kMaxAvx512Group] = {
    AttendItemBf16<1>, AttendItemBf16<2>, AttendItemBf16<3>, AttendItemBf16<4>,
    AttendItemBf16<5>, AttendItemBf16<6>, AttendItemBf16<7>, AttendItemBf16<8>,
};

// kBf16: the bf16-products variant (UseBf16Products) with the same item structure.
template <bool kBf16>
void BlockedAttention(const KvLayerView& cache, const float* q, int64_t q_row_stride,
                      int64_t start, int64_t num_tokens, int64_t num_heads,
                      const AttentionOptions& options, float* out, int64_t out_row_stride,
                      int max_threads) {
  const int64_t heads = cache.num_kv_heads;
  const int64_t group = num_heads / heads;
  const int64_t d = cache.head_dim;
  const int64_t keys = start + num_tokens;
  const int64_t padded = (keys + 15) / 16 * 16;
  // Scratch of the calling thread (grown, never shrunk): per head keys then values, f32
  // (kt [padded / 16][d][16], v [keys][d]) or bf16 pairs (2 x padded x d / 2 words).
  using Element = std::conditional_t<kBf16, uint32_t, float>;
  thread_local std::vector<Element> widened;
  const int64_t key_part = kBf16 ? padded * d / 2 : d * padded;
  const int64_t per_head = key_part + (kBf16 ? padded * d / 2 : keys * d);
  if (static_cast<int64_t>(widened.size()) < heads * per_head) {
    widened.resize(static_cast<size_t>(heads * per_head));
  }
  Element* const scratch = widened.data();
  const int64_t blocks = (num_tokens + kBlockTokens - 1) / kBlockTokens;
  const int64_t work = heads * blocks;
  const int threads = static_cast<int>(std::min<int64_t>(max_threads, work));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#pragma omp for schedule(static)
    for (int64_t h = 0; h < heads; ++h) {
      if constexpr (kBf16) {
        PackHeadBf16(cache, h, keys, padded, scratch + h * per_head,
                     scratch + h * per_head + key_part);
      } else {
        WidenHead(cache, h, keys, padded, scratch + h * per_head,
                  scratch + h * per_head + key_part);
      }
    }
    // Larger blocks (later tokens see more keys) first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < work; ++item) {
      const int64_t h = item % heads;
      const int64_t block = blocks - 1 - item / heads;
      const Element* kt = scratch + h * per_head;
      const Element* v = kt + key_part;
      const int64_t t0 = block * kBlockTokens;
      const int64_t t1 = std::min(num_tokens, t0 + kBlockTokens);
      // Key range of the block, j0 rounded down to 16 (scores outside a row's range are masked).
      const int64_t j0 = WindowStart(options, start + t0) / 16 * 16;
      const int64_t j_end = start + t1;
      const int64_t span = (j_end - j0 + 15) / 16 * 16;
      const int64_t rows = (t1 - t0) * group;
      thread_local std::vector<float> scores, inverse;
      thread_local std::vector<const float*> q_rows;
      thread_local std::vector<float*> s_rows, o_rows;
      // bf16 variant: query rows and softmax weights as bf16 pairs.
      thread_local std::vector<uint32_t> q16, p16;
      thread_local std::vector<const uint32_t*> q16_rows, p16_rows;
      scores.resize(static_cast<size_t>(rows * span));
      q_rows.resize(static_cast<size_t>(rows));
      s_rows.resize(static_cast<size_t>(rows));
      o_rows.resize(static_cast<size_t>(rows));
      inverse.resize(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r / group, head = h * group + r % group;
        q_rows[r] = q + t * q_row_stride + head * d;
        o_rows[r] = out + t * out_row_stride + head * d;
        s_rows[r] = scores.data() + r * span;
      }
      if constexpr (kBf16) {
        q16.resize(static_cast<size_t>(rows * d / 2));
        q16_rows.resize(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) {
          RowToBf16Pairs(q_rows[r], d, q16.data() + r * d / 2);
          q16_rows[r] = q16.data() + r * d / 2;
        }
        for (int64_t r = 0; r < rows; r += kRowBlockBf16) {
          const int64_t count = std::min<int64_t>(kRowBlockBf16, rows - r);
          kScoreRowsBf16[count - 1](q16_rows.data() + r, kt, d, j0, span, s_rows.data() + r);
        }
      } else {
        for (int64_t r = 0; r < rows; r += kRowBlock) {
          const int64_t count = std::min<int64_t>(kRowBlock, rows - r);
          kScoreRows[count - 1](q_rows.data() + r, kt, d, j0, span, s_rows.data() + r);
        }
      }
      if constexpr (kBf16) {
        p16.resize(static_cast<size_t>(rows * span / 2));
        p16_rows.resize(static_cast<size_t>(rows));
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t position = start + t0 + r / group;
        const int64_t lo = WindowStart(options, position) - j0, hi = position + 1 - j0;
        if constexpr (kBf16) {
          p16_rows[r] = p16.data() + r * span / 2;
          inverse[r] = SoftmaxRowBf16(s_rows[r], lo, hi, span, options.scale,
                                      p16.data() + r * span / 2);
        } else {
          inverse[r] = SoftmaxRow(s_rows[r], lo, hi, span, options.scale);
        }
      }
      const int64_t weighted = j_end - j0;
      if constexpr (kBf16) {
        // Pairs cover [j0, j0 + weighted rounded up to even): within span, zero past each row.
        const int64_t pair_count = (weighted + 1) / 2;
        for (int64_t r = 0; r < rows; r += kRowBlockBf16) {
          const int64_t count = std::min<int64_t>(kRowBlockBf16, rows - r);
          kWeightRowsBf16[count - 1](p16_rows.data() + r, inverse.data() + r, v, d, j0,
                                     pair_count, o_rows.data() + r);
        }
      } else {
        for (int64_t r = 0; r < rows; r += kRowBlock) {
          const int64_t count = std::min<int64_t>(kRowBlock, rows - r);
          kWeightRows[count - 1](s_rows.data() + r, inverse.data() + r, v, d, j0, weighted,
                                 o_rows.data() + r);
        }
      }
    }
  }
}

}  // namespace

namespace internal {
void ForcePortableAttentionForTesting(bool portable) { force_portable_attention.store(portable); }
void SetBlockedPrefillAttention(bool enabled) { blocked_prefill_attention.store(enabled); }
void SetBf16AttentionProducts(bool enabled) { bf16_products_attention.store(enabled); }
}  // namespace internal

int64_t KvLayerBytes(DType dtype, int64_t num_kv_heads, int64_t head_dim, int64_t capacity) {
  return Offsets(dtype, num_kv_heads, head_dim, capacity).total;
}

absl::StatusOr<std::unique_ptr<KvCacheBuffer>> KvCacheBuffer::Create(DType dtype,
                                                                     int64_t num_layers,
                                                                     int64_t num_kv_heads,
                                                                     int64_t head_dim,
                                                                     int64_t capacity) {
  if (num_layers <= 0 || num_kv_heads <= 0 || head_dim <= 0 || capacity <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KvCacheBuffer: num_layers, num_kv_heads, head_dim and capacity must be positive; got ",
        num_layers, ", ", num_kv_heads, ", ", head_dim, ", ", capacity));
  }
  std::unique_ptr<KvCacheBuffer> buffer(new KvCacheBuffer());
  buffer->num_layers_ = num_layers;
  buffer->layer_bytes_ = KvLayerBytes(dtype, num_kv_heads, head_dim, capacity);
  buffer->layer_.dtype = dtype;
  buffer->layer_.num_kv_heads = num_kv_heads;
  buffer->layer_.head_dim = head_dim;
  buffer->layer_.capacity = capacity;
  const size_t bytes = static_cast<size_t>(num_layers * buffer->layer_bytes_);
  buffer->memory_ = static_cast<char*>(std::aligned_alloc(64, bytes));
  if (buffer->memory_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("KvCacheBuffer: cannot allocate ", bytes,
                                                     " bytes"));
  }
  std::memset(buffer->memory_, 0, bytes);
  return buffer;
}

KvCacheBuffer::~KvCacheBuffer() { std::free(memory_); }

KvLayerView KvCacheBuffer::Layer(int64_t layer) const {
  KvLayerView view = layer_;
  const LayerOffsets offsets =
      Offsets(layer_.dtype, layer_.num_kv_heads, layer_.head_dim, layer_.capacity);
  char* base = memory_ + layer * layer_bytes_;
  view.keys = base;
  view.values = base + offsets.values;
  if (layer_.dtype == DType::kInt8) {
    view.key_scales = reinterpret_cast<float*>(base + offsets.key_scales);
    view.value_scales = reinterpret_cast<float*>(base + offsets.value_scales);
  }
  return view;
}

absl::Status WriteKv(const KvLayerView& cache, const float* k, const float* v, int64_t row_stride,
                     int64_t start, int64_t num_tokens) {
  if (absl::Status status = CheckView(cache); !status.ok()) return status;
  if (k == nullptr || v == nullptr) return absl::InvalidArgumentError("WriteKv: k or v is null");
  if (start < 0 || num_tokens < 0 || start + num_tokens > cache.capacity) {
    return absl::InvalidArgumentError(absl::StrCat("WriteKv: positions [", start, ", ",
                                                   start + num_tokens,
                                                   ") must lie within the cache capacity ",
                                                   cache.capacity));
  }
  // Tokens are independent: prefill-sized writes are split across threads.
  internal::ParallelRanges(
      num_tokens, 2 * cache.num_kv_heads * cache.head_dim, [&](int64_t first, int64_t last) {
        for (int64_t t = first; t < last; ++t) {
          for (int64_t h = 0; h < cache.num_kv_heads; ++h) {
            const int64_t offset = t * row_stride + h * cache.head_dim;
            StoreRow(cache, cache.keys, cache.key_scales, h, start + t, k + offset);
            StoreRow(cache, cache.values, cache.value_scales, h, start + t, v + offset);
          }
        }
      });
  return absl::OkStatus();
}

absl::Status CachedAttention(const KvLayerView& cache, const float* q, int64_t q_row_stride,
                             int64_t start, int64_t num_tokens, int64_t num_heads,
                             const AttentionOptions& options, float* out,
                             int64_t out_row_stride) {
  if (absl::Status status = CheckAttention(cache, q, start, num_tokens, num_heads, out);
      !status.ok()) {
    return status;
  }
  const int64_t group = num_heads / cache.num_kv_heads;
  const int64_t d = cache.head_dim;
  const int64_t work = cache.num_kv_heads * num_tokens;
  const int threads = omp_in_parallel() ? 1 : static_cast<int>(std::min<int64_t>(
                                                  omp_get_max_threads(), work));
  if (num_tokens >= kMinBlockedTokens && UseAvx512Attention() &&
      blocked_prefill_attention.load(std::memory_order_relaxed)) {
    const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (UseBf16Products(cache)) {
      BlockedAttention<true>(cache, q, q_row_stride, start, num_tokens, num_heads, options, out,
                             out_row_stride, max_threads);
    } else {
      BlockedAttention<false>(cache, q, q_row_stride, start, num_tokens, num_heads, options,
                              out, out_row_stride, max_threads);
    }
    return absl::OkStatus();
  }
  const bool avx512 = group <= kMaxAvx512Group && UseAvx512Attention();
  const bool bf16_products = avx512 && UseBf16Products(cache);
  const AttendItemFn attend_avx512 = !avx512          ? nullptr
                                     : bf16_products ? kAttendItemBf16[group - 1]
                                                     : kAttendItem[group - 1];
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
  for (int64_t item = 0; item < work; ++item) {
    const int64_t kv_head = item / num_tokens;
    const int64_t t = item % num_tokens;
    const int64_t position = start + t;
    const int64_t first = WindowStart(options, position);
    const int64_t length = position + 1 - first;
    thread_local std::vector<float> scores, row;
    // AttendItemBf16 also keeps bf16 pairs there (see its scratch comment).
    const int64_t span = (length + 15) / 16 * 16;
    scores.resize(static_cast<size_t>(bf16_products ? group * (span + span / 2 + d / 2)
                                                    : group * length));
    if (attend_avx512 != nullptr) {
      // The last token's item of each kv head prefetches the same head of the next cache.
      NextRows next;
      const KvLayerView* following = options.prefetch_next;
      if (following != nullptr && t == num_tokens - 1 && following->dtype == cache.dtype &&
          following->num_kv_heads == cache.num_kv_heads && following->head_dim == d &&
          following->keys != nullptr && following->values != nullptr) {
        const int64_t row_bytes = d * ElementBytes(cache.dtype);
        const int64_t end = std::clamp<int64_t>(options.prefetch_next_length, 0,
                                                following->capacity);
        const int64_t begin = WindowStart(options, end - 1);
        const int64_t offset = (kv_head * following->capacity + begin) * row_bytes;
        next.keys = static_cast<const char*>(following->keys) + offset;
        next.values = static_cast<const char*>(following->values) + offset;
        next.bytes = std::max<int64_t>(0, end - begin) * row_bytes;
      }
      attend_avx512(cache, q + t * q_row_stride + kv_head * group * d, kv_head, first, length,
                    options.scale, /*decode=*/num_tokens == 1, next, scores.data(),
                    out + t * out_row_stride + kv_head * group * d);
      continue;
    }
    row.resize(static_cast<size_t>(d));
    // Scores of every query head of the group against each key, reading each key once.
    for (int64_t j = 0; j < length; ++j) {
      const float* key = CacheRow(cache, cache.keys, cache.key_scales, kv_head, first + j,
                                  row.data());
      for (int64_t g = 0; g < group; ++g) {
        const float* query = q + t * q_row_stride + (kv_head * group + g) * d;
        scores[g * length + j] = options.scale * Dot(query, key, d);
      }
    }
    for (int64_t g = 0; g < group; ++g) {
      float* s = scores.data() + g * length;
      const float max = *std::max_element(s, s + length);
      float sum = 0.0f;
      ExpShifted(s, length, max, &sum);
      const float inverse = 1.0f / sum;
      for (int64_t j = 0; j < length; ++j) s[j] *= inverse;
      float* o = out + t * out_row_stride + (kv_head * group + g) * d;
      std::fill(o, o + d, 0.0f);
    }
    for (int64_t j = 0; j < length; ++j) {
      const float* value = CacheRow(cache, cache.values, cache.value_scales, kv_head, first + j,
                                    row.data());
      for (int64_t g = 0; g < group; ++g) {
        Axpy(scores[g * length + j], value, d,
             out + t * out_row_stride + (kv_head * group + g) * d);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ReferenceCachedAttention(const KvLayerView& cache, const float* q,
                                      int64_t q_row_stride, int64_t start, int64_t num_tokens,
                                      int64_t num_heads, const AttentionOptions& options,
                                      float* out, int64_t out_row_stride) {
  if (absl::Status status = CheckAttention(cache, q, start, num_tokens, num_heads, out);
      !status.ok()) {
    return status;
  }
  const int64_t group = num_heads / cache.num_kv_heads;
  const int64_t d = cache.head_dim;
  auto element = [&](const void* part, const float* scales, int64_t head, int64_t token,
                     int64_t i) -> double {
    const int64_t index = (head * cache.capacity + token) * d + i;
    switch (cache.dtype) {
      case DType::kF32:
        return static_cast<const float*>(part)[index];
      case DType::kBF16:
        return Bf16ToFloat(static_cast<const uint16_t*>(part)[index]);
      case DType::kInt8:
        return static_cast<double>(static_cast<const int8_t*>(part)[index]) *
               scales[head * cache.capacity + token];
    }
    return 0.0;
  };
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t position = start + t;
    const int64_t first = WindowStart(options, position);
    for (int64_t h = 0; h < num_heads; ++h) {
      const int64_t kv_head = h / group;
      const float* query = q + t * q_row_stride + h * d;
      std::vector<double> scores;
      double max = -INFINITY;
      for (int64_t j = first; j <= position; ++j) {
        double dot = 0.0;
        for (int64_t i = 0; i < d; ++i) {
          dot += query[i] * element(cache.keys, cache.key_scales, kv_head, j, i);
        }
        scores.push_back(dot * options.scale);
        max = std::max(max, scores.back());
      }
      double sum = 0.0;
      for (double& s : scores) sum += (s = std::exp(s - max));
      for (int64_t i = 0; i < d; ++i) {
        double value = 0.0;
        for (int64_t j = first; j <= position; ++j) {
          value += scores[j - first] / sum *
                   element(cache.values, cache.value_scales, kv_head, j, i);
        }
        out[t * out_row_stride + h * d + i] = static_cast<float>(value);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace slm::kernels
