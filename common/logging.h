// Minimal structured logging to stderr, safe to call from any thread.
//
//   SLM_LOG(INFO) << "listening on " << address;
//   SLM_LOG(ERROR) << "config rejected: " << status;
//
// Lines look like `I 2026-11-28T08:20:00.123Z gateway.cc:42] listening on 127.0.0.1:50051`.
// The minimum level comes from SLM_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR; default INFO).
#ifndef SLM_COMMON_LOGGING_H_
#define SLM_COMMON_LOGGING_H_

#include <sstream>

namespace slm {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// True when messages at `level` are printed.
bool LogEnabled(LogLevel level);

// Collects one log line and writes it atomically on destruction.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace slm

#define SLM_LOG_LEVEL_DEBUG ::slm::LogLevel::kDebug
#define SLM_LOG_LEVEL_INFO ::slm::LogLevel::kInfo
#define SLM_LOG_LEVEL_WARNING ::slm::LogLevel::kWarning
#define SLM_LOG_LEVEL_ERROR ::slm::LogLevel::kError

// A one-pass loop rather than if/else, so `if (x) SLM_LOG(INFO) << y;` has no dangling else.
#define SLM_LOG(severity)                                                          \
  for (bool slm_log_once_ = ::slm::LogEnabled(SLM_LOG_LEVEL_##severity); slm_log_once_; \
       slm_log_once_ = false)                                                      \
  ::slm::LogMessage(SLM_LOG_LEVEL_##severity, __FILE__, __LINE__).stream()

#endif  // SLM_COMMON_LOGGING_H_
