// Chat templates: turn system/user/assistant messages into the prompt text each model family
// was trained on (the formats llama.cpp's llm_chat_apply_template writes). The result contains
// control-token text (<|im_start|>, </s>, ...): encode it with EncodeOptions::parse_special, and
// with add_special for the BOS the vocabulary wants.
//
//   SLM_ASSIGN_OR_RETURN(ChatTemplateFamily family, DetectChatTemplateFamily(*file));
//   SLM_ASSIGN_OR_RETURN(std::string prompt,
//                        ApplyChatTemplate(family, {{"user", "Hi"}}, /*add_generation_prompt=*/true));
//   // chatml: "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
//
// Thread-safety: pure functions.
#ifndef SLM_WORKERS_TOKENIZER_CHAT_TEMPLATE_H_
#define SLM_WORKERS_TOKENIZER_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "workers/gguf/gguf_file.h"

namespace slm::workers {

enum class ChatTemplateFamily {
  // Qwen2/2.5, SmolLM2: <|im_start|>role\ncontent<|im_end|>\n
  kChatml,
  // Llama 2 chat: [INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST]assistant</s>[INST] ...
  kLlama2,
  // Mistral (llama.cpp's mistral-v3): [INST] sys\n\nuser[/INST] assistant</s>[INST] ...
  kMistral,
  // Phi-3 / Phi-3.5: <|role|>\ncontent<|end|>\n
  kPhi3,
  // TinyLlama chat (Zephyr): <|role|>\ncontent</s>\n
  kZephyr,
};

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// InvalidArgument for no messages or a role other than system/user/assistant (naming the
// message's index and role).
absl::StatusOr<std::string> ApplyChatTemplate(ChatTemplateFamily family,
                                              const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt);

// "chatml", "llama2", "mistral", "phi3", "zephyr".
const char* ChatTemplateFamilyName(ChatTemplateFamily family);
absl::StatusOr<ChatTemplateFamily> ChatTemplateFamilyFromName(absl::string_view name);

// From the Jinja text of tokenizer.chat_template (marker strings, as llama.cpp detects them);
// NotFound when nothing matches.
absl::StatusOr<ChatTemplateFamily> DetectChatTemplateFamilyFromJinja(absl::string_view jinja);

// tokenizer.chat_template when present, else general.architecture (qwen2 -> chatml,
// phi3 -> phi3, llama -> llama2); NotFound naming both keys otherwise.
absl::StatusOr<ChatTemplateFamily> DetectChatTemplateFamily(const GgufFile& file);

}  // namespace slm::workers

#endif  // SLM_WORKERS_TOKENIZER_CHAT_TEMPLATE_H_
