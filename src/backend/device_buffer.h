// An owning handle to backend memory.
#pragma once
#include <cstddef>
#include <utility>

#include "backend/backend.h"

namespace lathe {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& be, size_t n) : be_(&be), n_(n) {
    p_ = static_cast<T*>(be.alloc(n * sizeof(T)));
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(be_, o.be_);
      std::swap(p_, o.p_);
      std::swap(n_, o.n_);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void reset() {
    if (p_) be_->free(p_);
    p_ = nullptr;
    n_ = 0;
  }
  // Grows (never shrinks) to hold n elements; contents are not preserved.
  void ensure(Backend& be, size_t n) {
    if (n_ >= n) return;
    reset();
    *this = DeviceBuffer(be, n);
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  Backend* be_ = nullptr;
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace lathe
