// Validation of the classification section and of routes' confidence_threshold and fallback
// (common/config/classification_config.cc), through the public ParseGatewayConfig.
#include <string>

#include "common/config/gateway_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::config {
namespace {

using ::testing::HasSubstr;

constexpr char kBase[] = R"(pools:
  - name: p
    endpoints: ["127.0.0.1:5000"]
routes:
  - name: banking
    pool: p
    confidence_threshold: 0.6
    fallback: [general]
  - name: general
    pool: p
default_route: general
)";

std::string With(const std::string& classification) {
  return std::string(kBase) + classification;
}

std::string ErrorOf(const std::string& yaml) {
  auto config = ParseGatewayConfig(yaml, "cfg.yaml", ConfigRole::kRouter);
  return config.ok() ? "" : std::string(config.status().message());
}

constexpr char kFull[] = R"(classification:
  rules:
    - name: card-words
      route: banking
      keywords: ["credit card", "iban"]
      patterns: ["\\b[0-9]{16}\\b"]
      tenants: [bank-app]
      metadata: {channel: support}
      min_length: 3
      max_length: 400
  fast:
    model_path: router-clinc150-ngram.gguf
    threshold: 0.7
    labels: {banking: banking, travel: general}
  encoder:
    model_path: router-clinc150-encoder.gguf
    labels: {banking: banking, travel: general}
  out_of_domain:
    label: oos
    threshold: 0.5
    route: general
)";

TEST(ClassificationConfigTest, AcceptsAFullSectionAndAppliesEncoderDefaults) {
  auto config = ParseGatewayConfig(With(kFull), "cfg.yaml", ConfigRole::kRouter);
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& classification = (*config)->classification();
  ASSERT_EQ(classification.rules_size(), 1);
  EXPECT_EQ(classification.rules(0).metadata().at("channel"), "support");
  EXPECT_EQ(classification.rules(0).patterns(0), "\\b[0-9]{16}\\b");
  EXPECT_FLOAT_EQ(classification.fast().threshold(), 0.7f);
  EXPECT_EQ(classification.fast().labels().at("travel"), "general");
  EXPECT_EQ(classification.encoder().dtype(), "f32");
  EXPECT_EQ(classification.encoder().threads(), 1u);
  EXPECT_EQ(classification.out_of_domain().route(), "general");
  EXPECT_FLOAT_EQ((*config)->routes(0).confidence_threshold(), 0.6f);
  EXPECT_EQ((*config)->routes(0).fallback(0), "general");
}

TEST(ClassificationConfigTest, RejectsThresholdsOutsideZeroToOne) {
  std::string yaml = With(kFull);
  yaml.replace(yaml.find("threshold: 0.7"), 14, "threshold: 1.5");
  EXPECT_THAT(ErrorOf(yaml),
              HasSubstr("classification.fast.threshold: expected a probability in [0, 1], got 1.5"));
  std::string route = kBase;
  route.replace(route.find("0.6"), 3, "-0.1");
  EXPECT_THAT(ErrorOf(route), HasSubstr("routes[0].confidence_threshold: expected a probability"));
  EXPECT_THAT(ErrorOf(With("classification: {out_of_domain: {threshold: .nan}}\n")),
              HasSubstr("out_of_domain.threshold"));
}

TEST(ClassificationConfigTest, RejectsBadFallbackChains) {
  std::string unknown = kBase;
  unknown.replace(unknown.find("[general]"), 9, "[genral]");
  EXPECT_THAT(ErrorOf(unknown),
              HasSubstr("routes[0].fallback[0]: unknown route \"genral\" (routes: banking, general)"));
  std::string self = kBase;
  self.replace(self.find("[general]"), 9, "[banking]");
  EXPECT_THAT(ErrorOf(self), HasSubstr("cannot fall back to itself"));
  std::string twice = kBase;
  twice.replace(twice.find("[general]"), 9, "[general, general]");
  EXPECT_THAT(ErrorOf(twice), HasSubstr("routes[0].fallback[1]: route \"general\" appears twice"));
}

TEST(ClassificationConfigTest, RejectsBadRules) {
  EXPECT_THAT(ErrorOf(With("classification: {rules: [{name: r, route: nowhere, keywords: [x]}]}\n")),
              HasSubstr("classification.rules[0].route: unknown route \"nowhere\""));
  EXPECT_THAT(ErrorOf(With("classification: {rules: [{name: r, route: banking}]}\n")),
              HasSubstr("classification.rules[0]: a rule needs at least one condition"));
  EXPECT_THAT(ErrorOf(With("classification: {rules: [{name: r, route: banking, "
                           "patterns: [\"a(b\"]}]}\n")),
              HasSubstr("classification.rules[0].patterns[0]: invalid RE2 pattern \"a(b\""));
  EXPECT_THAT(ErrorOf(With("classification: {rules: [{name: r, route: banking, keywords: [x]}, "
                           "{name: r, route: general, keywords: [y]}]}\n")),
              HasSubstr("classification.rules[1].name: duplicate rule name \"r\""));
  EXPECT_THAT(ErrorOf(With("classification: {rules: [{name: r, route: banking, min_length: 9, "
                           "max_length: 3}]}\n")),
              HasSubstr("classification.rules[0].min_length: must not exceed max_length (9 > 3)"));
  EXPECT_THAT(ErrorOf(With("classification: {rules: [{route: banking, keywords: [x]}]}\n")),
              HasSubstr("classification.rules[0].name: required field missing"));
  EXPECT_THAT(ErrorOf(With("classification: {rules: [{name: r, route: banking, keywords: [\"\"]}]}\n")),
              HasSubstr("classification.rules[0].keywords[0]: must not be empty"));
}

TEST(ClassificationConfigTest, RejectsBadLearnedTiers) {
  EXPECT_THAT(ErrorOf(With("classification: {fast: {labels: {a: banking}}}\n")),
              HasSubstr("classification.fast.model_path: required when labels are mapped"));
  EXPECT_THAT(ErrorOf(With("classification: {fast: {model_path: m.gguf}}\n")),
              HasSubstr("classification.fast.labels: map every label"));
  EXPECT_THAT(ErrorOf(With("classification: {fast: {model_path: m.gguf, labels: {a: nowhere}}}\n")),
              HasSubstr("classification.fast.labels.a: unknown route \"nowhere\""));
  EXPECT_THAT(ErrorOf(With("classification: {encoder: {model_path: m.gguf, dtype: f64, "
                           "labels: {a: banking}}}\n")),
              HasSubstr("classification.encoder.dtype: expected one of f32, bf16, int8, got \"f64\""));
  EXPECT_THAT(ErrorOf(With("classification: {fast: {model_path: m.gguf, threads: 2, "
                           "labels: {a: banking}}}\n")),
              HasSubstr("classification.fast.threads: applies to the encoder tier only"));
  EXPECT_THAT(ErrorOf(With("classification: {fast: {model_path: m.gguf, labels: {oos: general}}, "
                           "out_of_domain: {label: oos}}\n")),
              HasSubstr("classification.fast.labels.oos: the out-of-domain label \"oos\" must not "
                        "be mapped"));
  EXPECT_THAT(ErrorOf(With("classification: {out_of_domain: {route: nowhere}}\n")),
              HasSubstr("classification.out_of_domain.route: unknown route \"nowhere\""));
}

TEST(ClassificationConfigTest, UnknownKeysAreRejectedByTheLoader) {
  EXPECT_THAT(ErrorOf(With("classification: {fast: {modelpath: m.gguf}}\n")),
              HasSubstr("unknown key"));
}

}  // namespace
}  // namespace slm::config
