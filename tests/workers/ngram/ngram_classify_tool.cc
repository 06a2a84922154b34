// Test tool: prints, for each line of stdin (a text; "\n" separates texts, "\\n" is not
// special), one JSON line {"hashes": ["<u64>", ...], "probabilities": [...]} from NgramModel.
// check_ngram_reference.py compares it with tools/pyslm/ngram.py.
//   ngram_classify_tool MODEL.gguf < texts.txt
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "workers/ngram/ngram_model.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf < texts\n", argv[0]);
    return 2;
  }
  auto model = slm::workers::NgramModel::Load(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  std::vector<float> probabilities((*model)->labels().size());
  std::string line;
  while (std::getline(std::cin, line)) {
    (*model)->Classify(line, probabilities.data());
    std::printf("{\"hashes\": [");
    const std::vector<uint64_t> hashes = (*model)->FeatureHashes(line);
    for (size_t i = 0; i < hashes.size(); ++i) {
      std::printf("%s\"%llu\"", i ? ", " : "", static_cast<unsigned long long>(hashes[i]));
    }
    std::printf("], \"probabilities\": [");
    for (size_t i = 0; i < probabilities.size(); ++i) {
      std::printf("%s%.9g", i ? ", " : "", probabilities[i]);
    }
    std::printf("]}\n");
  }
  return 0;
}
