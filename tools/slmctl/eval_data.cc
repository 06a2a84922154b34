#include "tools/slmctl/eval_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace slm::slmctl {
namespace {

absl::Status LineError(const std::string& path, int line, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", what));
}

std::string StripCarriageReturn(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Number of code points in UTF-8 `text` (continuation bytes are not counted).
int CodePoints(const std::string& text) {
  int count = 0;
  for (unsigned char byte : text) count += (byte & 0xC0) != 0x80;
  return count;
}

// One CSV record (RFC 4180) starting at line `line` of `in`; fields may hold quoted newlines.
absl::StatusOr<std::vector<std::string>> ReadCsvRecord(std::istream& in, const std::string& path,
                                                       int* line) {
  std::vector<std::string> fields(1);
  std::string text;
  bool quoted = false;
  const int first_line = *line;
  while (std::getline(in, text)) {
    ++*line;
    text = StripCarriageReturn(text);
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (quoted) {
        if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
          fields.back() += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          fields.back() += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        fields.emplace_back();
      } else {
        fields.back() += c;
      }
    }
    if (!quoted) return fields;
    fields.back() += '\n';
  }
  if (quoted) return LineError(path, first_line + 1, "unterminated quoted CSV field");
  return absl::OutOfRangeError("end of file");
}

absl::StatusOr<std::vector<EvalCase>> ReadBanking77(std::istream& in, const std::string& path) {
  int line = 0;
  auto header = ReadCsvRecord(in, path, &line);
  if (!header.ok() || *header != std::vector<std::string>{"text", "category"}) {
    return LineError(path, 1, "expected the CSV header `text,category`");
  }
  std::vector<EvalCase> cases;
  while (true) {
    const int start = line + 1;
    auto record = ReadCsvRecord(in, path, &line);
    if (absl::IsOutOfRange(record.status())) break;
    if (!record.ok()) return record.status();
    if (record->size() == 1 && record->front().empty()) continue;  // blank line
    if (record->size() != 2 || (*record)[0].empty() || (*record)[1].empty()) {
      return LineError(path, start, "expected two non-empty CSV fields: text,category");
    }
    EvalCase eval_case;
    eval_case.text = (*record)[0];
    eval_case.expected_label = (*record)[1];
    cases.push_back(std::move(eval_case));
  }
  return cases;
}

absl::StatusOr<std::vector<EvalCase>> ReadJsonLines(std::istream& in, const std::string& path,
                                                    EvalFormat format) {
  std::vector<EvalCase> cases;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) return LineError(path, line, "expected a JSON object");
    auto string_field = [&](const char* name, bool required,
                            std::string* out) -> absl::Status {
      auto it = record.find(name);
      if (it == record.end()) {
        return required ? LineError(path, line, absl::StrCat("missing string field \"", name,
                                                             "\""))
                        : absl::OkStatus();
      }
      if (!it->is_string()) {
        return LineError(path, line, absl::StrCat("field \"", name, "\" must be a string"));
      }
      *out = it->get<std::string>();
      return absl::OkStatus();
    };
    EvalCase eval_case;
    absl::Status status = string_field("text", true, &eval_case.text);
    if (status.ok() && format == EvalFormat::kClinc150) {
      status = string_field("domain", true, &eval_case.expected_label);
    } else if (status.ok()) {
      std::string rpc = "classify";
      for (auto [name, out] : {std::pair<const char*, std::string*>{"task", &eval_case.task},
                               {"expected_route", &eval_case.expected_route},
                               {"expected_label", &eval_case.expected_label},
                               {"rpc", &rpc}}) {
        if (status.ok()) status = string_field(name, false, out);
      }
      if (status.ok() && rpc != "classify" && rpc != "entities") {
        status = LineError(path, line, "field \"rpc\" must be \"classify\" or \"entities\"");
      }
      eval_case.entities = rpc == "entities";
      if (eval_case.entities) eval_case.token_spans = TokenSpans(eval_case.text);
    }
    if (!status.ok()) return status;
    if (eval_case.text.empty()) return LineError(path, line, "field \"text\" is empty");
    cases.push_back(std::move(eval_case));
  }
  return cases;
}

absl::StatusOr<std::vector<EvalCase>> ReadSst2(std::istream& in, const std::string& path,
                                               const std::vector<std::string>& labels) {
  std::vector<EvalCase> cases;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (line == 1) continue;  // header
    text = StripCarriageReturn(text);
    if (text.empty()) continue;
    const size_t tab = text.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 == text.size()) {
      return LineError(path, line, "expected label<TAB>text");
    }
    EvalCase eval_case;
    eval_case.expected_label = text.substr(0, tab);
    eval_case.text = text.substr(tab + 1);
    const std::string& label = eval_case.expected_label;
    if (std::all_of(label.begin(), label.end(), ::isdigit)) {
      const size_t id = std::stoul(label.substr(0, 9));
      if (id >= labels.size()) {
        return LineError(path, line, absl::StrCat("label ", label, " has no name in --labels (",
                                                  absl::StrJoin(labels, ","), ")"));
      }
      eval_case.expected_label = labels[id];
    }
    cases.push_back(std::move(eval_case));
  }
  return cases;
}

absl::StatusOr<std::vector<EvalCase>> ReadConll(std::istream& in, const std::string& path) {
  std::vector<EvalCase> cases;
  std::vector<std::string> tokens, tags;
  auto finish = [&] {
    if (tokens.empty()) return;
    EvalCase eval_case;
    eval_case.entities = true;
    eval_case.text = absl::StrJoin(tokens, " ");
    eval_case.token_spans = TokenSpans(eval_case.text);
    eval_case.expected_entities = ChunksFromTags(tags);
    cases.push_back(std::move(eval_case));
    tokens.clear();
    tags.clear();
  };
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    text = StripCarriageReturn(text);
    if (text.find_first_not_of(" \t") == std::string::npos) {
      finish();
      continue;
    }
    const size_t tab = text.find('\t');
    const std::string token = text.substr(0, tab);
    const std::string tag = tab == std::string::npos ? "" : text.substr(tab + 1);
    const bool bio = tag == "O" || (tag.size() > 2 && (tag[0] == 'B' || tag[0] == 'I') &&
                                    tag[1] == '-');
    if (token.empty() || token.find(' ') != std::string::npos || !bio) {
      return LineError(path, line, "expected token<TAB>tag with a space-free token and a BIO "
                                   "tag (O, B-type, I-type)");
    }
    tokens.push_back(token);
    tags.push_back(tag);
  }
  finish();
  return cases;
}

}  // namespace

absl::StatusOr<EvalFormat> ParseEvalFormat(const std::string& name) {
  if (name == "clinc150") return EvalFormat::kClinc150;
  if (name == "banking77") return EvalFormat::kBanking77;
  if (name == "sst2") return EvalFormat::kSst2;
  if (name == "conll") return EvalFormat::kConll;
  if (name == "mixed") return EvalFormat::kMixed;
  return absl::InvalidArgumentError(absl::StrCat(
      "--format must be clinc150, banking77, sst2, conll or mixed, not '", name, "'"));
}

absl::StatusOr<std::vector<EvalCase>> ReadEvalFile(const std::string& path, EvalFormat format,
                                                   const std::vector<std::string>& sst2_labels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open eval file ", path));
  absl::StatusOr<std::vector<EvalCase>> cases;
  switch (format) {
    case EvalFormat::kBanking77:
      cases = ReadBanking77(in, path);
      break;
    case EvalFormat::kSst2:
      cases = ReadSst2(in, path, sst2_labels);
      break;
    case EvalFormat::kConll:
      cases = ReadConll(in, path);
      break;
    case EvalFormat::kClinc150:
    case EvalFormat::kMixed:
      cases = ReadJsonLines(in, path, format);
      break;
  }
  if (cases.ok() && cases->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no examples"));
  }
  return cases;
}

std::vector<TokenEntity> ChunksFromTags(const std::vector<std::string>& tags) {
  std::vector<TokenEntity> chunks;
  bool open = false;
  for (size_t i = 0; i < tags.size(); ++i) {
    const std::string& tag = tags[i];
    if (tag == "O" || tag.size() < 3) {
      open = false;
      continue;
    }
    const std::string type = tag.substr(2);
    if (tag[0] == 'B' || !open || chunks.back().label != type) {
      chunks.push_back(TokenEntity{type, static_cast<int>(i), static_cast<int>(i)});
      open = true;
    } else {
      chunks.back().last_token = static_cast<int>(i);
    }
  }
  return chunks;
}

std::vector<std::pair<int, int>> TokenSpans(const std::string& text) {
  std::vector<std::pair<int, int>> spans;
  int position = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const int length = CodePoints(text.substr(start, end - start));
    if (length > 0) spans.emplace_back(position, position + length);
    position += length + 1;
    start = end + 1;
  }
  return spans;
}

std::optional<TokenEntity> EntityToTokens(const std::string& label, int begin, int end,
                                          const std::vector<std::pair<int, int>>& token_spans) {
  int first = -1, last = -1;
  for (size_t i = 0; i < token_spans.size(); ++i) {
    if (token_spans[i].first < end && begin < token_spans[i].second) {
      if (first < 0) first = static_cast<int>(i);
      last = static_cast<int>(i);
    }
  }
  if (first < 0) return std::nullopt;
  return TokenEntity{label, first, last};
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(q / 100.0 * values.size()));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

EvalReport Summarize(const std::vector<EvalCase>& cases,
                     const std::vector<EvalOutcome>& outcomes) {
  EvalReport report;
  std::vector<double> latencies;
  for (size_t i = 0; i < cases.size() && i < outcomes.size(); ++i) {
    const EvalCase& eval_case = cases[i];
    const EvalOutcome& outcome = outcomes[i];
    ++report.requests;
    if (!outcome.ok) {
      ++report.errors;
      ++report.errors_by_code[outcome.error_code];
      continue;
    }
    latencies.push_back(outcome.latency_ms);
    ++report.requests_by_route[outcome.route];
    ++(outcome.fell_back ? report.served_by_fallback : report.served_by_specialist);
    if (!eval_case.expected_route.empty()) {
      ++report.route_judged;
      report.route_correct += outcome.route == eval_case.expected_route;
    }
    if (eval_case.entities) {
      ++report.entity_sentences;
      const std::set<TokenEntity> gold(eval_case.expected_entities.begin(),
                                       eval_case.expected_entities.end());
      const std::set<TokenEntity> predicted(outcome.entities.begin(), outcome.entities.end());
      report.entity_gold += static_cast<int64_t>(gold.size());
      report.entity_predicted += static_cast<int64_t>(predicted.size());
      for (const TokenEntity& entity : predicted) report.entity_true_positive += gold.count(entity);
    } else if (!eval_case.expected_label.empty()) {
      ++report.label_judged;
      report.label_correct += outcome.label == eval_case.expected_label;
    }
  }
  report.latency_p50_ms = Percentile(latencies, 50);
  report.latency_p90_ms = Percentile(latencies, 90);
  report.latency_p99_ms = Percentile(latencies, 99);
  report.latency_max_ms = Percentile(latencies, 100);
  return report;
}

namespace {
double Ratio(int64_t numerator, int64_t denominator) {
  return denominator > 0 ? static_cast<double>(numerator) / denominator : 0.0;
}
}  // namespace

double EvalReport::LabelAccuracy() const { return Ratio(label_correct, label_judged); }
double EvalReport::RouteAccuracy() const { return Ratio(route_correct, route_judged); }
double EvalReport::SpecialistShare() const {
  return Ratio(served_by_specialist, served_by_specialist + served_by_fallback);
}
double EvalReport::EntityPrecision() const {
  return Ratio(entity_true_positive, entity_predicted);
}
double EvalReport::EntityRecall() const { return Ratio(entity_true_positive, entity_gold); }
double EvalReport::EntityF1() const {
  const double p = EntityPrecision(), r = EntityRecall();
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

std::string FormatReportTable(const EvalReport& report) {
  std::string out;
  auto row = [&](const std::string& name, const std::string& value) {
    absl::StrAppend(&out, absl::StrFormat("%-22s %s\n", name, value));
  };
  row("requests", absl::StrCat(report.requests, " (", report.errors, " errors)"));
  for (const auto& [code, count] : report.errors_by_code) row("  error " + code, absl::StrCat(count));
  if (report.label_judged > 0) {
    row("label accuracy", absl::StrFormat("%.4f (%d/%d)", report.LabelAccuracy(),
                                          report.label_correct, report.label_judged));
  }
  if (report.entity_sentences > 0) {
    row("entity precision", absl::StrFormat("%.4f (%d/%d)", report.EntityPrecision(),
                                            report.entity_true_positive, report.entity_predicted));
    row("entity recall", absl::StrFormat("%.4f (%d/%d)", report.EntityRecall(),
                                         report.entity_true_positive, report.entity_gold));
    row("entity F1", absl::StrFormat("%.4f", report.EntityF1()));
  }
  if (report.route_judged > 0) {
    row("route accuracy", absl::StrFormat("%.4f (%d/%d)", report.RouteAccuracy(),
                                          report.route_correct, report.route_judged));
  }
  row("served by specialist", absl::StrFormat("%.4f (%d specialist, %d fallback)",
                                              report.SpecialistShare(),
                                              report.served_by_specialist,
                                              report.served_by_fallback));
  for (const auto& [route, count] : report.requests_by_route) {
    row("  route " + (route.empty() ? std::string("(none)") : route), absl::StrCat(count));
  }
  row("latency ms", absl::StrFormat("p50 %.3f  p90 %.3f  p99 %.3f  max %.3f",
                                    report.latency_p50_ms, report.latency_p90_ms,
                                    report.latency_p99_ms, report.latency_max_ms));
  return out;
}

std::string FormatReportJson(const EvalReport& report) {
  nlohmann::json json = {
      {"requests", report.requests},
      {"errors", report.errors},
      {"errors_by_code", report.errors_by_code},
      {"label", {{"judged", report.label_judged},
                 {"correct", report.label_correct},
                 {"accuracy", report.LabelAccuracy()}}},
      {"route", {{"judged", report.route_judged},
                 {"correct", report.route_correct},
                 {"accuracy", report.RouteAccuracy()}}},
      {"entities", {{"sentences", report.entity_sentences},
                    {"true_positive", report.entity_true_positive},
                    {"gold", report.entity_gold},
                    {"predicted", report.entity_predicted},
                    {"precision", report.EntityPrecision()},
                    {"recall", report.EntityRecall()},
                    {"f1", report.EntityF1()}}},
      {"served_by", {{"specialist", report.served_by_specialist},
                     {"fallback", report.served_by_fallback},
                     {"specialist_share", report.SpecialistShare()}}},
      {"requests_by_route", report.requests_by_route},
      {"latency_ms", {{"p50", report.latency_p50_ms},
                      {"p90", report.latency_p90_ms},
                      {"p99", report.latency_p99_ms},
                      {"max", report.latency_max_ms}}}};
  return json.dump();
}

}  // namespace slm::slmctl
