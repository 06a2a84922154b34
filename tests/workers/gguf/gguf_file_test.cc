#include "workers/gguf/gguf_file.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workers/gguf/gguf_test_writer.h"
#include "workers/gguf/ggml_types.h"

namespace slm::workers {
namespace {

using ::slm::workers::testing::F32Bytes;
using ::slm::workers::testing::GgufTestWriter;
using ::slm::workers::testing::U16Bytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<GgufFile>> Parse(const GgufTestWriter& writer) {
  return GgufFile::FromBytes(writer.Build(), "test.gguf");
}

// Expects parsing to fail with InvalidArgument whose message names the file and contains
// `fragment`.
void ExpectRejected(const std::string& bytes, const std::string& fragment) {
  auto file = GgufFile::FromBytes(bytes, "bad.gguf");
  ASSERT_FALSE(file.ok()) << "expected an error containing '" << fragment << "'";
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("bad.gguf: "));
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(fragment));
}

TEST(GgufFileTest, RoundTripsEveryValueType) {
  GgufTestWriter writer;
  writer.AddU8("u8", 200);
  writer.AddI8("i8", -100);
  writer.AddU16("u16", 60000);
  writer.AddI16("i16", -30000);
  writer.AddU32("u32", 4000000000u);
  writer.AddI32("i32", -2000000000);
  writer.AddF32("f32", 0.25f);
  writer.AddBool("bool", true);
  writer.AddString("string", "héllo");
  writer.AddU64("u64", 1ull << 40);
  writer.AddI64("i64", -(1ll << 50));
  writer.AddF64("f64", -1.5e300);
  writer.AddStringArray("strings", {"a", "", "▁bc"});
  writer.AddI32Array("ints", {1, -2, 3});
  writer.AddF32Array("floats", {0.5f, -4.0f});
  writer.AddU64("u64.huge", std::numeric_limits<uint64_t>::max());
  auto file = Parse(writer);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(*f.GetInt("u8"), 200);
  EXPECT_EQ(*f.GetInt("i8"), -100);
  EXPECT_EQ(*f.GetInt("u16"), 60000);
  EXPECT_EQ(*f.GetInt("i16"), -30000);
  EXPECT_EQ(*f.GetInt("u32"), 4000000000ll);
  EXPECT_EQ(*f.GetInt("i32"), -2000000000);
  EXPECT_EQ(*f.GetFloat("f32"), 0.25);
  EXPECT_EQ(*f.GetBool("bool"), true);
  EXPECT_EQ(*f.GetString("string"), "héllo");
  EXPECT_EQ(*f.GetInt("u64"), 1ll << 40);
  EXPECT_EQ(*f.GetInt("i64"), -(1ll << 50));
  EXPECT_EQ(*f.GetFloat("f64"), -1.5e300);
  EXPECT_EQ(*f.GetFloat("i32"), -2000000000.0);  // integers read as floats
  EXPECT_THAT(*f.GetStringArray("strings"), ElementsAre("a", "", "▁bc"));
  EXPECT_THAT(*f.GetIntArray("ints"), ElementsAre(1, -2, 3));
  EXPECT_THAT(*f.GetFloatArray("floats"), ElementsAre(0.5, -4.0));
  EXPECT_THAT(*f.GetFloatArray("ints"), ElementsAre(1.0, -2.0, 3.0));
  EXPECT_EQ(f.GetInt("u64.huge").status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*f.GetFloat("u64.huge"), 18446744073709551615.0);
  EXPECT_TRUE(f.Has("strings"));
  EXPECT_FALSE(f.Has("missing"));
  EXPECT_EQ(f.Keys().size(), 16u);
  EXPECT_EQ(f.Keys()[0], "u8");
  EXPECT_EQ(*f.GetIntOr("missing", 7), 7);
  EXPECT_EQ(*f.GetFloatOr("missing", 1.5), 1.5);
  EXPECT_EQ(*f.GetStringOr("missing", "x"), "x");
  EXPECT_EQ(*f.GetIntOr("u8", 7), 200);
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufFileTest, WrongTypeAndMissingKeyErrorsNameTheKey) {
  GgufTestWriter writer;
  writer.AddString("name", "x");
  writer.AddI32("count", 3);
  writer.AddStringArray("tokens", {"a"});
  auto file = Parse(writer);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  auto wrong_int = f.GetInt("name");
  EXPECT_EQ(wrong_int.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong_int.status().message()),
              HasSubstr("test.gguf: metadata 'name' has type string, expected an integer"));
  EXPECT_THAT(std::string(f.GetString("count").status().message()),
              HasSubstr("'count' has type i32, expected string"));
  EXPECT_FALSE(f.GetBool("count").ok());
  EXPECT_FALSE(f.GetFloat("name").ok());
  EXPECT_THAT(std::string(f.GetIntArray("tokens").status().message()),
              HasSubstr("has type array of string, expected array of integers"));
  EXPECT_FALSE(f.GetStringArray("count").ok());
  EXPECT_FALSE(f.GetFloatArray("tokens").ok());
  // Optional-key helpers still reject a present key of the wrong type.
  EXPECT_FALSE(f.GetIntOr("name", 1).ok());
  EXPECT_FALSE(f.GetStringOr("count", "x").ok());
  auto missing = f.GetString("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("'nope'"));
}

TEST(GgufFileTest, HalfConversionMatchesHandComputedAndCompilerFloat16) {
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xC000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x3800), 0.5f);
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x7C00), INFINITY);
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7E00)));
  // Every half value against the compiler's _Float16 (an independent implementation).
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const uint16_t b = static_cast<uint16_t>(bits);
    __extension__ _Float16 reference;
    std::memcpy(&reference, &b, 2);
    const float expected = static_cast<float>(reference);
    const float actual = HalfToFloat(b);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(actual)) << std::hex << bits;
      continue;
    }
    ASSERT_EQ(std::memcmp(&expected, &actual, 4), 0) << std::hex << bits;
    ASSERT_EQ(FloatToHalf(actual), b) << std::hex << bits;  // exact values round-trip
  }
  // Rounding of values between halves, against the compiler.
  for (float v : {0.1f, -0.3f, 1e-6f, 3e-8f, 65519.0f, 65520.0f, 1e9f, 1.00048828125f,
                  1.0009765625f * 1.0000001f}) {
    __extension__ _Float16 reference = static_cast<_Float16>(v);
    uint16_t expected;
    std::memcpy(&expected, &reference, 2);
    EXPECT_EQ(FloatToHalf(v), expected) << v;
  }
  EXPECT_EQ(BFloat16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(BFloat16ToFloat(0xC040), -3.0f);
  EXPECT_EQ(BFloat16ToFloat(0x4049), 3.140625f);
}

TEST(GgufFileTest, DequantizesF32F16Bf16AndQ8_0) {
  GgufTestWriter writer;
  writer.AddTensor("f32", {3, 2}, GgmlType::kF32, F32Bytes({1, -2, 3.5f, 0, 1e-3f, -7}));
  writer.AddTensor("f16", {4}, GgmlType::kF16, U16Bytes({0x3C00, 0xC000, 0x3555, 0x7BFF}));
  writer.AddTensor("bf16", {3}, GgmlType::kBF16, U16Bytes({0x3F80, 0xC040, 0x4049}));
  // Two Q8_0 blocks: d = 0.5 with q = i - 16, then d = 2 with q = -128, 127, 0, ...
  std::string q8;
  GgufTestWriter::Raw(&q8, "\x00\x38", 2);
  for (int i = 0; i < 32; ++i) q8.push_back(static_cast<char>(i - 16));
  GgufTestWriter::Raw(&q8, "\x00\x40", 2);
  q8.push_back(static_cast<char>(-128));
  q8.push_back(static_cast<char>(127));
  q8.append(30, '\0');
  writer.AddTensor("q8", {32, 2}, GgmlType::kQ8_0, q8);
  writer.AddTensor("q4", {32}, GgmlType::kQ8_1, std::string(36, '\0'));  // not supported
  auto file = Parse(writer);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  ASSERT_EQ(f.tensors().size(), 5u);
  const GgufTensor* f32 = *f.FindTensor("f32");
  EXPECT_THAT(f32->dims, ElementsAre(3, 2));
  EXPECT_EQ(f32->element_count(), 6);
  EXPECT_EQ(f32->size_bytes, 24u);
  EXPECT_EQ(f32->offset, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f32->data) % 32, 0u);
  EXPECT_EQ((*f.FindTensor("q8"))->size_bytes, 68u);
  EXPECT_EQ((*f.FindTensor("q8"))->offset % 32, 0u);

  EXPECT_THAT(*f.ReadF32("f32"), ElementsAre(1, -2, 3.5f, 0, 1e-3f, -7));
  EXPECT_THAT(*f.ReadF32("f32", {3, 2}), ElementsAre(1, -2, 3.5f, 0, 1e-3f, -7));
  EXPECT_TRUE(f.ReadF32("f32", {6}).ok());        // element count
  EXPECT_TRUE(f.ReadF32("f32", {3, 2, 1}).ok());  // trailing 1s ignored
  auto transposed = f.ReadF32("f32", {2, 3});
  EXPECT_FALSE(transposed.ok());
  EXPECT_THAT(std::string(transposed.status().message()),
              HasSubstr("tensor 'f32' has dims [3, 2], expected [2, 3]"));
  EXPECT_FALSE(f.ReadF32("f32", {5}).ok());
  EXPECT_THAT(*f.ReadF32("f16"), ElementsAre(1.0f, -2.0f, 0.333251953125f, 65504.0f));
  EXPECT_THAT(*f.ReadF32("bf16"), ElementsAre(1.0f, -3.0f, 3.140625f));
  std::vector<float> expected_q8;
  for (int i = 0; i < 32; ++i) expected_q8.push_back(0.5f * static_cast<float>(i - 16));
  expected_q8.push_back(-256.0f);
  expected_q8.push_back(254.0f);
  for (int i = 0; i < 30; ++i) expected_q8.push_back(0.0f);
  EXPECT_EQ(*f.ReadF32("q8", {32, 2}), expected_q8);
  auto q4 = f.ReadF32("q4");
  EXPECT_EQ(q4.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(q4.status().message()), HasSubstr("tensor 'q4'"));
  EXPECT_THAT(std::string(q4.status().message()), HasSubstr("Q8_1"));
  auto missing = f.ReadF32("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("test.gguf: tensor 'nope'"));
}

TEST(GgufFileTest, HonorsCustomAlignmentAndVersion2) {
  GgufTestWriter writer;
  writer.version = 2;
  writer.alignment = 64;
  writer.AddU32("general.alignment", 64);
  writer.AddTensor("a", {3}, GgmlType::kF32, F32Bytes({1, 2, 3}));
  writer.AddTensor("b", {2}, GgmlType::kF32, F32Bytes({4, 5}));
  auto file = Parse(writer);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->version(), 2u);
  EXPECT_EQ((*file)->alignment(), 64u);
  EXPECT_EQ((*(*file)->FindTensor("b"))->offset, 64u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*(*file)->FindTensor("b"))->data) % 64, 0u);
  EXPECT_THAT(*(*file)->ReadF32("b"), ElementsAre(4, 5));
}

// A small file whose every byte matters: the last tensor's data is a multiple of the
// alignment, so no prefix of it is a valid file.
std::string SmallValidFile() {
  GgufTestWriter writer;
  writer.AddString("general.architecture", "bert");
  writer.AddU32("bert.block_count", 2);
  writer.AddF32("eps", 1e-12f);
  writer.AddBool("flag", false);
  writer.AddStringArray("tokens", {"[PAD]", "▁a", "b"});
  writer.AddI32Array("types", {1, 2});
  writer.AddTensor("w", {2, 2}, GgmlType::kF16, U16Bytes({0x3C00, 0, 0, 0x3C00}));
  writer.AddTensor("b", {8}, GgmlType::kF32, F32Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  return writer.Build();
}

TEST(GgufFileTest, EveryTruncationIsAClearError) {
  const std::string bytes = SmallValidFile();
  ASSERT_TRUE(GgufFile::FromBytes(bytes, "bad.gguf").ok());
  for (size_t length = 0; length < bytes.size(); ++length) {
    SCOPED_TRACE(length);
    auto file = GgufFile::FromBytes(bytes.substr(0, length), "bad.gguf");
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(file.status().message());
    EXPECT_THAT(message, HasSubstr("bad.gguf: "));
    const bool explained = message.find("truncated") != std::string::npos ||
                           message.find("exceeds") != std::string::npos ||
                           message.find("cannot fit") != std::string::npos;
    EXPECT_TRUE(explained) << message;
  }
}

// Every single-byte corruption either parses (and then every tensor reads within bounds) or is
// rejected; run under ASan this shows no read leaves the image.
TEST(GgufFileTest, SingleByteCorruptionsNeverReadOutOfBounds) {
  const std::string bytes = SmallValidFile();
  int rejected = 0;
  for (size_t position = 0; position < bytes.size(); ++position) {
    for (int flip : {0x01, 0x80, 0xFF}) {
      std::string corrupt = bytes;
      corrupt[position] = static_cast<char>(corrupt[position] ^ flip);
      auto file = GgufFile::FromBytes(corrupt, "bad.gguf");
      if (!file.ok()) {
        ++rejected;
        EXPECT_THAT(std::string(file.status().message()), HasSubstr("bad.gguf: "));
        continue;
      }
      for (const GgufTensor& tensor : (*file)->tensors()) {
        auto values = (*file)->ReadF32(tensor.name);
        if (values.ok()) {
          EXPECT_EQ(values->size(), static_cast<size_t>(tensor.element_count()));
        }
      }
    }
  }
  EXPECT_GT(rejected, 100);
}

TEST(GgufFileTest, RejectsBadHeaders) {
  GgufTestWriter writer;
  writer.magic_override = 0x47475546;  // "FUGG"
  ExpectRejected(writer.Build(), "bad magic");
  for (uint32_t version : {0u, 1u, 4u}) {
    GgufTestWriter w;
    w.version = version;
    ExpectRejected(w.Build(), "unsupported GGUF version " + std::to_string(version));
  }
  GgufTestWriter plain;
  plain.AddString("x", std::string(40, 'x'));
  ExpectRejected(plain.Build(/*tensor_count_override=*/1ll << 60), "tensor count");
  ExpectRejected(plain.Build(-1, /*kv_count_override=*/1ll << 60), "metadata count");
  ExpectRejected(plain.Build(-1, 2), "truncated");
  ExpectRejected(std::string("GGU"), "truncated");
}

TEST(GgufFileTest, RejectsBadMetadata) {
  {
    GgufTestWriter w;  // key length far beyond the file
    std::string kv;
    GgufTestWriter::U64(&kv, 1ull << 62);
    w.AddRawKv(kv + std::string(16, 'k'));
    ExpectRejected(w.Build(), "string length 4611686018427387904");
  }
  {
    GgufTestWriter w;  // string value length beyond the file
    std::string kv;
    GgufTestWriter::Str(&kv, "s");
    GgufTestWriter::U32(&kv, 8);
    GgufTestWriter::U64(&kv, 1000);
    w.AddRawKv(kv + "abc");
    ExpectRejected(w.Build(), "string length 1000 of metadata 's'");
  }
  {
    GgufTestWriter w;  // array length that cannot fit
    std::string kv;
    GgufTestWriter::Str(&kv, "arr");
    GgufTestWriter::U32(&kv, 9);
    GgufTestWriter::U32(&kv, 4);
    GgufTestWriter::U64(&kv, 1ull << 61);
    w.AddRawKv(kv + std::string(8, '\0'));
    ExpectRejected(w.Build(), "array length 2305843009213693952 of metadata 'arr'");
  }
  {
    GgufTestWriter w;  // unknown value type
    std::string kv;
    GgufTestWriter::Str(&kv, "odd");
    GgufTestWriter::U32(&kv, 13);
    w.AddRawKv(kv + std::string(8, '\0'));
    ExpectRejected(w.Build(), "unknown value type 13 for metadata 'odd'");
  }
  {
    GgufTestWriter w;  // unknown array element type
    std::string kv;
    GgufTestWriter::Str(&kv, "odd");
    GgufTestWriter::U32(&kv, 9);
    GgufTestWriter::U32(&kv, 99);
    GgufTestWriter::U64(&kv, 1);
    w.AddRawKv(kv + std::string(8, '\0'));
    ExpectRejected(w.Build(), "unknown array element type 99");
  }
  {
    GgufTestWriter w;  // bool that is neither 0 nor 1
    std::string kv;
    GgufTestWriter::Str(&kv, "flag");
    GgufTestWriter::U32(&kv, 7);
    w.AddRawKv(kv + "\x02");
    ExpectRejected(w.Build(), "bool value 2 of metadata 'flag'");
  }
  {
    GgufTestWriter w;
    w.AddU8("dup", 1);
    w.AddU8("dup", 2);
    ExpectRejected(w.Build(), "duplicate metadata key 'dup'");
  }
  for (uint32_t alignment : {0u, 3u, 48u}) {
    GgufTestWriter w;
    w.AddU32("general.alignment", alignment);
    ExpectRejected(w.Build(), "general.alignment");
  }
  {
    GgufTestWriter w;
    w.AddString("general.alignment", "32");
    ExpectRejected(w.Build(), "general.alignment");
  }
}

TEST(GgufFileTest, RejectsBadTensorInfos) {
  const std::string four_floats = F32Bytes({1, 2, 3, 4});
  {
    GgufTestWriter w;
    w.AddTensor("blk.0.attn_q.weight", {4}, GgmlType::kF32, four_floats, /*offset=*/4096);
    ExpectRejected(w.Build(), "tensor 'blk.0.attn_q.weight' [offset 4096, 16 bytes");
    ExpectRejected(w.Build(), "exceeds file size");
  }
  {
    GgufTestWriter w;
    w.AddTensor("t", {4}, GgmlType::kF32, four_floats, /*offset=*/4);
    ExpectRejected(w.Build(), "tensor 't' offset 4 is not a multiple of the alignment 32");
  }
  {
    GgufTestWriter w;
    w.AddTensor("t", {4, 0}, GgmlType::kF32, four_floats);
    ExpectRejected(w.Build(), "tensor 't' dimension 1 is 0");
  }
  {
    GgufTestWriter w;
    w.AddTensor("t", {1ull << 32, 1ull << 32}, GgmlType::kF32, four_floats);
    ExpectRejected(w.Build(), "tensor 't' dimension 1 is 4294967296");
  }
  {
    GgufTestWriter w;
    w.AddTensor("t", {1ull << 63}, GgmlType::kI8, four_floats);
    ExpectRejected(w.Build(), "dimension 0");
  }
  {
    GgufTestWriter w;
    w.AddTensor("t", {1, 1, 1, 1, 4}, GgmlType::kF32, four_floats);
    ExpectRejected(w.Build(), "tensor 't' has 5 dimensions (expected 1..4)");
  }
  {
    GgufTestWriter w;
    w.AddTensor("t", {}, GgmlType::kF32, four_floats);
    ExpectRejected(w.Build(), "tensor 't' has 0 dimensions");
  }
  {
    GgufTestWriter w;
    w.AddTensorRawType("t", {4}, 99, four_floats);
    ExpectRejected(w.Build(), "tensor 't' has unknown ggml type 99");
  }
  {
    GgufTestWriter w;
    w.AddTensorRawType("t", {4}, 4, four_floats);  // removed Q4_2
    ExpectRejected(w.Build(), "unknown ggml type 4");
  }
  {
    GgufTestWriter w;
    w.AddTensor("q", {16}, GgmlType::kQ8_0, std::string(34, '\0'));
    ExpectRejected(w.Build(), "tensor 'q' row length 16 is not a multiple of the Q8_0 block");
  }
  {
    GgufTestWriter w;
    w.AddTensor("same", {4}, GgmlType::kF32, four_floats);
    w.AddTensor("same", {4}, GgmlType::kF32, four_floats);
    ExpectRejected(w.Build(), "duplicate tensor name 'same'");
  }
}

TEST(GgufFileTest, OpenMapsAFileAndNamesMissingOnes) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/gguf_file_test_" +
                           std::to_string(::getpid()) + ".gguf";
  {
    std::ofstream out(path, std::ios::binary);
    out << SmallValidFile();
  }
  auto file = GgufFile::Open(path);
  std::remove(path.c_str());  // the mapping stays valid after unlink
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ(*(*file)->GetString("general.architecture"), "bert");
  EXPECT_THAT(*(*file)->ReadF32("w", {2, 2}), ElementsAre(1, 0, 0, 1));
  EXPECT_THAT(*(*file)->ReadF32("b"), ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));

  auto missing = GgufFile::Open("/nonexistent/model.gguf");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/model.gguf"));
  auto directory = GgufFile::Open("/");
  EXPECT_FALSE(directory.ok());
}

std::string SharedTokenizerDir() {
  const char* dir = std::getenv("SLM_SHARED_DATA_DIR");
  if (dir == nullptr) return "";
  return std::string(dir) + "/tokenizers";
}

TEST(GgufFileTest, OpensLlamaCppVocabularyFiles) {
  const std::string dir = SharedTokenizerDir();
  std::ifstream probe(dir + "/ggml-vocab-bert-bge.gguf");
  if (dir.empty() || !probe.good()) {
    GTEST_SKIP() << "shared data absent: set SLM_SHARED_DATA_DIR to a folder with "
                    "tokenizers/ggml-vocab-*.gguf";
  }
  auto bert = GgufFile::Open(dir + "/ggml-vocab-bert-bge.gguf");
  ASSERT_TRUE(bert.ok()) << bert.status();
  EXPECT_EQ(*(*bert)->GetString("tokenizer.ggml.model"), "bert");
  auto tokens = (*bert)->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), 30522u);
  EXPECT_EQ((*tokens)[0], "[PAD]");
  EXPECT_EQ(*(*bert)->GetInt("tokenizer.ggml.cls_token_id"), 101);
  EXPECT_EQ(*(*bert)->GetInt("tokenizer.ggml.seperator_token_id"), 102);
  for (const char* name : {"gpt-2", "llama-spm", "phi-3"}) {
    auto file = GgufFile::Open(dir + "/ggml-vocab-" + name + ".gguf");
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_TRUE((*file)->Has("tokenizer.ggml.tokens")) << name;
  }
}

}  // namespace
}  // namespace slm::workers
