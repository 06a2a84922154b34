#include "workers/encoder/encoder_model.h"

#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/linear.h"
#include "kernels/ops.h"
#include "tests/workers/encoder/tiny_bert.h"

namespace slm::workers {
namespace {

using ::slm::workers::testing::TinyBert;
using ::slm::workers::testing::TinyBertConfig;
using ::testing::HasSubstr;

const std::vector<float>& Values(const TinyBert& bert, const std::string& name) {
  return bert.tensors.at(name).values;
}

// Scalar reference of the whole model, built only from kernels' Reference* functions and the
// raw TinyBert tensors (independent of BertGraph's fusion and buffer handling).
std::vector<float> ReferenceLogits(const TinyBert& bert, const TinyBertConfig& config,
                                   const std::vector<int32_t>& ids) {
  using kernels::Activation;
  const int64_t h = config.hidden, seq = static_cast<int64_t>(ids.size());
  std::vector<float> x(seq * h);
  for (int64_t t = 0; t < seq; ++t) {
    for (int64_t c = 0; c < h; ++c) {
      x[t * h + c] = Values(bert, "token_embd.weight")[ids[t] * h + c] +
                     Values(bert, "position_embd.weight")[t * h + c] +
                     Values(bert, "token_types.weight")[c];
    }
  }
  const float eps = 1e-12f;
  kernels::ReferenceAddLayerNorm(x.data(), nullptr, seq, h,
                                 Values(bert, "token_embd_norm.weight").data(),
                                 Values(bert, "token_embd_norm.bias").data(), eps);
  auto linear = [&](const std::string& name, const std::vector<float>& in, int64_t out_features,
                    int64_t in_features, Activation activation) {
    std::vector<float> out(seq * out_features);
    kernels::ReferenceLinear(in.data(), seq, Values(bert, name + ".weight").data(),
                             Values(bert, name + ".bias").data(), out_features, in_features,
                             activation, out.data());
    return out;
  };
  for (int64_t i = 0; i < config.layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    std::vector<float> q = linear(p + "attn_q", x, h, h, Activation::kNone);
    std::vector<float> k = linear(p + "attn_k", x, h, h, Activation::kNone);
    std::vector<float> v = linear(p + "attn_v", x, h, h, Activation::kNone);
    std::vector<float> context(seq * h);
    kernels::ReferenceEncoderAttention(q.data(), k.data(), v.data(), h, seq, config.heads,
                                       h / config.heads, context.data());
    std::vector<float> attention = linear(p + "attn_output", context, h, h, Activation::kNone);
    kernels::ReferenceAddLayerNorm(x.data(), attention.data(), seq, h,
                                   Values(bert, p + "attn_output_norm.weight").data(),
                                   Values(bert, p + "attn_output_norm.bias").data(), eps);
    std::vector<float> up = linear(p + "ffn_up", x, config.ffn, h, Activation::kGelu);
    std::vector<float> down = linear(p + "ffn_down", up, h, config.ffn, Activation::kNone);
    kernels::ReferenceAddLayerNorm(x.data(), down.data(), seq, h,
                                   Values(bert, p + "layer_output_norm.weight").data(),
                                   Values(bert, p + "layer_output_norm.bias").data(), eps);
  }
  const int64_t labels = static_cast<int64_t>(config.labels.size());
  if (config.task == "token_classification") {
    return linear("cls.output", x, labels, h, Activation::kNone);
  }
  std::vector<float> pooled(h, 0.0f);
  if (config.pooling == "mean") {
    for (int64_t t = 0; t < seq; ++t) {
      for (int64_t c = 0; c < h; ++c) pooled[c] += x[t * h + c] / seq;
    }
  } else if (config.pooler) {
    kernels::ReferenceLinear(x.data(), 1, Values(bert, "cls.pooler.weight").data(),
                             Values(bert, "cls.pooler.bias").data(), h, h, Activation::kNone,
                             pooled.data());
    kernels::ReferenceTanh(pooled.data(), h);
  } else {
    pooled.assign(x.begin(), x.begin() + h);
  }
  std::vector<float> logits(labels);
  kernels::ReferenceLinear(pooled.data(), 1, Values(bert, "cls.output.weight").data(),
                           Values(bert, "cls.output.bias").data(), labels, h, Activation::kNone,
                           logits.data());
  return logits;
}

std::unique_ptr<EncoderModel> LoadOrDie(const TinyBert& bert, const std::string& stem,
                                        EncoderOptions options = {}) {
  auto model = EncoderModel::Load(bert.WriteTemp(stem), options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(model).value() : nullptr;
}

absl::Status LoadStatus(const TinyBert& bert, const std::string& stem) {
  return EncoderModel::Load(bert.WriteTemp(stem), {}).status();
}

struct HeadCase {
  const char* name;
  std::string task;
  std::string pooling;
  bool pooler;
};

class EncoderHeadTest : public ::testing::TestWithParam<HeadCase> {};

TEST_P(EncoderHeadTest, F32LogitsMatchScalarReference) {
  TinyBertConfig config;
  config.task = GetParam().task;
  config.pooling = GetParam().pooling;
  config.pooler = GetParam().pooler;
  if (config.task == "token_classification") config.labels = {"O", "B-PER", "I-PER"};
  TinyBert bert = TinyBert::Random(config);
  std::unique_ptr<EncoderModel> model = LoadOrDie(bert, GetParam().name);
  ASSERT_NE(model, nullptr);
  for (const std::vector<int32_t>& ids : std::vector<std::vector<int32_t>>{
           {2}, {2, 3}, {2, 5, 6, 3}, {2, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 3}}) {
    absl::StatusOr<std::vector<float>> logits = model->Logits(ids);
    ASSERT_TRUE(logits.ok()) << logits.status();
    std::vector<float> expected = ReferenceLogits(bert, config, ids);
    ASSERT_EQ(logits->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_NEAR((*logits)[i], expected[i], 1e-4f) << "logit " << i << " of " << ids.size();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Heads, EncoderHeadTest,
    ::testing::Values(HeadCase{"cls_pooler", "text_classification", "cls", true},
                      HeadCase{"cls_no_pooler", "text_classification", "cls", false},
                      HeadCase{"mean", "text_classification", "mean", false},
                      HeadCase{"token", "token_classification", "cls", false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(EncoderModelTest, ClassifyReturnsSortedProbabilities) {
  TinyBertConfig config;
  config.labels = {"a", "b", "c", "d"};
  std::unique_ptr<EncoderModel> model = LoadOrDie(TinyBert::Random(config), "classify");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->name(), "tiny-bert");
  EXPECT_EQ(model->task(), "text_classification");
  EXPECT_EQ(model->labels(), config.labels);
  EXPECT_EQ(model->max_tokens(), config.context);  // options ask 512, the model has 32
  absl::StatusOr<ClassifyOutput> output = model->Classify("Hello world, the city is big.");
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ(output->tokens_in, 10);  // [CLS] hello world , the city is big . [SEP]
  ASSERT_EQ(output->labels.size(), 4u);
  float sum = 0;
  for (size_t i = 0; i < output->labels.size(); ++i) {
    sum += output->labels[i].score;
    if (i > 0) {
      EXPECT_GE(output->labels[i - 1].score, output->labels[i].score);
    }
  }
  EXPECT_NEAR(sum, 1.0f, 1e-5f);
}

TEST(EncoderModelTest, TooManyTokensNamesBothNumbers) {
  TinyBert bert = TinyBert::Random({});
  std::unique_ptr<EncoderModel> model = LoadOrDie(bert, "too_many", {kernels::DType::kF32, 6});
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->max_tokens(), 6);
  EXPECT_TRUE(model->Classify("a b c d").ok());  // 6 tokens with [CLS] and [SEP]
  absl::StatusOr<ClassifyOutput> output = model->Classify("a b c a b c a b");
  EXPECT_EQ(output.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(output.status().message(), HasSubstr("10"));
  EXPECT_THAT(output.status().message(), HasSubstr("6"));
  EXPECT_EQ(model->Logits({2, 99, 3}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->Logits({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EncoderModelTest, WrongTaskIsFailedPrecondition) {
  std::unique_ptr<EncoderModel> text = LoadOrDie(TinyBert::Random({}), "text_task");
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->ExtractEntities("hello").status().code(), absl::StatusCode::kFailedPrecondition);
  TinyBertConfig config;
  config.task = "token_classification";
  config.labels = {"O", "B-LOC", "I-LOC"};
  std::unique_ptr<EncoderModel> token = LoadOrDie(TinyBert::Random(config), "token_task");
  ASSERT_NE(token, nullptr);
  EXPECT_EQ(token->Classify("hello").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(EncoderModelTest, StopIsCheckedBetweenLayers) {
  TinyBertConfig config;
  config.layers = 3;
  std::unique_ptr<EncoderModel> model = LoadOrDie(TinyBert::Random(config), "stop");
  ASSERT_NE(model, nullptr);
  int calls = 0;
  absl::StatusOr<ClassifyOutput> output = model->Classify("hello world", [&] {
    ++calls;
    return calls == 2;  // fires before the second layer
  });
  EXPECT_EQ(output.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 2);
  calls = 0;
  EXPECT_TRUE(model->Classify("hello world", [&] { return ++calls < 0; }).ok());
  EXPECT_EQ(calls, config.layers + 1);  // before each layer and after the last
}

// With a zero classifier weight, every token gets the label the bias favours, so the entity
// spans show how the model groups sub-tokens into words.
TEST(EncoderModelTest, ExtractEntitiesGroupsSubTokensIntoWords) {
  TinyBertConfig config;
  config.task = "token_classification";
  config.labels = {"O", "B-LOC", "I-LOC"};
  TinyBert bert = TinyBert::Random(config);
  auto& weight = bert.tensors["cls.output.weight"].values;
  std::fill(weight.begin(), weight.end(), 0.0f);
  bert.tensors["cls.output.bias"].values = {0.0f, 2.0f, 0.0f};  // B-LOC everywhere
  std::unique_ptr<EncoderModel> model = LoadOrDie(bert, "entities_b");
  ASSERT_NE(model, nullptr);
  const std::string text = "hello walking, new york";
  absl::StatusOr<EntitiesOutput> output = model->ExtractEntities(text);
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ(output->tokens_in, 8);  // [CLS] hello walk ##ing , new york [SEP]
  const float p = std::exp(2.0f) / (std::exp(2.0f) + 2.0f);
  std::vector<std::pair<int32_t, int32_t>> spans;
  for (const EntitySpan& entity : output->entities) {
    EXPECT_EQ(entity.label, "LOC");
    EXPECT_NEAR(entity.score, p, 1e-5f);
    spans.push_back({entity.begin, entity.end});
  }
  EXPECT_EQ(spans, (std::vector<std::pair<int32_t, int32_t>>{
                       {0, 5}, {6, 13}, {13, 14}, {15, 18}, {19, 23}}));

  bert.tensors["cls.output.bias"].values = {0.0f, 0.0f, 2.0f};  // I-LOC everywhere: one entity
  model = LoadOrDie(bert, "entities_i");
  ASSERT_NE(model, nullptr);
  output = model->ExtractEntities(text);
  ASSERT_TRUE(output.ok()) << output.status();
  ASSERT_EQ(output->entities.size(), 1u);
  EXPECT_EQ(output->entities[0].begin, 0);
  EXPECT_EQ(output->entities[0].end, static_cast<int32_t>(text.size()));
}

TEST(EncoderModelTest, ThreadsOptionIsAppliedPerCallAndRestored) {
  TinyBert bert = TinyBert::Random({});
  const int caller_threads = omp_get_max_threads();
  for (int threads : {1, 2}) {
    std::unique_ptr<EncoderModel> model =
        LoadOrDie(bert, "threads", {kernels::DType::kF32, 512, threads});
    ASSERT_NE(model, nullptr);
    EXPECT_EQ(model->threads(), threads);
    EXPECT_EQ(omp_get_max_threads(), caller_threads);  // Load restored it
    int threads_seen_by_stop = 0;
    ASSERT_TRUE(model
                    ->Classify("hello world",
                               [&] {
                                 threads_seen_by_stop = omp_get_max_threads();
                                 return false;
                               })
                    .ok());
    EXPECT_EQ(threads_seen_by_stop, threads);
    EXPECT_EQ(omp_get_max_threads(), caller_threads);  // the call restored it
  }
  EXPECT_EQ(EncoderModel::Load(bert.WriteTemp("threads"), {kernels::DType::kF32, 512, -1})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EncoderModelLoadTest, MissingFileIsAnError) {
  EXPECT_FALSE(EncoderModel::Load("/nonexistent/model.gguf", {}).ok());
}

TEST(EncoderModelLoadTest, MissingTensorIsNamed) {
  for (const char* name : {"blk.1.ffn_up.weight", "token_embd_norm.bias", "cls.output.bias",
                           "blk.0.attn_v.bias", "position_embd.weight", "cls.pooler.bias"}) {
    TinyBert bert = TinyBert::Random({});
    bert.tensors.erase(name);
    absl::Status status = LoadStatus(bert, "missing");
    EXPECT_FALSE(status.ok()) << name;
    EXPECT_THAT(status.message(), HasSubstr(name));
  }
}

TEST(EncoderModelLoadTest, WrongShapeIsNamedWithExpectedShape) {
  TinyBert bert = TinyBert::Random({});
  // Transposed ffn_up: the element count matches, the shape does not.
  bert.tensors["blk.0.ffn_up.weight"].torch_shape = {16, 24};
  absl::Status status = LoadStatus(bert, "transposed");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("blk.0.ffn_up.weight"));
  EXPECT_THAT(status.message(), HasSubstr("[24, 16]"));

  bert = TinyBert::Random({});
  bert.tensors["cls.output.weight"] = {{3, 16}, std::vector<float>(48)};  // 2 labels in metadata
  status = LoadStatus(bert, "labels");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("cls.output.weight"));

  bert = TinyBert::Random({});
  bert.tensors["token_embd.weight"] = {{21, 8}, std::vector<float>(21 * 8)};
  status = LoadStatus(bert, "embd");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("token_embd.weight"));
}

TEST(EncoderModelLoadTest, BadMetadataIsNamed) {
  struct Edit {
    const char* key;
    testing::MetadataValue value;
  };
  for (const Edit& edit :
       {Edit{"bert.attention.head_count", 3u}, Edit{"bert.block_count", 0u},
        Edit{"slmgw.task", std::string("summarization")}, Edit{"slmgw.pooling", std::string("max")},
        Edit{"general.architecture", std::string("llama")},
        Edit{"bert.attention.layer_norm_epsilon", -1.0f},
        Edit{"slmgw.labels", std::vector<std::string>{}}}) {
    TinyBert bert = TinyBert::Random({});
    bert.metadata[edit.key] = edit.value;
    absl::Status status = LoadStatus(bert, "metadata");
    EXPECT_FALSE(status.ok()) << edit.key;
    EXPECT_THAT(status.message(), HasSubstr(edit.key));
  }
  for (const char* key : {"bert.embedding_length", "slmgw.task", "slmgw.labels",
                          "tokenizer.ggml.tokens", "bert.feed_forward_length"}) {
    TinyBert bert = TinyBert::Random({});
    bert.metadata.erase(key);
    absl::Status status = LoadStatus(bert, "missing_key");
    EXPECT_FALSE(status.ok()) << key;
    EXPECT_THAT(status.message(), HasSubstr(key));
  }
}

TEST(EncoderModelLoadTest, TruncatedFileIsAnErrorNotACrash) {
  const std::string bytes = TinyBert::Random({}).ToGguf();
  for (size_t size : {size_t{0}, size_t{3}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    TinyBert empty;
    const std::string path = empty.WriteTemp("truncated");
    FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    std::fwrite(bytes.data(), 1, size, file);
    std::fclose(file);
    EXPECT_FALSE(EncoderModel::Load(path, {}).ok()) << size;
  }
}

}  // namespace
}  // namespace slm::workers
