// Runs llama.cpp's tokenizer test vectors (tests/test-tokenizer-0 format) for the BERT (bge)
// vocabulary. .inp holds the cases, each followed by "\n__ggml_vocab_test__\n"; .out holds one
// line of space-separated expected ids per case, tokenized without special tokens.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "workers/gguf/gguf_file.h"
#include "workers/tokenizer/wordpiece.h"

namespace slm::workers {
namespace {

bool ReadFile(const std::string& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *contents = buffer.str();
  return true;
}

std::string Escaped(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

TEST(WordPieceLlamaCppVectorsTest, BertBgeMatchesEveryCase) {
  const char* data_dir = std::getenv("SLM_SHARED_DATA_DIR");
  const std::string base =
      std::string(data_dir != nullptr ? data_dir : "") + "/tokenizers/ggml-vocab-bert-bge.gguf";
  std::string inputs, outputs;
  if (data_dir == nullptr || !ReadFile(base + ".inp", &inputs) ||
      !ReadFile(base + ".out", &outputs)) {
    GTEST_SKIP() << "shared data absent: need $SLM_SHARED_DATA_DIR/tokenizers/"
                    "ggml-vocab-bert-bge.gguf{,.inp,.out}";
  }
  auto file = GgufFile::Open(base);
  ASSERT_TRUE(file.ok()) << file.status();
  auto tokenizer = WordPieceTokenizer::FromGguf(**file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 30522u);
  EXPECT_EQ((*tokenizer)->cls_id(), 101);
  EXPECT_EQ((*tokenizer)->sep_id(), 102);
  EXPECT_EQ((*tokenizer)->unknown_id(), 100);
  EXPECT_EQ((*tokenizer)->pad_id(), 0);

  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> cases;
  size_t start = 0;
  for (size_t at = inputs.find(separator); at != std::string::npos;
       at = inputs.find(separator, start)) {
    cases.push_back(inputs.substr(start, at - start));
    start = at + separator.size();
  }
  ASSERT_EQ(start, inputs.size()) << "trailing text after the last separator";
  std::vector<std::vector<int32_t>> expected;
  std::istringstream lines(outputs);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    expected.emplace_back();
    for (int32_t id; ids >> id;) expected.back().push_back(id);
  }
  ASSERT_EQ(cases.size(), expected.size());
  ASSERT_GT(cases.size(), 40u);

  int mismatches = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Encoding encoding = (*tokenizer)->Encode(cases[i], /*add_special=*/false);
    if (encoding.ids != expected[i]) {
      ++mismatches;
      std::vector<std::string> pieces;
      for (int32_t id : encoding.ids) pieces.emplace_back((*tokenizer)->TokenText(id));
      ADD_FAILURE() << "case " << i << " \"" << Escaped(cases[i]) << "\"\n  expected "
                    << absl::StrJoin(expected[i], " ") << "\n  actual   "
                    << absl::StrJoin(encoding.ids, " ") << "\n  pieces   "
                    << absl::StrJoin(pieces, " ");
      if (mismatches >= 3) break;  // the first mismatches are the informative ones
    }
    ASSERT_EQ(encoding.spans.size(), encoding.ids.size());
    for (const auto& [begin, end] : encoding.spans) {
      ASSERT_LE(0, begin);
      ASSERT_LT(begin, end);
      ASSERT_LE(end, static_cast<int32_t>(cases[i].size()));
    }
  }
}

}  // namespace
}  // namespace slm::workers
