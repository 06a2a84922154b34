#include "common/logging.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace slm {
namespace {

LogLevel MinimumLevelFromEnvironment() {
  const char* value = std::getenv("SLM_LOG_LEVEL");
  if (value == nullptr) return LogLevel::kInfo;
  const std::string level(value);
  if (level == "DEBUG") return LogLevel::kDebug;
  if (level == "WARNING") return LogLevel::kWarning;
  if (level == "ERROR") return LogLevel::kError;
  return LogLevel::kInfo;
}

const char* Basename(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash == nullptr ? path : slash + 1;
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return 'D';
    case LogLevel::kInfo: return 'I';
    case LogLevel::kWarning: return 'W';
    case LogLevel::kError: return 'E';
  }
  return '?';
}

}  // namespace

bool LogEnabled(LogLevel level) {
  static const LogLevel minimum = MinimumLevelFromEnvironment();
  return level >= minimum;
}

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  stream_ << LevelLetter(level) << ' '
          << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()) << ' '
          << Basename(file) << ':' << line << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string line = stream_.str();
  // One fwrite per line keeps lines from different threads whole.
  std::fwrite(line.data(), 1, line.size(), stderr);
  if (level_ >= LogLevel::kError) std::fflush(stderr);
}

}  // namespace slm
