// The encoder worker's model facade serving a hashed-feature tagger (general.architecture =
// "ngram_tagger"): entities through EncoderModel::ExtractEntities, the errors of bad files and
// bad calls. Feature hashes are computed here with the test's own FNV-1a (independent of
// workers/ngram); numerics against the Python reference are check_ngram_tagger_reference.py's.
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workers/gguf/gguf_test_writer.h"
#include "workers/encoder/encoder_model.h"

namespace slm::workers {
namespace {

using ::testing::HasSubstr;
using testing::F32Bytes;
using testing::GgufTestWriter;

// Large enough that no other feature of the test texts shares a row with the two set below.
constexpr uint32_t kBuckets = 65537;
constexpr uint32_t kSeed = 77;

uint64_t FeatureRow(const std::string& feature) {
  uint64_t state = 0xcbf29ce484222325ULL;
  auto feed = [&](uint8_t byte) { state = (state ^ byte) * 0x100000001b3ULL; };
  for (int shift = 0; shift < 32; shift += 8) feed(static_cast<uint8_t>(kSeed >> shift));
  for (char c : feature) feed(static_cast<uint8_t>(c));
  return state % kBuckets;
}

struct TaggerSpec {
  std::string activation = "none";
  uint32_t buckets = kBuckets;
  uint32_t dim = 2;
  bool with_hidden_bias = true;
  float poison = 0.0f;  // written into output.bias[0] (NaN: a corrupt file)
};

template <typename Edit>
TaggerSpec Spec(Edit edit) {
  TaggerSpec spec;
  edit(spec);
  return spec;
}

// Labels O, B-x, I-x; "w=Justin" pushes B-x, "w=Bieber" I-x, every other feature is zero.
std::string WriteTagger(const std::string& stem, const TaggerSpec& spec = {}) {
  GgufTestWriter writer;
  writer.AddString("general.architecture", "ngram_tagger");
  writer.AddString("general.name", "tagger-" + stem);
  writer.AddString("slmgw.task", "token_classification");
  writer.AddStringArray("slmgw.labels", {"O", "B-x", "I-x"});
  writer.AddU32("ngram_tagger.buckets", spec.buckets);
  writer.AddU32("ngram_tagger.dim", spec.dim);
  writer.AddU32("ngram_tagger.hash_seed", kSeed);
  writer.AddString("ngram_tagger.activation", spec.activation);
  std::vector<float> embeddings(static_cast<size_t>(kBuckets) * 2, 0.0f);
  embeddings[FeatureRow("w=Justin") * 2 + 0] = 10.0f;
  embeddings[FeatureRow("w=Bieber") * 2 + 1] = 10.0f;
  writer.AddTensor("token_embd.weight", {2, kBuckets}, GgmlType::kF32, F32Bytes(embeddings));
  if (spec.with_hidden_bias) {
    writer.AddTensor("hidden.bias", {2}, GgmlType::kF32, F32Bytes({0.0f, 0.0f}));
  }
  // O gets a small constant logit so that featureless tokens are O.
  writer.AddTensor("output.weight", {2, 3}, GgmlType::kF32, F32Bytes({0, 0, 1, 0, 0, 1}));
  writer.AddTensor("output.bias", {3}, GgmlType::kF32, F32Bytes({1.0f + spec.poison, 0, 0}));
  const std::string path = ::testing::TempDir() + "/ngram_tagger_" + stem + ".gguf";
  FILE* file = std::fopen(path.c_str(), "wb");
  const std::string bytes = writer.Build();
  std::fwrite(bytes.data(), 1, bytes.size(), file);
  std::fclose(file);
  return path;
}

TEST(NgramTaggerModelTest, ExtractsEntitiesWithByteSpans) {
  auto model = EncoderModel::Load(WriteTagger("basic"), {});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->task(), "token_classification");
  EXPECT_EQ((*model)->name(), "tagger-basic");
  EXPECT_EQ((*model)->labels(), (std::vector<std::string>{"O", "B-x", "I-x"}));
  const std::string text = "I saw  Justin\tBieber today";
  auto entities = (*model)->ExtractEntities(text);
  ASSERT_TRUE(entities.ok()) << entities.status();
  EXPECT_EQ(entities->tokens_in, 5);
  ASSERT_EQ(entities->entities.size(), 1u);
  EXPECT_EQ(entities->entities[0].label, "x");
  EXPECT_EQ(text.substr(entities->entities[0].begin,
                        entities->entities[0].end - entities->entities[0].begin),
            "Justin\tBieber");
  EXPECT_GT(entities->entities[0].score, 0.99f);

  // "Bieber" alone is I-x: starts an entity (lenient BIO); "justin" is not "Justin".
  auto alone = (*model)->ExtractEntities("justin Bieber");
  ASSERT_TRUE(alone.ok());
  ASSERT_EQ(alone->entities.size(), 1u);
  EXPECT_EQ(alone->entities[0].begin, 7);
  EXPECT_EQ(alone->entities[0].end, 13);
}

TEST(NgramTaggerModelTest, AnyTextIsAccepted) {
  auto model = EncoderModel::Load(WriteTagger("any", Spec([](TaggerSpec& s) { s.activation = "relu"; })), {});
  ASSERT_TRUE(model.ok()) << model.status();
  for (const std::string& text : {std::string(), std::string(" \t\r\n "),
                                 std::string("\xff\xfe Justin \xc3"), std::string("a\0b", 3)}) {
    auto entities = (*model)->ExtractEntities(text);
    ASSERT_TRUE(entities.ok()) << entities.status();
    for (const EntitySpan& e : entities->entities) {
      EXPECT_LE(0, e.begin);
      EXPECT_LT(e.begin, e.end);
      EXPECT_LE(e.end, static_cast<int32_t>(text.size()));
    }
  }
}

TEST(NgramTaggerModelTest, WrongCallsAreErrors) {
  EncoderOptions options;
  options.max_tokens = 3;
  auto model = EncoderModel::Load(WriteTagger("calls"), options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->max_tokens(), 3);
  auto too_long = (*model)->ExtractEntities("one two three four");
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.status().message()), HasSubstr("4 tokens"));
  EXPECT_EQ((*model)->Classify("hello").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*model)->Logits({1, 2}).status().code(), absl::StatusCode::kFailedPrecondition);
  auto cancelled = (*model)->ExtractEntities("Justin", [] { return true; });
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled);
}

TEST(NgramTaggerModelTest, BadFilesAreErrorsNamingTheKeyOrTensor) {
  struct Case {
    std::string stem;
    TaggerSpec spec;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"activation", Spec([](TaggerSpec& s) { s.activation = "tanh"; }),
       "ngram_tagger.activation"},
      {"buckets", Spec([](TaggerSpec& s) { s.buckets = 0; }), "ngram_tagger.buckets"},
      {"dim", Spec([](TaggerSpec& s) { s.dim = 3; }), "token_embd.weight"},
      {"hidden", Spec([](TaggerSpec& s) { s.with_hidden_bias = false; }), "hidden.bias"},
      {"nan", Spec([](TaggerSpec& s) { s.poison = std::numeric_limits<float>::quiet_NaN(); }),
       "non-finite"},
  };
  for (const Case& c : cases) {
    auto model = EncoderModel::Load(WriteTagger(c.stem, c.spec), {});
    EXPECT_FALSE(model.ok()) << c.stem;
    EXPECT_THAT(std::string(model.status().message()), HasSubstr(c.message)) << c.stem;
  }
}

// A fastText-style classifier (general.architecture = "ngram") served by Classify: one bucket,
// so every feature's row is row 0 = [1]; logits = [2 * 1, 0] -> softmax [e^2, 1] / (e^2 + 1).
TEST(NgramClassifierModelTest, ClassifiesThroughTheEncoderFacade) {
  GgufTestWriter writer;
  writer.AddString("general.architecture", "ngram");
  writer.AddString("general.name", "tiny-ngram");
  writer.AddStringArray("slmgw.labels", {"positive", "negative"});
  for (const char* key : {"ngram.buckets", "ngram.dim"}) writer.AddU32(key, 1);
  writer.AddU32("ngram.hash_seed", 5);
  writer.AddU32("ngram.word_ngrams", 2);
  writer.AddU32("ngram.char_ngram_min", 3);
  writer.AddU32("ngram.char_ngram_max", 5);
  writer.AddTensor("token_embd.weight", {1, 1}, GgmlType::kF32, F32Bytes({1.0f}));
  writer.AddTensor("output.weight", {1, 2}, GgmlType::kF32, F32Bytes({2.0f, 0.0f}));
  writer.AddTensor("output.bias", {2}, GgmlType::kF32, F32Bytes({0.0f, 0.0f}));
  const std::string path = ::testing::TempDir() + "/ngram_classifier.gguf";
  FILE* file = std::fopen(path.c_str(), "wb");
  const std::string bytes = writer.Build();
  std::fwrite(bytes.data(), 1, bytes.size(), file);
  std::fclose(file);

  EncoderOptions options;
  options.max_tokens = 4;
  auto model = EncoderModel::Load(path, options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->task(), "text_classification");
  EXPECT_EQ((*model)->name(), "tiny-ngram");
  auto output = (*model)->Classify("a good  film");
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ(output->tokens_in, 3);
  ASSERT_EQ(output->labels.size(), 2u);
  EXPECT_EQ(output->labels[0].label, "positive");
  EXPECT_NEAR(output->labels[0].score, 7.389056 / 8.389056, 1e-6);
  auto empty = (*model)->Classify("");  // no features: logits are the bias
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_NEAR(empty->labels[0].score, 0.5, 1e-6);
  EXPECT_EQ((*model)->Classify("one two three four five").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*model)->ExtractEntities("a").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*model)->Logits({1}).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace slm::workers
