#include "workers/tokenizer/chat_template.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace slm::workers {
namespace {

std::string Llama2(const std::vector<ChatMessage>& messages) {
  std::string out = "[INST] ";
  bool inside_turn = true;
  for (const ChatMessage& message : messages) {
    if (!inside_turn) {
      inside_turn = true;
      out += "[INST] ";
    }
    if (message.role == "system") {
      absl::StrAppend(&out, "<<SYS>>\n", message.content, "\n<</SYS>>\n\n");
    } else if (message.role == "user") {
      absl::StrAppend(&out, message.content, " [/INST]");
    } else {
      absl::StrAppend(&out, message.content, "</s>");
      inside_turn = false;
    }
  }
  return out;
}

std::string Mistral(const std::vector<ChatMessage>& messages) {
  std::string out;
  bool inside_turn = false;
  for (const ChatMessage& message : messages) {
    if (!inside_turn) {
      out += "[INST] ";
      inside_turn = true;
    }
    if (message.role == "system") {
      absl::StrAppend(&out, message.content, "\n\n");
    } else if (message.role == "user") {
      absl::StrAppend(&out, message.content, "[/INST]");
    } else {
      absl::StrAppend(&out, " ", absl::StripAsciiWhitespace(message.content), "</s>");
      inside_turn = false;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> ApplyChatTemplate(ChatTemplateFamily family,
                                              const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt) {
  if (messages.empty()) return absl::InvalidArgumentError("chat template: no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat("chat template: messages[", i, "].role '",
                                                     role,
                                                     "' is not system, user or assistant"));
    }
  }
  std::string out;
  switch (family) {
    case ChatTemplateFamily::kChatml:
      for (const ChatMessage& m : messages) {
        absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    case ChatTemplateFamily::kLlama2:
      return Llama2(messages);
    case ChatTemplateFamily::kMistral:
      return Mistral(messages);
    case ChatTemplateFamily::kPhi3:
      for (const ChatMessage& m : messages) {
        absl::StrAppend(&out, "<|", m.role, "|>\n", m.content, "<|end|>\n");
      }
      if (add_generation_prompt) out += "<|assistant|>\n";
      return out;
    case ChatTemplateFamily::kZephyr:
      for (const ChatMessage& m : messages) {
        absl::StrAppend(&out, "<|", m.role, "|>\n", m.content, "</s>\n");
      }
      if (add_generation_prompt) out += "<|assistant|>\n";
      return out;
  }
  return absl::InvalidArgumentError("chat template: unknown family");
}

const char* ChatTemplateFamilyName(ChatTemplateFamily family) {
  switch (family) {
    case ChatTemplateFamily::kChatml:
      return "chatml";
    case ChatTemplateFamily::kLlama2:
      return "llama2";
    case ChatTemplateFamily::kMistral:
      return "mistral";
    case ChatTemplateFamily::kPhi3:
      return "phi3";
    case ChatTemplateFamily::kZephyr:
      return "zephyr";
  }
  return "unknown";
}

absl::StatusOr<ChatTemplateFamily> ChatTemplateFamilyFromName(absl::string_view name) {
  for (ChatTemplateFamily family :
       {ChatTemplateFamily::kChatml, ChatTemplateFamily::kLlama2, ChatTemplateFamily::kMistral,
        ChatTemplateFamily::kPhi3, ChatTemplateFamily::kZephyr}) {
    if (name == ChatTemplateFamilyName(family)) return family;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "chat template family '", name, "' is not one of chatml, llama2, mistral, phi3, zephyr"));
}

absl::StatusOr<ChatTemplateFamily> DetectChatTemplateFamilyFromJinja(absl::string_view jinja) {
  if (absl::StrContains(jinja, "<|im_start|>")) return ChatTemplateFamily::kChatml;
  if (absl::StrContains(jinja, "[INST]")) {
    return absl::StrContains(jinja, "<<SYS>>") ? ChatTemplateFamily::kLlama2
                                               : ChatTemplateFamily::kMistral;
  }
  if (absl::StrContains(jinja, "<|assistant|>") && absl::StrContains(jinja, "<|end|>")) {
    return ChatTemplateFamily::kPhi3;
  }
  if (absl::StrContains(jinja, "<|user|>")) return ChatTemplateFamily::kZephyr;
  return absl::NotFoundError("chat template: no known family's markers in the template");
}

absl::StatusOr<ChatTemplateFamily> DetectChatTemplateFamily(const GgufFile& file) {
  if (file.Has("tokenizer.chat_template")) {
    SLM_ASSIGN_OR_RETURN(std::string jinja, file.GetString("tokenizer.chat_template"));
    auto family = DetectChatTemplateFamilyFromJinja(jinja);
    if (family.ok()) return family;
  }
  SLM_ASSIGN_OR_RETURN(std::string architecture, file.GetStringOr("general.architecture", ""));
  if (architecture == "qwen2") return ChatTemplateFamily::kChatml;
  if (architecture == "phi3") return ChatTemplateFamily::kPhi3;
  if (architecture == "llama") return ChatTemplateFamily::kLlama2;
  return absl::NotFoundError(absl::StrCat(
      file.path(), ": no chat template family from tokenizer.chat_template or "
                   "general.architecture '", architecture, "'"));
}

}  // namespace slm::workers
