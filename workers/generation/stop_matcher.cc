#include "workers/generation/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace slm::workers {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& stop : stops) {
    if (!stop.empty()) stops_.push_back(std::move(stop));
  }
}

StopMatcher::Result StopMatcher::Push(absl::string_view text) {
  Result result;
  if (stopped_) return result;
  held_.append(text.data(), text.size());
  if (stops_.empty()) {
    result.text.swap(held_);
    return result;
  }
  // The earliest complete stop string ends the text.
  size_t earliest = std::string::npos;
  for (const std::string& stop : stops_) earliest = std::min(earliest, held_.find(stop));
  if (earliest != std::string::npos) {
    result.text = held_.substr(0, earliest);
    result.stopped = true;
    stopped_ = true;
    held_.clear();
    return result;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    const size_t longest = std::min(stop.size() - 1, held_.size());
    for (size_t length = longest; length > hold; --length) {
      if (held_.compare(held_.size() - length, length, stop, 0, length) == 0) {
        hold = length;
        break;
      }
    }
  }
  result.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return result;
}

std::string StopMatcher::Flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace slm::workers
