#include "tools/learned_tiers/learned_tiers.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/dtype.h"
#include "workers/encoder/encoder_model.h"
#include "workers/ngram/ngram_model.h"

namespace slm::tools {
namespace {

using router::ClassScore;

class NgramTier final : public router::TextClassifier {
 public:
  explicit NgramTier(std::unique_ptr<workers::NgramModel> model) : model_(std::move(model)) {}
  absl::StatusOr<std::vector<ClassScore>> Classify(absl::string_view text) const override {
    const std::vector<std::string>& labels = model_->labels();
    // Labels are few (a dozen); the model itself allocates nothing.
    float probabilities[workers::kNgramMaxClasses];
    model_->Classify(std::string_view(text.data(), text.size()), probabilities);
    std::vector<ClassScore> scores;
    scores.reserve(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) scores.push_back({labels[i], probabilities[i]});
    return scores;
  }
  std::vector<std::string> Labels() const override { return model_->labels(); }

 private:
  std::unique_ptr<workers::NgramModel> model_;
};

class EncoderTier final : public router::TextClassifier {
 public:
  explicit EncoderTier(std::unique_ptr<workers::EncoderModel> model) : model_(std::move(model)) {}
  absl::StatusOr<std::vector<ClassScore>> Classify(absl::string_view text) const override {
    absl::StatusOr<workers::ClassifyOutput> output =
        model_->Classify(std::string_view(text.data(), text.size()));
    if (!output.ok()) return output.status();
    std::vector<ClassScore> scores;
    scores.reserve(output->labels.size());
    for (const auto& label : output->labels) scores.push_back({label.label, label.score});
    return scores;
  }
  std::vector<std::string> Labels() const override { return model_->labels(); }

 private:
  std::unique_ptr<workers::EncoderModel> model_;
};

}  // namespace

router::ClassifierLoader LearnedTierLoader(std::string models_dir) {
  return [models_dir = std::move(models_dir)](
             const std::string& tier, const slmgw::config::v1::ClassifierTierConfig& config)
             -> absl::StatusOr<std::unique_ptr<router::TextClassifier>> {
    const std::string path = !config.model_path().empty() && config.model_path()[0] == '/'
                                 ? config.model_path()
                                 : absl::StrCat(models_dir, "/", config.model_path());
    auto annotate = [&](const absl::Status& status) {
      return absl::Status(status.code(), absl::StrCat("classification.", tier, ": ",
                                                      status.message()));
    };
    if (tier == "fast") {
      absl::StatusOr<std::unique_ptr<workers::NgramModel>> model = workers::NgramModel::Load(path);
      if (!model.ok()) return annotate(model.status());
      return std::make_unique<NgramTier>(*std::move(model));
    }
    if (tier == "encoder") {
      absl::StatusOr<kernels::DType> dtype =
          kernels::ParseDType(config.dtype().empty() ? "f32" : config.dtype());
      if (!dtype.ok()) return annotate(dtype.status());
      workers::EncoderOptions options;
      options.dtype = *dtype;
      options.threads = config.threads() == 0 ? 1 : static_cast<int>(config.threads());
      absl::StatusOr<std::unique_ptr<workers::EncoderModel>> model =
          workers::EncoderModel::Load(path, options);
      if (!model.ok()) return annotate(model.status());
      return std::make_unique<EncoderTier>(*std::move(model));
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown classifier tier '", tier, "'"));
  };
}

}  // namespace slm::tools
