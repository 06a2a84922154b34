// Runs llama.cpp's tokenizer test vectors (tests/test-tokenizer-0 format) through the GGUF
// tokenizers (llama-spm, phi-3, gpt-2) and the Hugging Face tokenizer.json loader (qwen3's
// tokenizer.json against the qwen2 vectors). .inp holds the cases, each followed by
// "\n__ggml_vocab_test__\n"; .out one line of expected ids per case. test-tokenizer-0 calls
// common_tokenize(ctx, text, add_special=false, parse_special=false), and so do we.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "workers/gguf/gguf_file.h"
#include "workers/tokenizer/tokenizer.h"

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

struct Vectors {
  std::vector<std::string> cases;
  std::vector<std::vector<int32_t>> expected;
};

// False (and the test skips) when the shared data is absent.
bool LoadVectors(const std::string& base, Vectors* vectors) {
  std::string inputs, outputs;
  if (!ReadFile(base + ".inp", &inputs) || !ReadFile(base + ".out", &outputs)) return false;
  const std::string separator = "\n__ggml_vocab_test__\n";
  size_t start = 0;
  for (size_t at = inputs.find(separator); at != std::string::npos;
       at = inputs.find(separator, start)) {
    vectors->cases.push_back(inputs.substr(start, at - start));
    start = at + separator.size();
  }
  EXPECT_EQ(start, inputs.size()) << "trailing text after the last separator";
  std::istringstream lines(outputs);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    vectors->expected.emplace_back();
    for (int32_t id; ids >> id;) vectors->expected.back().push_back(id);
  }
  return true;
}

std::string DataDir() {
  const char* dir = std::getenv("SLM_SHARED_DATA_DIR");
  return dir == nullptr ? "" : std::string(dir) + "/tokenizers/";
}

void ExpectMatchesVectors(const Tokenizer& tokenizer, const Vectors& vectors, bool lossless) {
  ASSERT_EQ(vectors.cases.size(), vectors.expected.size());
  ASSERT_GT(vectors.cases.size(), 40u);
  int mismatches = 0;
  for (size_t i = 0; i < vectors.cases.size(); ++i) {
    const std::vector<int32_t> ids = tokenizer.Encode(vectors.cases[i], /*add_special=*/false);
    if (ids != vectors.expected[i]) {
      ++mismatches;
      std::vector<std::string> pieces;
      for (int32_t id : ids) pieces.emplace_back(tokenizer.TokenText(id));
      ADD_FAILURE() << "case " << i << " \"" << Escaped(vectors.cases[i]) << "\"\n  expected "
                    << absl::StrJoin(vectors.expected[i], " ") << "\n  actual   "
                    << absl::StrJoin(ids, " ") << "\n  pieces   " << absl::StrJoin(pieces, " ");
      if (mismatches >= 5) break;
    }
    if (lossless) {
      EXPECT_EQ(tokenizer.Decode(vectors.expected[i]), vectors.cases[i]) << "case " << i;
      // Streaming one token at a time gives the same text (all cases are valid UTF-8).
      DecodeStream stream(tokenizer);
      std::string streamed;
      for (int32_t id : vectors.expected[i]) streamed += stream.Next(id);
      streamed += stream.Flush();
      EXPECT_EQ(streamed, vectors.cases[i]) << "case " << i;
    }
  }
}

class GgufVectorsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufVectorsTest, MatchesLlamaCppTokenForToken) {
  const std::string base = DataDir() + GetParam();
  Vectors vectors;
  if (DataDir().empty() || !LoadVectors(base, &vectors)) {
    GTEST_SKIP() << "shared data absent: need $SLM_SHARED_DATA_DIR/tokenizers/" << GetParam()
                 << "{,.inp,.out}";
  }
  auto file = GgufFile::Open(base);
  ASSERT_TRUE(file.ok()) << file.status();
  auto tokenizer = LoadTokenizerFromGguf(**file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  // SentencePiece and byte-level BPE are lossless (the SentencePiece decoder removes exactly the
  // space the encoder added); WordPiece lowercases and drops accents.
  ExpectMatchesVectors(**tokenizer, vectors, /*lossless=*/(*tokenizer)->model() != "bert");
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, GgufVectorsTest,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf",
                                           "ggml-vocab-gpt-2.gguf", "ggml-vocab-bert-bge.gguf"));

TEST(HfJsonVectorsTest, Qwen3TokenizerJsonMatchesQwen2Vectors) {
  Vectors vectors;
  if (DataDir().empty() || !LoadVectors(DataDir() + "qwen3-hf/ggml-vocab-qwen2.gguf", &vectors)) {
    GTEST_SKIP() << "shared data absent: need $SLM_SHARED_DATA_DIR/tokenizers/qwen3-hf/";
  }
  auto tokenizer = LoadTokenizerFromHfJson(DataDir() + "qwen3-hf/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 151669);
  ExpectMatchesVectors(**tokenizer, vectors, /*lossless=*/true);
  // Specials: <|im_start|> (151644) and <|im_end|> (151645) are control tokens.
  EncodeOptions parse;
  parse.parse_special = true;
  EXPECT_EQ((*tokenizer)->Encode("<|im_start|>user", parse),
            (std::vector<int32_t>{151644, 872}));
  EXPECT_GT((*tokenizer)->Encode("<|im_start|>", /*add_special=*/false).size(), 1u)
      << "control-token text is plain text unless parse_special";
  EXPECT_TRUE((*tokenizer)->IsEndOfGeneration(151645));
  EXPECT_TRUE((*tokenizer)->IsEndOfGeneration(151643));
}

}  // namespace
}  // namespace slm::workers
