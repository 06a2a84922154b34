// The OpenAI wire format: request bodies, responses, stream chunks, SSE framing and the label
// prompt's answer parsing, against hand-written JSON (the reference) and bad input.
#include "router/upstream/chat_json.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/upstream/label_prompt.h"

namespace slm::router::upstream {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatEq;
using ::testing::HasSubstr;

slmgw::v1::ChatMessage Message(const std::string& role, const std::string& content) {
  slmgw::v1::ChatMessage message;
  message.set_role(role);
  message.set_content(content);
  return message;
}

TEST(ChatJson, RequestCarriesModelMessagesAndOnlySetSampling) {
  slmgw::v1::SamplingParams sampling;
  sampling.set_max_tokens(32);
  sampling.set_temperature(0.5f);
  sampling.set_top_k(40);  // no OpenAI equivalent: not sent
  sampling.add_stop("\n\n");
  sampling.set_return_logprobs(true);
  const auto body = nlohmann::json::parse(BuildChatRequestJson(
      "big-model", {Message("system", "be brief"), Message("user", "hi \xff")}, sampling, false));
  EXPECT_EQ(body["model"], "big-model");
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][1]["content"], "hi \xEF\xBF\xBD");  // invalid UTF-8 replaced
  EXPECT_EQ(body["max_tokens"], 32);
  EXPECT_FLOAT_EQ(body["temperature"].get<float>(), 0.5f);
  EXPECT_EQ(body["stop"][0], "\n\n");
  EXPECT_EQ(body["logprobs"], true);
  EXPECT_FALSE(body.contains("top_k"));
  EXPECT_FALSE(body.contains("top_p"));
  EXPECT_FALSE(body.contains("seed"));
  EXPECT_FALSE(body.contains("stream"));

  const auto streamed = nlohmann::json::parse(
      BuildChatRequestJson("m", {Message("user", "x")}, slmgw::v1::SamplingParams(), true));
  EXPECT_EQ(streamed["stream"], true);
  EXPECT_EQ(streamed["stream_options"]["include_usage"], true);
  EXPECT_FALSE(streamed.contains("max_tokens"));
}

TEST(ChatJson, ParsesACompletionWithLogprobsAndUsage) {
  auto completion = ParseChatCompletion(R"({
    "id": "c1", "model": "big-model-2024",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                 "finish_reason": "stop",
                 "logprobs": {"content": [{"token": "Hello", "logprob": -0.25},
                                          {"token": " there", "logprob": -1.5}]}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})");
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_EQ(completion->text, "Hello there");
  EXPECT_EQ(completion->finish_reason, "stop");
  EXPECT_EQ(completion->model, "big-model-2024");
  EXPECT_THAT(completion->token_logprobs, ElementsAre(FloatEq(-0.25f), FloatEq(-1.5f)));
  EXPECT_EQ(completion->prompt_tokens, 9u);
  EXPECT_EQ(completion->completion_tokens, 2u);
}

TEST(ChatJson, BadCompletionsAreErrorsNotCrashes) {
  const std::vector<std::string> bad = {
      "",
      "{",
      "[]",
      "null",
      R"({"choices": []})",
      R"({"choices": [{}]})",
      R"({"choices": [{"message": {"content": 5}}]})",
      R"({"choices": [{"message": {"content": "x"}, "logprobs": {"content": [{"logprob": "a"}]}}]})",
      R"({"choices": "many"})"};
  for (const std::string& body : bad) {
    auto completion = ParseChatCompletion(body);
    EXPECT_EQ(completion.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
  auto error = ParseChatCompletion(R"({"error": {"message": "model overloaded"}})");
  EXPECT_EQ(error.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(error.status().message()), HasSubstr("model overloaded"));
  // Odd but valid: null content is an empty answer; huge counts saturate.
  auto empty = ParseChatCompletion(
      R"({"choices": [{"message": {"content": null}}], "usage": {"prompt_tokens": 99999999999}})");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->text, "");
  EXPECT_EQ(empty->prompt_tokens, 4294967295u);
}

TEST(ChatJson, ParsesStreamChunks) {
  auto first = ParseChatChunk(
      R"({"model": "m", "choices": [{"delta": {"role": "assistant", "content": "He"}}]})");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->text_delta, "He");
  EXPECT_EQ(first->finish_reason, "");
  auto last = ParseChatChunk(R"({"choices": [{"delta": {}, "finish_reason": "length"}]})");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->finish_reason, "length");
  auto usage =
      ParseChatChunk(R"({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})");
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_TRUE(usage->has_usage);
  EXPECT_EQ(usage->completion_tokens, 4u);
  for (const char* bad : {"not json", R"({"choices": [{"delta": "x"}]})", R"({"other": 1})",
                          R"({"choices": [{"delta": {"content": []}}]})"}) {
    EXPECT_EQ(ParseChatChunk(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ChatJson, ErrorMessageOfBodies) {
  EXPECT_EQ(ErrorMessageOf(R"({"error": {"message": "Rate limit reached", "type": "x"}})"),
            "Rate limit reached");
  EXPECT_EQ(ErrorMessageOf(R"({"error": "plain"})"), "plain");
  EXPECT_EQ(ErrorMessageOf("<html>bad gateway</html>"), "<html>bad gateway</html>");
  EXPECT_EQ(ErrorMessageOf(std::string(300, 'a'), 10), "aaaaaaaaaa...");
  EXPECT_EQ(ErrorMessageOf(""), "");
}

std::vector<std::string> FeedAll(SseParser& parser, const std::vector<std::string>& pieces,
                                 bool* ok = nullptr) {
  std::vector<std::string> events;
  bool all = true;
  for (const std::string& piece : pieces) {
    all = all && parser.Feed(piece, [&](absl::string_view data) {
      events.emplace_back(data);
      return true;
    });
  }
  if (ok != nullptr) *ok = all;
  return events;
}

TEST(SseParser, SplitsEventsAcrossArbitraryPiecesAndLineEnds) {
  const std::string stream =
      ": keep-alive comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\n"
      "data:nospace\r\rdata: [DONE]\n\n";
  const std::vector<std::string> expected = {"{\"a\":1}", "line1\nline2", "nospace", "[DONE]"};
  SseParser whole;
  EXPECT_EQ(FeedAll(whole, {stream}), expected);
  for (size_t split = 1; split < stream.size(); ++split) {  // every two-piece split
    SseParser parser;
    EXPECT_EQ(FeedAll(parser, {stream.substr(0, split), stream.substr(split)}), expected)
        << "split at " << split;
  }
  SseParser bytewise;
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  EXPECT_EQ(FeedAll(bytewise, bytes), expected);
}

TEST(SseParser, UnterminatedEventIsNotDeliveredAndLongLinesAreRefused) {
  SseParser parser;
  EXPECT_TRUE(FeedAll(parser, {"data: partial"}).empty());
  SseParser small(16);
  bool ok = true;
  FeedAll(small, {"data: " + std::string(100, 'x') + "\n\n"}, &ok);
  EXPECT_FALSE(ok);
  SseParser stop;
  EXPECT_FALSE(stop.Feed("data: 1\n\ndata: 2\n\n", [](absl::string_view) { return false; }));
}

TEST(LabelPrompt, PromptListsTheLabels) {
  auto messages = ClassificationPrompt({"positive", "negative"}, "great film");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].role(), "system");
  EXPECT_THAT(messages[0].content(), HasSubstr("labels: positive, negative."));
  EXPECT_EQ(messages[1].content(), "great film");
  EXPECT_EQ(ClassificationSampling().max_tokens(), kLabelMaxTokens);
}

TEST(LabelPrompt, ParsesAnswersIntoLabels) {
  const std::vector<std::string> labels = {"Positive", "negative", "neutral_mixed"};
  for (const auto& [answer, label] : std::vector<std::pair<std::string, std::string>>{
           {"positive", "Positive"},
           {"  NEGATIVE.\n", "negative"},
           {"\"neutral_mixed\"", "neutral_mixed"},
           {"**Negative**", "negative"},
           {"Label: positive", "Positive"},
           {"The sentiment is negative.", "negative"}}) {
    auto parsed = ParseLabel(answer, labels);
    ASSERT_TRUE(parsed.ok()) << answer << ": " << parsed.status();
    EXPECT_EQ(*parsed, label) << answer;
  }
  EXPECT_THAT(std::string(ParseLabel("positive or negative", labels).status().message()),
              HasSubstr("more than one label"));
  EXPECT_THAT(std::string(ParseLabel("I cannot say", labels).status().message()),
              HasSubstr("none of the labels"));
  EXPECT_FALSE(ParseLabel("positively", labels).ok());  // whole words only
  EXPECT_FALSE(ParseLabel("", labels).ok());
}

}  // namespace
}  // namespace slm::router::upstream
