// The storage types, once: every name, size and code a front end or file uses for them.
//
// Kernels, the checkpoint format, the planner and every adapter (CLI, libtorch, Python,
// NumPy, DLPack) read a dtype's facts from dtype_table(); none keeps its own list.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "rmsprop/state8.hpp"

namespace rmsprop {

// Storage types. bf16 and f16 values are computed in float32 (see half.hpp). The numeric
// values are the checkpoint format's dtype codes: never renumber them. i8_block is 8-bit
// optimizer state only (codes + per-block scales, NOTE: [8-bit state] in state8.hpp): never a
// parameter's dtype, and not in dtype_table(), which lists the element types front ends map.
enum class DType : std::uint8_t { f32 = 0, f64 = 1, bf16 = 2, f16 = 3, i8_block = 4 };

struct DTypeInfo {
  DType dtype;
  std::string_view name;        // ours, torch's (torch.<name>) and the CLI's
  std::size_t size;             // bytes per value
  std::uint64_t exponent_mask;  // the exponent bits: all set exactly for NaN and ±inf
  std::string_view numpy_name;  // numpy.dtype(...).name; "" where NumPy has none
  std::uint8_t dlpack_code;     // DLPack DLDataTypeCode: 2 float, 4 bfloat
  std::uint8_t dlpack_bits;
};

// Every DType, in enum order. NumPy has no bfloat16; DLPack codes are dlpack.h's
// DLDataTypeCode. Constant, so that kernels take their bit masks from it at compile time.
inline constexpr DTypeInfo kDTypes[] = {
    {DType::f32, "float32", 4, 0x7f800000u, "float32", 2, 32},
    {DType::f64, "float64", 8, 0x7ff0000000000000ull, "float64", 2, 64},
    {DType::bf16, "bfloat16", 2, 0x7f80u, "", 4, 16},
    {DType::f16, "float16", 2, 0x7c00u, "float16", 2, 16},
};

inline constexpr DTypeInfo kState8DType = {DType::i8_block, "int8_block", 1, 0, "", 0, 0};

inline std::span<const DTypeInfo> dtype_table() {
  return kDTypes;
}
constexpr const DTypeInfo& dtype_info(DType dtype) {
  return dtype == DType::i8_block ? kState8DType : kDTypes[std::size_t(dtype) & 3];
}
// The DType named `name` ("float32"; "torch.float32" too), or nullopt.
std::optional<DType> dtype_named(std::string_view name);

// Complex parameters step as their real view, each real and imaginary part an element of its
// own (as torch.optim steps them: view_as_real of the parameter, gradient and state; the rule
// is element-wise, so every variant means the same on it). A complex buffer of n values is a
// buffer of 2n of its real dtype; its state is complex too (the same view).
struct ComplexDTypeInfo {
  std::string_view name;  // ours and torch's (torch.<name>)
  DType real;
};
inline constexpr ComplexDTypeInfo kComplexDTypes[] = {{"complex64", DType::f32},
                                                      {"complex128", DType::f64}};
// The real DType of the complex dtype named `name` ("complex64"; "torch.complex64" too), or
// nullopt.
std::optional<DType> complex_real_dtype(std::string_view name);
// The DType of a DLPack (code, bits, lanes), or nullopt.
std::optional<DType> dtype_of_dlpack(std::uint8_t code, std::uint8_t bits, std::uint16_t lanes);
// The names of every DType, as "float32, float64, bfloat16 and float16": refusals list them.
const std::string& dtype_names();

inline std::string_view to_string(DType dtype) {
  return dtype_info(dtype).name;
}
inline std::size_t size_of(DType dtype) {
  return dtype_info(dtype).size;
}
// The bytes a buffer of `n` values of `dtype` takes (8-bit state: codes and scales).
constexpr std::size_t storage_bytes(DType dtype, std::size_t n) {
  return dtype == DType::i8_block ? state8_bytes(n) : n * dtype_info(dtype).size;
}
// The values a state buffer of `bytes` bytes of `dtype` holds for a parameter of `size`
// elements: `size` when it has exactly storage_bytes(dtype, size) bytes, else as many as fit
// (a count the planner then refuses by name). Front ends holding 8-bit state as bytes (a
// uint8 tensor, a byte buffer) describe it with this.
constexpr std::size_t state_values_in(DType dtype, std::size_t bytes, std::size_t size) {
  return bytes == storage_bytes(dtype, size) ? size : bytes / dtype_info(dtype).size;
}

}  // namespace rmsprop
