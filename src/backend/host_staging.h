// Host access to backend memory, for the code above the seam that reads or writes it
// from the host (loading and saving weights, checkpoints, adapters). Where the backend's
// memory is host memory (the CPU) these work in place and cost nothing; elsewhere they
// stage through a host buffer moved with Backend::copy, so a GPU's memory is never
// dereferenced on the host. Hot loops do not use them: there the data moves by copy().
#pragma once
#include <cstddef>
#include <vector>

#include "backend/backend.h"

namespace lathe {

// n elements of backend memory, readable on the host while this lives.
template <class T>
class HostRead {
 public:
  HostRead(Backend& be, const T* device, size_t n) {
    if (be.host_accessible() || !device) {
      p_ = device;
      return;
    }
    buf_.resize(n);
    if (n) be.copy(buf_.data(), device, n * sizeof(T));
    p_ = buf_.data();
  }
  const T* get() const { return p_; }

 private:
  std::vector<T> buf_;
  const T* p_ = nullptr;
};

// n elements of backend memory, writable on the host; commit() puts what was written in
// place. With keep = true the host copy starts from the current contents (for writes that
// leave part of the range alone); otherwise it starts zeroed.
template <class T>
class HostWrite {
 public:
  HostWrite(Backend& be, T* device, size_t n, bool keep = false) : be_(be), dev_(device), n_(n) {
    if (be.host_accessible() || !device) {
      p_ = device;
      return;
    }
    buf_.resize(n);
    if (keep && n) be.copy(buf_.data(), device, n * sizeof(T));
    p_ = buf_.data();
  }
  HostWrite(const HostWrite&) = delete;
  HostWrite& operator=(const HostWrite&) = delete;
  T* get() const { return p_; }
  void commit() {
    if (p_ != dev_ && n_) be_.copy(dev_, p_, n_ * sizeof(T));
  }

 private:
  Backend& be_;
  T* dev_;
  size_t n_;
  std::vector<T> buf_;
  T* p_ = nullptr;
};

}  // namespace lathe
