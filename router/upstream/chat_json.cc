#include "router/upstream/chat_json.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace slm::router::upstream {
namespace {

using Json = nlohmann::json;

// Parses without exceptions; a discarded value means the text was not JSON.
Json ParseJson(absl::string_view text) {
  return Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
}

const Json* Member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string StringOr(const Json* value, std::string fallback = "") {
  return value != nullptr && value->is_string() ? value->get<std::string>() : fallback;
}

uint32_t CountOr0(const Json* value) {
  if (value == nullptr || !value->is_number_integer()) return 0;
  const int64_t count = value->get<int64_t>();
  if (count < 0) return 0;
  return count > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                      : static_cast<uint32_t>(count);
}

// choices[0].logprobs.content[].logprob; absent or null: none.
absl::Status ReadLogprobs(const Json& choice, std::vector<float>* out) {
  const Json* logprobs = Member(choice, "logprobs");
  if (logprobs == nullptr || logprobs->is_null()) return absl::OkStatus();
  const Json* content = Member(*logprobs, "content");
  if (content == nullptr || content->is_null()) return absl::OkStatus();
  if (!content->is_array()) {
    return absl::InvalidArgumentError("choices[0].logprobs.content: expected an array");
  }
  for (const Json& token : *content) {
    const Json* logprob = Member(token, "logprob");
    if (logprob == nullptr || !logprob->is_number()) {
      return absl::InvalidArgumentError("choices[0].logprobs.content[].logprob: expected a number");
    }
    const double value = logprob->get<double>();
    out->push_back(std::isfinite(value) ? static_cast<float>(value)
                                        : -std::numeric_limits<float>::infinity());
  }
  return absl::OkStatus();
}

void ReadUsage(const Json& root, bool* has_usage, uint32_t* prompt, uint32_t* completion) {
  const Json* usage = Member(root, "usage");
  if (usage == nullptr || !usage->is_object()) return;
  *has_usage = true;
  *prompt = CountOr0(Member(*usage, "prompt_tokens"));
  *completion = CountOr0(Member(*usage, "completion_tokens"));
}

absl::Status UpstreamError(const Json& root) {
  const Json* error = Member(root, "error");
  if (error == nullptr || error->is_null()) return absl::OkStatus();
  std::string message = StringOr(Member(*error, "message"),
                                 error->dump(-1, ' ', false, Json::error_handler_t::replace));
  return absl::UnavailableError(absl::StrCat("the upstream reported an error: ", message));
}

}  // namespace

std::string BuildChatRequestJson(const std::string& model,
                                 const std::vector<slmgw::v1::ChatMessage>& messages,
                                 const slmgw::v1::SamplingParams& sampling, bool stream) {
  Json body = Json::object();
  body["model"] = model;
  Json list = Json::array();
  for (const auto& message : messages) {
    list.push_back({{"role", message.role()}, {"content", message.content()}});
  }
  body["messages"] = std::move(list);
  if (sampling.max_tokens() > 0) body["max_tokens"] = sampling.max_tokens();
  if (sampling.temperature() > 0 && std::isfinite(sampling.temperature())) {
    body["temperature"] = sampling.temperature();
  }
  if (sampling.top_p() > 0 && std::isfinite(sampling.top_p())) body["top_p"] = sampling.top_p();
  if (sampling.seed() != 0) body["seed"] = sampling.seed();
  if (sampling.stop_size() > 0) {
    Json stop = Json::array();
    for (const auto& text : sampling.stop()) stop.push_back(text);
    body["stop"] = std::move(stop);
  }
  if (sampling.return_logprobs()) body["logprobs"] = true;
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<ChatCompletion> ParseChatCompletion(absl::string_view body) {
  const Json root = ParseJson(body);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON in the response (", body.size(), " bytes)"));
  }
  if (!root.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  if (absl::Status error = UpstreamError(root); !error.ok()) return error;
  const Json* choices = Member(root, "choices");
  if (choices == nullptr || !choices->is_array() || choices->empty()) {
    return absl::InvalidArgumentError("choices: expected a non-empty array");
  }
  const Json& choice = (*choices)[0];
  const Json* message = Member(choice, "message");
  if (message == nullptr || !message->is_object()) {
    return absl::InvalidArgumentError("choices[0].message: expected an object");
  }
  const Json* content = Member(*message, "content");
  if (content == nullptr || !(content->is_string() || content->is_null())) {
    return absl::InvalidArgumentError("choices[0].message.content: expected a string");
  }
  ChatCompletion completion;
  completion.text = StringOr(content);
  completion.finish_reason = StringOr(Member(choice, "finish_reason"));
  completion.model = StringOr(Member(root, "model"));
  if (absl::Status read = ReadLogprobs(choice, &completion.token_logprobs); !read.ok()) {
    return read;
  }
  bool has_usage = false;
  ReadUsage(root, &has_usage, &completion.prompt_tokens, &completion.completion_tokens);
  return completion;
}

absl::StatusOr<ChatChunk> ParseChatChunk(absl::string_view data) {
  const Json root = ParseJson(data);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON in a stream event (", data.size(), " bytes)"));
  }
  if (!root.is_object()) return absl::InvalidArgumentError("stream event: expected a JSON object");
  if (absl::Status error = UpstreamError(root); !error.ok()) return error;
  ChatChunk chunk;
  chunk.model = StringOr(Member(root, "model"));
  ReadUsage(root, &chunk.has_usage, &chunk.prompt_tokens, &chunk.completion_tokens);
  const Json* choices = Member(root, "choices");
  if (choices == nullptr || choices->is_null()) {
    if (chunk.has_usage) return chunk;
    return absl::InvalidArgumentError("stream event: choices: expected an array");
  }
  if (!choices->is_array()) {
    return absl::InvalidArgumentError("stream event: choices: expected an array");
  }
  if (choices->empty()) return chunk;  // the usage-only chunk has "choices": []
  const Json& choice = (*choices)[0];
  const Json* delta = Member(choice, "delta");
  if (delta == nullptr || !delta->is_object()) {
    return absl::InvalidArgumentError("stream event: choices[0].delta: expected an object");
  }
  const Json* content = Member(*delta, "content");
  if (content != nullptr && !(content->is_string() || content->is_null())) {
    return absl::InvalidArgumentError("stream event: choices[0].delta.content: expected a string");
  }
  chunk.text_delta = StringOr(content);
  chunk.finish_reason = StringOr(Member(choice, "finish_reason"));
  if (absl::Status read = ReadLogprobs(choice, &chunk.token_logprobs); !read.ok()) return read;
  return chunk;
}

std::string ErrorMessageOf(absl::string_view body, size_t max_bytes) {
  std::string message;
  const Json root = ParseJson(body);
  const Json* error = root.is_discarded() ? nullptr : Member(root, "error");
  if (error != nullptr && error->is_object()) {
    message = StringOr(Member(*error, "message"));
  } else if (error != nullptr && error->is_string()) {
    message = error->get<std::string>();
  } else {
    message = std::string(body);
  }
  if (message.size() > max_bytes) message = message.substr(0, max_bytes) + "...";
  return message;
}

bool SseParser::Feed(absl::string_view bytes,
                     const std::function<bool(absl::string_view)>& on_event) {
  for (char c : bytes) {
    if (c == '\n' && last_was_cr_) {  // the LF of a CRLF: the line already ended at CR
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      if (!EndLine(on_event)) return false;
      continue;
    }
    if (line_.size() >= max_line_bytes_) return false;
    line_.push_back(c);
  }
  return true;
}

bool SseParser::EndLine(const std::function<bool(absl::string_view)>& on_event) {
  if (line_.empty()) {  // blank line: dispatch the event
    bool keep_going = true;
    if (has_data_) keep_going = on_event(data_);
    data_.clear();
    has_data_ = false;
    return keep_going;
  }
  absl::string_view line(line_);
  if (line.substr(0, 5) == "data:") {
    absl::string_view value = line.substr(5);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (has_data_) data_.push_back('\n');
    data_.append(value.data(), value.size());
    has_data_ = true;
    if (data_.size() > max_line_bytes_) return false;
  }
  line_.clear();
  return true;
}

}  // namespace slm::router::upstream
