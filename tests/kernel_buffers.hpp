// Test buffers for the kernels: one tensor's buffers in any precision, filled reproducibly,
// and the lists of precisions and variants the kernel tests walk (CPU and CUDA alike).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "kernels/apply.hpp"
#include "kernels/storage.hpp"
#include "kernels/variant_table.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/state8.hpp"
#include "test_util.hpp"

namespace rmsprop::testing {

// Buffers for one tensor in a precision, starting `offset` elements into their allocation
// (unaligned), filled with values rounded to their storage type.
struct Buffers {
  Precision precision;
  std::vector<std::byte> param, grad, square_avg, grad_avg, momentum, master;
  std::size_t offset, size;

  Buffers(const Precision& p, std::size_t n, std::size_t offset_, std::uint64_t seed)
      : precision(p), offset(offset_), size(n) {
    SplitMix64 rng(seed);
    auto fill = [&](std::vector<std::byte>& b, DType dtype, double scale, double shift) {
      b.resize((n + offset) * size_of(dtype));
      for (std::size_t i = 0; i < n + offset; ++i) {
        kernels::store_from_double(dtype, b.data(), i, shift + scale * rng.uniform());
      }
    };
    // 8-bit state: whole blocks from the buffer's (aligned) start, encoded from such values
    auto fill_state = [&](std::vector<std::byte>& b, bool square, double scale, double shift) {
      if (p.state != DType::i8_block) return fill(b, p.state, scale, shift);
      std::vector<double> values(n);
      for (double& x : values) x = shift + scale * rng.uniform();
      b.assign(state8_bytes(n), std::byte{0});
      kernels::store_state(p.state, square, b.data(), values);
    };
    fill(param, p.param, 1, 0), fill(grad, p.param, 3, 0);
    fill_state(square_avg, true, 0.5, 0.5), fill_state(grad_avg, false, 0.1, 0);
    fill_state(momentum, false, 0.2, 0);
    master.resize((n + offset) * 4);
    for (std::size_t i = 0; i < n + offset; ++i) {  // the parameter's exact float32 value
      kernels::store_from_double(DType::f32, master.data(), i,
                                 kernels::load_as_double(p.param, param.data(), i));
    }
  }
  TensorTask task(const Options& o) {
    auto at = [&](std::vector<std::byte>& b, DType dtype) {
      return b.data() + (dtype == DType::i8_block ? 0 : offset * size_of(dtype));
    };
    TensorTask t{at(param, precision.param),      at(grad, precision.param),
                 at(square_avg, precision.state), at(grad_avg, precision.state),
                 at(momentum, precision.state),   size,
                 coefficients(o, 3, o.lr)};
    t.master = reinterpret_cast<float*>(at(master, DType::f32));
    t.rounding_seed = 0xC0FFEE;
    return t;
  }
  bool operator==(const Buffers& b) const {
    return param == b.param && square_avg == b.square_avg && grad_avg == b.grad_avg &&
           momentum == b.momentum && master == b.master;
  }
};

inline std::vector<Precision> supported_precisions() {
  std::vector<Precision> out;
  for (std::size_t i = 0; i < kernels::kNumPrecisionIndices; ++i) {
    if (kernels::precision_at(i).supported()) out.push_back(kernels::precision_at(i));
  }
  return out;
}

inline std::string describe(const Precision& p) {
  return std::string(to_string(p.param)) + "/" + std::string(to_string(p.state)) +
         (p.master_weights ? "/master" : "") + (p.stochastic_rounding ? "/stochastic" : "");
}

inline std::vector<Variant> all_variants() {
  std::vector<Variant> out;
  for (std::size_t i = 0; i < kernels::kNumVariantIndices; ++i) {
    if (kernels::is_canonical(i)) out.push_back(kernels::variant_at(i));
  }
  return out;
}

// Plain, momentum, centered + momentum, bias-corrected Adam with decoupled weight decay.
inline std::vector<Variant> representative_variants() {
  Options plain, momentum, centered, adam = Options::adam();
  momentum.momentum = 0.9;
  centered.momentum = 0.9, centered.centered = true;
  adam.weight_decay = 0.01, adam.decoupled_weight_decay = true;
  return {variant_of(plain), variant_of(momentum), variant_of(centered), variant_of(adam)};
}

}  // namespace rmsprop::testing
