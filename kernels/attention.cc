// EncoderAttention: per head, scores = (q * scale) k^T in register-sized tiles over a transposed
// copy of k, a row softmax, then scores * v. Heads run in parallel on the caller's OpenMP threads.
// On AVX-512 CPUs with head_dim a multiple of 16 (up to 64) both products use intrinsics
// micro-kernels (AttentionHeadAvx512); otherwise portable loops that GCC vectorizes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/aligned_buffer.h"
#include "kernels/ops.h"
#include "kernels/vector_math.h"

namespace slm::kernels {
namespace {

constexpr int64_t kRowBlock = 4;      // query rows per tile
constexpr int64_t kColumnBlock = 64;  // key columns per tile (four AVX-512 vectors)

int64_t RoundUp(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// Per-thread working set of one head; grown once, reused for every head and call.
struct HeadBuffers {
  AlignedBuffer queries;  // [padded_seq_rows, head_dim], pre-scaled by 1/sqrt(head_dim)
  AlignedBuffer keys_t;   // [head_dim, padded_seq_cols]
  AlignedBuffer scores;   // [kRowBlock, padded_seq_cols]
};

HeadBuffers& ThreadHeadBuffers() {
  thread_local HeadBuffers buffers;
  return buffers;
}

// Computes one head. `q`, `k`, `v` point at the head's first column; `out` likewise.
SLM_KERNELS_MULTIVERSION
void AttentionHead(const float* q, const float* k, const float* v, int64_t row_stride, int64_t seq,
                   int64_t head_dim, int64_t out_stride, float* out) {
  const int64_t padded_rows = RoundUp(seq, kRowBlock);
  const int64_t padded_cols = RoundUp(seq, kColumnBlock);
  HeadBuffers& buffers = ThreadHeadBuffers();
  auto* queries = static_cast<float*>(buffers.queries.Get(padded_rows * head_dim * sizeof(float)));
  auto* keys_t = static_cast<float*>(buffers.keys_t.Get(head_dim * padded_cols * sizeof(float)));
  auto* scores = static_cast<float*>(buffers.scores.Get(kRowBlock * padded_cols * sizeof(float)));

  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (int64_t i = 0; i < padded_rows; ++i) {
    for (int64_t c = 0; c < head_dim; ++c) {
      queries[i * head_dim + c] = i < seq ? q[i * row_stride + c] * scale : 0.0f;
    }
  }
  for (int64_t c = 0; c < head_dim; ++c) {
    float* row = keys_t + c * padded_cols;
    for (int64_t j = 0; j < seq; ++j) row[j] = k[j * row_stride + c];
    for (int64_t j = seq; j < padded_cols; ++j) row[j] = 0.0f;
  }

  for (int64_t i0 = 0; i0 < seq; i0 += kRowBlock) {
    // scores[r, :] = queries[i0 + r, :] . keys_t
    for (int64_t j0 = 0; j0 < padded_cols; j0 += kColumnBlock) {
      float tile[kRowBlock][kColumnBlock] = {};
      for (int64_t c = 0; c < head_dim; ++c) {
        const float* key_row = keys_t + c * padded_cols + j0;
        for (int64_t r = 0; r < kRowBlock; ++r) {
          const float query = queries[(i0 + r) * head_dim + c];
          for (int64_t jj = 0; jj < kColumnBlock; ++jj) tile[r][jj] += query * key_row[jj];
        }
      }
      for (int64_t r = 0; r < kRowBlock; ++r) {
        std::copy(tile[r], tile[r] + kColumnBlock, scores + r * padded_cols + j0);
      }
    }
    const int64_t block_rows = std::min(kRowBlock, seq - i0);
    for (int64_t r = 0; r < block_rows; ++r) {
      float* probabilities = scores + r * padded_cols;
      Softmax(probabilities, 1, seq);
      float* o = out + (i0 + r) * out_stride;
      std::fill(o, o + head_dim, 0.0f);
      for (int64_t j = 0; j < seq; ++j) {
        const float p = probabilities[j];
        const float* value = v + j * row_stride;
        for (int64_t c = 0; c < head_dim; ++c) o[c] += p * value[c];
      }
    }
  }
}

// ---- AVX-512 path --------------------------------------------------------------------------

constexpr int64_t kAvxRowBlock = 8;  // query rows per block (scores rows kept in L1)

// scores[r, j] = sum_c queries[r, c] * keys_t[c, j] for 4 rows and all padded columns, in
// 4 x 64 register tiles (16 accumulators).
__attribute__((target("avx512f"))) void ScoresAvx512(const float* queries, const float* keys_t,
                                                     int64_t head_dim, int64_t padded_cols,
                                                     float* scores) {
  for (int64_t j0 = 0; j0 < padded_cols; j0 += kColumnBlock) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; ++r) {
      for (int t = 0; t < 4; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    for (int64_t c = 0; c < head_dim; ++c) {
      const float* key_row = keys_t + c * padded_cols + j0;
      __m512 key[4];
      for (int t = 0; t < 4; ++t) key[t] = _mm512_loadu_ps(key_row + 16 * t);
      for (int r = 0; r < 4; ++r) {
        const __m512 query = _mm512_set1_ps(queries[r * head_dim + c]);
        for (int t = 0; t < 4; ++t) acc[r][t] = _mm512_fmadd_ps(query, key[t], acc[r][t]);
      }
    }
    for (int r = 0; r < 4; ++r) {
      for (int t = 0; t < 4; ++t)
        _mm512_storeu_ps(scores + r * padded_cols + j0 + 16 * t, acc[r][t]);
    }
  }
}

// out[r, :] = sum_j probabilities[r, j] * v[j, :] for kRows rows, head_dim = 16 * kVectors;
// only the first `valid_rows` rows are stored.
template <int kVectors, int kRows>
__attribute__((target("avx512f"))) void WeightedValuesAvx512(const float* probabilities,
                                                             int64_t padded_cols, const float* v,
                                                             int64_t row_stride, int64_t seq,
                                                             int64_t valid_rows, float* out,
                                                             int64_t out_stride) {
  __m512 acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kVectors; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < seq; ++j) {
    __m512 value[kVectors];
    for (int t = 0; t < kVectors; ++t) value[t] = _mm512_loadu_ps(v + j * row_stride + 16 * t);
    for (int r = 0; r < kRows; ++r) {
      const __m512 p = _mm512_set1_ps(probabilities[r * padded_cols + j]);
      for (int t = 0; t < kVectors; ++t) acc[r][t] = _mm512_fmadd_ps(p, value[t], acc[r][t]);
    }
  }
  for (int r = 0; r < kRows && r < valid_rows; ++r) {
    for (int t = 0; t < kVectors; ++t) _mm512_storeu_ps(out + r * out_stride + 16 * t, acc[r][t]);
  }
}

template <int kVectors>
void WeightedValuesBlock(const float* probabilities, int64_t padded_cols, const float* v,
                         int64_t row_stride, int64_t seq, int64_t valid_rows, float* out,
                         int64_t out_stride) {
  // 16 accumulators at most: 8 rows of up to 2 vectors, or 4 rows of 3-4 vectors.
  constexpr int kRows = kVectors <= 2 ? 8 : 4;
  for (int64_t r0 = 0; r0 < valid_rows; r0 += kRows) {
    WeightedValuesAvx512<kVectors, kRows>(probabilities + r0 * padded_cols, padded_cols, v,
                                          row_stride, seq, valid_rows - r0, out + r0 * out_stride,
                                          out_stride);
  }
}

bool UseAvx512(int64_t head_dim) {
  static const bool has_avx512 = __builtin_cpu_supports("avx512f");
  return has_avx512 && head_dim % 16 == 0 && head_dim <= 64;
}

void AttentionHeadAvx512(const float* q, const float* k, const float* v, int64_t row_stride,
                         int64_t seq, int64_t head_dim, int64_t out_stride, float* out) {
  const int64_t padded_rows = RoundUp(seq, kAvxRowBlock);
  const int64_t padded_cols = RoundUp(seq, kColumnBlock);
  HeadBuffers& buffers = ThreadHeadBuffers();
  auto* queries = static_cast<float*>(buffers.queries.Get(padded_rows * head_dim * sizeof(float)));
  auto* keys_t = static_cast<float*>(buffers.keys_t.Get(head_dim * padded_cols * sizeof(float)));
  auto* scores =
      static_cast<float*>(buffers.scores.Get(kAvxRowBlock * padded_cols * sizeof(float)));
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (int64_t i = 0; i < padded_rows; ++i) {
    for (int64_t c = 0; c < head_dim; ++c) {
      queries[i * head_dim + c] = i < seq ? q[i * row_stride + c] * scale : 0.0f;
    }
  }
  for (int64_t c = 0; c < head_dim; ++c) {
    float* row = keys_t + c * padded_cols;
    for (int64_t j = 0; j < seq; ++j) row[j] = k[j * row_stride + c];
    for (int64_t j = seq; j < padded_cols; ++j) row[j] = 0.0f;
  }
  for (int64_t i0 = 0; i0 < seq; i0 += kAvxRowBlock) {
    const int64_t block_rows = std::min(kAvxRowBlock, seq - i0);
    for (int64_t r0 = 0; r0 < block_rows; r0 += 4) {
      ScoresAvx512(queries + (i0 + r0) * head_dim, keys_t, head_dim, padded_cols,
                   scores + r0 * padded_cols);
    }
    for (int64_t r = 0; r < block_rows; ++r) Softmax(scores + r * padded_cols, 1, seq);
    float* o = out + i0 * out_stride;
    switch (head_dim / 16) {
      case 1:
        WeightedValuesBlock<1>(scores, padded_cols, v, row_stride, seq, block_rows, o, out_stride);
        break;
      case 2:
        WeightedValuesBlock<2>(scores, padded_cols, v, row_stride, seq, block_rows, o, out_stride);
        break;
      case 3:
        WeightedValuesBlock<3>(scores, padded_cols, v, row_stride, seq, block_rows, o, out_stride);
        break;
      default:
        WeightedValuesBlock<4>(scores, padded_cols, v, row_stride, seq, block_rows, o, out_stride);
        break;
    }
  }
}

}  // namespace

void EncoderAttention(const float* q, const float* k, const float* v, int64_t row_stride,
                      int64_t seq, int64_t num_heads, int64_t head_dim, float* out) {
  const int64_t hidden = num_heads * head_dim;
  // Small problems are not worth waking OpenMP threads for.
  const bool parallel = num_heads > 1 && seq * seq * head_dim >= 64 * 64 * 32;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t head = 0; head < num_heads; ++head) {
    const int64_t offset = head * head_dim;
    if (UseAvx512(head_dim)) {
      AttentionHeadAvx512(q + offset, k + offset, v + offset, row_stride, seq, head_dim, hidden,
                          out + offset);
    } else {
      AttentionHead(q + offset, k + offset, v + offset, row_stride, seq, head_dim, hidden,
                    out + offset);
    }
  }
}

void ReferenceEncoderAttention(const float* q, const float* k, const float* v, int64_t row_stride,
                               int64_t seq, int64_t num_heads, int64_t head_dim, float* out) {
  const int64_t hidden = num_heads * head_dim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  std::vector<double> scores(static_cast<size_t>(seq));
  for (int64_t head = 0; head < num_heads; ++head) {
    const int64_t offset = head * head_dim;
    for (int64_t i = 0; i < seq; ++i) {
      double max = -INFINITY;
      for (int64_t j = 0; j < seq; ++j) {
        double dot = 0.0;
        for (int64_t c = 0; c < head_dim; ++c) {
          dot +=
              static_cast<double>(q[i * row_stride + offset + c]) * k[j * row_stride + offset + c];
        }
        scores[j] = dot * scale;
        max = std::max(max, scores[j]);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < seq; ++j) {
        scores[j] = std::exp(scores[j] - max);
        sum += scores[j];
      }
      for (int64_t c = 0; c < head_dim; ++c) {
        double acc = 0.0;
        for (int64_t j = 0; j < seq; ++j) acc += scores[j] * v[j * row_stride + offset + c];
        out[i * hidden + offset + c] = static_cast<float>(acc / sum);
      }
    }
  }
}

}  // namespace slm::kernels
