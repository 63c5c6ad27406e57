#include "data.hpp"

#include <torch/torch.h>

#include <stdexcept>

#include "idx.hpp"

namespace rmsprop::cli {
namespace {

Split read_split(const std::filesystem::path& dir, const std::string& prefix, std::int64_t limit) {
  const auto images_path = dir / (prefix + "-images-idx3-ubyte.gz");
  const auto labels_path = dir / (prefix + "-labels-idx1-ubyte.gz");
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 3 || images.dims[1] != 28 || images.dims[2] != 28) {
    throw std::runtime_error(images_path.string() + ": expected N×28×28 images");
  }
  if (labels.dims.size() != 1 || labels.dims[0] != images.dims[0]) {
    throw std::runtime_error(labels_path.string() + ": " + std::to_string(labels.dims[0]) +
                             " labels for " + std::to_string(images.dims[0]) + " images");
  }
  for (std::size_t i = 0; i < labels.values.size(); ++i) {
    if (labels.values[i] > 9) {
      throw std::runtime_error(labels_path.string() + ": label " +
                               std::to_string(labels.values[i]) + " at " + std::to_string(i) +
                               " is not a class 0–9");
    }
  }
  std::int64_t n = images.dims[0];
  if (limit > 0) n = std::min(n, limit);
  auto x = ::torch::from_blob(images.values.data(), {n, 1, 28, 28}, ::torch::kUInt8)
               .to(::torch::kFloat)
               .div_(255.0);
  auto y = ::torch::from_blob(labels.values.data(), {n}, ::torch::kUInt8).to(::torch::kLong);
  return {x, y};
}

// The last `fraction` of `all` as validation, the rest as training.
void hold_out(const Split& all, double fraction, Dataset& d) {
  const std::int64_t val = std::int64_t(double(all.size()) * fraction);
  const std::int64_t train = all.size() - val;
  if (train <= 0) throw std::runtime_error("no training examples left after the validation split");
  d.train = {all.x.slice(0, 0, train), all.y.slice(0, 0, train)};
  d.val = {all.x.slice(0, train), all.y.slice(0, train)};
}

}  // namespace

Dataset load_fashion_mnist(const std::filesystem::path& dir, double val_fraction,
                           std::int64_t train_limit, std::int64_t test_limit) {
  Dataset d;
  d.name = "fashion-mnist";
  d.classes = 10;
  hold_out(read_split(dir, "train", train_limit), val_fraction, d);
  d.test = read_split(dir, "t10k", test_limit);
  return d;
}

Dataset make_linear_regression(std::uint64_t seed, double val_fraction) {
  auto gen = ::torch::make_generator<at::CPUGeneratorImpl>(seed);
  const double w = 40.0 * ::torch::rand({1}, gen).item<double>() + 10.0;
  const double b = 2.0 * ::torch::rand({1}, gen).item<double>() - 1.0;
  auto make = [&](std::int64_t n) {
    auto x = ::torch::randn({n, 1}, gen);
    auto y = x * w + b + 0.1 * ::torch::randn({n, 1}, gen);
    return Split{x, y};
  };
  Dataset d;
  d.name = "linear-regression";
  hold_out(make(1000), val_fraction, d);
  d.test = make(200);
  return d;
}

}  // namespace rmsprop::cli
