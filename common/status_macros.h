// Small helpers for absl::Status-returning code (Debian 12's Abseil ships none).
//
//   absl::StatusOr<Model> Load(const std::string& path) {
//     SLM_ASSIGN_OR_RETURN(GgufFile file, GgufFile::Open(path));
//     SLM_RETURN_IF_ERROR(file.Validate());
//     ...
//   }
#ifndef SLM_COMMON_STATUS_MACROS_H_
#define SLM_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SLM_STATUS_CONCAT_INNER_(a, b) a##b
#define SLM_STATUS_CONCAT_(a, b) SLM_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define SLM_RETURN_IF_ERROR(expr)                    \
  do {                                               \
    const ::absl::Status slm_status_ = (expr);       \
    if (!slm_status_.ok()) return slm_status_;       \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, else moves the value
// into `lhs` (a declaration such as `auto x` or an existing variable).
#define SLM_ASSIGN_OR_RETURN(lhs, rexpr) \
  SLM_ASSIGN_OR_RETURN_IMPL_(SLM_STATUS_CONCAT_(slm_statusor_, __LINE__), lhs, rexpr)

#define SLM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // SLM_COMMON_STATUS_MACROS_H_
