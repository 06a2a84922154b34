// Dequantization of the k-quant and 4-bit ggml block types against hand-computed values in
// llama.cpp's block layouts (ggml-common.h: block_q4_0, block_q4_K, block_q6_K). Each test packs
// blocks from chosen integers following the layout's packing rules, then checks literal values
// worked out by hand and the per-element formula.
#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "workers/gguf/ggml_types.h"

namespace slm::workers {
namespace {

constexpr uint16_t kHalfOne = 0x3c00;      // 1.0
constexpr uint16_t kHalfHalf = 0x3800;     // 0.5
constexpr uint16_t kHalfQuarter = 0x3400;  // 0.25

void PutU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

TEST(GgmlQuantsTest, Q4_0MatchesHandComputedValues) {
  // d = 0.5; qs[j] = j | (15 - j) << 4: element j = 0.5 * (j - 8), element j + 16 = 0.5 * (7 - j).
  std::vector<uint8_t> block(18);
  PutU16(block.data(), kHalfHalf);
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> out(32);
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ4_0, block.data(), 32, out.data()).ok());
  EXPECT_EQ(out[0], -4.0f);
  EXPECT_EQ(out[8], 0.0f);
  EXPECT_EQ(out[15], 3.5f);
  EXPECT_EQ(out[16], 3.5f);
  EXPECT_EQ(out[31], -4.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * (j - 8)) << j;
    EXPECT_EQ(out[j + 16], 0.5f * (7 - j)) << j;
  }
}

TEST(GgmlQuantsTest, Q4_KMatchesHandComputedValues) {
  // d = 1, dmin = 0.5; sub-block scales {1,2,3,4,5,6,7,63} and mins {0,1,2,3,4,5,6,40}, packed
  // by hand into 12 bytes (6-bit values; sub-blocks 4-7 split 4 + 2 bits).
  std::vector<uint8_t> block(144);
  PutU16(block.data(), kHalfOne);
  PutU16(block.data() + 2, kHalfHalf);
  const uint8_t scales[12] = {1, 2, 3, 0xC4, 0, 1, 2, 0x83, 0x45, 0x56, 0x67, 0x8F};
  std::memcpy(block.data() + 4, scales, 12);
  // qs[i] low nibble i % 16, high nibble 15 - i % 16.
  for (int i = 0; i < 128; ++i)
    block[16 + i] = static_cast<uint8_t>((i % 16) | ((15 - i % 16) << 4));
  std::vector<float> out(256);
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ4_K, block.data(), 256, out.data()).ok());
  const int sc[8] = {1, 2, 3, 4, 5, 6, 7, 63};
  const int mn[8] = {0, 1, 2, 3, 4, 5, 6, 40};
  // Hand-worked: element 0: 1*0 - 0 = 0; element 33 (sub-block 1, q = 14): 2*14 - 0.5 = 27.5;
  // element 255 (sub-block 7, qs[127] high nibble = 15 - 15 = 0): 63*0 - 20 = -20;
  // element 224 (sub-block 7, q = 15): 63*15 - 20 = 925.
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[33], 27.5f);
  EXPECT_EQ(out[255], -20.0f);
  EXPECT_EQ(out[224], 925.0f);
  for (int pair = 0; pair < 4; ++pair) {
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(out[64 * pair + l], sc[2 * pair] * (l % 16) - 0.5f * mn[2 * pair]);
      EXPECT_EQ(out[64 * pair + 32 + l],
                sc[2 * pair + 1] * (15 - l % 16) - 0.5f * mn[2 * pair + 1]);
    }
  }
}

TEST(GgmlQuantsTest, Q6_KMatchesHandComputedValues) {
  // d = 0.25; scales[s] = (s odd ? -1 : 1) * (s + 1); 6-bit q(e) = e % 64, value
  // d * scales[e / 16] * (q - 32). Packing per 128-element half h (llama.cpp's layout):
  //   ql[64h + l]      = q(128h + l) & 15        | (q(128h + l + 64) & 15) << 4
  //   ql[64h + l + 32] = q(128h + l + 32) & 15   | (q(128h + l + 96) & 15) << 4
  //   qh[32h + l]      = q(128h+l) >> 4 | q(128h+l+32) >> 4 << 2 | q(..+64) >> 4 << 4 | q(..+96) >>
  //   4 << 6
  auto q = [](int e) { return e % 64; };
  std::vector<uint8_t> block(210);
  uint8_t* ql = block.data();
  uint8_t* qh = block.data() + 128;
  int8_t scales[16];
  for (int s = 0; s < 16; ++s) scales[s] = static_cast<int8_t>((s % 2 ? -1 : 1) * (s + 1));
  std::memcpy(block.data() + 192, scales, 16);
  PutU16(block.data() + 208, kHalfQuarter);
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int base = 128 * h + l;
      ql[64 * h + l] = static_cast<uint8_t>((q(base) & 15) | ((q(base + 64) & 15) << 4));
      ql[64 * h + l + 32] = static_cast<uint8_t>((q(base + 32) & 15) | ((q(base + 96) & 15) << 4));
      qh[32 * h + l] =
          static_cast<uint8_t>((q(base) >> 4) | ((q(base + 32) >> 4) << 2) |
                               ((q(base + 64) >> 4) << 4) | ((q(base + 96) >> 4) << 6));
    }
  }
  std::vector<float> out(256);
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ6_K, block.data(), 256, out.data()).ok());
  // Hand-worked: e = 0: 0.25 * 1 * (0 - 32) = -8; e = 100: q = 36, scale[6] = 7: 0.25*7*4 = 7;
  // e = 255: q = 63, scale[15] = -16: 0.25 * -16 * 31 = -124; e = 17: q = 17, scale[1] = -2:
  // 0.25 * -2 * -15 = 7.5.
  EXPECT_EQ(out[0], -8.0f);
  EXPECT_EQ(out[100], 7.0f);
  EXPECT_EQ(out[255], -124.0f);
  EXPECT_EQ(out[17], 7.5f);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(out[e], 0.25f * scales[e / 16] * (q(e) - 32)) << e;
}

TEST(GgmlQuantsTest, MultipleBlocksAdvanceByTheBlockSize) {
  // Two Q4_0 blocks with different scales; two Q6_K blocks with different d.
  std::vector<uint8_t> q4(36, 0x99);  // every nibble 9: value d * 1
  PutU16(q4.data(), kHalfOne);
  PutU16(q4.data() + 18, kHalfQuarter);
  std::vector<float> out(64);
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ4_0, q4.data(), 64, out.data()).ok());
  EXPECT_EQ(out[31], 1.0f);
  EXPECT_EQ(out[32], 0.25f);
  std::vector<uint8_t> q6(420, 0);  // q = 0 everywhere: value d * scale * -32
  for (int b = 0; b < 2; ++b) {
    for (int s = 0; s < 16; ++s) q6[210 * b + 192 + s] = 1;
  }
  PutU16(q6.data() + 208, kHalfOne);
  PutU16(q6.data() + 210 + 208, kHalfHalf);
  std::vector<float> out6(512);
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ6_K, q6.data(), 512, out6.data()).ok());
  EXPECT_EQ(out6[255], -32.0f);
  EXPECT_EQ(out6[256], -16.0f);
}

TEST(GgmlQuantsTest, Q4_1AndQ5MatchHandComputedValues) {
  // Q4_1: d = 0.5, m = -1; qs[j] = j | (15 - j) << 4: element j = 0.5 j - 1,
  // element j + 16 = 0.5 (15 - j) - 1. Hand-worked: element 0 = -1, element 16 = 6.5.
  std::vector<uint8_t> q41(20);
  PutU16(q41.data(), kHalfHalf);
  PutU16(q41.data() + 2, 0xbc00);  // -1.0
  for (int j = 0; j < 16; ++j) q41[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> out(32);
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ4_1, q41.data(), 32, out.data()).ok());
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_EQ(out[16], 6.5f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * j - 1.0f);
    EXPECT_EQ(out[j + 16], 0.5f * (15 - j) - 1.0f);
  }
  // Q5_0: d = 0.25, qh = 0x80000001 (5th bit set for elements 0 and 31), qs all 0x21 (low 1,
  // high 2): element 0 = (1 + 16 - 16) * 0.25 = 0.25, element 1 = (1 - 16) * 0.25 = -3.75,
  // element 16 = (2 - 16) * 0.25 = -3.5, element 31 = (2 + 16 - 16) * 0.25 = 0.5.
  std::vector<uint8_t> q50(22);
  PutU16(q50.data(), kHalfQuarter);
  const uint8_t qh[4] = {0x01, 0x00, 0x00, 0x80};
  std::memcpy(q50.data() + 2, qh, 4);
  for (int j = 0; j < 16; ++j) q50[6 + j] = 0x21;
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ5_0, q50.data(), 32, out.data()).ok());
  EXPECT_EQ(out[0], 0.25f);
  EXPECT_EQ(out[1], -3.75f);
  EXPECT_EQ(out[15], -3.75f);
  EXPECT_EQ(out[16], -3.5f);
  EXPECT_EQ(out[31], 0.5f);
  // Q5_1: the same bits with d = 0.25, m = 1: element 0 = 17 * 0.25 + 1 = 5.25, element 1 =
  // 1.25, element 16 = 1.5, element 31 = 18 * 0.25 + 1 = 5.5.
  std::vector<uint8_t> q51(24);
  PutU16(q51.data(), kHalfQuarter);
  PutU16(q51.data() + 2, kHalfOne);
  std::memcpy(q51.data() + 4, qh, 4);
  for (int j = 0; j < 16; ++j) q51[8 + j] = 0x21;
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ5_1, q51.data(), 32, out.data()).ok());
  EXPECT_EQ(out[0], 5.25f);
  EXPECT_EQ(out[1], 1.25f);
  EXPECT_EQ(out[16], 1.5f);
  EXPECT_EQ(out[31], 5.5f);
}

TEST(GgmlQuantsTest, Q5_KMatchesHandComputedValues) {
  // The Q4_K block of the test above (d = 1, dmin = 0.5, the same packed scales and mins, qs
  // low nibble i % 16, high 15 - i % 16) plus qh: qh[l] = 0x01 for l even, 0x80 for l odd, so
  // sub-block 0 (bit 0) gets +16 on even l, sub-block 7 (bit 7) +16 on odd l.
  std::vector<uint8_t> block(176);
  PutU16(block.data(), kHalfOne);
  PutU16(block.data() + 2, kHalfHalf);
  const uint8_t scales[12] = {1, 2, 3, 0xC4, 0, 1, 2, 0x83, 0x45, 0x56, 0x67, 0x8F};
  std::memcpy(block.data() + 4, scales, 12);
  for (int l = 0; l < 32; ++l) block[16 + l] = l % 2 ? 0x80 : 0x01;
  for (int i = 0; i < 128; ++i) {
    block[48 + i] = static_cast<uint8_t>((i % 16) | ((15 - i % 16) << 4));
  }
  std::vector<float> out(256);
  ASSERT_TRUE(DequantizeToF32(GgmlType::kQ5_K, block.data(), 256, out.data()).ok());
  // Hand-worked: element 0 (sub-block 0, q = 0 + 16): 1 * 16 - 0 = 16; element 1 (q = 1): 1;
  // element 224 (sub-block 7, l = 0, q = 15): 63 * 15 - 20 = 925; element 225 (l = 1, q = 14 +
  // 16): 63 * 30 - 20 = 1870; element 33 (sub-block 1, q = 14): 2 * 14 - 0.5 = 27.5.
  EXPECT_EQ(out[0], 16.0f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[224], 925.0f);
  EXPECT_EQ(out[225], 1870.0f);
  EXPECT_EQ(out[33], 27.5f);
}

TEST(GgmlQuantsTest, UnsupportedTypeNamesIt) {
  std::vector<uint8_t> block(84);
  std::vector<float> out(256);
  absl::Status status = DequantizeToF32(GgmlType::kQ2_K, block.data(), 256, out.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(status.message().find("Q2_K"), std::string::npos) << status;
}

}  // namespace
}  // namespace slm::workers
