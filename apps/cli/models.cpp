#include "models.hpp"

#include <torch/torch.h>

#include <stdexcept>

namespace rmsprop::cli {

::torch::nn::Sequential make_model(const ModelSpec& spec, std::int64_t classes) {
  namespace nn = ::torch::nn;
  nn::Sequential net;
  if (spec.kind == "linreg") {
    net->push_back(nn::Linear(1, 1));
    return net;
  }
  if (!(spec.dropout >= 0 && spec.dropout < 1)) {  // NaN too
    throw std::invalid_argument("--dropout " + std::to_string(spec.dropout) +
                                ": must be in [0, 1)");
  }
  if (spec.kind == "mlp") {
    net->push_back(nn::Flatten());
    std::int64_t in = 28 * 28;
    for (std::int64_t width : spec.hidden) {
      if (width <= 0)
        throw std::invalid_argument("--hidden " + std::to_string(width) + ": must be > 0");
      net->push_back(nn::Linear(in, width));
      net->push_back(nn::ReLU());
      if (spec.dropout > 0) net->push_back(nn::Dropout(spec.dropout));
      in = width;
    }
    net->push_back(nn::Linear(in, classes));
  } else if (spec.kind == "logreg") {
    net->push_back(nn::Flatten());
    net->push_back(nn::Linear(28 * 28, classes));
  } else if (spec.kind == "cnn") {
    net->push_back(nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1)));
    net->push_back(nn::ReLU());
    net->push_back(nn::MaxPool2d(2));
    net->push_back(nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1)));
    net->push_back(nn::ReLU());
    net->push_back(nn::MaxPool2d(2));
    net->push_back(nn::Flatten());
    if (spec.dropout > 0) net->push_back(nn::Dropout(spec.dropout));
    net->push_back(nn::Linear(32 * 7 * 7, classes));
  } else {
    throw std::invalid_argument("--model '" + spec.kind + "': use mlp, cnn, logreg or linreg");
  }
  return net;
}

std::string describe(const ModelSpec& spec, std::int64_t classes) {
  if (spec.kind == "linreg") return "linreg 1-1";
  if (spec.kind == "logreg") return "logreg 784-" + std::to_string(classes);
  std::string text = spec.kind == "cnn" ? "cnn conv16-conv32" : "mlp 784";
  if (spec.kind == "mlp") {
    for (auto w : spec.hidden) text.append("-").append(std::to_string(w));
  }
  text.append("-").append(std::to_string(classes));
  if (spec.dropout > 0) text += " dropout " + std::to_string(spec.dropout).substr(0, 4);
  return text;
}

}  // namespace rmsprop::cli
