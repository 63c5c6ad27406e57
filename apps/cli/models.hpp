// The models `rmsprop train` can build.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rmsprop::cli {

struct ModelSpec {
  std::string kind = "mlp";                 // mlp, cnn, logreg, linreg
  std::vector<std::int64_t> hidden = {32};  // mlp: hidden layer sizes
  double dropout = 0.2;                     // mlp: after each hidden layer (0: none)
};

// A model for inputs [N, 1, 28, 28] and `classes` outputs (mlp, cnn, logreg), or for [N, 1]
// inputs and one output (linreg). Throws std::invalid_argument naming a bad spec.
::torch::nn::Sequential make_model(const ModelSpec& spec, std::int64_t classes);

// "mlp 784-32-10 dropout 0.2" and the like.
std::string describe(const ModelSpec& spec, std::int64_t classes);

}  // namespace rmsprop::cli
