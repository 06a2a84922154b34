// classify_bench: the router's classification signals, per request.
//   - rule tier: 6 rules (keywords, an RE2 pattern, tenant, metadata) over a 30-word request
//     that none matches (every rule is checked: the worst case).
//   - fast tier: NgramModel::Classify on a 30-word request (goal: <= 20 us), the raw model and
//     through the TextClassifier-shaped vector result; also 8 and 120 words.
//   - encoder tier: EncoderModel::Classify at 16 and 64 tokens, 1 thread: the CLINC150 intent
//     encoder (f32 and int8); beside it the SST-2 sentiment specialist, an n-gram classifier
//     since it replaced the BERT, served through the same EncoderModel (words count as tokens).
// Baseline in the same run: BM_HashWords, one FNV-1a pass over the request's bytes (the least
// any text classifier must do), so results read as ratios on any machine.
//
//   SLM_MODELS_DIR=models classify_bench      (router-clinc150-ngram.gguf,
//                                              router-clinc150-encoder.gguf, sentiment-sst2.gguf)
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "router/classification/rules.h"
#include "workers/encoder/encoder_model.h"
#include "workers/ngram/ngram_model.h"

namespace slm::bench {
namespace {

const char* kWords[] = {"please", "can", "you", "tell", "me", "how", "much", "money", "i",
                        "have", "left", "in", "my", "checking", "account", "because", "i",
                        "want", "to", "book", "a", "flight", "to", "paris", "for", "next",
                        "week", "with", "my", "family"};

std::string Request(int words) {
  std::string text;
  for (int i = 0; i < words; ++i) {
    if (i) text += ' ';
    text += kWords[i % 30];
  }
  return text;
}

std::string ModelPath(const char* file) {
  const char* dir = std::getenv("SLM_MODELS_DIR");
  return std::string(dir ? dir : "models") + "/" + file;
}

void BM_HashWords(benchmark::State& state) {
  const std::string text = Request(30);
  for (auto _ : state) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
    benchmark::DoNotOptimize(h);
  }
}
BENCHMARK(BM_HashWords);

void BM_RuleTier(benchmark::State& state) {
  google::protobuf::RepeatedPtrField<slmgw::config::v1::RuleConfig> rules;
  for (const char* keyword : {"iban", "credit card", "mortgage", "refund"}) {
    auto* rule = rules.Add();
    rule->set_name(keyword);
    rule->set_route("r");
    rule->add_keywords(keyword);
  }
  auto* pattern = rules.Add();
  pattern->set_name("card-number");
  pattern->set_route("r");
  pattern->add_patterns("\\b[0-9]{4}[- ][0-9]{4}[- ][0-9]{4}[- ][0-9]{4}\\b");
  auto* tenant = rules.Add();
  tenant->set_name("vip");
  tenant->set_route("r");
  tenant->add_tenants("vip");
  (*tenant->mutable_metadata())["channel"] = "phone";
  auto set = router::RuleSet::Create(rules);
  if (!set.ok()) return state.SkipWithError(std::string(set.status().message()).c_str());
  const std::string text = Request(30);
  slmgw::v1::RequestOptions options;
  options.set_tenant("someone");
  for (auto _ : state) benchmark::DoNotOptimize((*set)->Match(text, options));
}
BENCHMARK(BM_RuleTier);

void BM_FastTier(benchmark::State& state) {
  static auto model = workers::NgramModel::Load(ModelPath("router-clinc150-ngram.gguf"));
  if (!model.ok()) return state.SkipWithError(std::string(model.status().message()).c_str());
  const std::string text = Request(static_cast<int>(state.range(0)));
  std::vector<float> probabilities((*model)->labels().size());
  for (auto _ : state) {
    (*model)->Classify(text, probabilities.data());
    benchmark::DoNotOptimize(probabilities.data());
  }
  state.counters["features"] = static_cast<double>((*model)->FeatureHashes(text).size());
}
BENCHMARK(BM_FastTier)->Arg(8)->Arg(30)->Arg(120);

// What the router's adapter does on top: a vector of (label, probability) per call.
void BM_FastTierWithResultVector(benchmark::State& state) {
  static auto model = workers::NgramModel::Load(ModelPath("router-clinc150-ngram.gguf"));
  if (!model.ok()) return state.SkipWithError(std::string(model.status().message()).c_str());
  const std::string text = Request(30);
  const auto& labels = (*model)->labels();
  for (auto _ : state) {
    float probabilities[64];
    (*model)->Classify(text, probabilities);
    std::vector<std::pair<std::string, float>> scores;
    scores.reserve(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) scores.emplace_back(labels[i], probabilities[i]);
    benchmark::DoNotOptimize(scores.data());
  }
}
BENCHMARK(BM_FastTierWithResultVector);

// The encoder tier as the router runs it (tools/learned_tiers: 1 thread, f32 unless the config
// says int8): `file` under SLM_MODELS_DIR, or SLM_CLASSIFY_BENCH_ENCODER when set.
void EncoderTier(benchmark::State& state, const char* file, kernels::DType dtype) {
  const char* override_path = std::getenv("SLM_CLASSIFY_BENCH_ENCODER");
  auto model = workers::EncoderModel::Load(override_path ? std::string(override_path)
                                                         : ModelPath(file),
                                           {dtype, 512, 1});
  if (!model.ok()) return state.SkipWithError(std::string(model.status().message()).c_str());
  // Common words (one WordPiece each) until the token count, [CLS] and [SEP] included, is hit.
  const int64_t tokens = state.range(0);
  std::string text;
  for (int i = 0; i < 400; ++i) {
    std::string candidate = text + (text.empty() ? "" : " ") + kWords[i % 30];
    auto out = (*model)->Classify(candidate);
    if (!out.ok() || out->tokens_in > tokens) break;
    text = candidate;
    if (out->tokens_in == tokens) break;
  }
  int32_t tokens_in = 0;
  for (auto _ : state) {
    auto out = (*model)->Classify(text);
    if (!out.ok()) return state.SkipWithError(std::string(out.status().message()).c_str());
    tokens_in = out->tokens_in;
  }
  state.counters["tokens"] = tokens_in;
}
// The CLINC150 intent encoder the default configuration's encoder tier loads.
BENCHMARK_CAPTURE(EncoderTier, clinc150_f32, "router-clinc150-encoder.gguf",
                  kernels::DType::kF32)
    ->Arg(16)
    ->Arg(64);
BENCHMARK_CAPTURE(EncoderTier, clinc150_int8, "router-clinc150-encoder.gguf",
                  kernels::DType::kInt8)
    ->Arg(16)
    ->Arg(64);
// The SST-2 sentiment specialist through EncoderModel: an n-gram classifier (no encoder) since
// models/sentiment-sst2.gguf became one, so this is not an encoder timing (runs before that
// measured the 2-layer BERT under the name sst2_f32); the encoder cases are clinc150_*.
BENCHMARK_CAPTURE(EncoderTier, sst2_ngram_via_encoder_model, "sentiment-sst2.gguf",
                  kernels::DType::kF32)
    ->Arg(16)
    ->Arg(64);

}  // namespace
}  // namespace slm::bench

BENCHMARK_MAIN();
