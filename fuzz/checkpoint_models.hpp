// The optimizers the checkpoint fuzzer loads every input into, and whose saved files are its
// seed corpus: float32/float64/bfloat16/float16 parameters; float32, bfloat16 and 8-bit state
// (blocks cut at an edge, a tensor under the 8-bit minimum size kept float32); float32 master
// weights; groups of different flavors and variants; an empty parameter. `version_one` takes
// tests/recorded/checkpoint-v1.ckpt (the format's first version).
// `load_problem` states what every load must do; the fuzzer and checkpoint_test.cpp check it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "rmsprop/checkpoint.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/optimizer.hpp"

namespace rmsprop::fuzz {

// Buffers and the optimizer over them; buffers stay where they are when a Model moves (each is
// held by a pointer), so the Params and gradient fills keep pointing at them.
class Model {
 public:
  template <class T>
  Param add(std::size_t n, double first) {
    std::vector<T>& data = store<T>(n, first);
    std::vector<T>& grad = store<T>(n, 0.0);
    gradient_fills_.push_back([&grad](int step) {
      for (std::size_t j = 0; j < grad.size(); ++j)
        grad[j] = make<T>(0.25 * double(int((j + std::size_t(step)) % 7) - 3));
    });
    return Param::of(std::span<T>(data), std::span<T>(grad));
  }
  void build(std::vector<ParamGroup> groups) {
    opt_ = std::make_unique<Optimizer>(std::move(groups));
  }
  Optimizer& opt() { return *opt_; }

  // Every gradient set from a counter: exact in every dtype, different each step.
  void fill_gradients(int step) {
    for (auto& fill : gradient_fills_) fill(step);
  }

 private:
  template <class T>
  std::vector<T>& store(std::size_t n, double first) {
    auto holder = std::make_shared<std::vector<T>>(n);
    for (std::size_t j = 0; j < n; ++j) (*holder)[j] = make<T>(first + 0.125 * double(j % 9));
    holders_.push_back(holder);
    return *holder;
  }
  template <class T>
  static T make(double x) {
    if constexpr (std::is_same_v<T, bfloat16>) {
      return to_bfloat16(float(x));
    } else if constexpr (std::is_same_v<T, float16>) {
      return to_float16(float(x));
    } else {
      return T(x);
    }
  }

  std::vector<std::shared_ptr<void>> holders_;
  std::vector<std::function<void(int)>> gradient_fills_;
  std::unique_ptr<Optimizer> opt_;
};

inline Options centered_momentum() {
  Options o;
  o.centered = true, o.momentum = 0.9, o.weight_decay = 0.01, o.bias_correction = true;
  return o;
}

// The model: five parameters, float32/float64, one empty; a second group in TF1's flavor.
inline void mixed_precision(Model& m) {
  m.build({ParamGroup{{m.add<float>(3, 0.5), m.add<double>(2, -1.0), m.add<float>(0, 0.0),
                       m.add<double>(4, 0.25), m.add<float>(6, -0.5)},
                      centered_momentum()},
           ParamGroup{{m.add<double>(2, 1.5)}, Options::from_flavor(Flavor::tf1)}});
}

// 16-bit parameters: bfloat16 with float32 master weights, float16 with bfloat16 state and
// Nesterov momentum; Keras' flavor.
inline void half_precision(Model& m) {
  Options master = Options::from_flavor(Flavor::keras);
  master.master_weights = true;
  Options small_state;
  small_state.state_dtype = StateDType::bfloat16;
  small_state.momentum = 0.5, small_state.nesterov = true, small_state.maximize = true;
  m.build({ParamGroup{{m.add<bfloat16>(5, 0.75)}, master},
           ParamGroup{{m.add<float16>(4, -0.25)}, small_state}});
}

// 8-bit state: 300 values (a full 256-value block and a partial one), a float32 tensor under
// the minimum size (its state stays float32), bfloat16 with master weights; centered + momentum.
inline void eight_bit(Model& m) {
  Options o = centered_momentum();
  o.state_dtype = StateDType::int8, o.state8_min_size = 100;
  Options half = o;
  half.master_weights = true, half.decoupled_weight_decay = true, half.lr_in_momentum = true;
  m.build({ParamGroup{{m.add<float>(300, 0.1), m.add<float>(5, 0.2)}, o},
           ParamGroup{{m.add<bfloat16>(257, -0.3)}, half}});
}

// The parameters of tests/recorded/checkpoint-v1.ckpt (state8_test.cpp: AVersionOneFileStillLoads).
inline void version_one(Model& m) {
  m.build({ParamGroup{{m.add<float>(300, -1.0), m.add<float>(7, 0.0)}, Options{}}});
}

struct NamedModel {
  const char* name;
  void (*build)(Model&);
};
inline constexpr NamedModel kModels[] = {{"mixed_precision", mixed_precision},
                                         {"half_precision", half_precision},
                                         {"eight_bit", eight_bit},
                                         {"version_one", version_one}};

// Rewrites a sealed file's CRC-32 trailer over its bytes, so that a deliberate edit gets past
// the checksum and reaches the parser.
inline void rewrite_crc(std::span<std::byte> file) {
  const std::uint32_t crc = crc32(file.first(file.size() - 4));
  std::memcpy(file.data() + file.size() - 4, &crc, 4);
}

// What a load of `input` into `model` must do, or "" when it did:
//  - a refusal is a CheckpointError whose message gives a reason after "cannot load
//    checkpoint NAME: ", and the optimizer saves exactly as before it;
//  - an accepted file of the current version saves back byte for byte (an older version's file
//    saves as the current version, and that loads and saves back byte for byte);
//  - a step after an accepted load ends, or throws one of the library's errors.
inline std::string load_problem(Model& model, std::span<const std::byte> input) {
  constexpr std::string_view kName = "input";
  Optimizer& opt = model.opt();
  KernelConfig one_thread;
  one_thread.threads = 1;
  opt.set_kernel_config(one_thread);
  const std::vector<std::byte> before = opt.save_to_memory();
  try {
    opt.load_from_memory(input, kName);
  } catch (const CheckpointError& e) {
    const std::string message = e.what();
    const std::string prefix = "cannot load checkpoint " + std::string(kName) + ": ";
    if (message.size() <= prefix.size() || message.compare(0, prefix.size(), prefix) != 0) {
      return "a refusal without its reason: '" + message + "'";
    }
    if (opt.save_to_memory() != before) return "a refused load changed the optimizer: " + message;
    return "";
  }
  const std::vector<std::byte> saved = opt.save_to_memory();
  std::uint32_t version = 0;
  std::memcpy(&version, input.data() + 8, 4);  // accepted: the header is there
  if (version == kCheckpointVersion) {
    if (!std::equal(saved.begin(), saved.end(), input.begin(), input.end())) {
      const auto diff = std::mismatch(saved.begin(), saved.end(), input.begin(), input.end());
      return "an accepted file saves back differently from byte " +
             std::to_string(diff.first - saved.begin()) + " (" + std::to_string(input.size()) +
             " bytes read, " + std::to_string(saved.size()) + " written)";
    }
  } else {
    try {
      opt.load_from_memory(saved, kName);
    } catch (const CheckpointError& e) {
      return std::string("an old version's file, saved again, is refused: ") + e.what();
    }
    if (opt.save_to_memory() != saved) return "an old version's file does not round-trip";
  }
  model.fill_gradients(1);
  try {
    opt.step();
  } catch (const Error&) {
    // e.g. a loaded state the step refuses by name (NonFiniteError under the error policy)
  }
  return "";
}

}  // namespace rmsprop::fuzz
