#include "workers/gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "workers/gguf/ggml_types.h"
#include "workers/gguf/gguf_value.h"

namespace slm::workers {

using gguf_internal::IsFloat;
using gguf_internal::IsInteger;
using gguf_internal::ScalarSize;
using gguf_internal::ValueTypeName;

namespace {

constexpr uint64_t kMaxDims = 4;
constexpr uint64_t kDefaultAlignment = 32;

std::string DimsString(const std::vector<int64_t>& dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ", "), "]");
}

std::vector<int64_t> TrimTrailingOnes(std::vector<int64_t> dims) {
  while (dims.size() > 1 && dims.back() == 1) dims.pop_back();
  return dims;
}

}  // namespace

// Bounds-checked little-endian cursor over the file image. Every error names the file, what
// was being read and the byte offset.
class GgufFile::Parser {
 public:
  Parser(const std::string& path, const uint8_t* base, uint64_t size)
      : path_(path), base_(base), size_(size) {}

  uint64_t position() const { return position_; }
  uint64_t remaining() const { return size_ - position_; }

  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", what));
  }

  absl::Status Need(uint64_t bytes, const std::string& what) const {
    if (bytes > remaining()) {
      return Error(absl::StrCat("truncated: reading ", what, " needs ", bytes, " bytes at offset ",
                                position_, " but the file has ", size_, " bytes"));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::StatusOr<T> Read(const std::string& what) {
    SLM_RETURN_IF_ERROR(Need(sizeof(T), what));
    T value;
    std::memcpy(&value, base_ + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  absl::StatusOr<std::string> ReadString(const std::string& what) {
    const uint64_t start = position_;
    SLM_ASSIGN_OR_RETURN(uint64_t length, Read<uint64_t>(absl::StrCat(what, " length")));
    if (length > remaining()) {
      return Error(absl::StrCat("string length ", length, " of ", what, " at offset ", start,
                                " exceeds the ", remaining(), " bytes left in the file"));
    }
    std::string text(reinterpret_cast<const char*>(base_ + position_), length);
    position_ += length;
    return text;
  }

  // Reads one value of `type` into `out`; `what` names it (the key) for errors.
  absl::Status ReadValue(GgufValueType type, const std::string& what, Value* out) {
    out->type = type;
    switch (type) {
      case GgufValueType::kArray:
        return ReadArray(what, out);
      case GgufValueType::kString: {
        SLM_ASSIGN_OR_RETURN(out->text, ReadString(what));
        return absl::OkStatus();
      }
      case GgufValueType::kBool: {
        const uint64_t at = position_;
        SLM_ASSIGN_OR_RETURN(uint8_t byte, Read<uint8_t>(what));
        if (byte > 1) {
          return Error(absl::StrCat("bool value ", static_cast<int>(byte), " of ", what,
                                    " at offset ", at, " (expected 0 or 1)"));
        }
        out->boolean = byte == 1;
        return absl::OkStatus();
      }
      case GgufValueType::kF32: {
        SLM_ASSIGN_OR_RETURN(float value, Read<float>(what));
        out->real = value;
        return absl::OkStatus();
      }
      case GgufValueType::kF64: {
        SLM_ASSIGN_OR_RETURN(out->real, Read<double>(what));
        return absl::OkStatus();
      }
      default:
        break;
    }
    if (!IsInteger(type)) {
      return Error(absl::StrCat("unknown value type ", static_cast<uint32_t>(type), " for ", what,
                                " at offset ", position_ - 4, " (expected 0..12)"));
    }
    return ReadInteger(type, what, &out->integer, &out->integer_out_of_range);
  }

  absl::Status ReadInteger(GgufValueType type, const std::string& what, int64_t* value,
                           bool* out_of_range) {
    *out_of_range = false;
    switch (type) {
      case GgufValueType::kU8:
        return Widen<uint8_t>(what, value);
      case GgufValueType::kI8:
        return Widen<int8_t>(what, value);
      case GgufValueType::kU16:
        return Widen<uint16_t>(what, value);
      case GgufValueType::kI16:
        return Widen<int16_t>(what, value);
      case GgufValueType::kU32:
        return Widen<uint32_t>(what, value);
      case GgufValueType::kI32:
        return Widen<int32_t>(what, value);
      case GgufValueType::kI64:
        return Widen<int64_t>(what, value);
      case GgufValueType::kU64: {
        SLM_ASSIGN_OR_RETURN(uint64_t raw, Read<uint64_t>(what));
        *out_of_range = raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
        *value = static_cast<int64_t>(raw);
        return absl::OkStatus();
      }
      default:
        return Error(absl::StrCat("internal: ", ValueTypeName(type), " is not an integer"));
    }
  }

 private:
  template <typename T>
  absl::Status Widen(const std::string& what, int64_t* value) {
    SLM_ASSIGN_OR_RETURN(T raw, Read<T>(what));
    *value = static_cast<int64_t>(raw);
    return absl::OkStatus();
  }

  absl::Status ReadArray(const std::string& what, Value* out) {
    SLM_ASSIGN_OR_RETURN(uint32_t raw_type, Read<uint32_t>(absl::StrCat(what, " element type")));
    const auto element_type = static_cast<GgufValueType>(raw_type);
    out->element_type = element_type;
    const uint64_t count_at = position_;
    SLM_ASSIGN_OR_RETURN(uint64_t count, Read<uint64_t>(absl::StrCat(what, " array length")));
    uint64_t min_element_size;
    if (element_type == GgufValueType::kString) {
      min_element_size = 8;
    } else if (element_type == GgufValueType::kArray) {
      return Error(absl::StrCat("nested arrays are not supported (", what, " at offset ",
                                count_at - 4, ")"));
    } else {
      min_element_size = ScalarSize(element_type);
      if (min_element_size == 0) {
        return Error(absl::StrCat("unknown array element type ", raw_type, " for ", what,
                                  " at offset ", count_at - 4, " (expected 0..12)"));
      }
    }
    if (count > remaining() / min_element_size) {
      return Error(absl::StrCat("array length ", count, " of ", what, " at offset ", count_at,
                                " cannot fit in the ", remaining(), " bytes left in the file"));
    }
    const std::string element_what = absl::StrCat(what, " element");
    if (element_type == GgufValueType::kString) {
      out->texts.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        SLM_ASSIGN_OR_RETURN(std::string text, ReadString(element_what));
        out->texts.push_back(std::move(text));
      }
    } else if (IsFloat(element_type)) {
      out->reals.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        Value element;
        SLM_RETURN_IF_ERROR(ReadValue(element_type, element_what, &element));
        out->reals.push_back(element.real);
      }
    } else {
      out->integers.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        Value element;
        SLM_RETURN_IF_ERROR(ReadValue(element_type, element_what, &element));
        out->integers.push_back(element_type == GgufValueType::kBool ? element.boolean
                                                                     : element.integer);
        out->any_integer_out_of_range |= element.integer_out_of_range;
      }
    }
    return absl::OkStatus();
  }

  const std::string& path_;
  const uint8_t* base_;
  uint64_t size_;
  uint64_t position_ = 0;
};

int64_t GgufTensor::element_count() const {
  int64_t count = 1;
  for (int64_t dim : dims) count *= dim;
  return count;
}

GgufFile::GgufFile() = default;

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
  std::free(owned_bytes_);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::UnavailableError(message);
  }
  struct stat info;
  if (fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat(path, ": cannot stat: ", std::strerror(error)));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size > 0) {
    void* mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat(path, ": mmap failed: ", std::strerror(error)));
    }
    file->mapping_ = mapping;
    file->mapping_size_ = size;
    file->base_ = static_cast<const uint8_t*>(mapping);
  }
  ::close(fd);
  file->size_ = size;
  SLM_RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBytes(std::string bytes, std::string name) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = std::move(name);
  if (!bytes.empty()) {
    const size_t rounded = (bytes.size() + 63) / 64 * 64;
    file->owned_bytes_ = std::aligned_alloc(64, rounded);
    if (file->owned_bytes_ == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat(file->path_, ": cannot allocate ", bytes.size(), " bytes"));
    }
    std::memcpy(file->owned_bytes_, bytes.data(), bytes.size());
    file->base_ = static_cast<const uint8_t*>(file->owned_bytes_);
  }
  file->size_ = bytes.size();
  SLM_RETURN_IF_ERROR(file->Parse());
  return file;
}

absl::Status GgufFile::Parse() {
  Parser parser(path_, base_, size_);
  SLM_ASSIGN_OR_RETURN(uint32_t magic, parser.Read<uint32_t>("magic"));
  if (std::memcmp(&magic, "GGUF", 4) != 0) {
    return parser.Error("bad magic (expected \"GGUF\"; not a GGUF file)");
  }
  SLM_ASSIGN_OR_RETURN(version_, parser.Read<uint32_t>("version"));
  if (version_ != 2 && version_ != 3) {
    return parser.Error(absl::StrCat("unsupported GGUF version ", version_, " (expected 2 or 3)"));
  }
  SLM_ASSIGN_OR_RETURN(uint64_t tensor_count, parser.Read<uint64_t>("tensor count"));
  SLM_ASSIGN_OR_RETURN(uint64_t kv_count, parser.Read<uint64_t>("metadata count"));
  // Smallest encodings: a kv is a key length, a type and one byte; a tensor info is a name
  // length, n_dims, type and offset. Counts that cannot fit are rejected before allocating.
  constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
  constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
  if (kv_count > parser.remaining() / kMinKvBytes) {
    return parser.Error(absl::StrCat("metadata count ", kv_count, " cannot fit in the ",
                                     parser.remaining(), " bytes after the header"));
  }
  if (tensor_count > parser.remaining() / kMinTensorInfoBytes) {
    return parser.Error(absl::StrCat("tensor count ", tensor_count, " cannot fit in the ",
                                     parser.remaining(), " bytes after the header"));
  }

  for (uint64_t i = 0; i < kv_count; ++i) {
    const uint64_t key_at = parser.position();
    SLM_ASSIGN_OR_RETURN(std::string key, parser.ReadString(absl::StrCat("metadata key #", i)));
    if (value_index_.count(key) != 0) {
      return parser.Error(absl::StrCat("duplicate metadata key '", key, "' at offset ", key_at));
    }
    const std::string what = absl::StrCat("metadata '", key, "'");
    SLM_ASSIGN_OR_RETURN(uint32_t raw_type, parser.Read<uint32_t>(absl::StrCat(what, " type")));
    auto value = std::make_unique<Value>();
    SLM_RETURN_IF_ERROR(parser.ReadValue(static_cast<GgufValueType>(raw_type), what, value.get()));
    value_index_.emplace(key, values_.size());
    values_.emplace_back(std::move(key), std::move(value));
  }

  if (Has("general.alignment")) {
    const Value* value = values_[value_index_.find("general.alignment")->second].second.get();
    if (!IsInteger(value->type) || value->integer_out_of_range || value->integer <= 0 ||
        (value->integer & (value->integer - 1)) != 0) {
      return parser.Error("metadata 'general.alignment' must be a positive power-of-two integer");
    }
    alignment_ = static_cast<uint64_t>(value->integer);
  } else {
    alignment_ = kDefaultAlignment;
  }

  tensors_.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensor tensor;
    SLM_ASSIGN_OR_RETURN(tensor.name, parser.ReadString(absl::StrCat("tensor name #", i)));
    const std::string what = absl::StrCat("tensor '", tensor.name, "'");
    SLM_ASSIGN_OR_RETURN(uint32_t n_dims, parser.Read<uint32_t>(absl::StrCat(what, " n_dims")));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return parser.Error(
          absl::StrCat(what, " has ", n_dims, " dimensions (expected 1..", kMaxDims, ")"));
    }
    uint64_t element_count = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      SLM_ASSIGN_OR_RETURN(uint64_t dim, parser.Read<uint64_t>(absl::StrCat(what, " dims")));
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          element_count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim) {
        return parser.Error(absl::StrCat(what, " dimension ", d, " is ", dim,
                                         " (expected > 0, element count within int64)"));
      }
      element_count *= dim;
      tensor.dims.push_back(static_cast<int64_t>(dim));
    }
    SLM_ASSIGN_OR_RETURN(uint32_t raw_type, parser.Read<uint32_t>(absl::StrCat(what, " type")));
    tensor.type = static_cast<GgmlType>(raw_type);
    int64_t block_elements = 0, block_bytes = 0;
    if (!GgmlTypeBlockInfo(tensor.type, &block_elements, &block_bytes)) {
      return parser.Error(absl::StrCat(what, " has unknown ggml type ", raw_type));
    }
    if (tensor.dims[0] % block_elements != 0) {
      return parser.Error(absl::StrCat(what, " row length ", tensor.dims[0],
                                       " is not a multiple of the ", GgmlTypeName(tensor.type),
                                       " block size ", block_elements));
    }
    // element_count / block_elements * block_bytes cannot overflow: block_bytes <= 8 *
    // block_elements for every type, but check anyway against uint64.
    const uint64_t blocks = element_count / static_cast<uint64_t>(block_elements);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(block_bytes)) {
      return parser.Error(absl::StrCat(what, " size overflows"));
    }
    tensor.size_bytes = blocks * static_cast<uint64_t>(block_bytes);
    SLM_ASSIGN_OR_RETURN(tensor.offset, parser.Read<uint64_t>(absl::StrCat(what, " offset")));
    if (tensor.offset % alignment_ != 0) {
      return parser.Error(absl::StrCat(what, " offset ", tensor.offset,
                                       " is not a multiple of the alignment ", alignment_));
    }
    if (tensor_index_.count(tensor.name) != 0) {
      return parser.Error(absl::StrCat("duplicate tensor name '", tensor.name, "'"));
    }
    tensor_index_.emplace(tensor.name, tensors_.size());
    tensors_.push_back(std::move(tensor));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t infos_end = parser.position();
  const uint64_t data_start = (infos_end + alignment_ - 1) / alignment_ * alignment_;
  for (GgufTensor& tensor : tensors_) {
    const bool fits = data_start <= size_ && tensor.offset <= size_ - data_start &&
                      tensor.size_bytes <= size_ - data_start - tensor.offset;
    if (!fits) {
      return parser.Error(absl::StrCat("tensor '", tensor.name, "' [offset ", tensor.offset, ", ",
                                       tensor.size_bytes, " bytes, data section at ", data_start,
                                       "] exceeds file size ", size_));
    }
    tensor.data = base_ + data_start + tensor.offset;
  }
  return absl::OkStatus();
}

const std::vector<GgufTensor>& GgufFile::tensors() const { return tensors_; }

absl::StatusOr<const GgufTensor*> GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  if (it == tensor_index_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": tensor '", std::string(name), "' not found"));
  }
  return &tensors_[it->second];
}

absl::StatusOr<std::vector<float>> GgufFile::ReadF32(
    std::string_view name, const std::vector<int64_t>& expected_dims) const {
  SLM_ASSIGN_OR_RETURN(const GgufTensor* tensor, FindTensor(name));
  if (expected_dims.size() == 1) {
    if (tensor->element_count() != expected_dims[0]) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": tensor '", std::string(name), "' has dims ", DimsString(tensor->dims), " (",
          tensor->element_count(), " elements), expected ", expected_dims[0], " elements"));
    }
  } else if (!expected_dims.empty() &&
             TrimTrailingOnes(tensor->dims) != TrimTrailingOnes(expected_dims)) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", std::string(name),
                                                   "' has dims ", DimsString(tensor->dims),
                                                   ", expected ", DimsString(expected_dims)));
  }
  std::vector<float> values(static_cast<size_t>(tensor->element_count()));
  const absl::Status status =
      DequantizeToF32(tensor->type, tensor->data, tensor->element_count(), values.data());
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat(path_, ": tensor '", std::string(name),
                                                    "': ", std::string(status.message())));
  }
  return values;
}

const std::string& GgufFile::path() const { return path_; }
uint32_t GgufFile::version() const { return version_; }
uint64_t GgufFile::alignment() const { return alignment_; }

}  // namespace slm::workers
