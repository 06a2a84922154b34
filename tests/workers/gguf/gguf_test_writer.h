// GgufTestWriter: builds GGUF images in memory for tests, independently of the reader (it
// writes bytes by the spec, so a reader bug is not mirrored here).
//
//   GgufTestWriter writer;
//   writer.AddString("general.architecture", "bert");
//   writer.AddTensor("w", {4, 2}, GgmlType::kF32, F32Bytes({...}));
//   std::string bytes = writer.Build();
//
// Raw* helpers let corruption tests write fields the reader must reject.
#ifndef SLM_TESTS_WORKERS_GGUF_GGUF_TEST_WRITER_H_
#define SLM_TESTS_WORKERS_GGUF_GGUF_TEST_WRITER_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "workers/gguf/gguf_file.h"

namespace slm::workers::testing {

class GgufTestWriter {
 public:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::string data;
    int64_t offset_override = -1;  // >= 0: write this offset instead of the computed one
  };

  uint32_t version = 3;
  uint32_t magic_override = 0;  // nonzero: written instead of "GGUF"
  uint64_t alignment = 32;      // must match general.alignment when that key is added

  // Metadata values: each writes key, type and payload.
  void AddU8(const std::string& key, uint8_t v) { Scalar(key, 0, &v, 1); }
  void AddI8(const std::string& key, int8_t v) { Scalar(key, 1, &v, 1); }
  void AddU16(const std::string& key, uint16_t v) { Scalar(key, 2, &v, 2); }
  void AddI16(const std::string& key, int16_t v) { Scalar(key, 3, &v, 2); }
  void AddU32(const std::string& key, uint32_t v) { Scalar(key, 4, &v, 4); }
  void AddI32(const std::string& key, int32_t v) { Scalar(key, 5, &v, 4); }
  void AddF32(const std::string& key, float v) { Scalar(key, 6, &v, 4); }
  void AddBool(const std::string& key, bool v) {
    uint8_t b = v ? 1 : 0;
    Scalar(key, 7, &b, 1);
  }
  void AddString(const std::string& key, const std::string& v) {
    Key(key);
    U32(&kv_, 8);
    Str(&kv_, v);
    ++kv_count_;
  }
  void AddU64(const std::string& key, uint64_t v) { Scalar(key, 10, &v, 8); }
  void AddI64(const std::string& key, int64_t v) { Scalar(key, 11, &v, 8); }
  void AddF64(const std::string& key, double v) { Scalar(key, 12, &v, 8); }
  void AddStringArray(const std::string& key, const std::vector<std::string>& values) {
    Key(key);
    U32(&kv_, 9);
    U32(&kv_, 8);
    U64(&kv_, values.size());
    for (const std::string& v : values) Str(&kv_, v);
    ++kv_count_;
  }
  void AddI32Array(const std::string& key, const std::vector<int32_t>& values) {
    Key(key);
    U32(&kv_, 9);
    U32(&kv_, 5);
    U64(&kv_, values.size());
    for (int32_t v : values) Raw(&kv_, &v, 4);
    ++kv_count_;
  }
  void AddF32Array(const std::string& key, const std::vector<float>& values) {
    Key(key);
    U32(&kv_, 9);
    U32(&kv_, 6);
    U64(&kv_, values.size());
    for (float v : values) Raw(&kv_, &v, 4);
    ++kv_count_;
  }
  // Appends raw bytes to the metadata section and counts one more kv (for corrupt entries).
  void AddRawKv(const std::string& bytes) {
    kv_ += bytes;
    ++kv_count_;
  }

  void AddTensor(const std::string& name, std::vector<uint64_t> dims, GgmlType type,
                 std::string data, int64_t offset_override = -1) {
    tensors_.push_back(
        {name, std::move(dims), static_cast<uint32_t>(type), std::move(data), offset_override});
  }
  void AddTensorRawType(const std::string& name, std::vector<uint64_t> dims, uint32_t type,
                        std::string data) {
    tensors_.push_back({name, std::move(dims), type, std::move(data), -1});
  }

  // Header, metadata, tensor infos, padding to `alignment`, then each tensor's data padded to
  // `alignment`. `tensor_count_override`/`kv_count_override` replace the counts when >= 0.
  std::string Build(int64_t tensor_count_override = -1, int64_t kv_count_override = -1) const {
    std::string out;
    if (magic_override != 0) {
      U32(&out, magic_override);
    } else {
      out += "GGUF";
    }
    U32(&out, version);
    U64(&out, tensor_count_override >= 0 ? static_cast<uint64_t>(tensor_count_override)
                                         : tensors_.size());
    U64(&out, kv_count_override >= 0 ? static_cast<uint64_t>(kv_count_override) : kv_count_);
    out += kv_;
    std::string data;
    for (const Tensor& t : tensors_) {
      Str(&out, t.name);
      U32(&out, static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) U64(&out, d);
      U32(&out, t.type);
      U64(&out, t.offset_override >= 0 ? static_cast<uint64_t>(t.offset_override) : data.size());
      data += t.data;
      while (data.size() % alignment != 0) data.push_back('\0');
    }
    if (!tensors_.empty()) {
      while (out.size() % alignment != 0) out.push_back('\0');
    }
    return out + data;
  }

  static void U32(std::string* out, uint32_t v) { Raw(out, &v, 4); }
  static void U64(std::string* out, uint64_t v) { Raw(out, &v, 8); }
  static void Str(std::string* out, const std::string& s) {
    U64(out, s.size());
    *out += s;
  }
  static void Raw(std::string* out, const void* p, size_t n) {
    out->append(static_cast<const char*>(p), n);
  }

 private:
  void Key(const std::string& key) { Str(&kv_, key); }
  void Scalar(const std::string& key, uint32_t type, const void* p, size_t n) {
    Key(key);
    U32(&kv_, type);
    Raw(&kv_, p, n);
    ++kv_count_;
  }

  std::string kv_;
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

inline std::string F32Bytes(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

inline std::string U16Bytes(const std::vector<uint16_t>& values) {
  std::string out(values.size() * 2, '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

}  // namespace slm::workers::testing

#endif  // SLM_TESTS_WORKERS_GGUF_GGUF_TEST_WRITER_H_
