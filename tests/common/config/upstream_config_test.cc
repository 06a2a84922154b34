// Validation of upstreams and of routes' upstream, cascade_threshold and labels
// (common/config/upstream_config.cc), through the public ParseGatewayConfig.
#include <string>

#include "common/config/gateway_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::config {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"(pools:
  - name: p
    endpoints: ["127.0.0.1:5000"]
upstreams:
  - name: big
    base_url: https://api.example.com
    model: big-model
    api_key_env: BIG_API_KEY
routes:
  - name: sentiment
    tasks: [sentiment]
    pool: p
    cascade_threshold: 0.8
    fallback: [sentiment-big]
  - name: sentiment-big
    upstream: big
    labels: [positive, negative]
default_route: sentiment
)";

std::string ErrorOf(const std::string& yaml) {
  auto config = ParseGatewayConfig(yaml, "cfg.yaml", ConfigRole::kRouter);
  return config.ok() ? "" : std::string(config.status().message());
}

// kGood with one substring replaced (which must occur).
std::string Replace(const std::string& from, const std::string& to) {
  std::string yaml = kGood;
  const size_t at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  return yaml;
}

TEST(UpstreamConfigTest, AcceptsUpstreamRoutesAndAppliesDefaults) {
  auto config = ParseGatewayConfig(kGood, "cfg.yaml", ConfigRole::kRouter);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ((*config)->upstreams_size(), 1);
  EXPECT_EQ((*config)->upstreams(0).timeout_ms(), 30000u);
  EXPECT_EQ((*config)->upstreams(0).max_concurrency(), 16u);
  EXPECT_EQ((*config)->routes(1).upstream(), "big");
  EXPECT_EQ((*config)->routes(1).pool(), "");
  EXPECT_FLOAT_EQ((*config)->routes(0).cascade_threshold(), 0.8f);
  auto all_in_one = ParseGatewayConfig(kGood, "cfg.yaml", ConfigRole::kAllInOne);
  EXPECT_TRUE(all_in_one.ok()) << all_in_one.status();
}

TEST(UpstreamConfigTest, RejectsBadUpstreams) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Replace("base_url: https://api.example.com", "base_url: ftp://x"),
       "upstreams[0].base_url: expected http://"},
      {Replace("base_url: https://api.example.com", "base_url: \"http://\""),
       "upstreams[0].base_url: expected a host"},
      {Replace("base_url: https://api.example.com", "base_url: http://h/v1?x=1"), "no query"},
      {Replace("    model: big-model\n", ""), "upstreams[0].model: required field missing"},
      {Replace("api_key_env: BIG_API_KEY", "api_key_env: BIG_API_KEY\n    api_key_file: /k"),
       "upstreams[0].api_key_file: set api_key_env or api_key_file, not both"},
      {Replace("api_key_env: BIG_API_KEY", "api_key_env: 1BAD-NAME"),
       "upstreams[0].api_key_env: expected an environment variable name"},
      {Replace("model: big-model", "model: big-model\n    timeout_ms: 700000"),
       "upstreams[0].timeout_ms: expected 1..600000, got 700000"},
      {Replace("model: big-model", "model: big-model\n    max_concurrency: 100001"),
       "upstreams[0].max_concurrency"},
      {Replace("upstreams:\n", "upstreams:\n  - name: big\n    base_url: http://a\n    model: m\n"),
       "upstreams[1].name: duplicate upstream name \"big\""},
      {Replace("  - name: big\n", "  - name: \"big one\"\n"), "upstreams[0].name: expected a name"},
  };
  for (const auto& [yaml, expected] : cases) {
    EXPECT_THAT(ErrorOf(yaml), HasSubstr(expected)) << yaml;
  }
}

TEST(UpstreamConfigTest, RejectsBadRoutes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Replace("    upstream: big\n", "    upstream: bigg\n"),
       "cfg.yaml:16:5: routes[1].upstream: unknown upstream \"bigg\" (upstreams: big)"},
      {Replace("    upstream: big\n", "    upstream: big\n    pool: p\n"),
       "routes[1].upstream: set either pool or upstream, not both"},
      {Replace("    upstream: big\n", ""), "routes[1].pool: required field missing"},
      {Replace("cascade_threshold: 0.8", "cascade_threshold: 1.5"),
       "routes[0].cascade_threshold: expected a confidence in [0, 1], got 1.5"},
      {Replace("    fallback: [sentiment-big]\n", ""),
       "routes[0].cascade_threshold: set, but the route has no fallback"},
      {Replace("labels: [positive, negative]", "labels: [positive, positive]"),
       "routes[1].labels[1]: duplicate label \"positive\""},
      {Replace("labels: [positive, negative]", "labels: [\"\"]"),
       "routes[1].labels[0]: must not be empty"},
  };
  for (const auto& [yaml, expected] : cases) {
    EXPECT_THAT(ErrorOf(yaml), HasSubstr(expected)) << yaml;
  }
}

TEST(UpstreamConfigTest, WorkersHaveNoUpstreams) {
  auto config = ParseGatewayConfig(R"(workers:
  - name: w
    model_path: m.gguf
upstreams:
  - name: big
    base_url: http://127.0.0.1:1
    model: m
)",
                                   "w.yaml", ConfigRole::kWorker);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("upstreams: must be empty"));
}

}  // namespace
}  // namespace slm::config
