// StopMatcher: finds stop strings in streamed text, even when a stop string spans several tokens,
// and holds back only the text that may still turn out to be the start of one.
//
//   StopMatcher matcher({"\n\n", "</answer>"});
//   for (const std::string& piece : pieces) {
//     StopMatcher::Result result = matcher.Push(piece);
//     Send(result.text);           // safe to show: cannot be part of a stop string
//     if (result.stopped) break;   // the stop string and anything after it are dropped
//   }
//   Send(matcher.Flush());         // generation ended another way: release what was held
//
// The emitted text never contains a stop string; the concatenation of all results (and Flush)
// is the full text cut before the earliest occurrence of any stop string.
// Thread-safety: one sequence's state; not thread-safe.
#ifndef SLM_WORKERS_GENERATION_STOP_MATCHER_H_
#define SLM_WORKERS_GENERATION_STOP_MATCHER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace slm::workers {

class StopMatcher {
 public:
  // Empty stop strings are ignored.
  explicit StopMatcher(std::vector<std::string> stops);

  struct Result {
    std::string text;
    bool stopped = false;
  };
  // After a result with stopped == true, further pushes return nothing.
  Result Push(absl::string_view text);
  // The held-back text (no stop string completed); empties the buffer.
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_GENERATION_STOP_MATCHER_H_
