// The route policy: turns a request (text and options) into a RouteDecision by the signals of
// issue 4, cheapest first, each recorded with its own time:
//   1. route_hint, then task (RouteTable): explicit and final.
//   2. rules (RuleSet): keywords, RE2 patterns, tenant, metadata, length; first match decides.
//   3. fast: the fast learned tier (an n-gram classifier), when configured.
//   4. encoder: the encoder tier, when configured and the fast tier is unsure (its top
//      probability below fast.threshold), failed, or is absent.
//   5. out_of_domain: on the deciding tier's answer. The top label is the out-of-domain label,
//      or the last tier is unsure (below its own threshold), or the top probability is below the
//      chosen route's threshold (routes[].confidence_threshold, else out_of_domain.threshold):
//      the decision's route becomes the fallback target (the route's first fallback, else
//      out_of_domain.route, else default_route) and the reason says why. The dispatch engine
//      runs the fallback chain; this class only decides.
//   Nothing decided: the default route (RouteTable), after the signals above.
// A learned tier that fails (text too long for the encoder, ...) is recorded as a signal with an
// empty route and confidence 0, and the previous answer stands.
//
//   SLM_ASSIGN_OR_RETURN(auto policy, RoutePolicy::Create(*config, route_table.get(), loader));
//   absl::StatusOr<RouteDecision> decision = policy->Decide(text, request.options());
//
// Ownership: owns its rules and classifiers; `route_table` is borrowed and must outlive it.
// Thread-safety: immutable after Create; Decide may be called concurrently.
#ifndef SLM_ROUTER_CLASSIFICATION_ROUTE_POLICY_H_
#define SLM_ROUTER_CLASSIFICATION_ROUTE_POLICY_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/classification/rules.h"
#include "router/classification/text_classifier.h"
#include "router/route_table.h"
#include "slmgw/config/v1/config.pb.h"
#include "slmgw/v1/types.pb.h"

namespace slm::router {

class RoutePolicy {
 public:
  // Loads the learned tiers through `loader` and checks that the model's labels and the
  // configured label map agree (every model label mapped or the out-of-domain label; every
  // mapped label known to the model). Errors name the tier and the label.
  static absl::StatusOr<std::unique_ptr<RoutePolicy>> Create(
      const slmgw::config::v1::GatewayConfig& config, const RouteTable* route_table,
      const ClassifierLoader& loader);

  // Errors: those of RouteTable::Decide (unknown hint or task, no default route), and
  // FailedPrecondition when a request is out of domain and no fallback target is configured.
  absl::StatusOr<slmgw::v1::RouteDecision> Decide(absl::string_view text,
                                                  const slmgw::v1::RequestOptions& options) const;

 private:
  struct Tier {
    std::string name;  // "fast" or "encoder": the signal name
    std::unique_ptr<TextClassifier> classifier;
    float threshold = 0;
    absl::flat_hash_map<std::string, std::string> route_of_label;
  };
  // The top label of one tier's answer.
  struct Answer {
    std::string label;
    std::string route;  // empty for the out-of-domain label
    float probability = 0;
    const Tier* tier = nullptr;
  };

  RoutePolicy() = default;
  static absl::StatusOr<std::unique_ptr<Tier>> LoadTier(
      const std::string& name, const slmgw::config::v1::ClassifierTierConfig& config,
      const std::string& ood_label, const ClassifierLoader& loader);
  // Runs `tier`, appends its signal; false when it failed.
  bool RunTier(const Tier& tier, absl::string_view text, slmgw::v1::RouteDecision* decision,
               Answer* answer) const;
  // Step 5 on the deciding answer; fills route, confidence and reason of `decision`.
  absl::Status Conclude(const Answer& answer, bool last_tier,
                        slmgw::v1::RouteDecision* decision) const;
  // Sets route and pool of `decision`.
  void SetRoute(const std::string& route, slmgw::v1::RouteDecision* decision) const;

  const RouteTable* route_table_ = nullptr;
  std::unique_ptr<RuleSet> rules_;
  std::unique_ptr<Tier> fast_;
  std::unique_ptr<Tier> encoder_;
  std::string ood_label_;
  float ood_threshold_ = 0;
  std::string ood_route_;  // out_of_domain.route, else default_route (may be empty)
};

}  // namespace slm::router

#endif  // SLM_ROUTER_CLASSIFICATION_ROUTE_POLICY_H_
