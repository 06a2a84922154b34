#include "common/config/gateway_config.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace slm::config {
namespace {

using ::slmgw::config::v1::GatewayConfig;
using ::testing::HasSubstr;

// A small valid all-in-one configuration; line numbers matter to the tests below.
constexpr char kValid[] = R"(server:
  listen_address: "0.0.0.0:50051"
workers:
  - name: sentiment
    model_path: sentiment.gguf
  - name: ner
    model_path: ner.gguf
    dtype: bf16
    threads: 2
pools:
  - name: sentiment
    endpoints: ["inprocess:sentiment", "10.0.0.7:50052"]
  - name: ner
    endpoints: ["inprocess:ner"]
routes:
  - name: sentiment
    tasks: [sentiment]
    pool: sentiment
  - name: ner
    tasks: [ner, pos]
    pool: ner
default_route: sentiment
)";

// kValid with the first occurrence of `from` replaced by `to`.
std::string Edit(std::string_view from, std::string_view to) {
  std::string text = kValid;
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::string ErrorOf(const std::string& yaml, ConfigRole role = ConfigRole::kAllInOne) {
  auto config = ParseGatewayConfig(yaml, "cfg.yaml", role);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
  return std::string(config.status().message());
}

GatewayConfig FromTextFormat(const std::string& text) {
  GatewayConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  return config;
}

// Every field set in `expected` has that value in `actual` (fields the schema gains later, with
// their own defaults, do not break these tests).
void ExpectEqualConfigs(const GatewayConfig& expected, const GatewayConfig& actual) {
  std::string report;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_scope(google::protobuf::util::MessageDifferencer::PARTIAL);
  differencer.ReportDifferencesToString(&report);
  EXPECT_TRUE(differencer.Compare(expected, actual)) << report;
  // PARTIAL ignores extra repeated elements; the counts must match too.
  EXPECT_EQ(actual.workers_size(), expected.workers_size());
  EXPECT_EQ(actual.pools_size(), expected.pools_size());
  EXPECT_EQ(actual.routes_size(), expected.routes_size());
}

TEST(GatewayConfigTest, ValidConfigGetsDefaults) {
  auto config = ParseGatewayConfig(kValid, "cfg.yaml", ConfigRole::kAllInOne);
  ASSERT_TRUE(config.ok()) << config.status();
  ExpectEqualConfigs(FromTextFormat(R"pb(
                       server {
                         listen_address: "0.0.0.0:50051"
                         metrics_address: "127.0.0.1:9464"
                         drain_timeout_ms: 10000
                       }
                       limits { max_text_bytes: 16384 default_deadline_ms: 10000 }
                       workers {
                         name: "sentiment"
                         model_path: "sentiment.gguf"
                         dtype: "f32"
                         threads: 1
                         concurrency: 1
                         max_queue_depth: 64
                       }
                       workers {
                         name: "ner"
                         model_path: "ner.gguf"
                         dtype: "bf16"
                         threads: 2
                         concurrency: 1
                         max_queue_depth: 64
                       }
                       pools {
                         name: "sentiment"
                         endpoints: [ "inprocess:sentiment", "10.0.0.7:50052" ]
                       }
                       pools { name: "ner" endpoints: "inprocess:ner" }
                       routes { name: "sentiment" tasks: "sentiment" pool: "sentiment" }
                       routes {
                         name: "ner"
                         tasks: [ "ner", "pos" ]
                         pool: "ner"
                       }
                       default_route: "sentiment"
                     )pb"),
                     **config);
}

TEST(GatewayConfigTest, ExplicitValuesAreKeptEvenZero) {
  std::string yaml =
      absl::StrCat("limits: {max_text_bytes: 100, default_deadline_ms: 250}\n", kValid);
  yaml = absl::StrReplaceAll(yaml, {{"  listen_address: \"0.0.0.0:50051\"\n",
                                     "  listen_address: \"[::1]:0\"\n"
                                     "  metrics_address: \"localhost:0\"\n"
                                     "  drain_timeout_ms: 0\n"},
                                    {"    threads: 2\n",
                                     "    threads: 256\n    concurrency: 256\n"
                                     "    max_queue_depth: 0\n    max_input_tokens: 128\n"}});
  auto config = ParseGatewayConfig(yaml, "cfg.yaml", ConfigRole::kAllInOne);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->server().listen_address(), "[::1]:0");
  EXPECT_EQ((*config)->server().metrics_address(), "localhost:0");
  EXPECT_EQ((*config)->server().drain_timeout_ms(), 0u);
  EXPECT_EQ((*config)->limits().max_text_bytes(), 100u);
  EXPECT_EQ((*config)->limits().default_deadline_ms(), 250u);
  EXPECT_EQ((*config)->workers(1).threads(), 256u);
  EXPECT_EQ((*config)->workers(1).concurrency(), 256u);
  EXPECT_EQ((*config)->workers(1).max_queue_depth(), 0u);
  EXPECT_EQ((*config)->workers(1).max_input_tokens(), 128u);
}

TEST(GatewayConfigTest, EmbeddedDefaultValidatesForAllInOne) {
  auto config = ParseGatewayConfig(DefaultConfigYaml(), "default.yaml", ConfigRole::kAllInOne);
  ASSERT_TRUE(config.ok()) << config.status();
  ExpectEqualConfigs(
      FromTextFormat(R"pb(
        server {
          listen_address: "127.0.0.1:50051"
          metrics_address: "127.0.0.1:9464"
          drain_timeout_ms: 10000
        }
        limits { max_text_bytes: 16384 default_deadline_ms: 10000 }
        workers {
          name: "sentiment"
          model_path: "sentiment-sst2.gguf"
          dtype: "int8"
          threads: 1
          concurrency: 2
          max_queue_depth: 64
        }
        workers {
          name: "banking"
          model_path: "banking77-intent.gguf"
          dtype: "int8"
          threads: 1
          concurrency: 1
          max_queue_depth: 64
        }
        workers {
          name: "entities"
          model_path: "entities-wnut17.gguf"
          dtype: "int8"
          threads: 1
          concurrency: 1
          max_queue_depth: 64
        }
        workers {
          name: "general-small"
          model_path: "general-small.gguf"
          dtype: "int8"
          max_batch_sequences: 4
          kv_cache_mb: 8
          kv_dtype: "bf16"
          default_max_tokens: 48
          truncate_long_prompts: true
        }
        workers {
          name: "general-large"
          model_path: "general-large.gguf"
          dtype: "int8"
          max_batch_sequences: 4
          kv_cache_mb: 16
          kv_dtype: "bf16"
          default_max_tokens: 48
          truncate_long_prompts: true
        }
        pools { name: "sentiment" endpoints: "inprocess:sentiment" }
        pools { name: "banking" endpoints: "inprocess:banking" }
        pools { name: "entities" endpoints: "inprocess:entities" }
        pools { name: "general-small" endpoints: "inprocess:general-small" }
        pools { name: "general-large" endpoints: "inprocess:general-large" }
        routes { name: "sentiment" tasks: "sentiment" pool: "sentiment" deadline_ms: 5000 }
        routes { name: "entities" tasks: "entities" pool: "entities" deadline_ms: 5000 }
        routes { name: "banking" tasks: "banking" pool: "banking" deadline_ms: 5000 }
        routes {
          name: "general"
          tasks: "generate"
          pool: "general-small"
          deadline_ms: 8000
          cascade_threshold: 0.1
          fallback: "general-large"
        }
        routes {
          name: "general-large"
          tasks: "generate-large"
          pool: "general-large"
          deadline_ms: 8000
        }
        default_route: "general"
        classification {
          fast { model_path: "router-clinc150-ngram.gguf" threshold: 0.7 }
          encoder { model_path: "router-clinc150-encoder.gguf" dtype: "int8" threads: 1 }
          out_of_domain { label: "oos" threshold: 0.6 route: "general-large" }
        }
      )pb"),
      **config);
  // Every CLINC150 domain (fast tier) and intent (encoder tier, 150 + oos) is mapped: banking
  // and credit cards to banking, the rest to general.
  const auto& classification = (*config)->classification();
  EXPECT_EQ(classification.fast().labels().size(), 10u);
  EXPECT_EQ(classification.fast().labels().at("banking"), "banking");
  EXPECT_EQ(classification.fast().labels().at("credit_cards"), "banking");
  EXPECT_EQ(classification.fast().labels().at("travel"), "general");
  EXPECT_EQ(classification.encoder().labels().size(), 150u);
  int banking = 0;
  for (const auto& [intent, route] : classification.encoder().labels()) {
    EXPECT_TRUE(route == "banking" || route == "general") << intent << " -> " << route;
    banking += route == "banking";
  }
  EXPECT_EQ(banking, 30);
  EXPECT_EQ(classification.encoder().labels().at("report_lost_card"), "banking");
  EXPECT_EQ(classification.encoder().labels().at("yes"), "general");
}

TEST(GatewayConfigTest, EmbeddedDefaultMatchesTheFileInTheTree) {
  std::ifstream file(std::string(SLM_CONFIG_SOURCE_DIR) + "/default.yaml", std::ios::binary);
  ASSERT_TRUE(file.good());
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_EQ(DefaultConfigYaml(), text.str());
}

TEST(GatewayConfigTest, AddressErrors) {
  EXPECT_EQ(ErrorOf(Edit("0.0.0.0:50051", "0.0.0.0:65536")),
            "cfg.yaml:2:3: server.listen_address: expected host:port (port must be 0..65535), "
            "got \"0.0.0.0:65536\"");
  EXPECT_THAT(ErrorOf(Edit("0.0.0.0:50051", "localhost")),
              HasSubstr("cfg.yaml:2:3: server.listen_address: expected host:port (missing"));
  EXPECT_THAT(ErrorOf(Edit("0.0.0.0:50051", "::1:50051")),
              HasSubstr("IPv6 host must be in brackets"));
  EXPECT_THAT(ErrorOf(Edit("0.0.0.0:50051", "[::g]:1")), HasSubstr("invalid IPv6 address"));
  EXPECT_THAT(ErrorOf(Edit("0.0.0.0:50051", "300.1.1.1:1")),
              HasSubstr("invalid host name or IPv4 address"));
  EXPECT_THAT(ErrorOf(Edit("0.0.0.0:50051", ":50051")), HasSubstr("missing host"));
  EXPECT_THAT(ErrorOf(Edit("0.0.0.0:50051", "host:-1")), HasSubstr("port must be 0..65535"));
  EXPECT_THAT(ErrorOf(Edit("\"0.0.0.0:50051\"\n",
                           "\"0.0.0.0:50051\"\n  metrics_address: \"bad host:1\"\n")),
              HasSubstr("cfg.yaml:3:3: server.metrics_address: expected host:port"));
  EXPECT_THAT(ErrorOf(Edit("\"0.0.0.0:50051\"\n",
                           "\"0.0.0.0:50051\"\n  metrics_address: \"0.0.0.0:50051\"\n")),
              HasSubstr("server.metrics_address: must differ from server.listen_address"));
}

TEST(GatewayConfigTest, LimitsMustBePositive) {
  EXPECT_THAT(ErrorOf(absl::StrCat(kValid, "limits:\n  max_text_bytes: 0\n")),
              HasSubstr("cfg.yaml:24:3: limits.max_text_bytes: must be at least 1"));
  EXPECT_THAT(ErrorOf(absl::StrCat(kValid, "limits:\n  default_deadline_ms: 0\n")),
              HasSubstr("limits.default_deadline_ms: must be at least 1"));
}

TEST(GatewayConfigTest, WorkerErrors) {
  EXPECT_EQ(ErrorOf(Edit("  - name: ner\n    model_path", "  - model_path")),
            "cfg.yaml:6:5: workers[1].name: required field missing");
  EXPECT_THAT(ErrorOf(Edit("name: ner\n    model_path: ner.gguf", "name: ner\n    model_path: ''")),
              HasSubstr("cfg.yaml:7:5: workers[1].model_path: must not be empty"));
  EXPECT_THAT(ErrorOf(Edit("    model_path: ner.gguf\n", "")),
              HasSubstr("cfg.yaml:6:5: workers[1].model_path: required field missing"));
  EXPECT_THAT(ErrorOf(Edit("name: ner", "name: sentiment")),
              HasSubstr("cfg.yaml:6:5: workers[1].name: duplicate worker name \"sentiment\" "
                        "(also workers[0])"));
  EXPECT_THAT(ErrorOf(Edit("name: ner", "name: \"n e r\"")),
              HasSubstr("workers[1].name: expected a name of letters, digits"));
  EXPECT_THAT(ErrorOf(Edit("name: ner", "name: ''")), HasSubstr("workers[1].name: must not be"));
  EXPECT_EQ(ErrorOf(Edit("dtype: bf16", "dtype: fp16")),
            "cfg.yaml:8:5: workers[1].dtype: expected one of f32, bf16, int8, got \"fp16\"");
  EXPECT_EQ(ErrorOf(Edit("threads: 2", "threads: 0")),
            "cfg.yaml:9:5: workers[1].threads: expected 1..256, got 0");
  EXPECT_THAT(ErrorOf(Edit("threads: 2", "threads: 257")),
              HasSubstr("workers[1].threads: expected 1..256, got 257"));
  EXPECT_THAT(ErrorOf(Edit("threads: 2", "concurrency: 0")),
              HasSubstr("cfg.yaml:9:5: workers[1].concurrency: expected 1..256, got 0"));
  EXPECT_THAT(ErrorOf(Edit("threads: 2", "threads: two")),
              HasSubstr("cfg.yaml:9:5: workers[1].threads: expected an unsigned integer"));
}

TEST(GatewayConfigTest, PoolErrors) {
  EXPECT_THAT(ErrorOf(Edit("  - name: ner\n    endpoints", "  - name: sentiment\n    endpoints")),
              HasSubstr("cfg.yaml:13:5: pools[1].name: duplicate pool name \"sentiment\""));
  EXPECT_THAT(ErrorOf(Edit("  - name: ner\n    endpoints", "  - endpoints")),
              HasSubstr("cfg.yaml:13:5: pools[1].name: required field missing"));
  EXPECT_EQ(ErrorOf(Edit("[\"inprocess:ner\"]", "[]")),
            "cfg.yaml:14:5: pools[1].endpoints: at least one endpoint is required");
  EXPECT_THAT(ErrorOf(Edit("    endpoints: [\"inprocess:ner\"]\n", "")),
              HasSubstr("cfg.yaml:13:5: pools[1].endpoints: at least one endpoint is required"));
  EXPECT_THAT(ErrorOf(Edit("\"10.0.0.7:50052\"", "\"http://10.0.0.7:50052\"")),
              HasSubstr("cfg.yaml:12:40: pools[0].endpoints[1]: expected host:port, "
                        "dns:///host:port or inprocess:WORKER with a port in 1..65535, got "
                        "\"http://10.0.0.7:50052\" (a URL scheme is not an address)"));
  EXPECT_THAT(ErrorOf(Edit("\"10.0.0.7:50052\"", "\"10.0.0.7:0\"")),
              HasSubstr("pools[0].endpoints[1]: expected host:port, dns:///host:port or "
                        "inprocess:WORKER with a port in 1..65535, got \"10.0.0.7:0\" (port 0)"));
  EXPECT_THAT(ErrorOf(Edit("\"10.0.0.7:50052\"", "\"inprocess:sentiment\"")),
              HasSubstr("pools[0].endpoints[1]: duplicate endpoint \"inprocess:sentiment\" "
                        "(also pools[0].endpoints[0])"));
  EXPECT_EQ(ErrorOf(Edit("inprocess:ner", "inprocess:nerr")),
            "cfg.yaml:14:17: pools[1].endpoints[0]: no worker named \"nerr\" (workers: "
            "sentiment, ner)");
  EXPECT_THAT(ErrorOf(Edit("inprocess:ner", "inprocess:")),
              HasSubstr("pools[1].endpoints[0]: expected inprocess:WORKER"));
}

TEST(GatewayConfigTest, RouteErrors) {
  EXPECT_EQ(ErrorOf(Edit("    pool: ner\n", "")),
            "cfg.yaml:19:5: routes[1].pool: required field missing");
  EXPECT_EQ(ErrorOf(Edit("    pool: ner\n", "    pool: [ner]\n")),
            "cfg.yaml:21:5: routes[1].pool: expected a string, got a sequence");
  EXPECT_EQ(ErrorOf(Edit("pool: ner", "pool: nre")),
            "cfg.yaml:21:5: routes[1].pool: unknown pool \"nre\" (pools: sentiment, ner)");
  EXPECT_THAT(ErrorOf(Edit("  - name: ner\n    tasks", "  - name: sentiment\n    tasks")),
              HasSubstr("cfg.yaml:19:5: routes[1].name: duplicate route name \"sentiment\""));
  EXPECT_THAT(ErrorOf(Edit("  - name: ner\n    tasks", "  - tasks")),
              HasSubstr("cfg.yaml:19:5: routes[1].name: required field missing"));
  EXPECT_EQ(ErrorOf(Edit("tasks: [ner, pos]", "tasks: [ner, sentiment]")),
            "cfg.yaml:20:18: routes[1].tasks[1]: task \"sentiment\" already belongs to a route "
            "(routes[0].tasks[0]); a task may belong to one route only");
  EXPECT_THAT(ErrorOf(Edit("tasks: [ner, pos]", "tasks: [ner, ner]")),
              HasSubstr("routes[1].tasks[1]: task \"ner\" already belongs to a route "
                        "(routes[1].tasks[0])"));
  EXPECT_THAT(ErrorOf(Edit("tasks: [ner, pos]", "tasks: [ner, \"\"]")),
              HasSubstr("routes[1].tasks[1]: expected a task name"));
  EXPECT_EQ(ErrorOf(Edit("default_route: sentiment", "default_route: sentimnet")),
            "cfg.yaml:22:1: default_route: unknown route \"sentimnet\" (routes: sentiment, ner)");
}

TEST(GatewayConfigTest, UnknownKeysAndSyntaxErrors) {
  EXPECT_THAT(ErrorOf(Edit("  listen_address", "  listen_adress")),
              HasSubstr("cfg.yaml:2:3: server.listen_adress: unknown key (known keys: "
                        "listen_address, metrics_address, drain_timeout_ms"));
  EXPECT_THAT(ErrorOf(Edit("    dtype: bf16", "    dtype: bf16\n    dtype: int8")),
              HasSubstr("cfg.yaml:9:5: workers[1].dtype: duplicate key (first given at line 8)"));
  EXPECT_THAT(ErrorOf(Edit("[\"inprocess:ner\"]", "[\"inprocess:ner\"")),
              HasSubstr("cfg.yaml:15:"));
}

TEST(GatewayConfigTest, RoleRules) {
  EXPECT_THAT(ErrorOf(kValid, ConfigRole::kRouter),
              HasSubstr("cfg.yaml:3:1: workers: must be empty for the router"));
  const std::string router_yaml = R"(pools:
  - name: p
    endpoints: ["dns:///worker.slm.svc:50052", "[::1]:7000"]
routes:
  - {name: r, pool: p}
)";
  EXPECT_TRUE(ParseGatewayConfig(router_yaml, "cfg.yaml", ConfigRole::kRouter).ok());
  EXPECT_THAT(ErrorOf(absl::StrReplaceAll(router_yaml, {{"[::1]:7000", "inprocess:x"}}),
                      ConfigRole::kRouter),
              HasSubstr("cfg.yaml:3:48: pools[0].endpoints[1]: inprocess endpoints are only "
                        "allowed in the all-in-one gateway, not for the router"));
  EXPECT_THAT(ErrorOf("pools: []\n", ConfigRole::kRouter),
              HasSubstr("routes: at least one route is required for the router"));

  const std::string worker_yaml = "workers:\n  - {name: w, model_path: m.gguf}\n";
  EXPECT_TRUE(ParseGatewayConfig(worker_yaml, "cfg.yaml", ConfigRole::kWorker).ok());
  EXPECT_THAT(ErrorOf(kValid, ConfigRole::kWorker),
              HasSubstr("cfg.yaml:3:1: workers: exactly one worker is required for the worker, "
                        "found 2"));
  EXPECT_THAT(ErrorOf("server: {}\n", ConfigRole::kWorker),
              HasSubstr("workers: exactly one worker is required"));
  EXPECT_THAT(
      ErrorOf(worker_yaml + "pools: [{name: p, endpoints: [\"a:1\"]}]\n", ConfigRole::kWorker),
      HasSubstr("cfg.yaml:3:1: pools: must be empty for the worker"));
  EXPECT_THAT(ErrorOf(worker_yaml + "routes: [{name: r, pool: p}]\n", ConfigRole::kWorker),
              HasSubstr("routes: must be empty for the worker"));
  EXPECT_THAT(ErrorOf(worker_yaml + "default_route: r\n", ConfigRole::kWorker),
              HasSubstr("cfg.yaml:3:1: default_route: must be empty for the worker"));

  EXPECT_THAT(ErrorOf("workers:\n  - {name: w, model_path: m.gguf}\n"),
              HasSubstr("cfg.yaml:1:1: routes: at least one route is required for the "
                        "all-in-one"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("cfg.yaml:1:1: routes: at least one route is required"));
}

TEST(GatewayConfigTest, FinalizeAppliesDefaultsToZeroFields) {
  GatewayConfig config = FromTextFormat(R"pb(
    workers { name: "w" model_path: "m.gguf" }
    pools { name: "p" endpoints: "inprocess:w" }
    routes { name: "r" pool: "p" }
  )pb");
  auto finalized = FinalizeGatewayConfig(config, ConfigRole::kAllInOne);
  ASSERT_TRUE(finalized.ok()) << finalized.status();
  EXPECT_EQ((*finalized)->server().listen_address(), "127.0.0.1:50051");
  EXPECT_EQ((*finalized)->server().drain_timeout_ms(), 10000u);
  EXPECT_EQ((*finalized)->workers(0).dtype(), "f32");
  EXPECT_EQ((*finalized)->workers(0).max_queue_depth(), 64u);

  config.mutable_routes(0)->set_pool("q");
  auto rejected = FinalizeGatewayConfig(config, ConfigRole::kAllInOne);
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected.status().message(), "routes[0].pool: unknown pool \"q\" (pools: p)");
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& path : paths_) std::remove(path.c_str());
  }
  std::string WriteFile(std::string_view contents) {
    std::string path =
        absl::StrCat(::testing::TempDir(), "/config_test_", getpid(), "_", paths_.size(), ".yaml");
    std::ofstream(path, std::ios::binary) << contents;
    paths_.push_back(path);
    return path;
  }
  std::vector<std::string> paths_;
};

TEST_F(ConfigFileTest, LoadsAFile) {
  auto config = LoadGatewayConfigFile(WriteFile(kValid), ConfigRole::kAllInOne);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->routes_size(), 2);
}

TEST_F(ConfigFileTest, ErrorsNameThePath) {
  std::string path = WriteFile(Edit("threads: 2", "threads: 0"));
  auto config = LoadGatewayConfigFile(path, ConfigRole::kAllInOne);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(path + ":9:5: workers[1].threads:"));

  std::string missing = ::testing::TempDir() + "/no_such_config.yaml";
  config = LoadGatewayConfigFile(missing, ConfigRole::kAllInOne);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr(missing));

  config = LoadGatewayConfigFile(::testing::TempDir(), ConfigRole::kAllInOne);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(config.status().message(), HasSubstr("Is a directory"));
}

}  // namespace
}  // namespace slm::config
