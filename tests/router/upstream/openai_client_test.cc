// The OpenAI-compatible client against a scripted HTTP server on loopback (the paid service's
// stand-in): success unary and streamed, 429, 5xx, a hang (bounded by the deadline), malformed
// JSON, a stream cut short, cancellation, the concurrency limit and the API key sources.
#include "router/upstream/openai_client.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/router/upstream/fake_http_server.h"

namespace slm::router::upstream {
namespace {

using slm::testing::FakeHttpServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAnswer[] = R"({"model": "big", "choices": [{"message": {"content": "Paris"},
  "finish_reason": "stop", "logprobs": {"content": [{"logprob": -0.5}]}}],
  "usage": {"prompt_tokens": 12, "completion_tokens": 1}})";

std::vector<slmgw::v1::ChatMessage> Question() {
  std::vector<slmgw::v1::ChatMessage> messages(1);
  messages[0].set_role("user");
  messages[0].set_content("capital of France?");
  return messages;
}

slmgw::config::v1::UpstreamConfig Config(const FakeHttpServer& server) {
  slmgw::config::v1::UpstreamConfig config;
  config.set_name("big-llm");
  config.set_base_url(server.base_url() + "/");
  config.set_model("big-model");
  config.set_timeout_ms(10000);
  config.set_max_concurrency(4);
  return config;
}

std::unique_ptr<UpstreamClient> MakeClient(const slmgw::config::v1::UpstreamConfig& config) {
  auto client = UpstreamClient::Create(config);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// Waits for one call's outcome (bounded: a broken client fails the test instead of hanging it).
struct Outcome {
  absl::Notification done;
  std::optional<absl::StatusOr<ChatCompletion>> result;
  std::vector<std::string> deltas;
  UpstreamClient::Done Callback() {
    return [this](absl::StatusOr<ChatCompletion> r) {
      result = std::move(r);
      done.Notify();
    };
  }
  const absl::StatusOr<ChatCompletion>& Wait() {
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
    if (!result.has_value()) result = absl::InternalError("no outcome");
    return *result;
  }
};

std::chrono::system_clock::time_point In(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

TEST(UpstreamClient, UnaryCompletionSendsTheRequestAndParsesTheAnswer) {
  FakeHttpServer server(
      [](const FakeHttpServer::Request&) { return FakeHttpServer::Json(200, kAnswer); });
  auto client = MakeClient(Config(server));
  slmgw::v1::SamplingParams sampling;
  sampling.set_max_tokens(8);
  Outcome outcome;
  client->Complete(Question(), sampling, In(5000), outcome.Callback());
  const auto& result = outcome.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->text, "Paris");
  EXPECT_EQ(result->finish_reason, "stop");
  EXPECT_THAT(result->token_logprobs, ElementsAre(-0.5f));
  EXPECT_EQ(result->prompt_tokens, 12u);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/v1/chat/completions");
  EXPECT_EQ(requests[0].headers.count("authorization"), 0u);  // no key configured
  const auto body = nlohmann::json::parse(requests[0].body);
  EXPECT_EQ(body["model"], "big-model");
  EXPECT_EQ(body["max_tokens"], 8);
  EXPECT_EQ(body["messages"][0]["content"], "capital of France?");
}

TEST(UpstreamClient, StreamDeliversChunksInOrderThenTheSummary) {
  FakeHttpServer server([](const FakeHttpServer::Request&) {
    auto reply = FakeHttpServer::Events(
        {R"({"choices": [{"delta": {"role": "assistant"}}]})",
         R"({"choices": [{"delta": {"content": "Pa"}, "logprobs": {"content": [{"logprob": -0.1}]}}]})",
         R"({"choices": [{"delta": {"content": "ris"}}]})",
         R"({"choices": [{"delta": {}, "finish_reason": "stop"}]})",
         R"({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})", "[DONE]"});
    reply.pause = std::chrono::milliseconds(5);
    return reply;
  });
  auto client = MakeClient(Config(server));
  Outcome outcome;
  client->Stream(
      Question(), slmgw::v1::SamplingParams(), In(5000),
      [&outcome](const ChatChunk& chunk) {
        outcome.deltas.push_back(chunk.text_delta + "|" + chunk.finish_reason);
        return true;
      },
      outcome.Callback());
  const auto& result = outcome.Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(outcome.deltas, ElementsAre("Pa|", "ris|", "|stop"));
  EXPECT_EQ(result->text, "Paris");
  EXPECT_EQ(result->completion_tokens, 2u);
  EXPECT_THAT(result->token_logprobs, ElementsAre(-0.1f));
  EXPECT_EQ(nlohmann::json::parse(server.requests().at(0).body)["stream"], true);
}

TEST(UpstreamClient, HttpErrorsMapToCodes) {
  struct Case {
    int status;
    std::string body;
    absl::StatusCode code;
    std::string text;
  };
  const std::vector<Case> cases = {
      {429, R"({"error": {"message": "Rate limit reached"}})", absl::StatusCode::kResourceExhausted,
       "retry after 2000 ms"},
      {500, R"({"error": {"message": "boom"}})", absl::StatusCode::kUnavailable, "HTTP 500: boom"},
      {503, "overloaded", absl::StatusCode::kUnavailable, "HTTP 503: overloaded"},
      {400, R"({"error": {"message": "bad max_tokens"}})", absl::StatusCode::kInvalidArgument,
       "bad max_tokens"},
      {401, R"({"error": {"message": "invalid key"}})", absl::StatusCode::kInternal,
       "API key was refused"},
      {200, R"({"choices": [{"message": )", absl::StatusCode::kInternal, "malformed response"},
  };
  for (const Case& c : cases) {
    FakeHttpServer server([&c](const FakeHttpServer::Request&) {
      auto reply = FakeHttpServer::Json(c.status, c.body);
      reply.headers.emplace_back("Retry-After", "2");
      return reply;
    });
    auto client = MakeClient(Config(server));
    Outcome outcome;
    client->Complete(Question(), slmgw::v1::SamplingParams(), In(5000), outcome.Callback());
    const auto& result = outcome.Wait();
    EXPECT_EQ(result.status().code(), c.code) << c.status << " " << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.text));
    EXPECT_THAT(std::string(result.status().message()), HasSubstr("upstream 'big-llm'"));
  }
}

TEST(UpstreamClient, HangEndsAtTheDeadlineOrTimeout) {
  FakeHttpServer server([](const FakeHttpServer::Request&) {
    FakeHttpServer::Reply reply;
    reply.status = 0;
    reply.hang = true;
    return reply;
  });
  auto config = Config(server);
  auto client = MakeClient(config);
  Outcome by_deadline;
  client->Complete(Question(), slmgw::v1::SamplingParams(), In(200), by_deadline.Callback());
  EXPECT_EQ(by_deadline.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(by_deadline.Wait().status().message()), HasSubstr("deadline"));

  config.set_timeout_ms(150);
  auto short_client = MakeClient(config);
  Outcome by_timeout;
  short_client->Stream(
      Question(), slmgw::v1::SamplingParams(), In(60000), [](const ChatChunk&) { return true; },
      by_timeout.Callback());
  EXPECT_EQ(by_timeout.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(by_timeout.Wait().status().message()), HasSubstr("timeout_ms"));

  Outcome already_late;
  client->Complete(Question(), slmgw::v1::SamplingParams(), In(-5), already_late.Callback());
  EXPECT_EQ(already_late.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(UpstreamClient, CancelEndsAHangingCallAndClosesTheConnection) {
  FakeHttpServer server([](const FakeHttpServer::Request&) {
    auto reply = FakeHttpServer::Events({R"({"choices": [{"delta": {"content": "x"}}]})"});
    reply.hang = true;
    return reply;
  });
  auto client = MakeClient(Config(server));
  Outcome outcome;
  absl::Notification first_chunk;
  auto call = client->Stream(
      Question(), slmgw::v1::SamplingParams(), In(30000),
      [&first_chunk](const ChatChunk&) {
        first_chunk.Notify();
        return true;
      },
      outcome.Callback());
  ASSERT_TRUE(first_chunk.WaitForNotificationWithTimeout(absl::Seconds(10)));
  call->Cancel();
  EXPECT_EQ(outcome.Wait().status().code(), absl::StatusCode::kCancelled);
  for (int i = 0; i < 500 && server.client_hangups() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(server.client_hangups(), 1);
}

TEST(UpstreamClient, StreamThatEndsWithoutDoneOrWithBadJsonFails) {
  for (const auto& [events, code, text] :
       std::vector<std::tuple<std::vector<std::string>, absl::StatusCode, std::string>>{
           {{R"({"choices": [{"delta": {"content": "Pa"}}]})"},
            absl::StatusCode::kUnavailable,
            "ended before [DONE]"},
           {{R"({"choices": [{"delta": {"content": "Pa"}}]})", "{oops"},
            absl::StatusCode::kInternal,
            "malformed response"},
           {{R"({"error": {"message": "engine crashed"}})"},
            absl::StatusCode::kUnavailable,
            "engine crashed"}}) {
    FakeHttpServer server(
        [&events](const FakeHttpServer::Request&) { return FakeHttpServer::Events(events); });
    auto client = MakeClient(Config(server));
    Outcome outcome;
    client->Stream(
        Question(), slmgw::v1::SamplingParams(), In(5000),
        [&outcome](const ChatChunk& chunk) {
          outcome.deltas.push_back(chunk.text_delta);
          return true;
        },
        outcome.Callback());
    EXPECT_EQ(outcome.Wait().status().code(), code) << outcome.Wait().status();
    EXPECT_THAT(std::string(outcome.Wait().status().message()), HasSubstr(text));
  }
}

TEST(UpstreamClient, UnreachableServiceIsUnavailable) {
  std::string base_url;
  {
    FakeHttpServer closed([](const FakeHttpServer::Request&) { return FakeHttpServer::Reply(); });
    base_url = closed.base_url();
  }
  slmgw::config::v1::UpstreamConfig config;
  config.set_name("gone");
  config.set_base_url(base_url);
  config.set_model("m");
  auto client = MakeClient(config);
  Outcome outcome;
  client->Complete(Question(), slmgw::v1::SamplingParams(), In(5000), outcome.Callback());
  EXPECT_EQ(outcome.Wait().status().code(), absl::StatusCode::kUnavailable);
}

TEST(UpstreamClient, ConcurrencyBeyondTheLimitIsResourceExhausted) {
  FakeHttpServer server([](const FakeHttpServer::Request&) {
    FakeHttpServer::Reply reply;
    reply.status = 0;
    reply.hang = true;
    return reply;
  });
  auto config = Config(server);
  config.set_max_concurrency(2);
  auto client = MakeClient(config);
  Outcome first, second, third;
  auto a = client->Complete(Question(), {}, In(30000), first.Callback());
  auto b = client->Complete(Question(), {}, In(30000), second.Callback());
  client->Complete(Question(), {}, In(30000), third.Callback());
  EXPECT_EQ(third.Wait().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(third.Wait().status().message()), HasSubstr("max_concurrency"));
  a->Cancel();
  EXPECT_EQ(first.Wait().status().code(), absl::StatusCode::kCancelled);
  b->Cancel();
  EXPECT_EQ(second.Wait().status().code(), absl::StatusCode::kCancelled);
}

TEST(UpstreamClient, DestroyingTheClientCancelsOutstandingCalls) {
  FakeHttpServer server([](const FakeHttpServer::Request&) {
    FakeHttpServer::Reply reply;
    reply.status = 0;
    reply.hang = true;
    return reply;
  });
  Outcome outcome;
  {
    auto client = MakeClient(Config(server));
    client->Complete(Question(), {}, In(30000), outcome.Callback());
  }
  EXPECT_EQ(outcome.Wait().status().code(), absl::StatusCode::kCancelled);
}

TEST(UpstreamClient, ApiKeyFromEnvironmentAndFileIsSentAndNeverInErrors) {
  FakeHttpServer server([](const FakeHttpServer::Request&) {
    return FakeHttpServer::Json(401, R"({"error": {"message": "no such key"}})");
  });
  auto config = Config(server);
  config.set_api_key_env("SLM_TEST_UPSTREAM_KEY");
  ::unsetenv("SLM_TEST_UPSTREAM_KEY");
  auto missing = UpstreamClient::Create(config);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("environment variable SLM_TEST_UPSTREAM_KEY is not set"));

  ::setenv("SLM_TEST_UPSTREAM_KEY", "sk-env-secret\n", 1);
  auto from_env = MakeClient(config);
  Outcome env_outcome;
  from_env->Complete(Question(), {}, In(5000), env_outcome.Callback());
  env_outcome.Wait();
  EXPECT_EQ(server.requests().at(0).headers.at("authorization"), "Bearer sk-env-secret");
  ::unsetenv("SLM_TEST_UPSTREAM_KEY");

  const std::string path = ::testing::TempDir() + "/upstream_key.txt";
  { std::ofstream(path) << "  sk-file-secret \n"; }
  config.clear_api_key_env();
  config.set_api_key_file(path);
  auto from_file = MakeClient(config);
  Outcome file_outcome;
  from_file->Complete(Question(), {}, In(5000), file_outcome.Callback());
  const auto& result = file_outcome.Wait();
  EXPECT_EQ(server.requests().at(1).headers.at("authorization"), "Bearer sk-file-secret");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("API key was refused"));
  EXPECT_THAT(std::string(result.status().message()), Not(HasSubstr("sk-")));

  { std::ofstream(path) << "\n"; }
  auto empty = UpstreamClient::Create(config);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("is empty"));
  EXPECT_THAT(std::string(empty.status().message()), Not(HasSubstr("sk-")));
  config.set_api_key_file(path + ".missing");
  EXPECT_THAT(std::string(UpstreamClient::Create(config).status().message()),
              HasSubstr("api_key_file: cannot read"));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace slm::router::upstream
