// GgufFile: a validated, read-only view of a GGUF (v2 or v3) model file.
//
// GGUF is llama.cpp's single-file model format: a header, typed key/value metadata, tensor
// descriptions, then an aligned data section. Open() maps the file with PROT_READ and checks
// every byte it will ever hand out before returning, so accessors never fail on a corrupt file:
// magic, version, tensor/kv counts against the file size, string lengths, value types, array
// lengths, alignment (general.alignment, default 32), every tensor's dims (>0, product
// overflow), type, offset alignment and [offset, offset+size) within the file, duplicate names.
//
//   SLM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open("model.gguf"));
//   SLM_ASSIGN_OR_RETURN(int64_t layers, file->GetInt("bert.block_count"));
//   SLM_ASSIGN_OR_RETURN(std::vector<float> bias,
//                        file->ReadF32("blk.0.attn_q.bias", {hidden_size}));
//
// Ownership: the GgufFile owns the mapping (or the bytes given to FromBytes); GgufTensor::data
// pointers stay valid while the GgufFile lives.
// Thread-safety: immutable after Open; all methods may be called concurrently.
#ifndef SLM_WORKERS_GGUF_GGUF_FILE_H_
#define SLM_WORKERS_GGUF_GGUF_FILE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slm::workers {

// ggml tensor element types (values are the on-disk codes).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

// "F32", "Q8_0", ...; "type(<code>)" for codes not in GgmlType.
std::string GgmlTypeName(GgmlType type);

// Elements per block and bytes per block of `type`; false for unknown types.
bool GgmlTypeBlockInfo(GgmlType type, int64_t* block_elements, int64_t* block_bytes);

struct GgufTensor {
  std::string name;
  // ggml order: dims[0] is the fastest-varying (a PyTorch [out, in] weight has dims {in, out}).
  std::vector<int64_t> dims;
  GgmlType type;
  uint64_t offset;      // relative to the data section
  const uint8_t* data;  // points into the mapping; valid while the GgufFile lives
  uint64_t size_bytes;
  int64_t element_count() const;
};

// Metadata value types (on-disk codes).
enum class GgufValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

class GgufFile {
 public:
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses an in-memory image; `name` stands in for the path in error messages.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBytes(std::string bytes, std::string name);

  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  bool Has(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;   // any integer type
  absl::StatusOr<double> GetFloat(std::string_view key) const;  // f32/f64 (and integers)
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  absl::StatusOr<std::vector<double>> GetFloatArray(std::string_view key) const;
  // Convenience with defaults for optional keys (still an error if present with a wrong type).
  absl::StatusOr<int64_t> GetIntOr(std::string_view key, int64_t fallback) const;
  absl::StatusOr<double> GetFloatOr(std::string_view key, double fallback) const;
  absl::StatusOr<std::string> GetStringOr(std::string_view key, std::string fallback) const;

  // All metadata keys, in file order.
  std::vector<std::string> Keys() const;

  const std::vector<GgufTensor>& tensors() const;
  absl::StatusOr<const GgufTensor*> FindTensor(std::string_view name) const;  // NotFound names it
  // Dequantizes F32, F16, BF16, Q8_0, Q4_0/1, Q5_0/1, Q4_K, Q5_K, Q6_K (others: Unimplemented)
  // to f32, checking the element count against `expected_dims` (ggml order) when given; errors
  // name the tensor.
  // A multi-entry `expected_dims` must equal the tensor's dims (trailing 1s ignored on both
  // sides), so a transposed weight is rejected even though its element count matches.
  absl::StatusOr<std::vector<float>> ReadF32(std::string_view name,
                                             const std::vector<int64_t>& expected_dims = {}) const;

  const std::string& path() const;
  uint32_t version() const;
  uint64_t alignment() const;

 private:
  struct Value;
  class Parser;
  GgufFile();

  // Validates the image at base_/size_ and fills the tables.
  absl::Status Parse();
  // Finds `key`; NotFound names the key and the file.
  absl::StatusOr<const Value*> Find(std::string_view key) const;

  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  // Backing storage: either an mmap'ed region or an owned 64-byte-aligned copy (so tensor data
  // is as aligned as the file's alignment promises, up to 64).
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;
  uint64_t mapping_size_ = 0;
  void* owned_bytes_ = nullptr;
  std::vector<std::pair<std::string, std::unique_ptr<Value>>> values_;
  std::map<std::string, size_t, std::less<>> value_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_GGUF_GGUF_FILE_H_
