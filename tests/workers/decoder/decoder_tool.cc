// decoder_tool: runs a DecoderModel on id sequences for comparison with the PyTorch reference
// (check_decoder_reference.py).
//
//   decoder_tool --model M.gguf [--dtype f32|bf16|int8] [--kv f32|bf16|int8] [--chunk N]
//                [--mode logits|greedy] [--steps N] [--max_context N] < ids.txt
//
// ids.txt: one sequence a line (space-separated ids). All sequences run together: every Forward
// call carries the next prefill chunk (at most --chunk tokens) of each unfinished sequence, then
// (greedy) one decode token per sequence per call. Output: one JSON document on stdout,
//   logits: {"logits": [[[vocab floats] per token] per sequence]}
//   greedy: {"tokens": [[steps ids] per sequence]}
// Exit status 1 on any error, with the status on stderr.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "kernels/dtype.h"
#include "workers/decoder/decoder_model.h"

namespace {

using slm::workers::DecoderModel;
using slm::workers::KvCache;
using slm::workers::SequenceStep;

int Fail(const absl::Status& status) {
  std::cerr << status << "\n";
  return 1;
}

int Argmax(const float* row, int64_t n) {
  int best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (row[i] > row[best]) best = static_cast<int>(i);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  absl::flat_hash_map<std::string, std::string> flags = {
      {"--dtype", "f32"}, {"--kv", "f32"}, {"--chunk", "1000000"}, {"--mode", "logits"},
      {"--steps", "0"},   {"--model", ""}, {"--max_context", "0"}, {"--threads", "0"}};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!flags.contains(argv[i])) {
      std::cerr << "unknown flag " << argv[i] << "\n";
      return 2;
    }
    flags[argv[i]] = argv[i + 1];
  }
  slm::workers::DecoderOptions options;
  auto dtype = slm::kernels::ParseDType(flags["--dtype"]);
  auto kv = slm::kernels::ParseDType(flags["--kv"]);
  if (!dtype.ok()) return Fail(dtype.status());
  if (!kv.ok()) return Fail(kv.status());
  options.dtype = *dtype;
  options.kv_dtype = *kv;
  options.max_context = std::atoll(flags["--max_context"].c_str());
  options.threads = std::atoi(flags["--threads"].c_str());
  const int64_t chunk = std::atoll(flags["--chunk"].c_str());
  const int64_t steps = std::atoll(flags["--steps"].c_str());
  const bool greedy = flags["--mode"] == "greedy";
  auto model = DecoderModel::Load(flags["--model"], options);
  if (!model.ok()) return Fail(model.status());
  const int64_t vocab = (*model)->hparams().vocab_size;

  std::vector<std::vector<int32_t>> sequences;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream stream(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (stream >> id) ids.push_back(id);
    if (!ids.empty()) sequences.push_back(std::move(ids));
  }
  const size_t n = sequences.size();
  std::vector<std::unique_ptr<KvCache>> caches;
  for (size_t s = 0; s < n; ++s) {
    auto cache = (*model)->NewSequenceCache((*model)->options().max_context);
    if (!cache.ok()) return Fail(cache.status());
    caches.push_back(std::move(*cache));
  }
  std::vector<std::vector<float>> logits(n);  // all logits (logits mode) or the last row
  std::vector<size_t> done(n, 0);
  // Prefill, chunked and batched across sequences.
  while (true) {
    std::vector<SequenceStep> batch;
    std::vector<size_t> members;
    for (size_t s = 0; s < n; ++s) {
      if (done[s] == sequences[s].size()) continue;
      const int32_t take = static_cast<int32_t>(
          std::min<int64_t>(chunk, static_cast<int64_t>(sequences[s].size() - done[s])));
      batch.push_back({caches[s].get(), sequences[s].data() + done[s], take, !greedy});
      members.push_back(s);
    }
    if (batch.empty()) break;
    int64_t rows = 0;
    for (const SequenceStep& step : batch) rows += step.want_all_logits ? step.n_tokens : 1;
    std::vector<float> out(static_cast<size_t>(rows * vocab));
    absl::Status status = (*model)->Forward(batch, out.data());
    if (!status.ok()) return Fail(status);
    int64_t row = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      const size_t s = members[i];
      const int64_t count = batch[i].want_all_logits ? batch[i].n_tokens : 1;
      if (greedy) logits[s].clear();
      logits[s].insert(logits[s].end(), out.begin() + row * vocab,
                       out.begin() + (row + count) * vocab);
      row += count;
      done[s] += static_cast<size_t>(batch[i].n_tokens);
    }
  }
  if (!greedy) {
    std::printf("{\"logits\": [");
    for (size_t s = 0; s < n; ++s) {
      std::printf("%s[", s ? ", " : "");
      for (size_t t = 0; t < sequences[s].size(); ++t) {
        std::printf("%s[", t ? ", " : "");
        for (int64_t v = 0; v < vocab; ++v) {
          std::printf("%s%.9g", v ? ", " : "", logits[s][t * vocab + v]);
        }
        std::printf("]");
      }
      std::printf("]");
    }
    std::printf("]}\n");
    return 0;
  }
  std::vector<std::vector<int32_t>> generated(n);
  std::vector<int32_t> next(n);
  for (size_t s = 0; s < n; ++s) next[s] = Argmax(logits[s].data(), vocab);
  for (int64_t step = 0; step < steps; ++step) {
    for (size_t s = 0; s < n; ++s) generated[s].push_back(next[s]);
    if (step + 1 == steps) break;
    std::vector<SequenceStep> batch;
    for (size_t s = 0; s < n; ++s) batch.push_back({caches[s].get(), &next[s], 1, false});
    std::vector<float> out(n * static_cast<size_t>(vocab));
    absl::Status status = (*model)->Forward(batch, out.data());
    if (!status.ok()) return Fail(status);
    for (size_t s = 0; s < n; ++s) next[s] = Argmax(out.data() + s * vocab, vocab);
  }
  std::printf("{\"tokens\": [");
  for (size_t s = 0; s < n; ++s) {
    std::printf("%s[", s ? ", " : "");
    for (size_t i = 0; i < generated[s].size(); ++i) {
      std::printf("%s%d", i ? ", " : "", generated[s][i]);
    }
    std::printf("]");
  }
  std::printf("]}\n");
  return 0;
}
