// The optimizer's internals, shared by optimizer.cpp (stepping) and checkpoint.cpp (save/load).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "rmsprop/optimizer.hpp"

namespace rmsprop {

// A zero-or-more-byte buffer aligned to a cache line, so kernels see aligned state.
class AlignedBuffer {
 public:
  static constexpr std::size_t kAlignment = 64;
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t bytes)
      : data_(bytes ? static_cast<std::byte*>(::operator new (bytes, std::align_val_t{kAlignment}))
                    : nullptr),
        bytes_(bytes) {}
  bool empty() const { return data_ == nullptr; }
  std::size_t bytes() const { return bytes_; }
  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(std::byte* p) const { ::operator delete (p, std::align_val_t{kAlignment}); }
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t bytes_ = 0;
};

struct ParamState {
  std::int64_t step = 0;
  DType state_dtype = DType::f32;  // of square_avg, grad_avg and momentum_buffer
  AlignedBuffer square_avg;
  AlignedBuffer grad_avg;
  AlignedBuffer momentum_buffer;
  AlignedBuffer master;  // float32 copy of a 16-bit parameter (Options::master_weights)
};

struct Group {
  Options options;
  std::vector<Param> params;
  std::vector<ParamState> states;
};

struct Optimizer::Impl {
  std::vector<Group> groups;
  Schedule schedule = Schedule::constant();
  std::int64_t steps_taken = 0;
  KernelConfig kernel;
};

}  // namespace rmsprop
