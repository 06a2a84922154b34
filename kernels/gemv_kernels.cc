#include "kernels/gemv_kernels.h"

// GCC 12's AVX-512 intrinsics initialize their "undefined" operands as `__m512 __Y = __Y;`,
// which -Wmaybe-uninitialized (and, in some inlining contexts, -Wuninitialized) reports once
// inlined (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/vector_math.h"

namespace slm::kernels::internal {
namespace {

// ---------------------------------------------------------------------------------------------
// AVX-512 kernels. M activation rows, U groups unrolled (independent accumulators hide the
// latency of the multiply-add chains). Per 64-byte weight vector: one load, M broadcasts, M
// multiply-adds.

#define SLM_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define SLM_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Bytes ahead of the current weight vector to prefetch (the hardware streamer alone leaves
// some bandwidth unused on a single core). The distance must cover the memory latency at the
// kernel's pace, and a 64-byte weight vector takes about M/2 cycles of multiply-adds with M
// rows: 1024 bytes per row, up to prefetch_bytes (8 rows and more). At a fixed 1024 bytes the
// 16-row kernel ran at ~50% of the int8 peak on a 4864-long K with the weights coming from
// DRAM, at 8192 near 80-95% of it (docs/benchmarks.md).
std::atomic<int64_t> prefetch_bytes{kDefaultGemvPrefetchBytes};

int64_t PrefetchDistance(int rows) {
  return std::min<int64_t>(int64_t{1024} * rows, prefetch_bytes.load(std::memory_order_relaxed));
}

// acc += u8 . s8 (4-byte groups). Inline asm because GCC 12 models the intrinsics' accumulator
// as a separate input and emits a register copy per multiply-add (about a third more uops in
// the inner loops); here the weights can also stay a memory operand.
SLM_VNNI_TARGET inline __m512i DotU8S8(__m512i acc, __m512i u8, const void* s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "m"(*static_cast<const __m512i*>(s8)));
  return acc;
}

SLM_VNNI_TARGET inline __m512i DotU8S8(__m512i acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}

// acc += bf16 pairs . bf16 pairs.
SLM_BF16_TARGET inline __m512 DotBf16(__m512 acc, __m512i pairs, const void* weights) {
  asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(pairs), "m"(*static_cast<const __m512i*>(weights)));
  return acc;
}

SLM_BF16_TARGET inline __m512 DotBf16(__m512 acc, __m512i pairs, __m512i weights) {
  asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(pairs), "v"(weights));
  return acc;
}

// The valid columns of the output block starting at `column`, and its bias (zero when none).
__attribute__((target("avx512f"))) inline __mmask16 BlockMask(const GemvArgs& a, int64_t column) {
  return a.out - column >= kBlockRows ? static_cast<__mmask16>(0xFFFF)
                                      : static_cast<__mmask16>((1u << (a.out - column)) - 1u);
}
__attribute__((target("avx512f"))) inline __m512 BlockBias(const GemvArgs& a, int64_t column,
                                                           __mmask16 mask) {
  return a.bias != nullptr ? _mm512_maskz_loadu_ps(mask, a.bias + column) : _mm512_setzero_ps();
}

template <int M, int U>
SLM_VNNI_TARGET void Int8Vnni(const GemvArgs& a, int64_t first, int64_t last) {
  const int64_t groups = a.layout->groups;
  // Group-interleaved activations: the M rows' 4-byte lanes of group g are x32[g * M .. + M),
  // so every broadcast addresses one base register plus a constant.
  const auto* x32 = static_cast<const int32_t*>(a.activations);
  const auto* weights = static_cast<const int8_t*>(a.weights);
  const int64_t prefetch = PrefetchDistance(M);
  for (int64_t b = first; b < last; ++b) {
    const int8_t* w = weights + b * groups * 64;
    __m512i acc[M][U];
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) {
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) acc[m][u] = _mm512_setzero_si512();
    }
    int64_t g = 0;
    for (; g + U <= groups; g += U) {
      _mm_prefetch(reinterpret_cast<const char*>(w + g * 64) + prefetch, _MM_HINT_T0);
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) {
        if (M == 1) {
          acc[0][u] = DotU8S8(acc[0][u], _mm512_set1_epi32(x32[g + u]), w + (g + u) * 64);
        } else {
          const __m512i wv = _mm512_load_si512(w + (g + u) * 64);
#pragma GCC unroll 16
          for (int m = 0; m < M; ++m) {
            acc[m][u] = DotU8S8(acc[m][u], _mm512_set1_epi32(x32[(g + u) * M + m]), wv);
          }
        }
      }
    }
    for (; g < groups; ++g) {
      const __m512i wv = _mm512_load_si512(w + g * 64);
#pragma GCC unroll 16
      for (int m = 0; m < M; ++m) {
        acc[m][0] = DotU8S8(acc[m][0], _mm512_set1_epi32(x32[g * M + m]), wv);
      }
    }
    const int64_t column = b * kBlockRows;
    const __mmask16 mask = BlockMask(a, column);
    // The +128 offset of the activations added 128 * sum_i q[o, i] to each dot product.
    const __m512i offset = _mm512_slli_epi32(_mm512_loadu_si512(a.weight_sums + column), 7);
    const __m512 weight_scale = _mm512_loadu_ps(a.weight_scales + column);
    const __m512 bias = BlockBias(a, column, mask);
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) {
      __m512i sum = acc[m][0];
#pragma GCC unroll 4
      for (int u = 1; u < U; ++u) sum = _mm512_add_epi32(sum, acc[m][u]);
      sum = _mm512_sub_epi32(sum, offset);
      const __m512 scale = _mm512_mul_ps(weight_scale, _mm512_set1_ps(a.activation_scales[m]));
      const __m512 result = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, bias);
      _mm512_mask_storeu_ps(a.y + m * a.out + column, mask, result);
    }
  }
}

template <int M, int U>
SLM_BF16_TARGET void Bf16Avx512(const GemvArgs& a, int64_t first, int64_t last) {
  const int64_t groups = a.layout->groups;
  const auto* x32 = static_cast<const int32_t*>(a.activations);  // group-interleaved pairs
  const auto* weights = static_cast<const uint16_t*>(a.weights);
  const int64_t prefetch = PrefetchDistance(M);
  for (int64_t b = first; b < last; ++b) {
    const uint16_t* w = weights + b * groups * 32;
    __m512 acc[M][U];
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) {
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) acc[m][u] = _mm512_setzero_ps();
    }
    int64_t g = 0;
    for (; g + U <= groups; g += U) {
      _mm_prefetch(reinterpret_cast<const char*>(w + g * 32) + prefetch, _MM_HINT_T0);
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) {
        if (M == 1) {
          acc[0][u] = DotBf16(acc[0][u], _mm512_set1_epi32(x32[g + u]), w + (g + u) * 32);
        } else {
          const __m512i wv = _mm512_load_si512(w + (g + u) * 32);
#pragma GCC unroll 16
          for (int m = 0; m < M; ++m) {
            acc[m][u] = DotBf16(acc[m][u], _mm512_set1_epi32(x32[(g + u) * M + m]), wv);
          }
        }
      }
    }
    for (; g < groups; ++g) {
      const __m512i wv = _mm512_load_si512(w + g * 32);
#pragma GCC unroll 16
      for (int m = 0; m < M; ++m) {
        acc[m][0] = DotBf16(acc[m][0], _mm512_set1_epi32(x32[g * M + m]), wv);
      }
    }
    const int64_t column = b * kBlockRows;
    const __mmask16 mask = BlockMask(a, column);
    const __m512 bias = BlockBias(a, column, mask);
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) {
      __m512 sum = acc[m][0];
#pragma GCC unroll 4
      for (int u = 1; u < U; ++u) sum = _mm512_add_ps(sum, acc[m][u]);
      _mm512_mask_storeu_ps(a.y + m * a.out + column, mask, _mm512_add_ps(sum, bias));
    }
  }
}

// One activation row (batch-1 decode) over two block streams at once: blocks first + i and
// first + half + i together, so two far-apart weight streams are in flight. One stream
// (Int8Vnni<1, 4> / Bf16Avx512<1, 4>) reached 80-98% of the 4-stream read bandwidth on one
// core, two reach 97-103% (decode_kernels_bench, Qwen2.5 / TinyLlama shapes;
// docs/benchmarks.md). Both weight types have 64-byte group vectors; kInt8 selects the
// multiply-add and the epilogue. The target names both ISAs, but each instantiation only
// issues its own type's instructions (chosen below only where the CPU has them).
#define SLM_VNNI_BF16_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")))
template <bool kInt8>
struct OneRowAccumulator {
  using Type = __m512i;  // int32 sums of u8 x s8
};
template <>
struct OneRowAccumulator<false> {
  using Type = __m512;  // f32 sums of bf16 pairs
};
SLM_VNNI_BF16_TARGET inline __m512i DotGroup(__m512i acc, __m512i x, const char* w) {
  return DotU8S8(acc, x, w);
}
SLM_VNNI_BF16_TARGET inline __m512 DotGroup(__m512 acc, __m512i x, const char* w) {
  return DotBf16(acc, x, w);
}

template <bool kInt8>
SLM_VNNI_BF16_TARGET void OneRowTwoStreams(const GemvArgs& a, int64_t first, int64_t last) {
  const int64_t count = last - first, half = count / 2;
  if (half == 0) {
    if constexpr (kInt8) {
      Int8Vnni<1, 4>(a, first, last);
    } else {
      Bf16Avx512<1, 4>(a, first, last);
    }
    return;
  }
  using Acc = typename OneRowAccumulator<kInt8>::Type;
  const int64_t groups = a.layout->groups;
  const auto* x32 = static_cast<const int32_t*>(a.activations);
  const auto* weights = static_cast<const char*>(a.weights);
  const int64_t prefetch = PrefetchDistance(1);
  auto finish = [&](int64_t b, const Acc* acc) SLM_VNNI_BF16_TARGET {
    const int64_t column = b * kBlockRows;
    const __mmask16 mask = BlockMask(a, column);
    const __m512 bias = BlockBias(a, column, mask);
    __m512 result;
    if constexpr (kInt8) {
      __m512i sum =
          _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
      sum = _mm512_sub_epi32(sum, _mm512_slli_epi32(_mm512_loadu_si512(a.weight_sums + column), 7));
      const __m512 scale = _mm512_mul_ps(_mm512_loadu_ps(a.weight_scales + column),
                                         _mm512_set1_ps(a.activation_scales[0]));
      result = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, bias);
    } else {
      result = _mm512_add_ps(
          _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])), bias);
    }
    _mm512_mask_storeu_ps(a.y + column, mask, result);
  };
  for (int64_t i = 0; i < half; ++i) {
    const int64_t b0 = first + i, b1 = first + half + i;
    const char* w0 = weights + b0 * groups * 64;
    const char* w1 = weights + b1 * groups * 64;
    Acc acc0[4], acc1[4];
    for (int u = 0; u < 4; ++u) acc0[u] = acc1[u] = Acc{};
    int64_t g = 0;
    for (; g + 4 <= groups; g += 4) {
      _mm_prefetch(w0 + g * 64 + prefetch, _MM_HINT_T0);
      _mm_prefetch(w1 + g * 64 + prefetch, _MM_HINT_T0);
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        const __m512i x = _mm512_set1_epi32(x32[g + u]);
        acc0[u] = DotGroup(acc0[u], x, w0 + (g + u) * 64);
        acc1[u] = DotGroup(acc1[u], x, w1 + (g + u) * 64);
      }
    }
    for (; g < groups; ++g) {
      const __m512i x = _mm512_set1_epi32(x32[g]);
      acc0[0] = DotGroup(acc0[0], x, w0 + g * 64);
      acc1[0] = DotGroup(acc1[0], x, w1 + g * 64);
    }
    finish(b0, acc0);
    finish(b1, acc1);
  }
  if (first + 2 * half < last) {
    if constexpr (kInt8) {
      Int8Vnni<1, 4>(a, last - 1, last);
    } else {
      Bf16Avx512<1, 4>(a, last - 1, last);
    }
  }
}

SLM_VNNI_BF16_TARGET inline __m512i DotGroup(__m512i acc, __m512i x, __m512i w) {
  return DotU8S8(acc, x, w);
}
SLM_VNNI_BF16_TARGET inline __m512 DotGroup(__m512 acc, __m512i x, __m512i w) {
  return DotBf16(acc, x, w);
}

// Register-tiled kernels for up to 16 activation rows (dispatched for 13-16, see kVnniTiled). A
// tile is B contiguous output blocks; rows [row0, row0 + R) of it use R x B accumulators, so
// per group B weight loads and R broadcasts feed R x B multiply-adds (Int8Vnni<16, 1> issues 17
// loads and a prefetch per 16 multiply-adds, and with 2 loads and 2 multiply-adds a cycle the
// loads bound it). More than 8 rows take P = 2
// passes over the tile (the second finds it in the L1/L2). Memory must stream during every
// pass, or the passes' time adds to the read time instead of hiding it: over its P passes a
// tile prefetches the whole next tile (`next`, null for none: B lines a group, shared between
// the passes), and the first tile of a range, which no one prefetched, streams its own blocks
// ahead (`own_ahead`).
template <bool kInt8, int R, int B, int P>
SLM_VNNI_BF16_TARGET void GemvTile(const GemvArgs& a, int64_t b0, int64_t row0, const char* next,
                                   int pass, bool own_ahead) {
  using Acc = typename OneRowAccumulator<kInt8>::Type;
  const int64_t groups = a.layout->groups, rows = a.rows;
  const auto* x32 = static_cast<const int32_t*>(a.activations) + row0;
  const char* w[B];
#pragma GCC unroll 4
  for (int j = 0; j < B; ++j) w[j] = static_cast<const char*>(a.weights) + (b0 + j) * groups * 64;
  const int64_t ahead = own_ahead ? PrefetchDistance(16) : 0;
  Acc acc[R][B];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < B; ++j) acc[r][j] = Acc{};
  }
  // Lines [iteration * B / P, (iteration + 1) * B / P) of the next tile are this group's share.
  int64_t iteration = static_cast<int64_t>(pass) * groups;
  for (int64_t g = 0; g < groups; ++g, ++iteration) {
    if (next != nullptr) {
      const int64_t line_end = (iteration + 1) * B / P;
      for (int64_t line = iteration * B / P; line < line_end; ++line) {
        _mm_prefetch(next + line * 64, _MM_HINT_T0);
      }
    }
    __m512i wv[B];
#pragma GCC unroll 4
    for (int j = 0; j < B; ++j) {
      if (ahead != 0) _mm_prefetch(w[j] + g * 64 + ahead, _MM_HINT_T0);
      wv[j] = _mm512_load_si512(w[j] + g * 64);
    }
    const int32_t* xg = x32 + g * rows;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512i x = _mm512_set1_epi32(xg[r]);
#pragma GCC unroll 4
      for (int j = 0; j < B; ++j) acc[r][j] = DotGroup(acc[r][j], x, wv[j]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < B; ++j) {
    const int64_t column = (b0 + j) * kBlockRows;
    const __mmask16 mask = BlockMask(a, column);
    const __m512 bias = BlockBias(a, column, mask);
    __m512i offset = _mm512_setzero_si512();
    __m512 weight_scale = _mm512_setzero_ps();
    if constexpr (kInt8) {
      // The +128 offset of the activations added 128 * sum_i q[o, i] to each dot product.
      offset = _mm512_slli_epi32(_mm512_loadu_si512(a.weight_sums + column), 7);
      weight_scale = _mm512_loadu_ps(a.weight_scales + column);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      __m512 result;
      if constexpr (kInt8) {
        const __m512 scale =
            _mm512_mul_ps(weight_scale, _mm512_set1_ps(a.activation_scales[row0 + r]));
        result =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], offset)), scale, bias);
      } else {
        result = _mm512_add_ps(acc[r][j], bias);
      }
      _mm512_mask_storeu_ps(a.y + (row0 + r) * a.out + column, mask, result);
    }
  }
}

// M rows (5..16): tiles of 3 blocks (24 accumulators for 8 rows), then single blocks.
template <bool kInt8, int M>
SLM_VNNI_BF16_TARGET void TiledRows(const GemvArgs& a, int64_t first, int64_t last) {
  constexpr int kFirst = M > 8 ? (M + 1) / 2 : M, kSecond = M - kFirst;
  constexpr int kPasses = kSecond > 0 ? 2 : 1, kBlocks = 3;
  const auto* weights = static_cast<const char*>(a.weights);
  const int64_t block_bytes = a.layout->groups * 64;
  int64_t b = first;
  for (; b + kBlocks <= last; b += kBlocks) {
    const char* next = b + kBlocks < last ? weights + (b + kBlocks) * block_bytes : nullptr;
    GemvTile<kInt8, kFirst, kBlocks, kPasses>(a, b, 0, next, 0, b == first);
    if constexpr (kSecond > 0) {
      GemvTile<kInt8, kSecond, kBlocks, kPasses>(a, b, kFirst, next, 1, false);
    }
  }
  for (; b < last; ++b) {
    const char* next = b + 1 < last ? weights + (b + 1) * block_bytes : nullptr;
    GemvTile<kInt8, kFirst, 1, kPasses>(a, b, 0, next, 0, b == first);
    if constexpr (kSecond > 0) GemvTile<kInt8, kSecond, 1, kPasses>(a, b, kFirst, next, 1, false);
  }
}

// ---------------------------------------------------------------------------------------------
// Portable kernels over the same layout and the same integer / bf16 products.

SLM_KERNELS_MULTIVERSION
void Int8Portable(const GemvArgs& a, int64_t first, int64_t last) {
  const int64_t groups = a.layout->groups;
  const auto* xq = static_cast<const uint8_t*>(a.activations);
  const auto* weights = static_cast<const int8_t*>(a.weights);
  for (int64_t b = first; b < last; ++b) {
    const int8_t* w = weights + b * groups * 64;
    const int64_t column = b * kBlockRows;
    for (int64_t m = 0; m < a.rows; ++m) {
      int32_t acc[kBlockRows] = {};
      for (int64_t g = 0; g < groups; ++g) {
        const int8_t* wg = w + g * 64;
        const uint8_t* x = xq + (g * a.rows + m) * 4;
        for (int r = 0; r < kBlockRows; ++r) {
          int32_t dot = 0;
          for (int j = 0; j < 4; ++j) dot += int32_t{x[j]} * int32_t{wg[r * 4 + j]};
          acc[r] += dot;
        }
      }
      for (int r = 0; r < kBlockRows && column + r < a.out; ++r) {
        const int32_t sum = acc[r] - 128 * a.weight_sums[column + r];
        const float scale = a.weight_scales[column + r] * a.activation_scales[m];
        const float bias = a.bias != nullptr ? a.bias[column + r] : 0.0f;
        a.y[m * a.out + column + r] = static_cast<float>(sum) * scale + bias;
      }
    }
  }
}

SLM_KERNELS_MULTIVERSION
void Bf16Portable(const GemvArgs& a, int64_t first, int64_t last) {
  const int64_t groups = a.layout->groups;
  const auto* xb = static_cast<const uint16_t*>(a.activations);
  const auto* weights = static_cast<const uint16_t*>(a.weights);
  auto to_float = [](uint16_t bits) {
    const uint32_t wide = static_cast<uint32_t>(bits) << 16;
    float value;
    std::memcpy(&value, &wide, sizeof(value));
    return value;
  };
  for (int64_t b = first; b < last; ++b) {
    const uint16_t* w = weights + b * groups * 32;
    const int64_t column = b * kBlockRows;
    for (int64_t m = 0; m < a.rows; ++m) {
      float acc[kBlockRows] = {};
      for (int64_t g = 0; g < groups; ++g) {
        const uint16_t* x = xb + (g * a.rows + m) * 2;
        const float x0 = to_float(x[0]), x1 = to_float(x[1]);
        const uint16_t* wg = w + g * 32;
        for (int r = 0; r < kBlockRows; ++r) {
          acc[r] += to_float(wg[r * 2]) * x0 + to_float(wg[r * 2 + 1]) * x1;
        }
      }
      for (int r = 0; r < kBlockRows && column + r < a.out; ++r) {
        a.y[m * a.out + column + r] = acc[r] + (a.bias != nullptr ? a.bias[column + r] : 0.0f);
      }
    }
  }
}

using BlockKernel = void (*)(const GemvArgs&, int64_t, int64_t);

// Up to 16 rows: M x U accumulators plus the weight vector and broadcasts fit the 32 zmm
// registers; every 64-byte weight vector is loaded once for all M rows.
constexpr BlockKernel kVnniKernels[16] = {
    OneRowTwoStreams<true>, Int8Vnni<2, 4>,  Int8Vnni<3, 2>,  Int8Vnni<4, 2>,
    Int8Vnni<5, 1>,         Int8Vnni<6, 1>,  Int8Vnni<7, 1>,  Int8Vnni<8, 1>,
    Int8Vnni<9, 1>,         Int8Vnni<10, 1>, Int8Vnni<11, 1>, Int8Vnni<12, 1>,
    Int8Vnni<13, 1>,        Int8Vnni<14, 1>, Int8Vnni<15, 1>, Int8Vnni<16, 1>,
};
// From 13 rows on, for a call running alone, the register-tiled kernels (TiledRows): there the
// 16-row products outpace one core's share of the read bandwidth, and tiling made SmolLM2's
// 1-thread batch-16 decode 1.04-1.08x faster in 7 of 9 alternating runs (the rest equal). Where
// the weights' read time dominates (8-12 rows, or 2 threads sharing the bandwidth) the one-block
// kernels, whose prefetch streams each block 8 KB ahead, did as well or better
// (decode_kernels_bench, decoder_bench; docs/benchmarks.md).
constexpr BlockKernel kVnniTiled[16] = {
    OneRowTwoStreams<true>, Int8Vnni<2, 4>,      Int8Vnni<3, 2>,      Int8Vnni<4, 2>,
    Int8Vnni<5, 1>,         Int8Vnni<6, 1>,      Int8Vnni<7, 1>,      Int8Vnni<8, 1>,
    Int8Vnni<9, 1>,         Int8Vnni<10, 1>,     Int8Vnni<11, 1>,     Int8Vnni<12, 1>,
    TiledRows<true, 13>,    TiledRows<true, 14>, TiledRows<true, 15>, TiledRows<true, 16>,
};
constexpr BlockKernel kBf16Tiled[16] = {
    OneRowTwoStreams<false>, Bf16Avx512<2, 4>,     Bf16Avx512<3, 2>,     Bf16Avx512<4, 2>,
    Bf16Avx512<5, 1>,        Bf16Avx512<6, 1>,     Bf16Avx512<7, 1>,     Bf16Avx512<8, 1>,
    Bf16Avx512<9, 1>,        Bf16Avx512<10, 1>,    Bf16Avx512<11, 1>,    Bf16Avx512<12, 1>,
    TiledRows<false, 13>,    TiledRows<false, 14>, TiledRows<false, 15>, TiledRows<false, 16>,
};
std::atomic<bool> tiled_kernels{true};
// Tiles are prefetched one tile (3 blocks x groups x 64 bytes) ahead; above 512 groups (96 KB
// tiles: int8 K > 2048, bf16 K > 1024) that distance pushed the tile being computed out of the
// L1 and the tiled kernels lost 10-20% (Qwen2.5 / TinyLlama ffn_down), so those keep the
// one-block kernels.
constexpr int64_t kMaxTiledGroups = 512;
constexpr BlockKernel kBf16Kernels[16] = {
    OneRowTwoStreams<false>, Bf16Avx512<2, 4>,  Bf16Avx512<3, 2>,  Bf16Avx512<4, 2>,
    Bf16Avx512<5, 1>,        Bf16Avx512<6, 1>,  Bf16Avx512<7, 1>,  Bf16Avx512<8, 1>,
    Bf16Avx512<9, 1>,        Bf16Avx512<10, 1>, Bf16Avx512<11, 1>, Bf16Avx512<12, 1>,
    Bf16Avx512<13, 1>,       Bf16Avx512<14, 1>, Bf16Avx512<15, 1>, Bf16Avx512<16, 1>,
};

}  // namespace

std::string_view GemvIsaName(GemvIsa isa) {
  switch (isa) {
    case GemvIsa::kPortable:
      return "portable";
    case GemvIsa::kAvx512Vnni:
      return "avx512_vnni";
    case GemvIsa::kAvx512Bf16:
      return "avx512_bf16";
  }
  return "unknown";
}

PackedLayout MakeLayout(int64_t out, int64_t in, int64_t k_group) {
  PackedLayout layout;
  layout.out = out;
  layout.in = in;
  layout.k_group = k_group;
  layout.blocks = (out + kBlockRows - 1) / kBlockRows;
  layout.padded_out = layout.blocks * kBlockRows;
  layout.groups = (in + k_group - 1) / k_group;
  layout.padded_in = layout.groups * k_group;
  return layout;
}

std::unique_ptr<char, FreeDeleter> AllocateAligned(int64_t bytes) {
  const size_t rounded = static_cast<size_t>((std::max<int64_t>(bytes, 1) + 63) / 64 * 64);
  std::unique_ptr<char, FreeDeleter> memory(static_cast<char*>(std::aligned_alloc(64, rounded)));
  std::memset(memory.get(), 0, rounded);
  return memory;
}

// Writes each block's 64-byte group vectors in order, gathering one 4-byte lane per row (the
// last group of a row whose `in` is not a multiple of 4 keeps its zero padding).
void PackInt8(const int8_t* q, int64_t out, int64_t in, const PackedLayout& layout,
              int8_t* packed) {
  const int64_t full_groups = in / 4;
  for (int64_t b = 0; b < layout.blocks; ++b) {
    const int64_t rows = std::min<int64_t>(kBlockRows, out - b * kBlockRows);
    const int8_t* source = q + b * kBlockRows * in;
    int8_t* block = packed + b * layout.groups * 64;
    for (int64_t g = 0; g < full_groups; ++g) {
      int8_t* vector = block + g * 64;
      for (int64_t r = 0; r < rows; ++r) std::memcpy(vector + r * 4, source + r * in + g * 4, 4);
    }
    for (int64_t i = full_groups * 4; i < in; ++i) {
      for (int64_t r = 0; r < rows; ++r) {
        block[full_groups * 64 + r * 4 + i % 4] = source[r * in + i];
      }
    }
  }
}

void PackBf16(const uint16_t* weight, int64_t out, int64_t in, const PackedLayout& layout,
              uint16_t* packed) {
  const int64_t full_groups = in / 2;
  for (int64_t b = 0; b < layout.blocks; ++b) {
    const int64_t rows = std::min<int64_t>(kBlockRows, out - b * kBlockRows);
    const uint16_t* source = weight + b * kBlockRows * in;
    uint16_t* block = packed + b * layout.groups * 32;
    for (int64_t g = 0; g < full_groups; ++g) {
      uint16_t* vector = block + g * 32;
      for (int64_t r = 0; r < rows; ++r) std::memcpy(vector + r * 2, source + r * in + g * 2, 4);
    }
    if (in % 2 != 0) {
      for (int64_t r = 0; r < rows; ++r) block[full_groups * 32 + r * 2] = source[r * in + in - 1];
    }
  }
}

void SetGemvTiledKernels(bool tiled) { tiled_kernels.store(tiled); }
bool GemvTiledKernels() { return tiled_kernels.load(); }

void SetGemvPrefetchBytes(int64_t bytes) { prefetch_bytes.store(std::max<int64_t>(0, bytes)); }
int64_t GemvPrefetchBytes() { return prefetch_bytes.load(); }

void RunGemvBlocks(GemvIsa isa, DType dtype, const GemvArgs& args, int64_t first, int64_t last) {
  const int index = static_cast<int>(args.rows) - 1;
  const bool tiled = args.alone && tiled_kernels.load(std::memory_order_relaxed) &&
                     args.layout->groups <= kMaxTiledGroups;
  if (dtype == DType::kInt8) {
    if (isa == GemvIsa::kAvx512Vnni) {
      (tiled ? kVnniTiled : kVnniKernels)[index](args, first, last);
    } else {
      Int8Portable(args, first, last);
    }
  } else {
    if (isa == GemvIsa::kAvx512Bf16) {
      (tiled ? kBf16Tiled : kBf16Kernels)[index](args, first, last);
    } else {
      Bf16Portable(args, first, last);
    }
  }
}

}  // namespace slm::kernels::internal
