// RoutePolicy: signal order, escalation from the fast to the encoder tier, out-of-domain
// detection (explicit label, tier threshold, per-route threshold) and fallback targets. The
// learned tiers are fakes whose answers the tests set per text, so every expected decision is
// worked out by hand from the rules in route_policy.h.
#include "router/classification/route_policy.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace slm::router {
namespace {

using slmgw::config::v1::GatewayConfig;

// Answers Classify from a table text -> scores; unknown texts are an error.
class FakeClassifier final : public TextClassifier {
 public:
  FakeClassifier(std::vector<std::string> labels,
                 std::map<std::string, std::vector<ClassScore>> answers, int* calls)
      : labels_(std::move(labels)), answers_(std::move(answers)), calls_(calls) {}
  absl::StatusOr<std::vector<ClassScore>> Classify(absl::string_view text) const override {
    ++*calls_;
    auto it = answers_.find(std::string(text));
    if (it == answers_.end()) return absl::InvalidArgumentError("fake: unknown text");
    return it->second;
  }
  std::vector<std::string> Labels() const override { return labels_; }

 private:
  std::vector<std::string> labels_;
  std::map<std::string, std::vector<ClassScore>> answers_;
  int* calls_;
};

const std::vector<std::string> kLabels = {"bank", "travel", "oos"};

std::vector<ClassScore> Scores(float bank, float travel, float oos) {
  return {{"travel", travel}, {"bank", bank}, {"oos", oos}};  // deliberately not sorted
}

GatewayConfig BaseConfig() {
  GatewayConfig config;
  for (const char* name : {"banking", "travel", "general", "big"}) {
    auto* route = config.add_routes();
    route->set_name(name);
    route->set_pool(std::string(name) + "-pool");
  }
  config.mutable_routes(0)->set_confidence_threshold(0.7f);
  config.mutable_routes(0)->add_fallback("big");
  config.set_default_route("general");
  auto* classification = config.mutable_classification();
  auto* rule = classification->add_rules();
  rule->set_name("iban");
  rule->set_route("banking");
  rule->add_keywords("iban");
  for (auto* tier : {classification->mutable_fast(), classification->mutable_encoder()}) {
    (*tier->mutable_labels())["bank"] = "banking";
    (*tier->mutable_labels())["travel"] = "travel";
  }
  classification->mutable_fast()->set_model_path("fast.gguf");
  classification->mutable_fast()->set_threshold(0.8f);
  classification->mutable_encoder()->set_model_path("encoder.gguf");
  classification->mutable_out_of_domain()->set_label("oos");
  classification->mutable_out_of_domain()->set_threshold(0.5f);
  classification->mutable_out_of_domain()->set_route("general");
  return config;
}

class RoutePolicyTest : public ::testing::Test {
 protected:
  void Build(const GatewayConfig& config) {
    auto table = RouteTable::Create(config);
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *std::move(table);
    ClassifierLoader loader = [this](const std::string& tier,
                                     const slmgw::config::v1::ClassifierTierConfig& tier_config)
        -> absl::StatusOr<std::unique_ptr<TextClassifier>> {
      loaded_.push_back(tier + ":" + tier_config.model_path());
      if (tier == "fast") return std::make_unique<FakeClassifier>(kLabels, fast_, &fast_calls_);
      return std::make_unique<FakeClassifier>(kLabels, encoder_, &encoder_calls_);
    };
    auto policy = RoutePolicy::Create(config, table_.get(), loader);
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_ = *std::move(policy);
  }

  slmgw::v1::RouteDecision Decide(const std::string& text,
                                  slmgw::v1::RequestOptions options = {}) {
    auto decision = policy_->Decide(text, options);
    EXPECT_TRUE(decision.ok()) << decision.status();
    return decision.ok() ? *decision : slmgw::v1::RouteDecision();
  }

  static std::string SignalNames(const slmgw::v1::RouteDecision& decision) {
    std::string names;
    for (const auto& signal : decision.signals()) {
      names += (names.empty() ? "" : ",") + signal.name();
    }
    return names;
  }

  std::map<std::string, std::vector<ClassScore>> fast_;
  std::map<std::string, std::vector<ClassScore>> encoder_;
  int fast_calls_ = 0;
  int encoder_calls_ = 0;
  std::vector<std::string> loaded_;
  std::unique_ptr<RouteTable> table_;
  std::unique_ptr<RoutePolicy> policy_;
};

TEST_F(RoutePolicyTest, HintAndTaskAreFinalAndSkipClassification) {
  GatewayConfig config = BaseConfig();
  config.mutable_routes(1)->add_tasks("trip");
  Build(config);
  EXPECT_EQ(loaded_, (std::vector<std::string>{"fast:fast.gguf", "encoder:encoder.gguf"}));
  slmgw::v1::RequestOptions hint;
  hint.set_route_hint("big");
  EXPECT_EQ(Decide("iban", hint).route(), "big");
  slmgw::v1::RequestOptions task;
  task.set_task("trip");
  slmgw::v1::RouteDecision decision = Decide("iban", task);
  EXPECT_EQ(decision.route(), "travel");
  EXPECT_EQ(SignalNames(decision), "task");
  EXPECT_EQ(fast_calls_ + encoder_calls_, 0);
}

TEST_F(RoutePolicyTest, RuleDecidesBeforeLearnedTiers) {
  Build(BaseConfig());
  slmgw::v1::RouteDecision decision = Decide("what is my IBAN");
  EXPECT_EQ(decision.route(), "banking");
  EXPECT_EQ(decision.pool(), "banking-pool");
  EXPECT_FLOAT_EQ(decision.confidence(), 1.0f);
  EXPECT_EQ(SignalNames(decision), "rule");
  EXPECT_EQ(decision.reason(), "rule 'iban' -> route 'banking'");
  EXPECT_EQ(fast_calls_, 0);
}

TEST_F(RoutePolicyTest, ConfidentFastTierDecidesWithoutTheEncoder) {
  fast_["book a flight"] = Scores(0.05f, 0.9f, 0.05f);
  Build(BaseConfig());
  slmgw::v1::RouteDecision decision = Decide("book a flight");
  EXPECT_EQ(decision.route(), "travel");
  EXPECT_EQ(decision.pool(), "travel-pool");
  EXPECT_FLOAT_EQ(decision.confidence(), 0.9f);
  EXPECT_EQ(SignalNames(decision), "rule,fast");
  EXPECT_EQ(decision.signals(1).route(), "travel");
  EXPECT_FLOAT_EQ(decision.signals(1).confidence(), 0.9f);
  EXPECT_EQ(encoder_calls_, 0);
}

TEST_F(RoutePolicyTest, UnsureFastTierEscalatesAndTheEncoderDecides) {
  fast_["my balance"] = Scores(0.6f, 0.3f, 0.1f);      // 0.6 < fast threshold 0.8
  encoder_["my balance"] = Scores(0.95f, 0.03f, 0.02f);
  Build(BaseConfig());
  slmgw::v1::RouteDecision decision = Decide("my balance");
  EXPECT_EQ(decision.route(), "banking");
  EXPECT_FLOAT_EQ(decision.confidence(), 0.95f);
  EXPECT_EQ(SignalNames(decision), "rule,fast,encoder");
  EXPECT_EQ(encoder_calls_, 1);
}

TEST_F(RoutePolicyTest, BelowTheRouteThresholdFallsBackToTheRoutesFallback) {
  fast_["money?"] = Scores(0.6f, 0.3f, 0.1f);
  encoder_["money?"] = Scores(0.65f, 0.3f, 0.05f);  // banking's threshold is 0.7
  Build(BaseConfig());
  slmgw::v1::RouteDecision decision = Decide("money?");
  EXPECT_EQ(decision.route(), "big");
  EXPECT_EQ(decision.pool(), "big-pool");
  EXPECT_FLOAT_EQ(decision.confidence(), 0.65f);
  EXPECT_EQ(SignalNames(decision), "rule,fast,encoder,out_of_domain");
  EXPECT_EQ(decision.reason(),
            "encoder tier: 'bank' 0.650 < route 'banking' threshold 0.700; fallback to route "
            "'big'");
}

TEST_F(RoutePolicyTest, RouteWithoutOwnThresholdUsesTheOutOfDomainThreshold) {
  fast_["somewhere"] = Scores(0.2f, 0.45f, 0.35f);
  encoder_["somewhere"] = Scores(0.2f, 0.45f, 0.35f);  // travel: no threshold; global 0.5
  fast_["paris"] = Scores(0.1f, 0.55f, 0.35f);
  encoder_["paris"] = Scores(0.1f, 0.55f, 0.35f);
  Build(BaseConfig());
  slmgw::v1::RouteDecision low = Decide("somewhere");
  EXPECT_EQ(low.route(), "general");  // travel has no fallback: out_of_domain.route
  EXPECT_NE(low.reason().find("< route 'travel' threshold 0.500"), std::string::npos)
      << low.reason();
  EXPECT_EQ(Decide("paris").route(), "travel");
}

TEST_F(RoutePolicyTest, OutOfDomainLabelGoesToTheOutOfDomainRoute) {
  fast_["sing me a song"] = Scores(0.02f, 0.03f, 0.95f);
  Build(BaseConfig());
  slmgw::v1::RouteDecision decision = Decide("sing me a song");
  EXPECT_EQ(decision.route(), "general");
  EXPECT_EQ(SignalNames(decision), "rule,fast,out_of_domain");
  EXPECT_EQ(decision.signals(1).route(), "");  // the fast tier proposed no route
  EXPECT_EQ(decision.reason(),
            "fast tier: out-of-domain label 'oos' (0.950); fallback to route 'general'");
  EXPECT_EQ(encoder_calls_, 0);  // confident out-of-domain needs no second opinion
}

TEST_F(RoutePolicyTest, LastTierBelowItsOwnThresholdIsOutOfDomain) {
  GatewayConfig config = BaseConfig();
  config.mutable_classification()->clear_encoder();
  config.mutable_routes(0)->clear_confidence_threshold();
  config.mutable_classification()->mutable_out_of_domain()->set_threshold(0.0f);
  fast_["loan"] = Scores(0.75f, 0.2f, 0.05f);  // below the fast threshold 0.8, last tier
  fast_["loans"] = Scores(0.85f, 0.1f, 0.05f);
  Build(config);
  slmgw::v1::RouteDecision decision = Decide("loan");
  EXPECT_EQ(decision.route(), "big");  // banking's fallback
  EXPECT_NE(decision.reason().find("fast tier unsure: 'bank' 0.750 < tier threshold 0.800"),
            std::string::npos)
      << decision.reason();
  EXPECT_EQ(Decide("loans").route(), "banking");
}

TEST_F(RoutePolicyTest, FailingTiersFallBackToThePreviousAnswerOrTheDefault) {
  fast_["long text"] = Scores(0.6f, 0.35f, 0.05f);  // unsure; the encoder fails on it
  Build(BaseConfig());
  slmgw::v1::RouteDecision decision = Decide("long text");
  EXPECT_EQ(SignalNames(decision), "rule,fast,encoder,out_of_domain");
  EXPECT_EQ(decision.signals(2).route(), "");
  EXPECT_FLOAT_EQ(decision.signals(2).confidence(), 0.0f);
  EXPECT_EQ(decision.route(), "big");  // fast's 0.6 < banking's 0.7
  // Both tiers fail: the default route, after their signals.
  slmgw::v1::RouteDecision nothing = Decide("unknown to both");
  EXPECT_EQ(nothing.route(), "general");
  EXPECT_EQ(SignalNames(nothing), "rule,fast,encoder,default");
}

TEST_F(RoutePolicyTest, NoLearnedTiersMeansDefaultRoute) {
  GatewayConfig config = BaseConfig();
  config.clear_classification();
  Build(config);
  slmgw::v1::RouteDecision decision = Decide("iban");
  EXPECT_EQ(decision.route(), "general");
  EXPECT_EQ(SignalNames(decision), "default");
  EXPECT_TRUE(loaded_.empty());
}

TEST_F(RoutePolicyTest, SignalsCarryTheirOwnDurations) {
  fast_["x"] = Scores(0.9f, 0.05f, 0.05f);
  Build(BaseConfig());
  slmgw::v1::RouteDecision decision = Decide("x");
  ASSERT_EQ(decision.signals_size(), 2);
  for (const auto& signal : decision.signals()) EXPECT_GT(signal.duration_ns(), 0u);
}

TEST(RoutePolicyCreateTest, LabelMapMustMatchTheModel) {
  GatewayConfig config = BaseConfig();
  auto table = RouteTable::Create(config);
  ASSERT_TRUE(table.ok());
  int calls = 0;
  auto loader_with = [&](std::vector<std::string> labels) -> ClassifierLoader {
    return [&calls, labels](const std::string&, const slmgw::config::v1::ClassifierTierConfig&)
               -> absl::StatusOr<std::unique_ptr<TextClassifier>> {
      return std::make_unique<FakeClassifier>(labels,
                                              std::map<std::string, std::vector<ClassScore>>{},
                                              &calls);
    };
  };
  auto unmapped = RoutePolicy::Create(config, table->get(), loader_with({"bank", "travel", "x"}));
  ASSERT_FALSE(unmapped.ok());
  EXPECT_EQ(unmapped.status().message(),
            "classification.fast.labels: model fast.gguf has label 'x' with no route (map it, or "
            "name it classification.out_of_domain.label)");
  auto missing = RoutePolicy::Create(config, table->get(), loader_with({"bank", "oos"}));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "classification.fast.labels.travel: model fast.gguf has no such label (labels: bank, "
            "oos)");
  auto refused = RoutePolicy::Create(config, table->get(), RefuseLearnedTiers());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("classification.fast"), std::string::npos);
  auto failing = RoutePolicy::Create(
      config, table->get(),
      [](const std::string&, const slmgw::config::v1::ClassifierTierConfig& tier)
          -> absl::StatusOr<std::unique_ptr<TextClassifier>> {
        return absl::NotFoundError("cannot open " + tier.model_path());
      });
  ASSERT_FALSE(failing.ok());
  EXPECT_EQ(failing.status().message(), "cannot open fast.gguf");
}

TEST(RoutePolicyCreateTest, OutOfDomainWithNowhereToGoIsAnError) {
  GatewayConfig config = BaseConfig();
  config.clear_default_route();
  config.mutable_classification()->mutable_out_of_domain()->clear_route();
  config.mutable_classification()->clear_encoder();
  auto table = RouteTable::Create(config);
  ASSERT_TRUE(table.ok());
  int calls = 0;
  std::map<std::string, std::vector<ClassScore>> answers;
  answers["??"] = Scores(0.0f, 0.1f, 0.9f);
  auto policy = RoutePolicy::Create(
      config, table->get(),
      [&](const std::string&, const slmgw::config::v1::ClassifierTierConfig&)
          -> absl::StatusOr<std::unique_ptr<TextClassifier>> {
        return std::make_unique<FakeClassifier>(kLabels, answers, &calls);
      });
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto decision = (*policy)->Decide("??", {});
  ASSERT_FALSE(decision.ok());
  EXPECT_EQ(decision.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(decision.status().message().find("out-of-domain label 'oos'"), std::string::npos);
}

}  // namespace
}  // namespace slm::router
