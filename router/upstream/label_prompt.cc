#include "router/upstream/label_prompt.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace slm::router::upstream {
namespace {

bool IsWordChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Whether `label` occurs in `text` (both lower-cased) with no word character on either side.
bool ContainsWord(absl::string_view text, absl::string_view label) {
  if (label.empty()) return false;
  for (size_t at = text.find(label); at != absl::string_view::npos; at = text.find(label, at + 1)) {
    const bool left = at == 0 || !IsWordChar(text[at - 1]);
    const size_t end = at + label.size();
    const bool right = end == text.size() || !IsWordChar(text[end]);
    if (left && right) return true;
  }
  return false;
}

absl::string_view Trim(absl::string_view text) {
  const absl::string_view strip = " \t\r\n\"'`*";
  while (!text.empty() && strip.find(text.front()) != absl::string_view::npos) {
    text.remove_prefix(1);
  }
  while (!text.empty() &&
         (strip.find(text.back()) != absl::string_view::npos || text.back() == '.')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::vector<slmgw::v1::ChatMessage> ClassificationPrompt(const std::vector<std::string>& labels,
                                                         const std::string& text) {
  std::vector<slmgw::v1::ChatMessage> messages(2);
  messages[0].set_role("system");
  messages[0].set_content(absl::StrCat(
      "You are a text classifier. Classify the user's text into exactly one of these labels: ",
      absl::StrJoin(labels, ", "), ". Answer with the label only, nothing else."));
  messages[1].set_role("user");
  messages[1].set_content(text);
  return messages;
}

slmgw::v1::SamplingParams ClassificationSampling() {
  slmgw::v1::SamplingParams sampling;
  sampling.set_max_tokens(kLabelMaxTokens);
  sampling.set_temperature(1e-6f);
  return sampling;
}

absl::StatusOr<std::string> ParseLabel(const std::string& answer,
                                       const std::vector<std::string>& labels) {
  std::string text = absl::AsciiStrToLower(Trim(answer));
  if (absl::StartsWith(text, "label:")) text = absl::AsciiStrToLower(Trim(text.substr(6)));
  for (const std::string& label : labels) {
    if (text == absl::AsciiStrToLower(label)) return label;
  }
  const std::string* found = nullptr;
  for (const std::string& label : labels) {
    if (!ContainsWord(text, absl::AsciiStrToLower(label))) continue;
    if (found != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("the upstream's answer names more than one label ('", *found, "', '", label,
                       "'): \"", answer.substr(0, 100), "\""));
    }
    found = &label;
  }
  if (found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the upstream's answer names none of the labels (",
                     absl::StrJoin(labels, ", "), "): \"", answer.substr(0, 100), "\""));
  }
  return *found;
}

}  // namespace slm::router::upstream
