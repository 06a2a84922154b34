// Test tool: prints, for each line of stdin (a text), one JSON line
// {"spans": [[b, e], ...], "hashes": [["<u64>", ...], ...], "probabilities": [...]} from
// NgramTagger. check_ngram_tagger_reference.py compares it with tools/pyslm/ngram_tagger.py.
//   ngram_tagger_tool MODEL.gguf < texts.txt
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "workers/gguf/gguf_file.h"
#include "workers/ngram/ngram_tagger.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf < texts\n", argv[0]);
    return 2;
  }
  auto file = slm::workers::GgufFile::Open(argv[1]);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", std::string(file.status().message()).c_str());
    return 1;
  }
  auto tagger = slm::workers::NgramTagger::FromGguf(**file);
  if (!tagger.ok()) {
    std::fprintf(stderr, "%s\n", std::string(tagger.status().message()).c_str());
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    const slm::workers::NgramTagger::Output out = (*tagger)->Tag(line);
    std::printf("{\"spans\": [");
    for (size_t i = 0; i < out.spans.size(); ++i) {
      std::printf("%s[%d, %d]", i ? ", " : "", out.spans[i].first, out.spans[i].second);
    }
    std::printf("], \"hashes\": [");
    const auto hashes = (*tagger)->FeatureHashes(line);
    for (size_t t = 0; t < hashes.size(); ++t) {
      std::printf("%s[", t ? ", " : "");
      for (size_t i = 0; i < hashes[t].size(); ++i) {
        std::printf("%s\"%llu\"", i ? ", " : "", static_cast<unsigned long long>(hashes[t][i]));
      }
      std::printf("]");
    }
    std::printf("], \"probabilities\": [");
    for (size_t i = 0; i < out.probabilities.size(); ++i) {
      std::printf("%s%.9g", i ? ", " : "", out.probabilities[i]);
    }
    std::printf("]}\n");
  }
  return 0;
}
