#include "rmsprop/dtype.hpp"

namespace rmsprop {

static_assert([] {
  std::size_t i = 0;
  for (const DTypeInfo& d : kDTypes)
    if (std::size_t(d.dtype) != i++) return false;
  return i == 4;  // dtype_info masks the index with 3
}());

std::optional<DType> dtype_named(std::string_view name) {
  if (name.starts_with("torch.")) name.remove_prefix(6);
  for (const DTypeInfo& d : kDTypes)
    if (d.name == name) return d.dtype;
  return std::nullopt;
}

std::optional<DType> complex_real_dtype(std::string_view name) {
  if (name.starts_with("torch.")) name.remove_prefix(6);
  for (const ComplexDTypeInfo& d : kComplexDTypes)
    if (d.name == name) return d.real;
  return std::nullopt;
}

std::optional<DType> dtype_of_dlpack(std::uint8_t code, std::uint8_t bits, std::uint16_t lanes) {
  if (lanes != 1) return std::nullopt;
  for (const DTypeInfo& d : kDTypes)
    if (d.dlpack_code == code && d.dlpack_bits == bits) return d.dtype;
  return std::nullopt;
}

const std::string& dtype_names() {
  static const std::string names = [] {
    std::string text;
    const std::size_t n = std::size(kDTypes);
    for (std::size_t i = 0; i < n; ++i) {
      text += (i == 0 ? "" : i + 1 == n ? " and " : ", ");
      text += kDTypes[i].name;
    }
    return text;
  }();
  return names;
}

}  // namespace rmsprop
