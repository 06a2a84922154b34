// EncoderAttention: per head, scores = (q * scale) k^T in register-sized tiles over a transposed
// copy of k, a row softmax, then scores * v. Heads run in parallel on the caller's OpenMP threads.
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
  AlignedBuffer queries;     // [padded_seq_rows, head_dim], pre-scaled by 1/sqrt(head_dim)
  AlignedBuffer keys_t;      // [head_dim, padded_seq_cols]
  AlignedBuffer scores;      // [kRowBlock, padded_seq_cols]
};

HeadBuffers& ThreadHeadBuffers() {
  thread_local HeadBuffers buffers;
  return buffers;
}

// Computes one head. `q`, `k`, `v` point at the head's first column; `out` likewise.
SLM_KERNELS_MULTIVERSION
void AttentionHead(const float* q, const float* k, const float* v, int64_t row_stride,
                   int64_t seq, int64_t head_dim, int64_t out_stride, float* out) {
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

}  // namespace

void EncoderAttention(const float* q, const float* k, const float* v, int64_t row_stride,
                      int64_t seq, int64_t num_heads, int64_t head_dim, float* out) {
  const int64_t hidden = num_heads * head_dim;
  // Small problems are not worth waking OpenMP threads for.
  const bool parallel = num_heads > 1 && seq * seq * head_dim >= 64 * 64 * 32;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t head = 0; head < num_heads; ++head) {
    const int64_t offset = head * head_dim;
    AttentionHead(q + offset, k + offset, v + offset, row_stride, seq, head_dim, hidden,
                  out + offset);
  }
}

void ReferenceEncoderAttention(const float* q, const float* k, const float* v,
                               int64_t row_stride, int64_t seq, int64_t num_heads,
                               int64_t head_dim, float* out) {
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
          dot += static_cast<double>(q[i * row_stride + offset + c]) * k[j * row_stride + offset + c];
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
