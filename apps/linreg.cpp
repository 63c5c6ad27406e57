// The main job until the CLI exists: the seeds' linear regression, y = X·w + b + noise, fitted
// by mini-batch RMSProp on the mean squared error. Prints the loss falling, then the fit.
//
//   rmsprop-linreg [--epochs N] [--samples N] [--features N] [--batch N] [--seed N]
//                  [--flavor NAME] [--<option> VALUE ...]   (any rmsprop::Options field)
#include <cmath>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/optimizer.hpp"

namespace {

struct Settings {
  int epochs = 20;
  int samples = 2000;
  int features = 5;
  int batch = 32;
  unsigned seed = 42;
  double noise = 0.1;
  std::vector<std::pair<std::string, std::string>> options{{"lr", "0.01"}};
};

int to_int(const std::string& name, const std::string& text, int min) {
  std::size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < min) {
    throw rmsprop::InvalidOption("invalid value for --" + name + ": '" + text +
                                 "' (an integer >= " + std::to_string(min) + ")");
  }
  return value;
}

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::puts(
          "rmsprop-linreg: fit y = X.w + b + noise with mini-batch RMSProp.\n"
          "  --epochs N (20)  --samples N (2000)  --features N (5)  --batch N (32)  --seed N (42)\n"
          "  --flavor NAME (torch; also tf1 keras optax lasagne caffe ensmallen timm_tf hinton)\n"
          "  --<option> VALUE  any optimizer option: --lr 0.01 --alpha 0.9 --momentum 0.9 ...");
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0 || i + 1 >= argc) {
      throw rmsprop::InvalidOption("expected --name VALUE, got '" + arg + "'");
    }
    std::string name = arg.substr(2), value = argv[++i];
    if (name == "epochs")
      s.epochs = to_int(name, value, 1);
    else if (name == "samples")
      s.samples = to_int(name, value, 2);
    else if (name == "features")
      s.features = to_int(name, value, 1);
    else if (name == "batch")
      s.batch = to_int(name, value, 1);
    else if (name == "seed")
      s.seed = unsigned(to_int(name, value, 0));
    else
      s.options.emplace_back(name, value);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  const Settings s = parse(argc, argv);
  const rmsprop::Options options = rmsprop::Options::from_pairs(s.options);
  const int d = s.features, n = s.samples;

  std::mt19937_64 rng(s.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> true_w(d), x(std::size_t(n) * d), y(n);
  for (double& w : true_w) w = 2 * normal(rng);
  const double true_b = normal(rng);
  for (int i = 0; i < n; ++i) {
    double dot = true_b;
    for (int j = 0; j < d; ++j) dot += true_w[j] * (x[i * d + j] = normal(rng));
    y[i] = dot + s.noise * normal(rng);
  }
  const int n_train = n * 4 / 5;  // the rest is the test set

  std::vector<double> w(d, 0.0), gw(d), b(1, 0.0), gb(1);
  rmsprop::Optimizer opt({rmsprop::Param::of(w, gw), rmsprop::Param::of(b, gb)}, options);
  const int steps_per_epoch = (n_train + s.batch - 1) / s.batch;
  opt.set_schedule(rmsprop::Schedule::cosine(std::int64_t(s.epochs) * steps_per_epoch));

  auto mse = [&](int begin, int end) {
    double sum = 0;
    for (int i = begin; i < end; ++i) {
      double r = b[0] - y[i];
      for (int j = 0; j < d; ++j) r += w[j] * x[i * d + j];
      sum += r * r;
    }
    return sum / (end - begin);
  };

  std::printf("linear regression: %d train / %d test samples, %d features, noise %.2g\n", n_train,
              n - n_train, d, s.noise);
  std::printf("optimizer: %s lr %g alpha %g eps %g momentum %g centered %d, cosine schedule\n",
              std::string(rmsprop::to_string(options.algorithm)).c_str(), options.lr, options.alpha,
              options.eps, options.momentum, int(options.centered));
  std::printf("epoch  train_mse   test_mse\n    0  %9.5f  %9.5f\n", mse(0, n_train),
              mse(n_train, n));
  std::vector<int> order(n_train);
  for (int i = 0; i < n_train; ++i) order[i] = i;
  for (int epoch = 1; epoch <= s.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int start = 0; start < n_train; start += s.batch) {
      const int end = std::min(start + s.batch, n_train);
      opt.zero_grad();
      for (int k = start; k < end; ++k) {
        const int i = order[k];
        double r = b[0] - y[i];
        for (int j = 0; j < d; ++j) r += w[j] * x[i * d + j];
        const double scale = 2 * r / (end - start);
        for (int j = 0; j < d; ++j) gw[j] += scale * x[i * d + j];
        gb[0] += scale;
      }
      opt.step();
    }
    std::printf("%5d  %9.5f  %9.5f\n", epoch, mse(0, n_train), mse(n_train, n));
  }
  double worst = std::abs(b[0] - true_b);
  for (int j = 0; j < d; ++j) worst = std::max(worst, std::abs(w[j] - true_w[j]));
  std::printf("largest |fitted - true| coefficient error: %.4f (noise variance %.4f)\n", worst,
              s.noise * s.noise);
  std::printf("test mse: %.5f\n", mse(n_train, n));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "rmsprop-linreg: error: %s\n", e.what());
  return 2;
}
