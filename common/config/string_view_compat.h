// Debian 12's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0: absl::string_view is its
// own type, not std::string_view. The public API of common/config speaks std::string_view; these
// convert at the boundary with absl's string functions. Internal to slm_config.
#ifndef SLM_COMMON_CONFIG_STRING_VIEW_COMPAT_H_
#define SLM_COMMON_CONFIG_STRING_VIEW_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace slm::config {

inline absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

inline std::string_view ToStd(absl::string_view text) {
  return std::string_view(text.data(), text.size());
}

}  // namespace slm::config

#endif  // SLM_COMMON_CONFIG_STRING_VIEW_COMPAT_H_
