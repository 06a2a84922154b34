// The learned routing tiers for the composition roots (slm-gateway, slm-router): adapts
// workers/ngram's NgramModel (classification.fast) and workers/encoder's EncoderModel
// (classification.encoder) to router/'s TextClassifier, so router/ and workers/ stay apart.
//
//   auto service = GatewayServiceImpl::Create(config, factory, metrics,
//                                             slm::tools::LearnedTierLoader(models_dir));
//
// Thread-safety: the loader may be called from any thread; the classifiers it returns are
// immutable and may be called concurrently (the encoder runs on its configured thread count).
#ifndef SLM_TOOLS_LEARNED_TIERS_LEARNED_TIERS_H_
#define SLM_TOOLS_LEARNED_TIERS_LEARNED_TIERS_H_

#include <string>

#include "router/classification/text_classifier.h"

namespace slm::tools {

// Loads "fast" tiers as n-gram models and "encoder" tiers as encoders; a relative model_path
// is resolved against `models_dir`. Errors name the tier and the file.
router::ClassifierLoader LearnedTierLoader(std::string models_dir);

}  // namespace slm::tools

#endif  // SLM_TOOLS_LEARNED_TIERS_LEARNED_TIERS_H_
