// slmctl generate: streams generated text to the terminal as it arrives, through the gateway
// (GatewayService.GenerateStream) or straight from a worker (--worker: WorkerService).
//
//   slmctl generate --task chat "Write a haiku about CPUs"
//   slmctl generate --worker --target 127.0.0.1:50061 --max_tokens 64 --temperature 0.7 "Once"
//   slmctl generate --chat --system "Answer briefly." "What is RoPE?"   # chat messages
//
// The text goes to standard output; one summary line (finish reason, tokens, who served it) goes
// to standard error, so `slmctl generate ... > out.txt` keeps only the text.
#ifndef SLM_TOOLS_SLMCTL_GENERATE_COMMAND_H_
#define SLM_TOOLS_SLMCTL_GENERATE_COMMAND_H_

#include <string>
#include <vector>

#include "tools/slmctl/commands.h"

namespace slm::slmctl {

struct GenerateOptions {
  bool worker = false;  // target is a WorkerService (no routing)
  bool chat = false;    // send the text as a user message (the model's chat template applies)
  std::string system;   // with chat: a system message first
  unsigned max_tokens = 0;
  float temperature = 0;
  unsigned top_k = 0;
  float top_p = 0;
  float min_p = 0;
  float repetition_penalty = 0;
  unsigned long long seed = 0;
  std::vector<std::string> stop;
  bool logprobs = false;  // print each chunk's log-probabilities to standard error
};

int Generate(const CallOptions& options, const GenerateOptions& generate, const std::string& text);

}  // namespace slm::slmctl

#endif  // SLM_TOOLS_SLMCTL_GENERATE_COMMAND_H_
