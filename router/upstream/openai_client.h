// A client of one OpenAI-compatible chat-completions service (POST {base_url}/v1/chat/completions),
// unary and streamed (server-sent events), on its own I/O thread (libcurl multi), so callers on
// gRPC reactor threads never block.
//
//   SLM_ASSIGN_OR_RETURN(auto client, UpstreamClient::Create(upstream_config));
//   auto call = client->Complete(messages, sampling, deadline,
//                                [](absl::StatusOr<ChatCompletion> answer) { ... });
//   call->Cancel();  // the caller went away: done runs with CANCELLED (unless it already ran)
//
// Errors (the message starts "upstream 'NAME': " and never contains the API key):
//   HTTP 429                     RESOURCE_EXHAUSTED, "retry after N ms" from Retry-After
//   HTTP 5xx, connection failed  UNAVAILABLE
//   no answer in time            DEADLINE_EXCEEDED (the caller's deadline or timeout_ms)
//   HTTP 400                     INVALID_ARGUMENT (the upstream's error message)
//   other HTTP statuses          INTERNAL (401/403: the API key was refused; 404: base_url/model)
//   malformed JSON, bad fields   INTERNAL ("malformed response: ...")
//   a stream that ends without   UNAVAILABLE ("the stream ended before [DONE]")
//   more than max_concurrency    RESOURCE_EXHAUSTED
//
// The API key is read once, in Create: from the environment variable api_key_env or the file
// api_key_file (trailing whitespace removed); Create fails naming the variable or file (never the
// key) when it is unset, empty or unreadable.
//
// Threading and ownership: Complete and Stream may be called from any thread and return at once.
// `on_chunk` and `done` run on the client's I/O thread, never under the client's locks, and must
// not block; `done` runs exactly once per call, after every `on_chunk`. Destroying the client
// finishes every outstanding call with CANCELLED and joins the thread; it must not be destroyed
// from its own callbacks.
#ifndef SLM_ROUTER_UPSTREAM_OPENAI_CLIENT_H_
#define SLM_ROUTER_UPSTREAM_OPENAI_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "router/upstream/chat_json.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/types.pb.h"

namespace slm::router::upstream {

inline constexpr uint32_t kDefaultUpstreamTimeoutMs = 30000;
inline constexpr uint32_t kDefaultUpstreamMaxConcurrency = 16;

// Reads the API key configured for `config` ("" when none is configured).
absl::StatusOr<std::string> ReadApiKey(const slmgw::config::v1::UpstreamConfig& config);

class UpstreamClient {
 public:
  using Done = std::function<void(absl::StatusOr<ChatCompletion>)>;
  // One streamed chunk; returning false cancels the stream (done then gets CANCELLED).
  using OnChunk = std::function<bool(const ChatChunk&)>;

  // A call in flight. Cancel may be called from any thread, any number of times.
  class Call {
   public:
    virtual ~Call() = default;
    virtual void Cancel() = 0;
  };

  static absl::StatusOr<std::unique_ptr<UpstreamClient>> Create(
      const slmgw::config::v1::UpstreamConfig& config);
  ~UpstreamClient();

  const std::string& name() const { return config_.name(); }
  const slmgw::config::v1::UpstreamConfig& config() const { return config_; }

  std::shared_ptr<Call> Complete(const std::vector<slmgw::v1::ChatMessage>& messages,
                                 const slmgw::v1::SamplingParams& sampling,
                                 std::chrono::system_clock::time_point deadline, Done done);
  // `done` gets the summary of the stream (the whole text, finish reason, usage) or the error.
  std::shared_ptr<Call> Stream(const std::vector<slmgw::v1::ChatMessage>& messages,
                               const slmgw::v1::SamplingParams& sampling,
                               std::chrono::system_clock::time_point deadline, OnChunk on_chunk,
                               Done done);

  struct Transfer;  // one HTTP request; internal
  struct Waker;     // wakes the I/O thread; internal

 private:
  UpstreamClient(const slmgw::config::v1::UpstreamConfig& config, std::string api_key);
  std::shared_ptr<Call> Submit(std::unique_ptr<Transfer> transfer,
                               std::chrono::system_clock::time_point deadline);
  void Run();
  void Wake();

  const slmgw::config::v1::UpstreamConfig config_;
  const std::string url_;
  const std::string authorization_;  // "Authorization: Bearer ..." or ""
  void* multi_ = nullptr;            // CURLM*, touched by the I/O thread only (and Wake)
  std::shared_ptr<Waker> waker_;

  absl::Mutex mutex_;
  std::vector<std::unique_ptr<Transfer>> submitted_ ABSL_GUARDED_BY(mutex_);
  int in_flight_ ABSL_GUARDED_BY(mutex_) = 0;  // submitted and not yet done
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace slm::router::upstream

#endif  // SLM_ROUTER_UPSTREAM_OPENAI_CLIENT_H_
