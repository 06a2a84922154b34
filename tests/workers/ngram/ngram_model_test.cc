// NgramModel: feature hashing against hand-listed feature strings hashed by a plain FNV-1a
// written here, probabilities against a double-precision reference, and bad model files.
// (tests/workers/ngram/check_ngram_reference.py compares with the Python trainer's code.)
#include "workers/ngram/ngram_model.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workers/encoder/tiny_bert.h"

namespace slm::workers {
namespace {

using testing::TinyBert;
using ::testing::HasSubstr;

constexpr uint32_t kSeed = 424242;

// FNV-1a 64 of seed (4 bytes LE) + type byte + content: the definition, spelled out.
uint64_t Reference(uint8_t type, const std::string& content) {
  std::string bytes;
  for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<char>(kSeed >> shift));
  bytes.push_back(static_cast<char>(type));
  bytes += content;
  uint64_t state = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) state = (state ^ c) * 0x100000001b3ULL;
  return state;
}

TEST(FnvTest, PlainFnv1aMatchesThePublishedVector) {
  // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (Fowler/Noll/Vo test vectors); check the reference
  // helper's core against it by undoing nothing: hash "a" directly.
  uint64_t state = 0xcbf29ce484222325ULL;
  state = (state ^ 'a') * 0x100000001b3ULL;
  EXPECT_EQ(state, 0xaf63dc4c8601ec8cULL);
}

struct ModelSpec {
  uint32_t buckets = 64;
  uint32_t dim = 4;
  uint32_t word_ngrams = 2;
  uint32_t char_min = 3;
  uint32_t char_max = 5;
  std::vector<std::string> labels = {"banking", "travel", "oos"};
};

TinyBert RandomModel(const ModelSpec& spec, uint32_t seed = 3) {
  TinyBert model;
  model.metadata["general.architecture"] = std::string("ngram");
  model.metadata["slmgw.labels"] = spec.labels;
  model.metadata["ngram.buckets"] = spec.buckets;
  model.metadata["ngram.dim"] = spec.dim;
  model.metadata["ngram.hash_seed"] = kSeed;
  model.metadata["ngram.word_ngrams"] = spec.word_ngrams;
  model.metadata["ngram.char_ngram_min"] = spec.char_min;
  model.metadata["ngram.char_ngram_max"] = spec.char_max;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](std::vector<int64_t> shape) {
    testing::TestTensor tensor{shape, {}};
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    for (int64_t i = 0; i < count; ++i) tensor.values.push_back(normal(rng));
    return tensor;
  };
  const int64_t classes = static_cast<int64_t>(spec.labels.size());
  model.tensors["token_embd.weight"] = random({spec.buckets, spec.dim});
  model.tensors["output.weight"] = random({classes, spec.dim});
  model.tensors["output.bias"] = random({classes});
  return model;
}

std::unique_ptr<NgramModel> LoadOrDie(const TinyBert& spec, const std::string& stem) {
  auto model = NgramModel::Load(spec.WriteTemp(stem));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

std::vector<uint64_t> Sorted(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(NgramModelTest, FeaturesAreWordsCharNgramsAndBigrams) {
  auto model = LoadOrDie(RandomModel({}), "features");
  ASSERT_NE(model, nullptr);
  std::vector<uint64_t> expected;
  for (const char* word : {"hi", "you"}) expected.push_back(Reference(0, word));
  for (const char* gram : {"<hi", "hi>", "<hi>", "<yo", "you", "ou>", "<you", "you>", "<you>"}) {
    expected.push_back(Reference(2, gram));
  }
  expected.push_back(Reference(1, "hi you"));
  EXPECT_EQ(Sorted(model->FeatureHashes("  Hi, YOU!")), Sorted(expected));
  EXPECT_TRUE(model->FeatureHashes("").empty());
  EXPECT_TRUE(model->FeatureHashes(" ,.;- ").empty());
}

TEST(NgramModelTest, CharNgramsCountCodePointsAndNeverSplitUtf8) {
  ModelSpec spec;
  spec.word_ngrams = 1;
  auto model = LoadOrDie(RandomModel(spec), "utf8");
  ASSERT_NE(model, nullptr);
  // "<café>" is 6 code points (é is 2 bytes): 4 + 3 + 2 n-grams of 3..5, plus the word.
  const std::string cafe = "caf\xc3\xa9";
  std::vector<uint64_t> expected = {Reference(0, cafe)};
  for (const std::string gram :
       {"<ca", "caf", "af\xc3\xa9", "f\xc3\xa9>", "<caf", "caf\xc3\xa9", "af\xc3\xa9>",
        "<caf\xc3\xa9", "caf\xc3\xa9>"}) {
    expected.push_back(Reference(2, gram));
  }
  EXPECT_EQ(Sorted(model->FeatureHashes("CAF\xc3\xa9")), Sorted(expected));
}

TEST(NgramModelTest, UnigramsOnlyWhenCharNgramsAndBigramsAreOff) {
  ModelSpec spec;
  spec.word_ngrams = 1;
  spec.char_min = 0;
  spec.char_max = 0;
  auto model = LoadOrDie(RandomModel(spec), "unigrams");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->FeatureHashes("a b A"),
            (std::vector<uint64_t>{Reference(0, "a"), Reference(0, "b"), Reference(0, "a")}));
}

TEST(NgramModelTest, ProbabilitiesMatchADoublePrecisionReference) {
  TinyBert spec = RandomModel({});
  auto model = LoadOrDie(spec, "probabilities");
  ASSERT_NE(model, nullptr);
  const auto& embeddings = spec.tensors["token_embd.weight"].values;
  const auto& weight = spec.tensors["output.weight"].values;
  const auto& bias = spec.tensors["output.bias"].values;
  for (const std::string text : {"book a flight to paris", "", "my card", "x y z x y z"}) {
    std::vector<uint64_t> features;
    for (uint64_t h : model->FeatureHashes(text)) features.push_back(h % 64);
    std::vector<double> hidden(4, 0.0);
    for (uint64_t row : features) {
      for (int j = 0; j < 4; ++j) hidden[j] += embeddings[row * 4 + j] / features.size();
    }
    std::vector<double> logits(3);
    double total = 0;
    for (int c = 0; c < 3; ++c) {
      logits[c] = bias[c];
      for (int j = 0; j < 4; ++j) logits[c] += weight[c * 4 + j] * hidden[j];
    }
    const double max = *std::max_element(logits.begin(), logits.end());
    for (double& l : logits) total += (l = std::exp(l - max));
    float got[3];
    model->Classify(text, got);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[c], logits[c] / total, 1e-6) << text;
  }
}

TEST(NgramModelTest, AnyBytesGiveAProbabilityDistribution) {
  auto model = LoadOrDie(RandomModel({}), "fuzz");
  ASSERT_NE(model, nullptr);
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text(rng() % 200, '\0');
    for (char& c : text) c = static_cast<char>(rng());
    float probabilities[3];
    model->Classify(text, probabilities);
    const float sum = probabilities[0] + probabilities[1] + probabilities[2];
    ASSERT_NEAR(sum, 1.0f, 1e-5f);
    for (float p : probabilities) ASSERT_TRUE(p >= 0.0f && p <= 1.0f);
  }
  // One very long word (no separators) is fine too.
  float probabilities[3];
  model->Classify(std::string(16384, 'a'), probabilities);
  EXPECT_NEAR(probabilities[0] + probabilities[1] + probabilities[2], 1.0f, 1e-5f);
}

std::string LoadError(const TinyBert& spec, const std::string& stem) {
  auto model = NgramModel::Load(spec.WriteTemp(stem));
  return model.ok() ? "loaded" : std::string(model.status().message());
}

TEST(NgramModelTest, BadFilesAreErrorsNamingTheKeyOrTensor) {
  TinyBert wrong_arch = RandomModel({});
  wrong_arch.metadata["general.architecture"] = std::string("bert");
  EXPECT_THAT(LoadError(wrong_arch, "arch"),
              HasSubstr("general.architecture: expected \"ngram\", got \"bert\""));
  TinyBert no_dim = RandomModel({});
  no_dim.metadata.erase("ngram.dim");
  EXPECT_THAT(LoadError(no_dim, "nodim"), HasSubstr("ngram.dim"));
  TinyBert zero_buckets = RandomModel({});
  zero_buckets.metadata["ngram.buckets"] = 0u;
  EXPECT_THAT(LoadError(zero_buckets, "buckets"), HasSubstr("ngram.buckets: expected 1.."));
  TinyBert big_dim = RandomModel({});
  big_dim.metadata["ngram.dim"] = 5000u;
  EXPECT_THAT(LoadError(big_dim, "bigdim"), HasSubstr("ngram.dim: expected 1..1024, got 5000"));
  TinyBert inverted = RandomModel({});
  inverted.metadata["ngram.char_ngram_min"] = 6u;
  EXPECT_THAT(LoadError(inverted, "inverted"),
              HasSubstr("ngram.char_ngram_min: must not exceed ngram.char_ngram_max (6 > 5)"));
  TinyBert short_table = RandomModel({});
  short_table.tensors["token_embd.weight"].torch_shape = {32, 8};  // same count, wrong shape
  EXPECT_THAT(LoadError(short_table, "shape"), HasSubstr("token_embd.weight"));
  TinyBert no_bias = RandomModel({});
  no_bias.tensors.erase("output.bias");
  EXPECT_THAT(LoadError(no_bias, "nobias"), HasSubstr("output.bias"));
  TinyBert extra_class = RandomModel({});
  extra_class.metadata["slmgw.labels"] = std::vector<std::string>{"a", "b"};
  EXPECT_THAT(LoadError(extra_class, "classes"),
              HasSubstr("3 classes but 2 labels and no ngram.class_labels"));
  TinyBert nan = RandomModel({});
  nan.tensors["output.bias"].values[1] = NAN;
  EXPECT_THAT(LoadError(nan, "nan"), HasSubstr("non-finite"));
  EXPECT_THAT(std::string(NgramModel::Load("/nonexistent/model.gguf").status().message()),
              HasSubstr("/nonexistent/model.gguf"));
}

}  // namespace
}  // namespace slm::workers
