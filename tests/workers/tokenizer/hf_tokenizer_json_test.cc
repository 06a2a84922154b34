// LoadTokenizerFromHfJsonText on small hand-written tokenizer.json documents, and its errors.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "workers/tokenizer/tokenizer.h"

namespace slm::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Byte-level chars: "Ġ" is the space byte. Vocab: h e l o Ġ he ll hell hello Ġh; merges in order.
constexpr char kTiny[] = R"({
  "added_tokens": [{"id": 10, "content": "<|eot|>", "special": true},
                   {"id": 11, "content": "<think>", "special": false}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "ignore_merges": false,
            "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "\u0120": 4, "he": 5, "ll": 6, "hell": 7,
                      "hello": 8, "\u0120h": 9},
            "merges": ["h e", ["l", "l"], "he ll", "hell o", "\u0120 h"]}
})";

constexpr char kConfig[] = R"({"eos_token": "<|eot|>", "bos_token": null})";

TEST(HfTokenizerJsonTest, LoadsBpeWithAddedTokens) {
  auto tokenizer = LoadTokenizerFromHfJsonText(kTiny, kConfig, "tiny.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 12);
  // " hello": h e (rank 0) merges before Ġ h (rank 4), so the word ends as Ġ + hello.
  EXPECT_THAT((*tokenizer)->Encode("hello hello", false), ElementsAre(8, 4, 8));
  EXPECT_THAT((*tokenizer)->Encode(" h", false), ElementsAre(9));
  // <think> is not special: matched even without parse_special; <|eot|> only with it.
  EXPECT_THAT((*tokenizer)->Encode("hello<think>", false), ElementsAre(8, 11));
  EncodeOptions parse;
  parse.parse_special = true;
  EXPECT_THAT((*tokenizer)->Encode("hello<|eot|>", parse), ElementsAre(8, 10));
  EXPECT_EQ((*tokenizer)->special_ids().eos, 10);
  EXPECT_TRUE((*tokenizer)->IsEndOfGeneration(10));
  EXPECT_EQ((*tokenizer)->Decode({8, 9, 1, 6, 3}), "hello hello");
  EXPECT_EQ((*tokenizer)->Decode({8, 10, 11}), "hello<think>");
}

TEST(HfTokenizerJsonTest, RejectsWhatItCannotRun) {
  const auto error = [](const std::string& json) {
    return std::string(LoadTokenizerFromHfJsonText(json, "", "t.json").status().message());
  };
  EXPECT_THAT(error("{"), HasSubstr("t.json: not valid JSON"));
  EXPECT_THAT(error("[]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(error("{}"), HasSubstr("model missing"));
  EXPECT_THAT(error(R"({"model": {"type": "Unigram"}})"), HasSubstr("BPE only"));
  const std::string bpe_head = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},)";
  EXPECT_THAT(error(bpe_head + R"("pre_tokenizer": {"type": "Metaspace"}})"),
              HasSubstr("pre_tokenizer type 'Metaspace' is not supported"));
  EXPECT_THAT(error(bpe_head + R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"},
      {"type": "ByteLevel", "use_regex": false}]}})"),
              HasSubstr("not one of the implemented families"));
  EXPECT_THAT(error(bpe_head + R"("pre_tokenizer": {"type": "ByteLevel"},
      "normalizer": {"type": "NFKC"}})"),
              HasSubstr("normalizer"));
  EXPECT_THAT(error(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE",
      "vocab": {"a": 0, "b": 0}, "merges": []}})"),
              HasSubstr("model.vocab id 0 is used twice"));
  EXPECT_THAT(error(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE",
      "vocab": {"a": 0}, "merges": [3]}})"),
              HasSubstr("neither 'left right' nor [left, right]"));
  EXPECT_THAT(error(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE",
      "vocab": {"a": -4}, "merges": []}})"),
              HasSubstr("token id -4"));
  EXPECT_THAT(error(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE",
      "vocab": {"a": "x"}, "merges": []}})"),
              HasSubstr("is not an integer"));
  EXPECT_THAT(
      std::string(LoadTokenizerFromHfJson("/nonexistent/tokenizer.json").status().message()),
      HasSubstr("/nonexistent/tokenizer.json: cannot read"));
}

}  // namespace
}  // namespace slm::workers
