// Internal to slm_gguf: the metadata value representation shared by the parser
// (gguf_file.cc) and the typed accessors (gguf_metadata.cc). Not part of the public API.
#ifndef SLM_WORKERS_GGUF_GGUF_VALUE_H_
#define SLM_WORKERS_GGUF_GGUF_VALUE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "workers/gguf/gguf_file.h"

namespace slm::workers {

// One metadata value. Integers are widened to int64 (`integer_out_of_range` marks a u64 above
// INT64_MAX); arrays keep their element type and a typed vector.
struct GgufFile::Value {
  GgufValueType type = GgufValueType::kU8;
  GgufValueType element_type = GgufValueType::kU8;  // arrays only
  int64_t integer = 0;
  bool integer_out_of_range = false;
  double real = 0;
  bool boolean = false;
  std::string text;
  std::vector<int64_t> integers;  // integer and bool arrays
  bool any_integer_out_of_range = false;
  std::vector<double> reals;
  std::vector<std::string> texts;
};

namespace gguf_internal {

bool IsInteger(GgufValueType type);
bool IsFloat(GgufValueType type);
// On-disk size of a scalar value type; 0 for string/array (variable) and unknown types.
uint64_t ScalarSize(GgufValueType type);
// "u32", "string", ...
std::string ValueTypeName(GgufValueType type);
// ValueTypeName, or "array of <element>" for arrays.
std::string DescribeType(GgufValueType type, GgufValueType element_type);

}  // namespace gguf_internal
}  // namespace slm::workers

#endif  // SLM_WORKERS_GGUF_GGUF_VALUE_H_
