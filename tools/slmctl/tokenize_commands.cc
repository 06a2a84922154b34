#include "tools/slmctl/tokenize_commands.h"

#include <iostream>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "workers/gguf/gguf_file.h"
#include "workers/tokenizer/tokenizer.h"

namespace slm::slmctl {
namespace {

// The tokenizer, or nullptr after printing the error.
std::unique_ptr<workers::Tokenizer> LoadTokenizer(const std::string& path,
                                                  std::unique_ptr<workers::GgufFile>* file) {
  if (path.empty()) {
    std::cerr << "error: --model FILE.gguf (or tokenizer.json) is required\n";
    return nullptr;
  }
  if (absl::EndsWith(path, ".json")) {
    auto tokenizer = workers::LoadTokenizerFromHfJson(path);
    if (!tokenizer.ok()) {
      std::cerr << "error: " << tokenizer.status() << "\n";
      return nullptr;
    }
    return std::move(tokenizer).value();
  }
  auto opened = workers::GgufFile::Open(path);
  if (!opened.ok()) {
    std::cerr << "error: " << opened.status() << "\n";
    return nullptr;
  }
  *file = std::move(opened).value();
  auto tokenizer = workers::LoadTokenizerFromGguf(**file);
  if (!tokenizer.ok()) {
    std::cerr << "error: " << tokenizer.status() << "\n";
    return nullptr;
  }
  return std::move(tokenizer).value();
}

}  // namespace

int Tokenize(const TokenizeOptions& options, const std::string& text) {
  std::unique_ptr<workers::GgufFile> file;
  std::unique_ptr<workers::Tokenizer> tokenizer = LoadTokenizer(options.model, &file);
  if (tokenizer == nullptr) return 1;
  workers::EncodeOptions encode;
  encode.add_special = options.add_special;
  encode.parse_special = options.parse_special;
  std::cout << "[" << absl::StrJoin(tokenizer->Encode(text, encode), ", ") << "]\n";
  return 0;
}

int Detokenize(const TokenizeOptions& options, const std::string& json) {
  absl::string_view body = absl::StripAsciiWhitespace(json);
  if (!absl::ConsumePrefix(&body, "[") || !absl::ConsumeSuffix(&body, "]")) {
    std::cerr << "error: standard input must be a JSON array of token ids, e.g. [1, 2, 3]\n";
    return 2;
  }
  std::vector<int32_t> ids;
  if (!absl::StripAsciiWhitespace(body).empty()) {
    for (absl::string_view item : absl::StrSplit(body, ',')) {
      int32_t id = 0;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(item), &id)) {
        std::cerr << "error: '" << std::string(absl::StripAsciiWhitespace(item))
                  << "' is not a token id (an integer)\n";
        return 2;
      }
      ids.push_back(id);
    }
  }
  std::unique_ptr<workers::GgufFile> file;
  std::unique_ptr<workers::Tokenizer> tokenizer = LoadTokenizer(options.model, &file);
  if (tokenizer == nullptr) return 1;
  for (int32_t id : ids) {
    if (id < 0 || id >= tokenizer->vocab_size()) {
      std::cerr << "error: token id " << id << " is outside the vocabulary of "
                << tokenizer->vocab_size() << "\n";
      return 2;
    }
  }
  std::cout << tokenizer->Decode(ids, options.render_special);
  return 0;
}

}  // namespace slm::slmctl
