// slmctl tokenize / detokenize: run a model's tokenizer locally (no server), so any tokenizer can
// be checked from the shell:
//   printf 'Hello world' | slmctl tokenize --model model.gguf --add-special   # [1, 15043, 3186]
//   echo '[1, 15043, 3186]' | slmctl detokenize --model model.gguf            # Hello world
// --model takes a GGUF file or a Hugging Face tokenizer.json.
#ifndef SLM_TOOLS_SLMCTL_TOKENIZE_COMMANDS_H_
#define SLM_TOOLS_SLMCTL_TOKENIZE_COMMANDS_H_

#include <string>

namespace slm::slmctl {

struct TokenizeOptions {
  std::string model;           // .gguf or tokenizer.json path
  bool add_special = false;    // BOS/EOS as the vocabulary asks
  bool parse_special = false;  // control-token text becomes control tokens
  bool render_special = false; // detokenize: print control tokens' text
};

// Prints the ids of `text` as a JSON array and a newline. Exit code 0, 1 on a load error.
int Tokenize(const TokenizeOptions& options, const std::string& text);
// Reads a JSON array of ids from `json` and prints the decoded text (no newline added).
// Exit code 0, 1 on a load error, 2 when `json` is not an array of integers.
int Detokenize(const TokenizeOptions& options, const std::string& json);

}  // namespace slm::slmctl

#endif  // SLM_TOOLS_SLMCTL_TOKENIZE_COMMANDS_H_
