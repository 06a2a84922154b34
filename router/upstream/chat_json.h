// The wire format of OpenAI-compatible chat completions: request bodies, responses, streamed
// chunks (server-sent events) and error bodies. Pure functions and one small parser; no I/O.
//
//   std::string body = BuildChatRequestJson("gpt-4o-mini", messages, sampling, /*stream=*/false);
//   absl::StatusOr<ChatCompletion> answer = ParseChatCompletion(response_body);
//
//   SseParser sse;
//   sse.Feed(bytes, [](absl::string_view data) { ... ParseChatChunk(data) ... });
//
// Parsing never throws and never crashes on bad input: malformed JSON or a missing field is an
// InvalidArgument status that names what was expected; an {"error": ...} body the upstream sent
// instead of an answer is Unavailable with its message. Token log-probabilities are read from
// choices[0].logprobs.content[].logprob (the current OpenAI format).
// Thread-safety: functions are reentrant; an SseParser is used by one thread at a time.
#ifndef SLM_ROUTER_UPSTREAM_CHAT_JSON_H_
#define SLM_ROUTER_UPSTREAM_CHAT_JSON_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "slmgw/v1/types.pb.h"

namespace slm::router::upstream {

// A whole answer (non-streaming), or the summary of a streamed one.
struct ChatCompletion {
  std::string text;
  std::string finish_reason;  // "stop", "length", ... as the upstream said; may be empty
  std::vector<float> token_logprobs;
  uint32_t prompt_tokens = 0;
  uint32_t completion_tokens = 0;
  std::string model;  // the model the upstream says answered
};

// One streamed chunk.
struct ChatChunk {
  std::string text_delta;
  std::vector<float> token_logprobs;
  std::string finish_reason;  // set on the last content chunk
  bool has_usage = false;     // the final usage chunk (stream_options.include_usage)
  uint32_t prompt_tokens = 0;
  uint32_t completion_tokens = 0;
  std::string model;
};

// The request body. Zero sampling values are left out (the upstream's defaults apply); top_k,
// min_p and repetition_penalty have no OpenAI equivalent and are not sent. A streaming request
// asks for usage in the last chunk (stream_options.include_usage). Invalid UTF-8 in the text is
// replaced, never an error.
std::string BuildChatRequestJson(const std::string& model,
                                 const std::vector<slmgw::v1::ChatMessage>& messages,
                                 const slmgw::v1::SamplingParams& sampling, bool stream);

absl::StatusOr<ChatCompletion> ParseChatCompletion(absl::string_view body);
absl::StatusOr<ChatChunk> ParseChatChunk(absl::string_view data);

// The "error.message" of an error body, cut to `max_bytes`; the body itself (cut) when it is
// not JSON of that shape; "" for an empty body.
std::string ErrorMessageOf(absl::string_view body, size_t max_bytes = 200);

// Splits a text/event-stream into events and hands each event's data (its `data:` lines joined
// by "\n") to the callback. Comments (":...") and other fields are ignored; CRLF, LF and CR line
// ends are accepted; an event ends at a blank line. Lines longer than `max_line_bytes` make
// Feed return false (a misbehaving upstream must not eat memory).
class SseParser {
 public:
  explicit SseParser(size_t max_line_bytes = 1 << 20) : max_line_bytes_(max_line_bytes) {}

  // False when a line exceeded the limit or the callback returned false; stop feeding then.
  bool Feed(absl::string_view bytes, const std::function<bool(absl::string_view data)>& on_event);

 private:
  bool EndLine(const std::function<bool(absl::string_view)>& on_event);

  const size_t max_line_bytes_;
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool last_was_cr_ = false;
};

}  // namespace slm::router::upstream

#endif  // SLM_ROUTER_UPSTREAM_CHAT_JSON_H_
