#include "router/upstream/openai_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace slm::router::upstream {

// Wakes the I/O thread from other threads; outlives the client while handles hold it.
struct UpstreamClient::Waker {
  absl::Mutex mutex;
  CURLM* multi ABSL_GUARDED_BY(mutex) = nullptr;
  void Wake() {
    absl::MutexLock lock(&mutex);
    if (multi != nullptr) curl_multi_wakeup(multi);
  }
};

namespace {

using Clock = std::chrono::system_clock;

constexpr size_t kMaxResponseBytes = 8 << 20;
constexpr size_t kMaxApiKeyFileBytes = 4096;

using Waker = UpstreamClient::Waker;

class Handle final : public UpstreamClient::Call {
 public:
  explicit Handle(std::shared_ptr<Waker> waker) : waker_(std::move(waker)) {}
  void Cancel() override {
    cancelled_ = true;
    waker_->Wake();
  }
  bool cancelled() const { return cancelled_.load(); }

 private:
  const std::shared_ptr<Waker> waker_;
  std::atomic<bool> cancelled_{false};
};

std::string Trimmed(std::string text) {
  absl::StripTrailingAsciiWhitespace(&text);
  absl::StripLeadingAsciiWhitespace(&text);
  return text;
}

}  // namespace

struct UpstreamClient::Transfer {
  std::string name;  // the upstream's, for messages
  std::string body;
  bool stream = false;
  OnChunk on_chunk;
  Done done;
  std::shared_ptr<Handle> handle;
  absl::Status immediate;  // not OK: fails without a request
  uint64_t timeout_ms = 0;
  bool deadline_bounds = false;  // the caller's deadline (not timeout_ms) set timeout_ms

  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  long http_status = 0;
  std::string response;  // the body (non-streaming, or any error status)
  std::string retry_after;
  SseParser sse;
  ChatCompletion summary;
  bool saw_done = false;
  absl::Status abort;  // why a callback stopped the transfer
  char error_buffer[CURL_ERROR_SIZE] = {0};

  std::string Prefix() const { return absl::StrCat("upstream '", name, "': "); }

  bool OnEvent(absl::string_view data) {
    if (saw_done) return true;
    if (data == "[DONE]") {
      saw_done = true;
      return true;
    }
    absl::StatusOr<ChatChunk> chunk = ParseChatChunk(data);
    if (!chunk.ok()) {
      abort = chunk.status().code() == absl::StatusCode::kInvalidArgument
                  ? absl::InternalError(
                        absl::StrCat(Prefix(), "malformed response: ", chunk.status().message()))
                  : absl::Status(chunk.status().code(),
                                 absl::StrCat(Prefix(), chunk.status().message()));
      return false;
    }
    summary.text += chunk->text_delta;
    summary.token_logprobs.insert(summary.token_logprobs.end(), chunk->token_logprobs.begin(),
                                  chunk->token_logprobs.end());
    if (!chunk->finish_reason.empty()) summary.finish_reason = chunk->finish_reason;
    if (!chunk->model.empty()) summary.model = chunk->model;
    if (chunk->has_usage) {
      summary.prompt_tokens = chunk->prompt_tokens;
      summary.completion_tokens = chunk->completion_tokens;
    }
    if (chunk->text_delta.empty() && chunk->finish_reason.empty() &&
        chunk->token_logprobs.empty()) {
      return true;  // role-only or usage-only chunks carry nothing for the caller
    }
    if (on_chunk && !on_chunk(*chunk)) {
      abort = absl::CancelledError(absl::StrCat(Prefix(), "stream cancelled by the caller"));
      return false;
    }
    return true;
  }

  static size_t OnWrite(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const size_t bytes = size * count;
    if (transfer->http_status == 0) {
      curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &transfer->http_status);
    }
    if (transfer->handle->cancelled()) {
      transfer->abort = absl::CancelledError(absl::StrCat(transfer->Prefix(), "cancelled"));
      return 0;
    }
    if (!transfer->stream || transfer->http_status != 200) {
      if (transfer->response.size() + bytes > kMaxResponseBytes) {
        transfer->abort = absl::InternalError(absl::StrCat(
            transfer->Prefix(), "malformed response: larger than ", kMaxResponseBytes, " bytes"));
        return 0;
      }
      transfer->response.append(data, bytes);
      return bytes;
    }
    const bool ok = transfer->sse.Feed(
        absl::string_view(data, bytes),
        [transfer](absl::string_view event) { return transfer->OnEvent(event); });
    if (!ok) {
      if (transfer->abort.ok()) {
        transfer->abort = absl::InternalError(
            absl::StrCat(transfer->Prefix(), "malformed response: a stream line is too long"));
      }
      return 0;
    }
    return bytes;
  }

  static size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<Transfer*>(user);
    const size_t bytes = size * count;
    absl::string_view line(data, bytes);
    if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
      transfer->retry_after = Trimmed(std::string(line.substr(12)));
    }
    return bytes;
  }

  // The outcome of a finished transfer.
  absl::StatusOr<ChatCompletion> Outcome(CURLcode code) {
    if (!abort.ok()) return abort;
    if (code == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(
          absl::StrCat(Prefix(), "no answer within ", timeout_ms, " ms (",
                       deadline_bounds ? "the request's deadline" : "upstreams[].timeout_ms", ")"));
    }
    if (code != CURLE_OK) {
      const std::string detail = error_buffer[0] != 0 ? error_buffer : curl_easy_strerror(code);
      return absl::UnavailableError(absl::StrCat(Prefix(), detail));
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http_status);
    if (http_status == 200) {
      if (stream) {
        if (!saw_done) {
          return absl::UnavailableError(absl::StrCat(Prefix(), "the stream ended before [DONE]"));
        }
        return std::move(summary);
      }
      absl::StatusOr<ChatCompletion> completion = ParseChatCompletion(response);
      if (!completion.ok()) {
        if (completion.status().code() == absl::StatusCode::kInvalidArgument) {
          return absl::InternalError(
              absl::StrCat(Prefix(), "malformed response: ", completion.status().message()));
        }
        return absl::Status(completion.status().code(),
                            absl::StrCat(Prefix(), completion.status().message()));
      }
      return completion;
    }
    const std::string message = ErrorMessageOf(response);
    const std::string what =
        absl::StrCat(Prefix(), "HTTP ", http_status, message.empty() ? "" : ": ", message);
    if (http_status == 429) {
      int64_t seconds = 0;
      std::string hint;
      if (absl::SimpleAtoi(retry_after, &seconds) && seconds >= 0) {
        hint = absl::StrCat(" (retry after ", seconds * 1000, " ms)");
      }
      return absl::ResourceExhaustedError(absl::StrCat(what, hint));
    }
    if (http_status >= 500) return absl::UnavailableError(what);
    if (http_status == 400) return absl::InvalidArgumentError(what);
    if (http_status == 401 || http_status == 403) {
      return absl::InternalError(absl::StrCat(what, " (the API key was refused)"));
    }
    if (http_status == 404) {
      return absl::InternalError(absl::StrCat(what, " (check base_url and model)"));
    }
    return absl::InternalError(what);
  }

  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (headers != nullptr) curl_slist_free_all(headers);
  }
};

absl::StatusOr<std::string> ReadApiKey(const slmgw::config::v1::UpstreamConfig& config) {
  const std::string where = absl::StrCat("upstreams '", config.name(), "': ");
  if (!config.api_key_env().empty()) {
    const char* value = std::getenv(config.api_key_env().c_str());
    const std::string key = value == nullptr ? "" : Trimmed(value);
    if (key.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, "api_key_env: environment variable ", config.api_key_env(),
                       value == nullptr ? " is not set" : " is empty"));
    }
    return key;
  }
  if (!config.api_key_file().empty()) {
    std::ifstream file(config.api_key_file(), std::ios::binary);
    if (!file) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, "api_key_file: cannot read ", config.api_key_file()));
    }
    std::string content(kMaxApiKeyFileBytes + 1, '\0');
    file.read(content.data(), content.size());
    content.resize(file.gcount());
    if (content.size() > kMaxApiKeyFileBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, "api_key_file: ", config.api_key_file(), " is larger than ",
                       kMaxApiKeyFileBytes, " bytes"));
    }
    const std::string key = Trimmed(content);
    if (key.empty() || key.find_first_of("\r\n") != std::string::npos) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, "api_key_file: ", config.api_key_file(),
                       key.empty() ? " is empty" : " holds more than one line"));
    }
    return key;
  }
  return std::string();
}

absl::StatusOr<std::unique_ptr<UpstreamClient>> UpstreamClient::Create(
    const slmgw::config::v1::UpstreamConfig& config) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (!absl::StartsWith(config.base_url(), "http://") &&
      !absl::StartsWith(config.base_url(), "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("upstreams '", config.name(),
                                                   "': base_url: expected http:// or https://, "
                                                   "got \"",
                                                   config.base_url(), "\""));
  }
  absl::StatusOr<std::string> key = ReadApiKey(config);
  if (!key.ok()) return key.status();
  auto client = std::unique_ptr<UpstreamClient>(new UpstreamClient(config, *std::move(key)));
  client->thread_ = std::thread([raw = client.get()] { raw->Run(); });
  return client;
}

UpstreamClient::UpstreamClient(const slmgw::config::v1::UpstreamConfig& config, std::string api_key)
    : config_(config),
      url_(absl::StrCat(absl::StripSuffix(config.base_url(), "/"), "/v1/chat/completions")),
      authorization_(api_key.empty() ? "" : absl::StrCat("Authorization: Bearer ", api_key)) {
  multi_ = curl_multi_init();
  waker_ = std::make_shared<Waker>();
  absl::MutexLock lock(&waker_->mutex);
  waker_->multi = static_cast<CURLM*>(multi_);
}

UpstreamClient::~UpstreamClient() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  {
    absl::MutexLock lock(&waker_->mutex);
    waker_->multi = nullptr;
  }
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void UpstreamClient::Wake() { waker_->Wake(); }

std::shared_ptr<UpstreamClient::Call> UpstreamClient::Complete(
    const std::vector<slmgw::v1::ChatMessage>& messages, const slmgw::v1::SamplingParams& sampling,
    std::chrono::system_clock::time_point deadline, Done done) {
  auto transfer = std::make_unique<Transfer>();
  transfer->body = BuildChatRequestJson(config_.model(), messages, sampling, /*stream=*/false);
  transfer->done = std::move(done);
  return Submit(std::move(transfer), deadline);
}

std::shared_ptr<UpstreamClient::Call> UpstreamClient::Stream(
    const std::vector<slmgw::v1::ChatMessage>& messages, const slmgw::v1::SamplingParams& sampling,
    std::chrono::system_clock::time_point deadline, OnChunk on_chunk, Done done) {
  auto transfer = std::make_unique<Transfer>();
  transfer->body = BuildChatRequestJson(config_.model(), messages, sampling, /*stream=*/true);
  transfer->stream = true;
  transfer->on_chunk = std::move(on_chunk);
  transfer->done = std::move(done);
  return Submit(std::move(transfer), deadline);
}

std::shared_ptr<UpstreamClient::Call> UpstreamClient::Submit(
    std::unique_ptr<Transfer> transfer, std::chrono::system_clock::time_point deadline) {
  transfer->name = config_.name();
  auto handle = std::make_shared<Handle>(waker_);
  transfer->handle = handle;
  const uint64_t configured =
      config_.timeout_ms() > 0 ? config_.timeout_ms() : kDefaultUpstreamTimeoutMs;
  const auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  transfer->timeout_ms = configured;
  if (remaining < static_cast<int64_t>(configured)) {
    transfer->deadline_bounds = true;
    transfer->timeout_ms = std::max<int64_t>(remaining, 0);
  }
  if (remaining <= 0) {
    transfer->immediate = absl::DeadlineExceededError(
        absl::StrCat(transfer->Prefix(), "the request's deadline passed before the call"));
  }
  const uint32_t max_concurrency =
      config_.max_concurrency() > 0 ? config_.max_concurrency() : kDefaultUpstreamMaxConcurrency;
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) {
      transfer->immediate =
          absl::CancelledError(absl::StrCat(transfer->Prefix(), "the client is shutting down"));
    } else if (in_flight_ >= static_cast<int>(max_concurrency)) {
      transfer->immediate = absl::ResourceExhaustedError(
          absl::StrCat(transfer->Prefix(), max_concurrency,
                       " requests in flight (upstreams[].max_concurrency)"));
    }
    if (!stopping_) {
      ++in_flight_;
      submitted_.push_back(std::move(transfer));
    }
  }
  if (transfer != nullptr) {  // stopping: the I/O thread may be gone
    transfer->done(transfer->immediate);
    return handle;
  }
  Wake();
  return handle;
}

void UpstreamClient::Run() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  absl::flat_hash_map<CURL*, std::unique_ptr<Transfer>> active;
  auto finish = [this](std::unique_ptr<Transfer> transfer, absl::StatusOr<ChatCompletion> result) {
    {
      absl::MutexLock lock(&mutex_);
      --in_flight_;
    }
    Done done = std::move(transfer->done);
    transfer.reset();  // release curl handles before the callback
    done(std::move(result));
  };
  while (true) {
    std::vector<std::unique_ptr<Transfer>> incoming;
    bool stopping;
    {
      absl::MutexLock lock(&mutex_);
      incoming.swap(submitted_);
      stopping = stopping_;
    }
    for (auto& transfer : incoming) {
      if (!transfer->immediate.ok()) {
        absl::Status status = transfer->immediate;
        finish(std::move(transfer), std::move(status));
        continue;
      }
      if (stopping || transfer->handle->cancelled()) {
        finish(std::move(transfer),
               absl::CancelledError(absl::StrCat(transfer->Prefix(), "cancelled")));
        continue;
      }
      Transfer* t = transfer.get();
      t->easy = curl_easy_init();
      t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
      t->headers = curl_slist_append(
          t->headers, t->stream ? "Accept: text/event-stream" : "Accept: application/json");
      t->headers = curl_slist_append(t->headers, "Expect:");
      if (!authorization_.empty()) {
        t->headers = curl_slist_append(t->headers, authorization_.c_str());
      }
      curl_easy_setopt(t->easy, CURLOPT_URL, url_.c_str());
      curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
      curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
      curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body.data());
      curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(t->body.size()));
      curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, &Transfer::OnWrite);
      curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
      curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
      curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
      curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->error_buffer);
      curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(std::max<uint64_t>(t->timeout_ms, 1)));
      curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(t->easy, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
      curl_multi_add_handle(multi, t->easy);
      active.emplace(t->easy, std::move(transfer));
    }
    // Cancelled calls end now, without waiting for the upstream.
    std::vector<CURL*> cancelled;
    for (const auto& [easy, transfer] : active) {
      if (stopping || transfer->handle->cancelled()) cancelled.push_back(easy);
    }
    for (CURL* easy : cancelled) {
      curl_multi_remove_handle(multi, easy);
      auto node = active.extract(easy);
      absl::Status status =
          absl::CancelledError(absl::StrCat(node.mapped()->Prefix(), "cancelled"));
      finish(std::move(node.mapped()), std::move(status));
    }
    if (stopping && active.empty()) {
      absl::MutexLock lock(&mutex_);
      if (submitted_.empty()) break;
      continue;
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg != CURLMSG_DONE) continue;
      CURL* easy = message->easy_handle;
      const CURLcode code = message->data.result;
      curl_multi_remove_handle(multi, easy);
      auto node = active.extract(easy);
      if (node.empty()) continue;
      absl::StatusOr<ChatCompletion> result = node.mapped()->Outcome(code);
      finish(std::move(node.mapped()), std::move(result));
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
}

}  // namespace slm::router::upstream
