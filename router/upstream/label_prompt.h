// Classification by a general chat model: the prompt that asks it to choose one of a route's
// labels, and the reading of its answer back into a label.
//
// The prompt (two messages):
//   system: "You are a text classifier. Classify the user's text into exactly one of these
//            labels: positive, negative. Answer with the label only, nothing else."
//   user:   the text to classify, verbatim.
// It is sent with temperature 0 and max_tokens 16 (kLabelMaxTokens).
//
// Reading the answer (ParseLabel): surrounding whitespace, quotes, backticks, asterisks and a
// final period are removed; a "label:" prefix is dropped; the answer then names a label when it
// equals it (ASCII case-insensitive), or when exactly one label occurs in it as a whole word.
// Anything else (no label, or several) is an error naming the answer, so a chatty model is
// refused rather than guessed at.
//
// Thread-safety: reentrant.
#ifndef SLM_ROUTER_UPSTREAM_LABEL_PROMPT_H_
#define SLM_ROUTER_UPSTREAM_LABEL_PROMPT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "slmgw/v1/types.pb.h"

namespace slm::router::upstream {

inline constexpr uint32_t kLabelMaxTokens = 16;

std::vector<slmgw::v1::ChatMessage> ClassificationPrompt(const std::vector<std::string>& labels,
                                                         const std::string& text);

// Sampling for the classification prompt: greedy-ish (temperature 0 means "default" in our API,
// so a tiny positive temperature is sent), short.
slmgw::v1::SamplingParams ClassificationSampling();

// The label `answer` names (one of `labels`, as spelled there).
absl::StatusOr<std::string> ParseLabel(const std::string& answer,
                                       const std::vector<std::string>& labels);

}  // namespace slm::router::upstream

#endif  // SLM_ROUTER_UPSTREAM_LABEL_PROMPT_H_
