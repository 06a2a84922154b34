// slmctl eval: sends a labelled file through a running gateway, one request at a time, and
// reports task accuracy, entity F1 (seqeval exact spans over whitespace tokens), route accuracy
// where the right route is known, the share served by specialists vs the fallback
// (ServedBy.fell_back) and client-side latency percentiles.
//
//   slmctl eval --target 127.0.0.1:50051 --format banking77 --task banking val.csv
//   slmctl eval --format conll --task entities --json dev.conll
//   slmctl eval --format mixed workload.jsonl          # {text, task?, expected_route, ...}
//
// Formats and arithmetic: tools/slmctl/eval_data.h. The table (or --json, one JSON object) goes
// to standard output; exit code 0 when every line of the file was read (request errors are
// counted in the report, not fatal), 2 on a bad flag or file.
#ifndef SLM_TOOLS_SLMCTL_EVAL_COMMAND_H_
#define SLM_TOOLS_SLMCTL_EVAL_COMMAND_H_

#include <string>
#include <vector>

#include "tools/slmctl/commands.h"

namespace slm::slmctl {

struct EvalOptions {
  std::string format;                // clinc150 | banking77 | sst2 | conll | mixed
  std::string file;
  std::string expect_route;          // expected route of every case without one ("" = none)
  std::vector<std::string> labels = {"negative", "positive"};  // names of numeric SST-2 labels
  int limit = 0;                     // at most this many cases (0 = all)
};

// options.task applies to cases whose file gives no task.
int Eval(const CallOptions& options, const EvalOptions& eval);

}  // namespace slm::slmctl

#endif  // SLM_TOOLS_SLMCTL_EVAL_COMMAND_H_
