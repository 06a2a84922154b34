// Pre-tokenizer splits worked out by hand from each regex's alternatives (first alternative that
// matches at a position wins; \s+(?!\S) backs off one whitespace before a non-space).
#include "workers/tokenizer/pre_tokenizer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Words(PreTokenizer pre, const std::string& text) {
  std::vector<size_t> ends;
  SplitWords(pre, text, &ends);
  std::vector<std::string> words;
  size_t begin = 0;
  for (size_t end : ends) {
    EXPECT_GT(end, begin);
    words.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  EXPECT_EQ(begin, text.size()) << "words must cover the text";
  return words;
}

TEST(PreTokenizerTest, Gpt2) {
  EXPECT_THAT(Words(PreTokenizer::kGpt2, "Hello world's  33 x!!\n\n"),
              ElementsAre("Hello", " world", "'s", " ", " 33", " x", "!!", "\n\n"));
  // Contractions are case-sensitive in GPT-2: "'S" is punctuation then a letter.
  EXPECT_THAT(Words(PreTokenizer::kGpt2, "IT'S"), ElementsAre("IT", "'", "S"));
  EXPECT_THAT(Words(PreTokenizer::kGpt2, "a   "), ElementsAre("a", "   "));
  EXPECT_THAT(Words(PreTokenizer::kGpt2, "нещо на"), ElementsAre("нещо", " на"));
}

TEST(PreTokenizerTest, Gpt2DigitsIsolatesEachDigit) {
  EXPECT_THAT(Words(PreTokenizer::kGpt2Digits, "ab 123x"),
              ElementsAre("ab", " ", "1", "2", "3", "x"));
}

TEST(PreTokenizerTest, Qwen2AndLlama3) {
  EXPECT_THAT(Words(PreTokenizer::kQwen2, "Hello world's  33 x!!\n\n"),
              ElementsAre("Hello", " world", "'s", " ", " ", "3", "3", " x", "!!\n\n"));
  EXPECT_THAT(Words(PreTokenizer::kLlama3, "1234567 IT'S"),
              ElementsAre("123", "456", "7", " IT", "'S"));
  // [^\r\n\p{L}\p{N}]?\p{L}+ takes one leading non-letter; \s*[\r\n]+ ends at the last newline.
  EXPECT_THAT(Words(PreTokenizer::kQwen2, "(abc) \n \nx"),
              ElementsAre("(abc", ")", " \n \n", "x"));
  EXPECT_THAT(Words(PreTokenizer::kQwen2, "我想在apple"), ElementsAre("我想在apple"));
}

TEST(PreTokenizerTest, InvalidUtf8IsOneCharacterPerByte) {
  EXPECT_THAT(Words(PreTokenizer::kQwen2, "a\xFF\xFE b"), ElementsAre("a", "\xFF\xFE", " b"));
  EXPECT_THAT(Words(PreTokenizer::kGpt2, "\xC3"), ElementsAre("\xC3"));
  EXPECT_TRUE(Words(PreTokenizer::kGpt2, "").empty());
}

TEST(PreTokenizerTest, ClassesFromUnicode14) {
  EXPECT_EQ(ClassifyForRegex('a'), RegexClass::kLetter);
  EXPECT_EQ(ClassifyForRegex(0x4E2D), RegexClass::kLetter);   // 中
  EXPECT_EQ(ClassifyForRegex(0x00BD), RegexClass::kNumber);   // ½ (No)
  EXPECT_EQ(ClassifyForRegex(0x0663), RegexClass::kNumber);   // Arabic-Indic 3
  EXPECT_EQ(ClassifyForRegex(0x3000), RegexClass::kWhitespace);
  EXPECT_EQ(ClassifyForRegex(0x1F680), RegexClass::kOther);   // 🚀
  EXPECT_EQ(ClassifyForRegex(0x10FFFF), RegexClass::kOther);
}

TEST(PreTokenizerTest, NamesAndRegexes) {
  EXPECT_EQ(*PreTokenizerFromGgufName("qwen2"), PreTokenizer::kQwen2);
  EXPECT_EQ(*PreTokenizerFromGgufName("smollm"), PreTokenizer::kGpt2Digits);
  EXPECT_THAT(std::string(PreTokenizerFromGgufName("tekken").status().message()),
              HasSubstr("'tekken' is not supported"));
  EXPECT_EQ(*PreTokenizerFromRegex(
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            PreTokenizer::kQwen2);
  EXPECT_FALSE(PreTokenizerFromRegex("\\w+").ok());
}

}  // namespace
}  // namespace slm::workers
