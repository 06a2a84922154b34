// Typed metadata accessors of GgufFile (parsing lives in gguf_file.cc).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "workers/gguf/gguf_file.h"
#include "workers/gguf/gguf_value.h"

namespace slm::workers {
namespace gguf_internal {

bool IsInteger(GgufValueType type) {
  switch (type) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kU16:
    case GgufValueType::kI16:
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kU64:
    case GgufValueType::kI64:
      return true;
    default:
      return false;
  }
}

bool IsFloat(GgufValueType type) {
  return type == GgufValueType::kF32 || type == GgufValueType::kF64;
}

uint64_t ScalarSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kU16:
    case GgufValueType::kI16:
      return 2;
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kF32:
      return 4;
    case GgufValueType::kU64:
    case GgufValueType::kI64:
    case GgufValueType::kF64:
      return 8;
    default:
      return 0;
  }
}

std::string ValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kU8:
      return "u8";
    case GgufValueType::kI8:
      return "i8";
    case GgufValueType::kU16:
      return "u16";
    case GgufValueType::kI16:
      return "i16";
    case GgufValueType::kU32:
      return "u32";
    case GgufValueType::kI32:
      return "i32";
    case GgufValueType::kF32:
      return "f32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kU64:
      return "u64";
    case GgufValueType::kI64:
      return "i64";
    case GgufValueType::kF64:
      return "f64";
  }
  return absl::StrCat("type(", static_cast<uint32_t>(type), ")");
}

std::string DescribeType(GgufValueType type, GgufValueType element_type) {
  if (type == GgufValueType::kArray) return absl::StrCat("array of ", ValueTypeName(element_type));
  return ValueTypeName(type);
}
}  // namespace gguf_internal

using gguf_internal::DescribeType;
using gguf_internal::IsFloat;
using gguf_internal::IsInteger;

bool GgufFile::Has(std::string_view key) const {
  return value_index_.find(key) != value_index_.end();
}

absl::StatusOr<const GgufFile::Value*> GgufFile::Find(std::string_view key) const {
  auto it = value_index_.find(key);
  if (it == value_index_.end()) {
    return absl::NotFoundError(
        absl::StrCat(path_, ": metadata key '", std::string(key), "' not found"));
  }
  return values_[it->second].second.get();
}

namespace {
absl::Status WrongType(const std::string& path, std::string_view key, GgufValueType type,
                       GgufValueType element_type, const char* expected) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": metadata '", std::string(key),
                                                 "' has type ", DescribeType(type, element_type),
                                                 ", expected ", expected));
}
}  // namespace

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  SLM_ASSIGN_OR_RETURN(const Value* value, Find(key));
  if (value->type != GgufValueType::kString) {
    return WrongType(path_, key, value->type, value->element_type, "string");
  }
  return value->text;
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  SLM_ASSIGN_OR_RETURN(const Value* value, Find(key));
  if (!IsInteger(value->type)) {
    return WrongType(path_, key, value->type, value->element_type, "an integer");
  }
  if (value->integer_out_of_range) {
    return absl::OutOfRangeError(
        absl::StrCat(path_, ": metadata '", std::string(key), "' u64 value exceeds int64"));
  }
  return value->integer;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  SLM_ASSIGN_OR_RETURN(const Value* value, Find(key));
  if (IsFloat(value->type)) return value->real;
  if (IsInteger(value->type)) {
    if (value->integer_out_of_range)
      return static_cast<double>(static_cast<uint64_t>(value->integer));
    return static_cast<double>(value->integer);
  }
  return WrongType(path_, key, value->type, value->element_type, "a number");
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  SLM_ASSIGN_OR_RETURN(const Value* value, Find(key));
  if (value->type != GgufValueType::kBool) {
    return WrongType(path_, key, value->type, value->element_type, "bool");
  }
  return value->boolean;
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  SLM_ASSIGN_OR_RETURN(const Value* value, Find(key));
  if (value->type != GgufValueType::kArray || value->element_type != GgufValueType::kString) {
    return WrongType(path_, key, value->type, value->element_type, "array of string");
  }
  return value->texts;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  SLM_ASSIGN_OR_RETURN(const Value* value, Find(key));
  if (value->type != GgufValueType::kArray || !IsInteger(value->element_type)) {
    return WrongType(path_, key, value->type, value->element_type, "array of integers");
  }
  if (value->any_integer_out_of_range) {
    return absl::OutOfRangeError(absl::StrCat(path_, ": metadata '", std::string(key),
                                              "' has a u64 element that exceeds int64"));
  }
  return value->integers;
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  SLM_ASSIGN_OR_RETURN(const Value* value, Find(key));
  if (value->type == GgufValueType::kArray && IsFloat(value->element_type)) return value->reals;
  if (value->type == GgufValueType::kArray && IsInteger(value->element_type)) {
    std::vector<double> reals;
    reals.reserve(value->integers.size());
    const bool is_u64 = value->element_type == GgufValueType::kU64;
    for (int64_t integer : value->integers) {
      reals.push_back(is_u64 ? static_cast<double>(static_cast<uint64_t>(integer))
                             : static_cast<double>(integer));
    }
    return reals;
  }
  return WrongType(path_, key, value->type, value->element_type, "array of numbers");
}

absl::StatusOr<int64_t> GgufFile::GetIntOr(std::string_view key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return GetInt(key);
}

absl::StatusOr<double> GgufFile::GetFloatOr(std::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return GetFloat(key);
}

absl::StatusOr<std::string> GgufFile::GetStringOr(std::string_view key,
                                                  std::string fallback) const {
  if (!Has(key)) return fallback;
  return GetString(key);
}

std::vector<std::string> GgufFile::Keys() const {
  std::vector<std::string> keys;
  keys.reserve(values_.size());
  for (const auto& [key, value] : values_) keys.push_back(key);
  return keys;
}

}  // namespace slm::workers
