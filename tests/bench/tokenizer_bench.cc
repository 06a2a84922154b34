// Tokenizer throughput: Encode and Decode MB/s and tokens/s for llama.cpp's SentencePiece
// (llama-spm), byte-level BPE (gpt-2) and Qwen3's tokenizer.json vocabularies, on a text made of
// llama.cpp's tokenizer test cases repeated to 256 KiB (English, code-like whitespace, CJK,
// Cyrillic, emoji). Baseline in the same run: a UTF-8 decode of the same text (the least any
// tokenizer must do per byte); compare MB/s against BM_Utf8DecodeBaseline.
//
//   SLM_SHARED_DATA_DIR=/work/shared/data build/tests/bench/tokenizer_bench
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "benchmark/benchmark.h"
#include "workers/gguf/gguf_file.h"
#include "workers/tokenizer/tokenizer.h"
#include "workers/tokenizer/utf8.h"

namespace slm::workers {
namespace {

std::string DataDir() {
  const char* dir = std::getenv("SLM_SHARED_DATA_DIR");
  return dir == nullptr ? "" : std::string(dir) + "/tokenizers/";
}

const std::string& Corpus() {
  static const std::string* corpus = [] {
    std::ifstream in(DataDir() + "ggml-vocab-gpt-2.gguf.inp", std::ios::binary);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    std::string cases = buffer.str();
    for (size_t at; (at = cases.find("__ggml_vocab_test__")) != std::string::npos;) {
      cases.replace(at, 19, " ");
    }
    auto* text = new std::string;
    while (!cases.empty() && text->size() < (256u << 10)) *text += cases;
    return text;
  }();
  return *corpus;
}

std::unique_ptr<Tokenizer> Load(const std::string& name) {
  if (name == "qwen3-hf") {
    auto tokenizer = LoadTokenizerFromHfJson(DataDir() + "qwen3-hf/tokenizer.json");
    return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
  }
  static std::unique_ptr<GgufFile> files[8];
  static int next = 0;
  auto file = GgufFile::Open(DataDir() + name);
  if (!file.ok()) return nullptr;
  auto tokenizer = LoadTokenizerFromGguf(**file);
  files[next++ % 8] = std::move(file).value();
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

void BM_Utf8DecodeBaseline(benchmark::State& state) {
  const std::string& text = Corpus();
  if (text.empty()) return state.SkipWithError("shared data absent");
  for (auto _ : state) {
    uint64_t sum = 0;
    char32_t cp;
    size_t length;
    for (size_t pos = 0; pos < text.size(); pos += length) {
      utf8::Examine(text, pos, &cp, &length);
      sum += cp;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(state.iterations() * text.size());
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  std::unique_ptr<Tokenizer> tokenizer = Load(name);
  const std::string& text = Corpus();
  if (tokenizer == nullptr || text.empty()) return state.SkipWithError("shared data absent");
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tokenizer->Encode(text, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["bytes/token"] = static_cast<double>(text.size()) / tokens;
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  std::unique_ptr<Tokenizer> tokenizer = Load(name);
  const std::string& text = Corpus();
  if (tokenizer == nullptr || text.empty()) return state.SkipWithError("shared data absent");
  const std::vector<int32_t> ids = tokenizer->Encode(text, false);
  for (auto _ : state) {
    DecodeStream stream(*tokenizer);
    size_t bytes = 0;
    for (int32_t id : ids) bytes += stream.Next(id).size();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(ids.size()) * state.iterations(), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_Utf8DecodeBaseline);
BENCHMARK_CAPTURE(BM_Encode, llama_spm, std::string("ggml-vocab-llama-spm.gguf"));
BENCHMARK_CAPTURE(BM_Encode, gpt2, std::string("ggml-vocab-gpt-2.gguf"));
BENCHMARK_CAPTURE(BM_Encode, qwen3_hf_json, std::string("qwen3-hf"));
BENCHMARK_CAPTURE(BM_Decode, llama_spm_stream, std::string("ggml-vocab-llama-spm.gguf"));
BENCHMARK_CAPTURE(BM_Decode, gpt2_stream, std::string("ggml-vocab-gpt-2.gguf"));

}  // namespace
}  // namespace slm::workers

BENCHMARK_MAIN();
