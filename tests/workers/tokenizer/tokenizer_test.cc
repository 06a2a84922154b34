// Unit tests of the SentencePiece-style and byte-level BPE tokenizers on tiny hand-made
// vocabularies (expected ids worked out by hand from the algorithms' rules), streaming
// detokenization, and bad GGUF metadata.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workers/gguf/gguf_test_writer.h"
#include "workers/tokenizer/bpe_tokenizer.h"
#include "workers/tokenizer/tokenizer.h"
#include "workers/tokenizer/utf8.h"

namespace slm::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then pieces with scores.
constexpr int32_t kByteBase = 3;
enum : int32_t {
  kSpace = 259,  // "▁"
  kSpH,          // "▁h"   -4
  kSpHe,         // "▁he"  -3
  kSpHell,       // "▁hell" -2
  kSpHello,      // "▁hello" -1
  kLL,           // "ll"   -5
  kLO,           // "lo"   -6
  kH,
  kE,
  kL,
  kO,
  kUserTag,      // "<tag>" user-defined
};

testing::GgufTestWriter SpmWriter() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(6);
    scores.push_back(0);
  }
  const std::vector<std::pair<std::string, float>> pieces = {
      {"▁", -10}, {"▁h", -4}, {"▁he", -3}, {"▁hell", -2}, {"▁hello", -1}, {"ll", -5},
      {"lo", -6}, {"h", -7},  {"e", -8},   {"l", -9},     {"o", -7}};
  for (const auto& [text, score] : pieces) {
    tokens.push_back(text);
    types.push_back(1);
    scores.push_back(score);
  }
  tokens.push_back("<tag>");
  types.push_back(4);
  scores.push_back(0);
  testing::GgufTestWriter writer;
  writer.AddString("tokenizer.ggml.model", "llama");
  writer.AddStringArray("tokenizer.ggml.tokens", tokens);
  writer.AddI32Array("tokenizer.ggml.token_type", types);
  writer.AddF32Array("tokenizer.ggml.scores", scores);
  writer.AddU32("tokenizer.ggml.bos_token_id", 1);
  writer.AddU32("tokenizer.ggml.eos_token_id", 2);
  writer.AddU32("tokenizer.ggml.unknown_token_id", 0);
  return writer;
}

std::unique_ptr<Tokenizer> Load(testing::GgufTestWriter writer) {
  auto file = GgufFile::FromBytes(writer.Build(), "tiny.gguf");
  EXPECT_TRUE(file.ok()) << file.status();
  auto tokenizer = LoadTokenizerFromGguf(**file);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

absl::Status LoadStatus(testing::GgufTestWriter writer) {
  auto file = GgufFile::FromBytes(writer.Build(), "bad.gguf");
  if (!file.ok()) return file.status();
  return LoadTokenizerFromGguf(**file).status();
}

TEST(SpmTokenizerTest, MergesHighestScoreFirst) {
  auto spm = Load(SpmWriter());
  ASSERT_NE(spm, nullptr);
  // ▁h (-4) > ll (-5) > lo (-6): ▁h, then ▁he (-3), then ll, then ▁hell (-2), then ▁hello.
  EXPECT_THAT(spm->Encode("hello", false), ElementsAre(kSpHello));
  // "hlo": ▁h then lo (-6) beats nothing else; ▁hlo is no piece.
  EXPECT_THAT(spm->Encode("hlo", false), ElementsAre(kSpH, kLO));
  EXPECT_THAT(spm->Encode("hello", true), ElementsAre(1, kSpHello));
  EXPECT_THAT(spm->Encode("", true), ElementsAre(1));
  EXPECT_THAT(spm->Encode("", false), IsEmpty());
}

TEST(SpmTokenizerTest, ByteFallbackAndInvalidUtf8RoundTrip) {
  auto spm = Load(SpmWriter());
  ASSERT_NE(spm, nullptr);
  // "é" (C3 A9) has no piece: <0xC3> <0xA9> after the prefix space.
  EXPECT_THAT(spm->Encode("é", false), ElementsAre(kSpace, kByteBase + 0xC3, kByteBase + 0xA9));
  EXPECT_EQ(spm->Decode(spm->Encode("é", false)), "é");
  for (const std::string& text : {std::string("\xFF"), std::string("a\xC3"), std::string("\xE2\x82"),
                                 std::string("he\x80llo  x"), std::string(" hello")}) {
    EXPECT_EQ(spm->Decode(spm->Encode(text, true)), text);
  }
  EXPECT_EQ(spm->TokenBytes(kByteBase + 0x41, false), "A");
  EXPECT_EQ(spm->TokenBytes(1, false), "");
  EXPECT_EQ(spm->TokenBytes(1, true), "<s>");
  EXPECT_EQ(spm->TokenBytes(-1, true), "");
  EXPECT_EQ(spm->TokenBytes(100000, true), "");
}

TEST(SpmTokenizerTest, SpecialTokensInText) {
  auto spm = Load(SpmWriter());
  ASSERT_NE(spm, nullptr);
  EncodeOptions parse;
  parse.parse_special = true;
  // A space is prefixed again after a special token.
  EXPECT_THAT(spm->Encode("<s>hello", parse), ElementsAre(1, kSpHello));
  // Without parse_special, "<s>" is text: byte fallback for < s >.
  EXPECT_THAT(spm->Encode("<s>", false),
              ElementsAre(kSpace, kByteBase + '<', kByteBase + 's', kByteBase + '>'));
  // User-defined tokens match always.
  EXPECT_THAT(spm->Encode("hello<tag>hello", false), ElementsAre(kSpHello, kUserTag, kSpHello));
  EXPECT_EQ(spm->Decode({1, kSpHello}, /*render_special=*/true), "<s>hello");
}

TEST(DecodeStreamTest, EmitsOnlyCompleteUtf8) {
  auto spm = Load(SpmWriter());
  ASSERT_NE(spm, nullptr);
  DecodeStream stream(*spm);
  EXPECT_EQ(stream.Next(kSpace), "");  // the prefix space is dropped
  EXPECT_EQ(stream.Next(kByteBase + 0xE2), "");
  EXPECT_EQ(stream.Next(kByteBase + 0x82), "");
  EXPECT_EQ(stream.Next(kByteBase + 0xAC), "€");
  EXPECT_EQ(stream.Next(kSpHello), " hello");
  EXPECT_EQ(stream.Next(kByteBase + 0xFF), "\xEF\xBF\xBD");  // invalid at once
  EXPECT_EQ(stream.Next(kByteBase + 0xC3), "");
  EXPECT_EQ(stream.Next(kByteBase + 'A'), "\xEF\xBF\xBD" "A");  // C3 41: C3 is invalid
  EXPECT_EQ(stream.Next(kByteBase + 0xF0), "");
  EXPECT_EQ(stream.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.Flush(), "");
}

TEST(Utf8Test, ExamineRejectsOverlongsSurrogatesAndPastMax) {
  char32_t cp;
  size_t length;
  for (const std::string bad : {"\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                "\xF8", "\x80"}) {
    EXPECT_EQ(utf8::Examine(bad, 0, &cp, &length), utf8::SequenceStatus::kInvalid) << bad;
  }
  EXPECT_EQ(utf8::Examine("\xF0\x9F\x98", 0, &cp, &length), utf8::SequenceStatus::kIncomplete);
  ASSERT_EQ(utf8::Examine("\xF0\x9F\x98\x81", 0, &cp, &length), utf8::SequenceStatus::kValid);
  EXPECT_EQ(cp, 0x1F601u);
  EXPECT_EQ(length, 4u);
}

// Byte-level BPE: ids 0..255 are the byte-level characters of bytes 0..255, then merges.
enum : int32_t { kHe = 256, kLl, kHell, kHello, kGw, kAa, kEnd };

std::string ByteChar(unsigned char byte) {
  std::string text;
  utf8::Append(ByteToUnicode(byte), &text);
  return text;
}

testing::GgufTestWriter BpeWriter(const std::string& pre) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(ByteChar(static_cast<unsigned char>(b)));
  const std::string g = ByteChar(' ');  // "Ġ"
  for (const std::string t : {"he", "ll", "hell", "hello"}) tokens.push_back(t);
  tokens.push_back(g + "w");
  tokens.push_back("aa");
  tokens.push_back("<|end|>");
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  testing::GgufTestWriter writer;
  writer.AddString("tokenizer.ggml.model", "gpt2");
  writer.AddString("tokenizer.ggml.pre", pre);
  writer.AddStringArray("tokenizer.ggml.tokens", tokens);
  writer.AddI32Array("tokenizer.ggml.token_type", types);
  writer.AddStringArray("tokenizer.ggml.merges",
                        {"h e", "l l", "he ll", "hell o", g + " w", "a a", "x y"});
  writer.AddU32("tokenizer.ggml.eos_token_id", kEnd);
  return writer;
}

TEST(BpeTokenizerTest, MergesLowestRankFirstLeftmostOnTies) {
  auto bpe = Load(BpeWriter("gpt-2"));
  ASSERT_NE(bpe, nullptr);
  EXPECT_THAT(bpe->Encode("hello world", false),
              ElementsAre(kHello, kGw, 'o', 'r', 'l', 'd'));
  EXPECT_THAT(bpe->Encode("aaa", false), ElementsAre(kAa, 'a'));
  EXPECT_THAT(bpe->Encode("hello", true), ElementsAre(kHello)) << "gpt2 adds no BOS by default";
  EXPECT_EQ(bpe->Decode(bpe->Encode("hello world", false)), "hello world");
  EXPECT_TRUE(bpe->IsEndOfGeneration(kEnd));
  EXPECT_FALSE(bpe->IsEndOfGeneration(kHello));
}

TEST(BpeTokenizerTest, InvalidUtf8IsLosslessByteLevel) {
  auto bpe = Load(BpeWriter("qwen2"));
  ASSERT_NE(bpe, nullptr);
  const std::string text = "\xFF\xFEhe\xC3llo \xE2\x82";
  const std::vector<int32_t> ids = bpe->Encode(text, false);
  EXPECT_EQ(bpe->Decode(ids), text);
  EXPECT_THAT(bpe->Encode("\xFF", false), ElementsAre(0xFF));
}

TEST(BpeTokenizerTest, ControlTokensOnlyWithParseSpecial) {
  auto bpe = Load(BpeWriter("gpt-2"));
  ASSERT_NE(bpe, nullptr);
  EncodeOptions parse;
  parse.parse_special = true;
  EXPECT_THAT(bpe->Encode("hello<|end|>", parse), ElementsAre(kHello, kEnd));
  EXPECT_GT(bpe->Encode("hello<|end|>", false).size(), 2u);
  EXPECT_EQ(bpe->Decode({kHello, kEnd}), "hello");
  EXPECT_EQ(bpe->Decode({kHello, kEnd}, /*render_special=*/true), "hello<|end|>");
}

TEST(LoadTokenizerTest, RejectsBadMetadataNamingTheKey) {
  {
    testing::GgufTestWriter writer;
    writer.AddString("tokenizer.ggml.model", "rwkv");
    writer.AddStringArray("tokenizer.ggml.tokens", {"a"});
    EXPECT_THAT(std::string(LoadStatus(writer).message()),
                HasSubstr("tokenizer.ggml.model 'rwkv' is not supported"));
  }
  {
    testing::GgufTestWriter writer;
    writer.AddStringArray("tokenizer.ggml.tokens", {"a"});
    EXPECT_THAT(std::string(LoadStatus(writer).message()), HasSubstr("tokenizer.ggml.model"));
  }
  EXPECT_THAT(std::string(LoadStatus(BpeWriter("tekken")).message()),
              HasSubstr("tokenizer.ggml.pre 'tekken' is not supported"));
  {
    testing::GgufTestWriter writer = BpeWriter("gpt-2");
    writer.AddU32("tokenizer.ggml.bos_token_id", 99999);
    EXPECT_THAT(std::string(LoadStatus(writer).message()),
                HasSubstr("tokenizer.ggml.bos_token_id = 99999 outside the vocabulary"));
  }
  {
    testing::GgufTestWriter writer;
    writer.AddString("tokenizer.ggml.model", "gpt2");
    writer.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
    writer.AddStringArray("tokenizer.ggml.merges", {"ab"});
    EXPECT_THAT(std::string(LoadStatus(writer).message()),
                HasSubstr("tokenizer.ggml.merges[0] = 'ab' is not 'left right'"));
  }
  {
    testing::GgufTestWriter writer;
    writer.AddString("tokenizer.ggml.model", "llama");
    writer.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
    EXPECT_THAT(std::string(LoadStatus(writer).message()),
                HasSubstr("tokenizer.ggml.scores is required"));
  }
  {
    testing::GgufTestWriter writer;
    writer.AddString("tokenizer.ggml.model", "llama");
    writer.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
    writer.AddF32Array("tokenizer.ggml.scores", {0});
    EXPECT_THAT(std::string(LoadStatus(writer).message()),
                HasSubstr("tokenizer.ggml.scores has 1 entries, tokenizer.ggml.tokens 2"));
  }
  {
    testing::GgufTestWriter writer;
    writer.AddString("tokenizer.ggml.model", "llama");
    writer.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
    writer.AddF32Array("tokenizer.ggml.scores", {0, 0});
    writer.AddI32Array("tokenizer.ggml.token_type", {1, 9});
    EXPECT_THAT(std::string(LoadStatus(writer).message()),
                HasSubstr("tokenizer.ggml.token_type[1] = 9 is not 0..6"));
  }
  {
    testing::GgufTestWriter writer;
    writer.AddString("tokenizer.ggml.model", "llama");
    writer.AddStringArray("tokenizer.ggml.tokens", {});
    writer.AddF32Array("tokenizer.ggml.scores", {});
    EXPECT_THAT(std::string(LoadStatus(writer).message()), HasSubstr("empty vocabulary"));
  }
}

}  // namespace
}  // namespace slm::workers
