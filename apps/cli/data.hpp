// The training tasks' data: Fashion-MNIST from Debian's dataset-fashion-mnist, and generated
// linear-regression data.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace rmsprop::cli {

struct Split {
  ::torch::Tensor x, y;  // inputs; int64 class labels, or float targets for regression
  std::int64_t size() const { return x.size(0); }
};

struct Dataset {
  std::string name;
  Split train, val, test;
  std::int64_t classes = 0;  // 0: regression (loss MSE, no accuracy)
};

inline const std::filesystem::path kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST: images [N, 1, 28, 28] in [0, 1], labels 0–9. The last `val_fraction` of the
// (first `train_limit`, 0 = all) training images is held out for validation, as Keras'
// validation_split does; `test_limit` (0 = all) cuts the test set. Throws std::runtime_error
// naming a missing or malformed file.
Dataset load_fashion_mnist(const std::filesystem::path& dir, double val_fraction,
                           std::int64_t train_limit, std::int64_t test_limit);

// y = w·x + b + noise for one feature (scikit-learn's make_regression style: x ~ N(0, 1),
// noise 0.1), 1000 train + 200 test points split like Fashion-MNIST. Deterministic in `seed`.
Dataset make_linear_regression(std::uint64_t seed, double val_fraction);

}  // namespace rmsprop::cli
