// A grow-only, 64-byte aligned scratch buffer (kernels-internal).
//
//   thread_local AlignedBuffer buffer;
//   auto* tmp = static_cast<float*>(buffer.Get(rows * cols * sizeof(float)));
//
// Ownership: the buffer owns its memory; pointers from Get stay valid until the next larger Get.
// Thread-safety: none; use one per thread (thread_local).
#ifndef SLM_KERNELS_ALIGNED_BUFFER_H_
#define SLM_KERNELS_ALIGNED_BUFFER_H_

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace slm::kernels {

class AlignedBuffer {
 public:
  // At least `bytes` bytes (contents unspecified), 64-byte aligned; never null.
  void* Get(size_t bytes) {
    if (bytes > capacity_ || data_ == nullptr) {
      const size_t rounded = ((bytes > 0 ? bytes : 1) + kAlignment - 1) / kAlignment * kAlignment;
      data_.reset(static_cast<char*>(std::aligned_alloc(kAlignment, rounded)));
      capacity_ = rounded;
    }
    return data_.get();
  }

 private:
  static constexpr size_t kAlignment = 64;
  struct Free {
    void operator()(char* pointer) const { std::free(pointer); }
  };
  std::unique_ptr<char, Free> data_;
  size_t capacity_ = 0;
};

}  // namespace slm::kernels

#endif  // SLM_KERNELS_ALIGNED_BUFFER_H_
