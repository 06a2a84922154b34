#include "workers/tokenizer/wordpiece.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workers/gguf/gguf_test_writer.h"

namespace slm::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Span = std::pair<int32_t, int32_t>;

enum : int32_t {
  kPad,
  kUnk,
  kCls,
  kSep,
  kHello,
  kWorld,
  kComma,
  kBang,
  kUn,
  kAff,
  kAble,
  kCafe,
  kA,
  kB,
  kZhong,
  kOmega,
  kI,
  kPrivet,
  kQuote,
  kAAlone,
};

std::vector<std::string> TinyVocab() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "▁hello", "▁world", "▁,", "▁!",      "▁un", "aff",
          "able",  "▁cafe", "▁a",    "b",     "▁中",    "▁ω",     "▁i", "▁привет", "▁'",  "a"};
}

std::unique_ptr<WordPieceTokenizer> Tiny(WordPieceTokenizer::Options options = {}) {
  auto tokenizer = WordPieceTokenizer::FromTokens(TinyVocab(), kUnk, kCls, kSep, kPad, options);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::move(tokenizer).value();
}

TEST(WordPieceTest, SplitsPunctuationAndReportsByteSpans) {
  const Encoding encoding = Tiny()->Encode("Hello, world!", /*add_special=*/true);
  EXPECT_THAT(encoding.ids, ElementsAre(kCls, kHello, kComma, kWorld, kBang, kSep));
  EXPECT_THAT(encoding.spans, ElementsAre(Span{-1, -1}, Span{0, 5}, Span{5, 6}, Span{7, 12},
                                          Span{12, 13}, Span{-1, -1}));
}

TEST(WordPieceTest, GreedyLongestMatchWithContinuationPieces) {
  const Encoding encoding = Tiny()->Encode("  unaffable", false);
  EXPECT_THAT(encoding.ids, ElementsAre(kUn, kAff, kAble));
  EXPECT_THAT(encoding.spans, ElementsAre(Span{2, 4}, Span{4, 7}, Span{7, 11}));
  // "ab": word-initial "▁a" then continuation "b"; "ba" fails ("▁b" absent) -> one [UNK].
  EXPECT_THAT(Tiny()->Encode("ab ba", false).ids, ElementsAre(kA, kB, kUnk));
}

TEST(WordPieceTest, UnknownWordBecomesOneUnkCoveringTheWord) {
  const Encoding encoding = Tiny()->Encode("hello xyz world", false);
  EXPECT_THAT(encoding.ids, ElementsAre(kHello, kUnk, kWorld));
  EXPECT_EQ(encoding.spans[1], (Span{6, 9}));
  // A prefix matches but the rest does not: the whole word is [UNK], not partial pieces.
  EXPECT_THAT(Tiny()->Encode("unaffablex", false).ids, ElementsAre(kUnk));
}

TEST(WordPieceTest, WordsLongerThan100CharsAreUnknown) {
  const std::string hundred = "a" + std::string(99, 'b');
  const Encoding fits = Tiny()->Encode(hundred, false);
  ASSERT_EQ(fits.ids.size(), 100u);
  EXPECT_EQ(fits.ids[0], kA);
  EXPECT_EQ(fits.ids[99], kB);
  EXPECT_EQ(fits.spans[99], (Span{99, 100}));
  const Encoding too_long = Tiny()->Encode(hundred + "b", false);
  EXPECT_THAT(too_long.ids, ElementsAre(kUnk));
  EXPECT_THAT(too_long.spans, ElementsAre(Span{0, 101}));
}

TEST(WordPieceTest, LowercasesAndStripsAccentsWithSpansIntoTheOriginal) {
  EXPECT_THAT(Tiny()->Encode("Café", false).spans, ElementsAre(Span{0, 5}));
  EXPECT_THAT(Tiny()->Encode("CAFÉ", false).ids, ElementsAre(kCafe));
  EXPECT_THAT(Tiny()->Encode("cafe\u0301", false).spans, ElementsAre(Span{0, 6}));  // NFD input
  EXPECT_THAT(Tiny()->Encode("Ω", false).ids, ElementsAre(kOmega));
  EXPECT_THAT(Tiny()->Encode("ПРИВЕТ", false).ids, ElementsAre(kPrivet));
  EXPECT_THAT(Tiny()->Encode("ПРИВЕТ", false).spans, ElementsAre(Span{0, 12}));
  const Encoding dotted = Tiny()->Encode("x İ", false);  // U+0130 lowers to i + U+0307
  EXPECT_THAT(dotted.ids, ElementsAre(kUnk, kI));
  EXPECT_THAT(dotted.spans, ElementsAre(Span{0, 1}, Span{2, 4}));
  // Options turn the steps off.
  EXPECT_THAT(Tiny({/*lowercase=*/false, /*strip_accents=*/true})->Encode("Hello hello", false).ids,
              ElementsAre(kUnk, kHello));
  EXPECT_THAT(Tiny({/*lowercase=*/true, /*strip_accents=*/false})->Encode("café cafe", false).ids,
              ElementsAre(kUnk, kCafe));
}

TEST(WordPieceTest, CjkCharactersAreSeparateWords) {
  const Encoding encoding = Tiny()->Encode("中中hello", false);
  EXPECT_THAT(encoding.ids, ElementsAre(kZhong, kZhong, kHello));
  EXPECT_THAT(encoding.spans, ElementsAre(Span{0, 3}, Span{3, 6}, Span{6, 11}));
}

TEST(WordPieceTest, CleansControlCharactersAndSplitsOnUnicodeWhitespace) {
  const Encoding joined = Tiny()->Encode(std::string("hel\x01lo wor\0ld", 13), false);
  EXPECT_THAT(joined.ids, ElementsAre(kHello, kWorld));  // controls dropped, words not split
  EXPECT_THAT(joined.spans, ElementsAre(Span{0, 6}, Span{7, 13}));
  EXPECT_THAT(Tiny()->Encode("\u3000hello\u00A0world\t\n\u200D", false).ids,
              ElementsAre(kHello, kWorld));
  EXPECT_THAT(Tiny()->Encode("hello!!'", false).ids, ElementsAre(kHello, kBang, kBang, kQuote));
  EXPECT_THAT(Tiny()->Encode("$5", false).ids, ElementsAre(kUnk, kUnk));  // '$' is punctuation
}

TEST(WordPieceTest, InvalidUtf8BytesBecomeUnknownPieces) {
  const Encoding encoding = Tiny()->Encode("hello\xFFworld", false);
  EXPECT_THAT(encoding.ids, ElementsAre(kHello, kUnk, kWorld));
  EXPECT_THAT(encoding.spans, ElementsAre(Span{0, 5}, Span{5, 6}, Span{6, 11}));
  EXPECT_THAT(Tiny()->Encode("\xC0\xAF", false).ids, ElementsAre(kUnk, kUnk));  // overlong '/'
  EXPECT_THAT(Tiny()->Encode("\xED\xA0\x80", false).ids,                        // surrogate U+D800
              ElementsAre(kUnk, kUnk, kUnk));
  EXPECT_THAT(Tiny()->Encode("hello \xE4\xB8", false).ids, ElementsAre(kHello, kUnk, kUnk));
}

TEST(WordPieceTest, ArbitraryBytesGiveValidSpans) {
  auto tokenizer = Tiny();
  uint32_t state = 12345;  // fixed LCG seed: deterministic
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text(static_cast<size_t>(trial % 40), '\0');
    for (char& c : text) {
      state = state * 1664525u + 1013904223u;
      c = static_cast<char>(state >> 24);
    }
    const Encoding encoding = tokenizer->Encode(text, false);
    ASSERT_EQ(encoding.ids.size(), encoding.spans.size());
    int32_t previous_begin = 0;
    for (size_t i = 0; i < encoding.ids.size(); ++i) {
      const auto [begin, end] = encoding.spans[i];
      ASSERT_LE(previous_begin, begin) << trial;
      ASSERT_LT(begin, end) << trial;
      ASSERT_LE(end, static_cast<int32_t>(text.size())) << trial;
      ASSERT_LT(static_cast<size_t>(encoding.ids[i]), tokenizer->vocab_size());
      previous_begin = begin;
    }
  }
}

TEST(WordPieceTest, EmptyAndBlankInput) {
  EXPECT_THAT(Tiny()->Encode("", false).ids, IsEmpty());
  EXPECT_THAT(Tiny()->Encode(" \t\n", false).ids, IsEmpty());
  const Encoding special = Tiny()->Encode("", true);
  EXPECT_THAT(special.ids, ElementsAre(kCls, kSep));
  EXPECT_THAT(special.spans, ElementsAre(Span{-1, -1}, Span{-1, -1}));
}

TEST(WordPieceTest, SpecialTokenTextIsOrdinaryText) {
  EXPECT_THAT(Tiny()->Encode("[CLS]", false).ids, ElementsAre(kUnk, kUnk, kUnk));
}

TEST(WordPieceTest, DecodeJoinsPiecesIntoWords) {
  auto tokenizer = Tiny();
  EXPECT_EQ(tokenizer->Decode({kCls, kHello, kComma, kWorld, kBang, kSep, kPad}),
            "hello , world !");
  EXPECT_EQ(tokenizer->Decode({kUn, kAff, kAble, kUnk, -5, 1000}), "unaffable [UNK]");
  EXPECT_EQ(tokenizer->TokenText(kHello), "▁hello");
  EXPECT_EQ(tokenizer->TokenText(-1), "");
  EXPECT_EQ(tokenizer->vocab_size(), TinyVocab().size());
}

TEST(WordPieceTest, RejectsSpecialIdsOutsideTheVocabulary) {
  auto bad = WordPieceTokenizer::FromTokens(TinyVocab(), kUnk, 99, kSep, kPad, {});
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("cls_id 99"));
  EXPECT_FALSE(WordPieceTokenizer::FromTokens({}, 0, 0, 0, 0, {}).ok());
}

TEST(WordPieceTest, LoadsFromGguf) {
  testing::GgufTestWriter writer;
  writer.AddString("tokenizer.ggml.model", "bert");
  writer.AddStringArray("tokenizer.ggml.tokens", TinyVocab());
  writer.AddU32("tokenizer.ggml.unknown_token_id", kUnk);
  writer.AddU32("tokenizer.ggml.cls_token_id", kCls);
  writer.AddU32("tokenizer.ggml.seperator_token_id", kSep);
  writer.AddU32("tokenizer.ggml.padding_token_id", kPad);
  auto file = GgufFile::FromBytes(writer.Build(), "vocab.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  auto tokenizer = WordPieceTokenizer::FromGguf(**file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_THAT((*tokenizer)->Encode("Hello", true).ids, ElementsAre(kCls, kHello, kSep));

  // A cased vocabulary (slmgw.tokenizer.lowercase = false) keeps case and accents: "Hello" has
  // no piece, "hello" has; "café" is not "cafe".
  testing::GgufTestWriter cased;
  cased.AddString("tokenizer.ggml.model", "bert");
  cased.AddStringArray("tokenizer.ggml.tokens", TinyVocab());
  cased.AddU32("tokenizer.ggml.unknown_token_id", kUnk);
  cased.AddU32("tokenizer.ggml.cls_token_id", kCls);
  cased.AddU32("tokenizer.ggml.seperator_token_id", kSep);
  cased.AddBool("slmgw.tokenizer.lowercase", false);
  auto cased_file = GgufFile::FromBytes(cased.Build(), "cased.gguf");
  ASSERT_TRUE(cased_file.ok()) << cased_file.status();
  auto cased_tokenizer = WordPieceTokenizer::FromGguf(**cased_file);
  ASSERT_TRUE(cased_tokenizer.ok()) << cased_tokenizer.status();
  EXPECT_THAT((*cased_tokenizer)->Encode("Hello hello caf\u00e9 cafe", false).ids,
              ElementsAre(kUnk, kHello, kUnk, kCafe));
  testing::GgufTestWriter lower_true;
  lower_true.AddString("tokenizer.ggml.model", "bert");
  lower_true.AddStringArray("tokenizer.ggml.tokens", TinyVocab());
  lower_true.AddU32("tokenizer.ggml.unknown_token_id", kUnk);
  lower_true.AddU32("tokenizer.ggml.cls_token_id", kCls);
  lower_true.AddU32("tokenizer.ggml.seperator_token_id", kSep);
  lower_true.AddBool("slmgw.tokenizer.lowercase", true);
  auto lower_tokenizer =
      WordPieceTokenizer::FromGguf(**GgufFile::FromBytes(lower_true.Build(), "l.gguf"));
  ASSERT_TRUE(lower_tokenizer.ok()) << lower_tokenizer.status();
  EXPECT_THAT((*lower_tokenizer)->Encode("Hello caf\u00e9", false).ids, ElementsAre(kHello, kCafe));
  testing::GgufTestWriter wrong_type;
  wrong_type.AddString("tokenizer.ggml.model", "bert");
  wrong_type.AddStringArray("tokenizer.ggml.tokens", TinyVocab());
  wrong_type.AddU32("tokenizer.ggml.unknown_token_id", kUnk);
  wrong_type.AddU32("tokenizer.ggml.cls_token_id", kCls);
  wrong_type.AddU32("tokenizer.ggml.seperator_token_id", kSep);
  wrong_type.AddString("slmgw.tokenizer.lowercase", "no");
  auto wrong_lowercase =
      WordPieceTokenizer::FromGguf(**GgufFile::FromBytes(wrong_type.Build(), "w.gguf"));
  EXPECT_FALSE(wrong_lowercase.ok());
  EXPECT_THAT(std::string(wrong_lowercase.status().message()),
              HasSubstr("slmgw.tokenizer.lowercase"));

  testing::GgufTestWriter gpt2;
  gpt2.AddString("tokenizer.ggml.model", "gpt2");
  gpt2.AddStringArray("tokenizer.ggml.tokens", TinyVocab());
  auto wrong_model = WordPieceTokenizer::FromGguf(**GgufFile::FromBytes(gpt2.Build(), "g.gguf"));
  EXPECT_THAT(std::string(wrong_model.status().message()),
              HasSubstr("g.gguf: tokenizer.ggml.model is 'gpt2', expected 'bert'"));

  testing::GgufTestWriter bad_id;
  bad_id.AddString("tokenizer.ggml.model", "bert");
  bad_id.AddStringArray("tokenizer.ggml.tokens", TinyVocab());
  bad_id.AddU32("tokenizer.ggml.unknown_token_id", kUnk);
  bad_id.AddU32("tokenizer.ggml.cls_token_id", kCls);
  bad_id.AddU32("tokenizer.ggml.seperator_token_id", 500);
  auto out_of_range = WordPieceTokenizer::FromGguf(**GgufFile::FromBytes(bad_id.Build(), "b"));
  EXPECT_THAT(std::string(out_of_range.status().message()),
              HasSubstr("tokenizer.ggml.seperator_token_id 500 is outside the vocabulary"));
}

}  // namespace
}  // namespace slm::workers
