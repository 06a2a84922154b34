// The WorkerConfig generation fields: defaults when absent, and each bad value refused with the
// field path (common/config/gateway_config.cc).
#include <string>

#include "common/config/gateway_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::config {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> Parse(
    const std::string& worker_fields) {
  const std::string yaml = "workers:\n  - name: gen\n    model_path: m.gguf\n" + worker_fields;
  return ParseGatewayConfig(yaml, "test.yaml", ConfigRole::kWorker);
}

TEST(GenerationConfigTest, DefaultsWhenAbsent) {
  auto config = Parse("");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& worker = (*config)->workers(0);
  EXPECT_EQ(worker.max_batch_sequences(), 8u);
  EXPECT_EQ(worker.kv_cache_mb(), 256u);
  EXPECT_EQ(worker.kv_dtype(), "bf16");
  EXPECT_EQ(worker.prefill_chunk_tokens(), 256u);
  EXPECT_EQ(worker.default_max_tokens(), 256u);
  EXPECT_FALSE(worker.truncate_long_prompts());
}

TEST(GenerationConfigTest, ExplicitValuesAreKept) {
  auto config = Parse(
      "    max_batch_sequences: 16\n    kv_cache_mb: 1024\n    kv_dtype: int8\n"
      "    prefill_chunk_tokens: 64\n    default_max_tokens: 32\n    truncate_long_prompts: "
      "true\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& worker = (*config)->workers(0);
  EXPECT_EQ(worker.max_batch_sequences(), 16u);
  EXPECT_EQ(worker.kv_cache_mb(), 1024u);
  EXPECT_EQ(worker.kv_dtype(), "int8");
  EXPECT_EQ(worker.prefill_chunk_tokens(), 64u);
  EXPECT_EQ(worker.default_max_tokens(), 32u);
  EXPECT_TRUE(worker.truncate_long_prompts());
}

TEST(GenerationConfigTest, BadValuesNameTheField) {
  const std::pair<std::string, std::string> cases[] = {
      {"    max_batch_sequences: 0\n", "workers[0].max_batch_sequences"},
      {"    max_batch_sequences: 1000\n", "workers[0].max_batch_sequences"},
      {"    kv_cache_mb: 0\n", "workers[0].kv_cache_mb"},
      {"    kv_dtype: fp8\n", "workers[0].kv_dtype"},
      {"    prefill_chunk_tokens: 0\n", "workers[0].prefill_chunk_tokens"},
      {"    default_max_tokens: 0\n", "workers[0].default_max_tokens"},
      {"    kv_cache_mb: many\n", "kv_cache_mb"},
  };
  for (const auto& [fields, path] : cases) {
    auto config = Parse(fields);
    ASSERT_FALSE(config.ok()) << fields;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << fields;
    EXPECT_THAT(config.status().message(), HasSubstr(path)) << fields;
  }
}

}  // namespace
}  // namespace slm::config
