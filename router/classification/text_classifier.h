// The learned classification tiers as the router sees them: a text goes in, a probability per
// label comes out. Implementations live in workers/ (the n-gram fast tier, the BERT encoder) and
// are adapted in the composition roots (tools/slm_gateway, tools/slm_router), so router/ never
// includes workers/.
//
//   ClassifierLoader loader = [&](const std::string& tier, const ClassifierTierConfig& config)
//       -> absl::StatusOr<std::unique_ptr<TextClassifier>> { ... load config.model_path ... };
//   SLM_ASSIGN_OR_RETURN(auto service, GatewayServiceImpl::Create(config, factory, metrics,
//                                                                 loader));
//
// Thread-safety: a TextClassifier is immutable once loaded; Classify and Labels may be called
// concurrently from many threads.
#ifndef SLM_ROUTER_CLASSIFICATION_TEXT_CLASSIFIER_H_
#define SLM_ROUTER_CLASSIFICATION_TEXT_CLASSIFIER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "slmgw/config/v1/config.pb.h"

namespace slm::router {

struct ClassScore {
  std::string label;
  float probability;  // softmax probability, 0..1
};

class TextClassifier {
 public:
  virtual ~TextClassifier() = default;
  // Every label with its probability (any order). Errors (e.g. a text longer than the model
  // accepts) make the router fall back to the previous tier's answer or the default route.
  virtual absl::StatusOr<std::vector<ClassScore>> Classify(absl::string_view text) const = 0;
  // The model's labels, checked against the configured label -> route map at load.
  virtual std::vector<std::string> Labels() const = 0;
};

// Loads the classifier of one tier ("fast" or "encoder") from its configuration; the returned
// classifier is owned by the caller. Called when the router's state is built (start, reload).
using ClassifierLoader = std::function<absl::StatusOr<std::unique_ptr<TextClassifier>>(
    const std::string& tier, const slmgw::config::v1::ClassifierTierConfig& config)>;

// A loader for binaries that run no learned tier: refuses with a FailedPrecondition that names
// the tier and says which binaries can run it.
ClassifierLoader RefuseLearnedTiers();

}  // namespace slm::router

#endif  // SLM_ROUTER_CLASSIFICATION_TEXT_CLASSIFIER_H_
