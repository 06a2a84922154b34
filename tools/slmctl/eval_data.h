// `slmctl eval`'s inputs and arithmetic, apart from gRPC so that tests can check them alone:
// readers for the labelled-data formats in ../shared/data, and the report (accuracy, entity F1,
// route accuracy, specialist share, latency percentiles) computed from per-request outcomes.
//
//   SLM_ASSIGN_OR_RETURN(std::vector<EvalCase> cases, ReadEvalFile(path, EvalFormat::kConll));
//   ... send each case, fill an EvalOutcome ...
//   EvalReport report = Summarize(cases, outcomes);
//
// Formats:
//   clinc150   JSONL {"text", "intent", "domain"}: expected label = domain
//   banking77  CSV with a header `text,category` (RFC 4180 quoting): expected label = category
//   sst2       TSV with a header, `label<TAB>text`; a numeric label is named by sst2_labels
//   conll      `token<TAB>tag` lines, blank line between sentences: text = tokens joined by one
//              space; expected entities = the seqeval chunks of the tags
//   mixed      JSONL {"text", "task"?, "expected_route"?, "expected_label"?, "rpc"?}: rpc is
//              "classify" (default) or "entities"
// Thread-safety: pure functions over values.
#ifndef SLM_TOOLS_SLMCTL_EVAL_DATA_H_
#define SLM_TOOLS_SLMCTL_EVAL_DATA_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"

namespace slm::slmctl {

enum class EvalFormat { kClinc150, kBanking77, kSst2, kConll, kMixed };

absl::StatusOr<EvalFormat> ParseEvalFormat(const std::string& name);

// An entity chunk over whitespace tokens: [first_token, last_token] inclusive.
struct TokenEntity {
  std::string label;
  int first_token = 0;
  int last_token = 0;
  bool operator<(const TokenEntity& other) const {
    return std::tie(label, first_token, last_token) <
           std::tie(other.label, other.first_token, other.last_token);
  }
  bool operator==(const TokenEntity& other) const {
    return label == other.label && first_token == other.first_token &&
           last_token == other.last_token;
  }
};

struct EvalCase {
  std::string text;
  std::string task;              // RequestOptions.task ("" = let the router classify)
  bool entities = false;         // ExtractEntities instead of Classify
  std::string expected_label;    // "" = not judged
  std::string expected_route;    // "" = not judged
  std::vector<TokenEntity> expected_entities;  // entities cases
  // Code-point [begin, end) of each whitespace token of `text` (entities cases).
  std::vector<std::pair<int, int>> token_spans;
};

// What came back for one case.
struct EvalOutcome {
  bool ok = false;
  std::string error_code;       // e.g. "UNAVAILABLE" when !ok
  std::string label;            // top label (Classify)
  std::string route;            // ServedBy.route
  bool fell_back = false;       // ServedBy.fell_back
  std::vector<TokenEntity> entities;  // mapped back to tokens
  double latency_ms = 0;        // client-side, send to response
};

// Reads FILE in `format`. sst2_labels names numeric SST-2 labels (index = id). Errors name the
// file, the line and what was expected.
absl::StatusOr<std::vector<EvalCase>> ReadEvalFile(const std::string& path, EvalFormat format,
                                                   const std::vector<std::string>& sst2_labels);

// seqeval-style chunks of a BIO tag sequence (an I- without a matching open chunk starts one).
std::vector<TokenEntity> ChunksFromTags(const std::vector<std::string>& tags);

// Code-point spans of the single-space-separated tokens of `text`.
std::vector<std::pair<int, int>> TokenSpans(const std::string& text);

// Maps an entity's code-point span [begin, end) to the tokens it overlaps; nullopt when it
// overlaps none.
std::optional<TokenEntity> EntityToTokens(const std::string& label, int begin, int end,
                                          const std::vector<std::pair<int, int>>& token_spans);

struct EvalReport {
  int64_t requests = 0;
  int64_t errors = 0;
  std::map<std::string, int64_t> errors_by_code;
  int64_t label_judged = 0;     // ok cases with an expected label
  int64_t label_correct = 0;
  int64_t route_judged = 0;     // ok cases with an expected route
  int64_t route_correct = 0;
  int64_t served_by_specialist = 0;  // ok, !fell_back
  int64_t served_by_fallback = 0;    // ok, fell_back
  std::map<std::string, int64_t> requests_by_route;
  // Entity scores, over ok entities cases.
  int64_t entity_sentences = 0;
  int64_t entity_true_positive = 0;
  int64_t entity_gold = 0;
  int64_t entity_predicted = 0;
  double latency_p50_ms = 0, latency_p90_ms = 0, latency_p99_ms = 0, latency_max_ms = 0;

  double LabelAccuracy() const;
  double RouteAccuracy() const;
  double SpecialistShare() const;  // of ok requests
  double EntityPrecision() const;
  double EntityRecall() const;
  double EntityF1() const;
};

// Nearest-rank percentile (q in (0, 100]) of unsorted values; 0 for none.
double Percentile(std::vector<double> values, double q);

// cases.size() must equal outcomes.size().
EvalReport Summarize(const std::vector<EvalCase>& cases, const std::vector<EvalOutcome>& outcomes);

// The report as a fixed-layout text table / a JSON object (one line).
std::string FormatReportTable(const EvalReport& report);
std::string FormatReportJson(const EvalReport& report);

}  // namespace slm::slmctl

#endif  // SLM_TOOLS_SLMCTL_EVAL_DATA_H_
