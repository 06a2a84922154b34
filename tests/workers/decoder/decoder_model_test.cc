// DecoderModel on tiny GGUF files built here: every architecture loads and runs; batching,
// chunked prefill and cache truncation give the same logits as one sequence run whole (the
// PyTorch comparison is check_decoder_reference.py); every bad input is an error naming the key
// or tensor, never a crash.
#include "workers/decoder/decoder_model.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workers/gguf/gguf_test_writer.h"
#include "workers/tokenizer/tokenizer.h"

namespace slm::workers {
namespace {

using testing::F32Bytes;
using testing::GgufTestWriter;
using ::testing::HasSubstr;

constexpr int64_t kHidden = 16, kHeads = 4, kKvHeads = 2, kFfn = 24, kVocab = 37, kLayers = 2;
constexpr int64_t kHeadDim = kHidden / kHeads;

struct TinyModel {
  std::string architecture = "llama";
  // Tensor name -> {ggml dims, values}; edit before Write to corrupt.
  std::map<std::string, std::pair<std::vector<uint64_t>, std::vector<float>>> tensors;
  std::map<std::string, uint32_t> ints;
  std::map<std::string, uint32_t> raw_types;  // tensor -> ggml type code written instead of F32
  std::vector<std::string> skip_keys;
  std::string tokenizer_model;  // non-empty: write a small SentencePiece-style vocabulary

  explicit TinyModel(const std::string& arch, bool tied = false) : architecture(arch) {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    auto add = [&](const std::string& name, std::vector<uint64_t> dims, bool norm = false) {
      uint64_t n = 1;
      for (uint64_t d : dims) n *= d;
      std::vector<float> values(n);
      for (float& v : values) v = norm ? 1.0f + 0.1f * normal(rng) : normal(rng);
      tensors[name] = {dims, values};
    };
    const uint64_t q = kHeads * kHeadDim, kv = kKvHeads * kHeadDim;
    add("token_embd.weight", {kHidden, kVocab});
    add("output_norm.weight", {kHidden}, true);
    if (!tied) add("output.weight", {kHidden, kVocab});
    for (int l = 0; l < kLayers; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      add(b + "attn_norm.weight", {kHidden}, true);
      add(b + "ffn_norm.weight", {kHidden}, true);
      add(b + "attn_output.weight", {q, kHidden});
      add(b + "ffn_down.weight", {kFfn, kHidden});
      if (arch == "phi3") {
        add(b + "attn_qkv.weight", {kHidden, q + 2 * kv});
        add(b + "ffn_up.weight", {kHidden, 2 * kFfn});
      } else {
        add(b + "attn_q.weight", {kHidden, q});
        add(b + "attn_k.weight", {kHidden, kv});
        add(b + "attn_v.weight", {kHidden, kv});
        add(b + "ffn_gate.weight", {kHidden, kFfn});
        add(b + "ffn_up.weight", {kHidden, kFfn});
      }
      if (arch == "qwen2") {
        add(b + "attn_q.bias", {q});
        add(b + "attn_k.bias", {kv});
        add(b + "attn_v.bias", {kv});
      }
    }
    ints = {{".context_length", 64},           {".embedding_length", kHidden},
            {".block_count", kLayers},         {".feed_forward_length", kFfn},
            {".attention.head_count", kHeads}, {".attention.head_count_kv", kKvHeads}};
  }

  std::string Bytes() const {
    GgufTestWriter writer;
    writer.AddString("general.architecture", architecture);
    for (const auto& [suffix, value] : ints) {
      const std::string key = architecture + suffix;
      if (std::find(skip_keys.begin(), skip_keys.end(), key) == skip_keys.end()) {
        writer.AddU32(key, value);
      }
    }
    writer.AddF32(architecture + ".rope.freq_base", 10000.0f);
    writer.AddF32(architecture + ".attention.layer_norm_rms_epsilon", 1e-5f);
    if (!tokenizer_model.empty()) {
      // kVocab tokens: <unk> <s> </s>, the pieces of "a b" (SentencePiece merges adjacent
      // pieces whose concatenation is a token), then fillers; scores favour earlier tokens.
      std::vector<std::string> tokens = {"<unk>",
                                         "<s>",
                                         "</s>",
                                         "\xe2\x96\x81",
                                         "a",
                                         "b",
                                         "\xe2\x96\x81"
                                         "a",
                                         "\xe2\x96\x81"
                                         "b"};
      std::vector<float> scores;
      std::vector<int32_t> types = {2, 3, 3};
      while (tokens.size() < static_cast<size_t>(kVocab)) {
        tokens.push_back(std::string(1, static_cast<char>('a' + tokens.size() % 26)) +
                         std::to_string(tokens.size()));
      }
      for (size_t i = 0; i < tokens.size(); ++i) scores.push_back(-static_cast<float>(i));
      while (types.size() < tokens.size()) types.push_back(1);
      writer.AddString("tokenizer.ggml.model", tokenizer_model);
      writer.AddStringArray("tokenizer.ggml.tokens", tokens);
      writer.AddF32Array("tokenizer.ggml.scores", scores);
      writer.AddI32Array("tokenizer.ggml.token_type", types);
    }
    for (const auto& [name, tensor] : tensors) {
      auto raw = raw_types.find(name);
      if (raw != raw_types.end()) {
        writer.AddTensorRawType(name, tensor.first, raw->second, F32Bytes(tensor.second));
      } else {
        writer.AddTensor(name, tensor.first, GgmlType::kF32, F32Bytes(tensor.second));
      }
    }
    return writer.Build();
  }

  // Writes Bytes(), or *bytes_override when given, to a fresh temporary file.
  std::string Write(const std::string* bytes_override = nullptr) const {
    static int counter = 0;
    const std::string path = ::testing::TempDir() + "/decoder_test_" + std::to_string(getpid()) +
                             "_" + std::to_string(counter++) + ".gguf";
    std::ofstream out(path, std::ios::binary);
    const std::string bytes = bytes_override == nullptr ? Bytes() : *bytes_override;
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
};

absl::StatusOr<std::unique_ptr<DecoderModel>> Load(const TinyModel& model,
                                                   DecoderOptions options = {}) {
  options.threads = 1;
  return DecoderModel::Load(model.Write(), options);
}

// All logits of `tokens` run as one prefill on a fresh cache.
std::vector<float> RunWhole(const DecoderModel& model, const std::vector<int32_t>& tokens) {
  auto cache = model.NewSequenceCache(64);
  EXPECT_TRUE(cache.ok()) << cache.status();
  std::vector<float> logits(tokens.size() * kVocab);
  SequenceStep step{cache->get(), tokens.data(), static_cast<int32_t>(tokens.size()), true};
  EXPECT_TRUE(model.Forward({&step, 1}, logits.data()).ok());
  return logits;
}

void ExpectNear(const std::vector<float>& a, const std::vector<float>& b, float tolerance) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tolerance) << "index " << i;
}

class ArchitectureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ArchitectureTest, BatchedChunkedAndTruncatedRunsMatchAWholeRun) {
  TinyModel tiny(GetParam(), /*tied=*/std::string(GetParam()) == "qwen2");
  auto model = Load(tiny);
  ASSERT_TRUE(model.ok()) << model.status();
  const DecoderModel& m = **model;
  EXPECT_EQ(m.hparams().architecture, GetParam());
  EXPECT_EQ(m.hparams().vocab_size, kVocab);
  EXPECT_EQ(m.hparams().num_kv_heads, kKvHeads);
  const std::vector<int32_t> a = {3, 1, 4, 1, 5, 9, 2, 6, 5};
  const std::vector<int32_t> b = {2, 7, 1, 8};
  const std::vector<float> whole_a = RunWhole(m, a);
  const std::vector<float> whole_b = RunWhole(m, b);
  for (float v : whole_a) ASSERT_TRUE(std::isfinite(v));

  // a in chunks of 4, 4, 1 batched with b in chunks of 3, 1 (b finishes first).
  auto cache_a = m.NewSequenceCache(16);
  auto cache_b = m.NewSequenceCache(16);
  ASSERT_TRUE(cache_a.ok() && cache_b.ok());
  std::vector<float> got_a, got_b;
  const std::vector<std::pair<int, int>> chunks = {{4, 3}, {4, 1}, {1, 0}};
  size_t done_a = 0, done_b = 0;
  for (auto [na, nb] : chunks) {
    std::vector<SequenceStep> steps = {{cache_a->get(), a.data() + done_a, na, true}};
    if (nb > 0) steps.push_back({cache_b->get(), b.data() + done_b, nb, true});
    std::vector<float> out((na + nb) * kVocab);
    ASSERT_TRUE(m.Forward(steps, out.data()).ok());
    got_a.insert(got_a.end(), out.begin(), out.begin() + na * kVocab);
    got_b.insert(got_b.end(), out.begin() + na * kVocab, out.end());
    done_a += na;
    done_b += nb;
  }
  EXPECT_EQ((*cache_a)->size(), 9);
  EXPECT_EQ((*cache_b)->size(), 4);
  ExpectNear(got_a, whole_a, 1e-5f);
  ExpectNear(got_b, whole_b, 1e-5f);

  // Roll back 3 tokens and redo them as decode steps: the last-token logits match.
  (*cache_a)->Truncate(6);
  EXPECT_EQ((*cache_a)->size(), 6);
  std::vector<float> last(kVocab);
  for (size_t t = 6; t < a.size(); ++t) {
    SequenceStep step{cache_a->get(), &a[t], 1, false};
    ASSERT_TRUE(m.Forward({&step, 1}, last.data()).ok());
  }
  ExpectNear(last, std::vector<float>(whole_a.end() - kVocab, whole_a.end()), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(Decoder, ArchitectureTest,
                         ::testing::Values("llama", "mistral", "qwen2", "phi3"));

// {arch}.attention.sliding_window W: position p attends to [p - W + 1, p], so through kLayers
// layers it depends on tokens p - kLayers * (W - 1) .. p only. Two sequences that differ in
// their first token give the same logits from position kLayers * (W - 1) + 1 on and different
// ones before; without the window every position differs.
TEST(DecoderForwardTest, SlidingWindowLimitsWhatEachPositionSees) {
  constexpr int64_t kWindow = 3, kLength = 9;
  constexpr int64_t kBlind = kLayers * (kWindow - 1) + 1;  // first position that cannot see 0
  const std::vector<int32_t> a = {3, 1, 4, 1, 5, 9, 2, 6, 5};
  std::vector<int32_t> b = a;
  b[0] = 7;
  for (const char* arch : {"mistral", "phi3"}) {
    SCOPED_TRACE(arch);
    TinyModel windowed(arch);
    windowed.ints[".attention.sliding_window"] = kWindow;
    auto with_window = Load(windowed);
    ASSERT_TRUE(with_window.ok()) << with_window.status();
    EXPECT_EQ((*with_window)->hparams().sliding_window, kWindow);
    auto without = Load(TinyModel(arch));
    ASSERT_TRUE(without.ok()) << without.status();
    EXPECT_EQ((*without)->hparams().sliding_window, 0);
    for (const DecoderModel* model : {with_window->get(), without->get()}) {
      const bool windowed_model = model == with_window->get();
      const std::vector<float> la = RunWhole(*model, a), lb = RunWhole(*model, b);
      // Decode steps (the one-token attention kernels) agree with the whole prompt too.
      auto cache = model->NewSequenceCache(kLength);
      ASSERT_TRUE(cache.ok());
      std::vector<float> stepped(kLength * kVocab);
      for (int64_t t = 0; t < kLength; ++t) {
        SequenceStep step{cache->get(), &a[t], 1, false};
        ASSERT_TRUE(model->Forward({&step, 1}, stepped.data() + t * kVocab).ok());
      }
      ExpectNear(stepped, la, 1e-5f);
      for (int64_t p = 0; p < kLength; ++p) {
        float difference = 0.0f;
        for (int64_t v = 0; v < kVocab; ++v) {
          difference = std::max(difference, std::fabs(la[p * kVocab + v] - lb[p * kVocab + v]));
        }
        if (windowed_model && p >= kBlind) {
          EXPECT_EQ(difference, 0.0f) << "position " << p << " saw token 0 through the window";
        } else {
          EXPECT_GT(difference, 1e-4f) << "position " << p << " windowed=" << windowed_model;
        }
      }
    }
  }
}

void ExpectLoadError(const TinyModel& tiny, const std::string& needle) {
  auto model = Load(tiny);
  ASSERT_FALSE(model.ok()) << "expected an error naming " << needle;
  EXPECT_THAT(std::string(model.status().message()), HasSubstr(needle)) << model.status();
}

TEST(DecoderLoadTest, UnknownArchitectureIsNamed) {
  TinyModel tiny("gpt9");
  ExpectLoadError(tiny, "general.architecture 'gpt9'");
}

TEST(DecoderLoadTest, MissingTensorIsNamed) {
  TinyModel tiny("llama");
  tiny.tensors.erase("blk.1.ffn_down.weight");
  ExpectLoadError(tiny, "blk.1.ffn_down.weight");
  TinyModel qwen("qwen2");
  qwen.tensors.erase("blk.0.attn_k.bias");
  ExpectLoadError(qwen, "blk.0.attn_k.bias");
  TinyModel phi("phi3");
  phi.tensors.erase("blk.0.attn_qkv.weight");
  ExpectLoadError(phi, "blk.0.attn_qkv.weight");
  TinyModel no_norm("llama");
  no_norm.tensors.erase("output_norm.weight");
  ExpectLoadError(no_norm, "output_norm.weight");
}

TEST(DecoderLoadTest, ShapeMismatchIsNamed) {
  TinyModel tiny("llama");
  tiny.tensors["blk.0.attn_k.weight"].first = {kHidden, kHeads * kHeadDim};  // q-sized k
  tiny.tensors["blk.0.attn_k.weight"].second.resize(kHidden * kHeads * kHeadDim);
  ExpectLoadError(tiny, "blk.0.attn_k.weight");
  TinyModel transposed("phi3");
  auto& up = transposed.tensors["blk.1.ffn_up.weight"];
  up.first = {2 * kFfn, kHidden};
  ExpectLoadError(transposed, "blk.1.ffn_up.weight");
  TinyModel norm("llama");
  norm.tensors["blk.0.ffn_norm.weight"] = {{kHidden + 1}, std::vector<float>(kHidden + 1, 1)};
  ExpectLoadError(norm, "blk.0.ffn_norm.weight");
}

TEST(DecoderLoadTest, UnsupportedAndUnknownTensorTypesAreNamed) {
  // A valid GGUF type we cannot turn into weights: I32 (4 bytes an element, like the F32 data).
  TinyModel i32("llama");
  i32.raw_types["blk.0.attn_q.weight"] = 26;
  ExpectLoadError(i32, "blk.0.attn_q.weight");
  ExpectLoadError(i32, "I32");
  TinyModel embeddings("qwen2");
  embeddings.raw_types["token_embd.weight"] = 26;
  ExpectLoadError(embeddings, "token_embd.weight");
  // A 32-element block type on rows of 16: rejected by the reader, naming tensor and type.
  TinyModel q8("llama");
  q8.tensors["blk.0.attn_q.weight"].second.resize(8 * 34 / 4);
  q8.raw_types["blk.0.attn_q.weight"] = 8;  // Q8_0
  ExpectLoadError(q8, "blk.0.attn_q.weight");
  ExpectLoadError(q8, "Q8_0");
  TinyModel unknown("llama");
  unknown.raw_types["blk.1.ffn_gate.weight"] = 99;
  ExpectLoadError(unknown, "blk.1.ffn_gate.weight");
}

TEST(DecoderLoadTest, MissingOrBadMetadataIsNamed) {
  TinyModel no_layers("llama");
  no_layers.skip_keys.push_back("llama.block_count");
  ExpectLoadError(no_layers, "llama.block_count");
  TinyModel bad_heads("llama");
  bad_heads.ints[".attention.head_count_kv"] = 3;  // 4 heads are not a multiple of 3 KV heads
  ExpectLoadError(bad_heads, "llama.attention.head_count");
  TinyModel zero("qwen2");
  zero.ints[".embedding_length"] = 0;
  ExpectLoadError(zero, "qwen2.embedding_length");
  TinyModel bad_window("mistral");
  bad_window.ints[".attention.sliding_window"] = (1u << 24) + 1;
  ExpectLoadError(bad_window, "mistral.attention.sliding_window");
  TinyModel wrong_hidden("llama");
  wrong_hidden.ints[".embedding_length"] = kHidden * 2;
  ExpectLoadError(wrong_hidden, "token_embd.weight");
}

TEST(DecoderLoadTest, EveryTruncationIsAnErrorNotACrash) {
  TinyModel tiny("phi3");
  const std::string bytes = tiny.Bytes();
  for (size_t size : {size_t{0}, size_t{3}, size_t{24}, bytes.size() / 3, bytes.size() / 2,
                      bytes.size() - 100, bytes.size() - 1}) {
    const std::string truncated = bytes.substr(0, size);
    auto model = DecoderModel::Load(tiny.Write(&truncated), {});
    EXPECT_FALSE(model.ok()) << "truncated to " << size << " bytes";
  }
  auto missing = DecoderModel::Load("/nonexistent/model.gguf", {});
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/model.gguf"));
}

TEST(DecoderLoadTest, LoadsTheTokenizerTheFileDeclares) {
  auto without = Load(TinyModel("llama"));
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ((*without)->tokenizer(), nullptr);
  TinyModel with("llama");
  with.tokenizer_model = "llama";
  auto model = Load(with);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_NE((*model)->tokenizer(), nullptr);
  EXPECT_EQ((*model)->tokenizer()->Encode("a b", /*add_special=*/false),
            (std::vector<int32_t>{6, 7}));
  TinyModel bad("llama");
  bad.tokenizer_model = "no-such-tokenizer";
  ExpectLoadError(bad, "tokenizer.ggml.model");
}

TEST(DecoderForwardTest, PromptLongerThanTheContextIsAClearError) {
  DecoderOptions options;
  options.max_context = 8;
  auto model = Load(TinyModel("llama"), options);
  ASSERT_TRUE(model.ok()) << model.status();
  auto too_big = (*model)->NewSequenceCache(9);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.status().message()), HasSubstr("max_context (8)"));
  auto cache = (*model)->NewSequenceCache(8);
  ASSERT_TRUE(cache.ok());
  const std::vector<int32_t> prompt(9, 1);
  std::vector<float> logits(kVocab);
  SequenceStep step{cache->get(), prompt.data(), 9, false};
  absl::Status status = (*model)->Forward({&step, 1}, logits.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(status.message()), HasSubstr("capacity of 8 tokens"));
  EXPECT_EQ((*cache)->size(), 0);
  step.n_tokens = 8;
  ASSERT_TRUE((*model)->Forward({&step, 1}, logits.data()).ok());
  step.n_tokens = 1;  // the 9th token
  EXPECT_EQ((*model)->Forward({&step, 1}, logits.data()).code(), absl::StatusCode::kOutOfRange);
  TinyModel too_long("llama");
  DecoderOptions beyond;
  beyond.max_context = 65;  // context_length is 64
  auto refused = Load(too_long, beyond);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("llama.context_length (64)"));
}

TEST(DecoderForwardTest, BadStepsAreRejectedAndLeaveCachesUntouched) {
  DecoderOptions options;
  options.max_batch_tokens = 6;
  auto model = Load(TinyModel("qwen2"), options);
  auto other = Load(TinyModel("qwen2"), options);
  ASSERT_TRUE(model.ok() && other.ok());
  auto cache = (*model)->NewSequenceCache(32);
  auto foreign = (*other)->NewSequenceCache(32);
  ASSERT_TRUE(cache.ok() && foreign.ok());
  std::vector<float> logits(8 * kVocab);
  const std::vector<int32_t> good = {1, 2, 3}, bad = {1, kVocab, 3}, negative = {-1};
  const std::vector<int32_t> seven(7, 2);
  auto code = [&](std::vector<SequenceStep> steps) {
    return (*model)->Forward(steps, logits.data()).code();
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code({}), kInvalid);
  EXPECT_EQ(code({{cache->get(), bad.data(), 3, false}}), kInvalid);
  EXPECT_EQ(code({{cache->get(), negative.data(), 1, false}}), kInvalid);
  EXPECT_EQ(code({{cache->get(), good.data(), 0, false}}), kInvalid);
  EXPECT_EQ(code({{nullptr, good.data(), 3, false}}), kInvalid);
  EXPECT_EQ(code({{cache->get(), nullptr, 3, false}}), kInvalid);
  EXPECT_EQ(code({{foreign->get(), good.data(), 3, false}}), kInvalid);
  EXPECT_EQ(code({{cache->get(), good.data(), 3, false}, {cache->get(), good.data(), 3, false}}),
            kInvalid);
  EXPECT_EQ(code({{cache->get(), seven.data(), 7, false}}), kInvalid);  // > max_batch_tokens
  EXPECT_EQ((*model)->Forward({}, nullptr).code(), kInvalid);
  EXPECT_EQ((*cache)->size(), 0);
  EXPECT_EQ(code({{cache->get(), good.data(), 3, false}}), absl::StatusCode::kOk);
  EXPECT_EQ((*cache)->size(), 3);
}

TEST(DecoderForwardTest, KvCacheBytesFollowTheKvType) {
  for (auto [dtype, element] : std::vector<std::pair<kernels::DType, int64_t>>{
           {kernels::DType::kF32, 4}, {kernels::DType::kBF16, 2}, {kernels::DType::kInt8, 1}}) {
    DecoderOptions options;
    options.kv_dtype = dtype;
    auto model = Load(TinyModel("llama"), options);
    ASSERT_TRUE(model.ok());
    const int64_t scales = dtype == kernels::DType::kInt8 ? kLayers * 2 * kKvHeads * 4 : 0;
    EXPECT_EQ((*model)->KvBytesPerToken(), kLayers * 2 * kKvHeads * kHeadDim * element + scales);
    auto cache = (*model)->NewSequenceCache(10);
    ASSERT_TRUE(cache.ok());
    EXPECT_GE((*cache)->bytes(), 10 * (*model)->KvBytesPerToken());
    EXPECT_LE((*cache)->bytes(), 10 * (*model)->KvBytesPerToken() + kLayers * 4 * 64);  // padding
  }
}

}  // namespace
}  // namespace slm::workers
