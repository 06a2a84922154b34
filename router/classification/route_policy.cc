#include "router/classification/route_policy.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace slm::router {
namespace {

using slmgw::v1::RouteDecision;
using Clock = std::chrono::steady_clock;

uint64_t NanosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

void AddSignal(const char* name, const std::string& route, float confidence,
               Clock::time_point start, RouteDecision* decision) {
  slmgw::v1::RouteSignal* signal = decision->add_signals();
  signal->set_name(name);
  signal->set_route(route);
  signal->set_confidence(confidence);
  signal->set_duration_ns(NanosSince(start));
}

std::string Probability(float p) { return absl::StrFormat("%.3f", p); }

}  // namespace

ClassifierLoader RefuseLearnedTiers() {
  return [](const std::string& tier, const slmgw::config::v1::ClassifierTierConfig& config)
             -> absl::StatusOr<std::unique_ptr<TextClassifier>> {
    return absl::FailedPreconditionError(
        absl::StrCat("classification.", tier, ": this binary runs no learned classifier tier (",
                     config.model_path(), "); use slm-gateway or slm-router"));
  };
}

absl::StatusOr<std::unique_ptr<RoutePolicy::Tier>> RoutePolicy::LoadTier(
    const std::string& name, const slmgw::config::v1::ClassifierTierConfig& config,
    const std::string& ood_label, const ClassifierLoader& loader) {
  if (config.model_path().empty()) return nullptr;
  if (!loader) return RefuseLearnedTiers()(name, config).status();
  absl::StatusOr<std::unique_ptr<TextClassifier>> classifier = loader(name, config);
  if (!classifier.ok()) return classifier.status();
  if (*classifier == nullptr) {
    return absl::InternalError(absl::StrCat("classification.", name, ": loader returned null"));
  }
  auto tier = std::make_unique<Tier>();
  tier->name = name;
  tier->classifier = *std::move(classifier);
  tier->threshold = config.threshold();
  const std::vector<std::string> labels = tier->classifier->Labels();
  for (const std::string& label : labels) {
    auto it = config.labels().find(label);
    if (it != config.labels().end()) {
      tier->route_of_label.emplace(label, it->second);
    } else if (label != ood_label) {
      return absl::InvalidArgumentError(absl::StrCat(
          "classification.", name, ".labels: model ", config.model_path(), " has label '", label,
          "' with no route (map it, or name it classification.out_of_domain.label)"));
    }
  }
  for (const auto& [label, route] : config.labels()) {
    if (std::find(labels.begin(), labels.end(), label) == labels.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "classification.", name, ".labels.", label, ": model ", config.model_path(),
          " has no such label (labels: ", absl::StrJoin(labels, ", "), ")"));
    }
  }
  return tier;
}

absl::StatusOr<std::unique_ptr<RoutePolicy>> RoutePolicy::Create(
    const slmgw::config::v1::GatewayConfig& config, const RouteTable* route_table,
    const ClassifierLoader& loader) {
  auto policy = std::unique_ptr<RoutePolicy>(new RoutePolicy());
  policy->route_table_ = route_table;
  const auto& classification = config.classification();
  absl::StatusOr<std::unique_ptr<RuleSet>> rules = RuleSet::Create(classification.rules());
  if (!rules.ok()) return rules.status();
  policy->rules_ = *std::move(rules);
  for (const auto& rule : classification.rules()) {
    if (route_table->FindRoute(rule.route()) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("classification.rules '", rule.name(),
                                                     "': no route named '", rule.route(), "'"));
    }
  }
  policy->ood_label_ = classification.out_of_domain().label();
  policy->ood_threshold_ = classification.out_of_domain().threshold();
  policy->ood_route_ = classification.out_of_domain().route().empty()
                           ? config.default_route()
                           : classification.out_of_domain().route();
  absl::StatusOr<std::unique_ptr<Tier>> fast =
      LoadTier("fast", classification.fast(), policy->ood_label_, loader);
  if (!fast.ok()) return fast.status();
  policy->fast_ = *std::move(fast);
  absl::StatusOr<std::unique_ptr<Tier>> encoder =
      LoadTier("encoder", classification.encoder(), policy->ood_label_, loader);
  if (!encoder.ok()) return encoder.status();
  policy->encoder_ = *std::move(encoder);
  for (const Tier* tier : {policy->fast_.get(), policy->encoder_.get()}) {
    if (tier == nullptr) continue;
    for (const auto& [label, route] : tier->route_of_label) {
      if (route_table->FindRoute(route) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("classification.", tier->name, ".labels.",
                                                       label, ": no route named '", route, "'"));
      }
    }
  }
  return policy;
}

void RoutePolicy::SetRoute(const std::string& route, RouteDecision* decision) const {
  decision->set_route(route);
  const slmgw::config::v1::RouteConfig* config = route_table_->FindRoute(route);
  decision->set_pool(config == nullptr ? "" : config->pool());
}

bool RoutePolicy::RunTier(const Tier& tier, absl::string_view text, RouteDecision* decision,
                          Answer* answer) const {
  const auto start = Clock::now();
  absl::StatusOr<std::vector<ClassScore>> scores = tier.classifier->Classify(text);
  if (!scores.ok() || scores->empty()) {
    AddSignal(tier.name.c_str(), "", 0.0f, start, decision);
    return false;
  }
  const ClassScore* top = &(*scores)[0];
  for (const ClassScore& score : *scores) {
    if (score.probability > top->probability) top = &score;
  }
  auto it = tier.route_of_label.find(top->label);
  answer->label = top->label;
  answer->route = it == tier.route_of_label.end() ? "" : it->second;
  answer->probability = top->probability;
  answer->tier = &tier;
  AddSignal(tier.name.c_str(), answer->route, top->probability, start, decision);
  return true;
}

absl::Status RoutePolicy::Conclude(const Answer& answer, bool last_tier,
                                   RouteDecision* decision) const {
  const auto start = Clock::now();
  decision->set_confidence(answer.probability);
  const std::string& tier = answer.tier->name;
  std::string why;
  std::string target;
  if (answer.route.empty()) {
    why = absl::StrCat(tier, " tier: out-of-domain label '", answer.label, "' (",
                       Probability(answer.probability), ")");
    target = ood_route_;
  } else {
    const slmgw::config::v1::RouteConfig* route = route_table_->FindRoute(answer.route);
    const float route_threshold =
        route->confidence_threshold() > 0 ? route->confidence_threshold() : ood_threshold_;
    if (last_tier && answer.probability < answer.tier->threshold) {
      why = absl::StrCat(tier, " tier unsure: '", answer.label, "' ",
                         Probability(answer.probability), " < tier threshold ",
                         Probability(answer.tier->threshold));
    } else if (answer.probability < route_threshold) {
      why = absl::StrCat(tier, " tier: '", answer.label, "' ", Probability(answer.probability),
                         " < route '", answer.route, "' threshold ", Probability(route_threshold));
    } else {
      SetRoute(answer.route, decision);
      decision->set_reason(absl::StrCat(tier, " tier: label '", answer.label, "' ",
                                        Probability(answer.probability), " -> route '",
                                        answer.route, "'"));
      return absl::OkStatus();
    }
    target = route->fallback().empty() ? ood_route_ : route->fallback(0);
    if (target.empty()) {
      // Nowhere better to go: keep the classified route and say so.
      SetRoute(answer.route, decision);
      decision->set_reason(absl::StrCat(why, "; no fallback configured, staying on '",
                                        answer.route, "'"));
      AddSignal("out_of_domain", answer.route, answer.probability, start, decision);
      return absl::OkStatus();
    }
  }
  if (target.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        why, ", and neither classification.out_of_domain.route nor default_route is configured"));
  }
  SetRoute(target, decision);
  decision->set_reason(absl::StrCat(why, "; fallback to route '", target, "'"));
  AddSignal("out_of_domain", target, answer.probability, start, decision);
  return absl::OkStatus();
}

absl::StatusOr<RouteDecision> RoutePolicy::Decide(absl::string_view text,
                                                  const slmgw::v1::RequestOptions& options) const {
  // 1. Explicit hints are final.
  if (!options.route_hint().empty() || !options.task().empty()) {
    return route_table_->Decide(options);
  }
  RouteDecision decision;
  // 2. Rules.
  if (!rules_->empty()) {
    const auto start = Clock::now();
    const RuleSet::Rule* rule = rules_->Match(text, options);
    AddSignal("rule", rule == nullptr ? "" : rule->route, rule == nullptr ? 0.0f : 1.0f, start,
              &decision);
    if (rule != nullptr) {
      SetRoute(rule->route, &decision);
      decision.set_confidence(1.0f);
      decision.set_reason(absl::StrCat("rule '", rule->name, "' -> route '", rule->route, "'"));
      return decision;
    }
  }
  // 3./4. Learned tiers: the encoder when the fast tier is absent, failed or unsure.
  Answer answer;
  bool answered = fast_ != nullptr && RunTier(*fast_, text, &decision, &answer);
  const bool fast_sure = answered && answer.probability >= fast_->threshold;
  bool last_tier = encoder_ == nullptr;
  if (encoder_ != nullptr && !fast_sure) {
    Answer encoder_answer;
    if (RunTier(*encoder_, text, &decision, &encoder_answer)) {
      answer = std::move(encoder_answer);
      answered = true;
      last_tier = true;
    }
  }
  // 5. Out-of-domain detection on the deciding answer.
  if (answered) {
    absl::Status concluded = Conclude(answer, last_tier, &decision);
    if (!concluded.ok()) return concluded;
    return decision;
  }
  // Nothing decided: the default route, after the signals computed so far.
  absl::StatusOr<RouteDecision> fallback = route_table_->Decide(options);
  if (!fallback.ok()) return fallback.status();
  for (auto& signal : *fallback->mutable_signals()) *decision.add_signals() = std::move(signal);
  decision.set_route(fallback->route());
  decision.set_pool(fallback->pool());
  decision.set_confidence(fallback->confidence());
  decision.set_reason(fallback->reason());
  return decision;
}

}  // namespace slm::router
