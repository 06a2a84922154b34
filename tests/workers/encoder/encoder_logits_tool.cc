// encoder_logits_tool: prints an EncoderModel's raw logits for id sequences, for comparison with
// the PyTorch reference (check_encoder_reference.py).
//
//   encoder_logits_tool MODEL.gguf DTYPE < ids.txt
//
// ids.txt holds one sequence a line (space-separated ids, [CLS] and [SEP] included). Output on
// stdout is one JSON document: {"dtype": "...", "logits": [[...], ...]} with one array per input
// line ([num_labels] or [n * num_labels] floats). Exit status 1 on any error, with the status on
// stderr.
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "workers/encoder/encoder_model.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " MODEL.gguf f32|bf16|int8 < ids.txt\n";
    return 2;
  }
  absl::StatusOr<slm::kernels::DType> dtype = slm::kernels::ParseDType(argv[2]);
  if (!dtype.ok()) {
    std::cerr << dtype.status() << "\n";
    return 1;
  }
  auto model = slm::workers::EncoderModel::Load(argv[1], {*dtype, 512});
  if (!model.ok()) {
    std::cerr << model.status() << "\n";
    return 1;
  }
  std::printf("{\"dtype\": \"%s\", \"logits\": [", argv[2]);
  std::string line;
  bool first_line = true;
  while (std::getline(std::cin, line)) {
    std::istringstream stream(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (stream >> id) ids.push_back(id);
    if (ids.empty()) continue;
    absl::StatusOr<std::vector<float>> logits = (*model)->Logits(ids);
    if (!logits.ok()) {
      std::cerr << logits.status() << "\n";
      return 1;
    }
    std::printf("%s[", first_line ? "" : ", ");
    first_line = false;
    for (size_t i = 0; i < logits->size(); ++i) {
      std::printf("%s%.9g", i == 0 ? "" : ", ", (*logits)[i]);
    }
    std::printf("]");
  }
  std::printf("]}\n");
  return 0;
}
