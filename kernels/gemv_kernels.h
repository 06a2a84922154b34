// Kernels-internal: the packed weight layout of PackedMatrix and its per-ISA inner loops.
//
// Layout: output rows in blocks of kBlockRows = 16; K in groups of k_group elements (4 int8 or
// 2 bf16 = 4 bytes, one 32-bit lane); block b is contiguous as [groups][16 rows][k_group], so
// each group of a block is one 64-byte vector. Padding (rows >= out, k >= in) is zero.
// Thread-safety: pure functions over caller-owned memory; RunGemvBlocks writes only the output
// columns of blocks [first, last), so disjoint ranges may run concurrently.
#ifndef SLM_KERNELS_GEMV_KERNELS_H_
#define SLM_KERNELS_GEMV_KERNELS_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "kernels/dtype.h"

namespace slm::kernels::internal {

inline constexpr int64_t kBlockRows = 16;

enum class GemvIsa { kPortable, kAvx512Vnni, kAvx512Bf16 };
std::string_view GemvIsaName(GemvIsa isa);

struct PackedLayout {
  int64_t out = 0, in = 0;
  int64_t k_group = 4;
  int64_t blocks = 0;      // ceil(out / 16)
  int64_t padded_out = 0;  // blocks * 16
  int64_t groups = 0;      // ceil(in / k_group)
  int64_t padded_in = 0;   // groups * k_group
  int64_t PackedBytes(int64_t element_bytes) const {
    return blocks * groups * kBlockRows * k_group * element_bytes;
  }
};
PackedLayout MakeLayout(int64_t out, int64_t in, int64_t k_group);

struct FreeDeleter {
  void operator()(char* pointer) const { std::free(pointer); }
};
// 64-byte aligned, zero-filled.
std::unique_ptr<char, FreeDeleter> AllocateAligned(int64_t bytes);

void PackInt8(const int8_t* q, int64_t out, int64_t in, const PackedLayout& layout, int8_t* packed);
void PackBf16(const uint16_t* weight, int64_t out, int64_t in, const PackedLayout& layout,
              uint16_t* packed);

struct GemvArgs {
  const PackedLayout* layout = nullptr;
  int64_t rows = 0;  // 1..16
  int64_t out = 0;   // y row stride and valid columns
  // Group-interleaved [groups][rows][k_group]: row r's lane of group g (4 bytes: 4 u8 values
  // q + 128 for int8, 2 bf16 values for bf16) at byte (g * rows + r) * 4, so one group's lanes
  // of all rows are contiguous (for rows == 1, plain [padded_in]).
  const void* activations = nullptr;
  const float* activation_scales = nullptr;  // int8: [rows]
  const void* weights = nullptr;
  const float* weight_scales = nullptr;  // int8: [padded_out]
  const int32_t* weight_sums = nullptr;  // int8: [padded_out]
  const float* bias = nullptr;           // [out] or null
  float* y = nullptr;                    // [rows][out]
  // The call runs on one thread with the core's memory bandwidth to itself: 13-16 rows may use
  // the register-tiled kernels (see SetGemvTiledKernels).
  bool alone = false;
};

// How far ahead of the current weight vector the AVX-512 kernels prefetch at most (bytes): the
// distance is 1024 bytes per activation row up to this (0: no look-ahead). Process-wide, for
// benchmarks choosing the distance; set while no Multiply runs.
inline constexpr int64_t kDefaultGemvPrefetchBytes = 8192;
void SetGemvPrefetchBytes(int64_t bytes);
int64_t GemvPrefetchBytes();

// Whether 13-16 activation rows of a call that runs alone (GemvArgs::alone) with K up to 512
// groups use the register-tiled kernels (8 rows x 3 blocks per pass; the default) or one block
// of all rows at a time (the before of a before/after). Process-wide, for benchmarks and tests;
// set while no Multiply runs.
void SetGemvTiledKernels(bool tiled);
bool GemvTiledKernels();

// Computes output blocks [first, last) with the given ISA's kernel for `dtype` (kInt8 or kBF16).
void RunGemvBlocks(GemvIsa isa, DType dtype, const GemvArgs& args, int64_t first, int64_t last);

// Index of the first non-finite value of x[0, count), or -1 (vectorized scan; in gemv.cc).
int64_t FindNonFinite(const float* x, int64_t count);

// Sets whether PackedMatrix objects created afterwards use the portable kernels (tests).
void ForcePortableGemvForTesting(bool portable);

}  // namespace slm::kernels::internal

#endif  // SLM_KERNELS_GEMV_KERNELS_H_
