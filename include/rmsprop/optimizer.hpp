// The optimizer object: parameter groups over the user's buffers, the state it owns, step().
//
//   std::vector<float> w(n), g(n);
//   rmsprop::Optimizer opt({rmsprop::Param::of(w, g)},
//   rmsprop::Options::from_flavor(rmsprop::Flavor::torch));
//   ... fill g ...; opt.step();
//
// Parameters and gradients stay the caller's memory and must outlive the optimizer; the state
// (square_avg, grad_avg, momentum_buffer, step counts) is the optimizer's, created at a
// parameter's first step as PyTorch does (square_avg = initial_accumulator_value, others 0).
#pragma once

#include <array>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rmsprop/half.hpp"
#include "rmsprop/kernel.hpp"
#include "rmsprop/options.hpp"
#include "rmsprop/schedule.hpp"

namespace rmsprop {

struct SealedFile;  // checkpoint.hpp

// A parameter buffer and its gradient, both `size` values of `dtype`. A null gradient means
// "no gradient this step": the parameter is skipped and its step count does not advance.
struct Param {
  void* data = nullptr;
  void* grad = nullptr;
  std::size_t size = 0;  // values of `dtype` (a complex parameter: twice its complex values)
  DType dtype = DType::f32;
  bool complex = false;  // complex values stepped as their real view (kComplexDTypes)

  static Param of(std::span<float> data, std::span<float> grad);
  static Param of(std::span<double> data, std::span<double> grad);
  static Param of(std::span<bfloat16> data, std::span<bfloat16> grad);
  static Param of(std::span<float16> data, std::span<float16> grad);
  static Param of(std::span<std::complex<float>> data, std::span<std::complex<float>> grad);
  static Param of(std::span<std::complex<double>> data, std::span<std::complex<double>> grad);
};

struct ParamGroup {
  std::vector<Param> params;
  Options options;
};

struct StepResult {
  bool applied = true;         // false when NonFinitePolicy::skip skipped the step
  std::size_t updated = 0;     // parameters updated (those with a gradient)
  std::size_t non_finite = 0;  // parameters whose gradient held NaN or inf (policy skip/propagate)
};

class Optimizer {
 public:
  Optimizer(std::vector<Param> params, const Options& options);
  explicit Optimizer(std::vector<ParamGroup> groups);
  ~Optimizer();
  Optimizer(Optimizer&&) noexcept;
  Optimizer& operator=(Optimizer&&) noexcept;

  // Adds a group; its options are validated, its buffers checked (non-null data, equal
  // lengths, not already in another group).
  void add_param_group(ParamGroup group);

  // One step over every parameter with a gradient. See NonFinitePolicy for NaN/inf gradients.
  StepResult step();

  // Sets every gradient buffer to zero.
  void zero_grad();

  std::size_t num_groups() const;
  std::size_t num_params(std::size_t group) const;
  const Options& options(std::size_t group) const;
  // Replaces a group's options (validated first). State a new variant needs is created then.
  void set_options(std::size_t group, const Options& options);
  // Re-points a parameter at new buffers of the same size and dtype (e.g. a fresh gradient).
  void set_param(std::size_t group, std::size_t index, const Param& param);
  const Param& param(std::size_t group, std::size_t index) const;  // the buffers it steps

  // How step() runs the fused kernel: threads (default all cores) and SIMD target (default the
  // best this CPU has). Results are bitwise the same for every setting.
  void set_kernel_config(const KernelConfig& config);
  const KernelConfig& kernel_config() const;

  // The learning-rate schedule, shared by all groups: each group's rate at a step is
  // schedule.lr(group base lr, steps taken so far).
  void set_schedule(Schedule schedule);
  const Schedule& schedule() const;
  // The learning rate the next step will use in `group`.
  double current_lr(std::size_t group) const;

  std::int64_t steps_taken() const;  // steps applied by this optimizer (skipped ones excluded)
  std::int64_t step_count(std::size_t group, std::size_t index) const;  // that parameter's steps

  // A parameter's state, as its state dtype (float, double or bfloat16; asking for another
  // throws); empty until the parameter's first step or when the variant does not use it.
  template <class T>
  std::span<const T> square_avg(std::size_t group, std::size_t index) const;
  template <class T>
  std::span<const T> grad_avg(std::size_t group, std::size_t index) const;
  template <class T>
  std::span<const T> momentum_buffer(std::size_t group, std::size_t index) const;
  // The float32 master copy of a 16-bit parameter (Options::master_weights), else empty.
  std::span<const float> master_weights(std::size_t group, std::size_t index) const;
  // Any state dtype, 8-bit included: the dtype a parameter's state is stored in, and a
  // buffer's values decoded ("square_avg", "grad_avg", "momentum_buffer"; empty as above).
  DType state_dtype(std::size_t group, std::size_t index) const;
  std::vector<double> state_values(std::size_t group, std::size_t index,
                                   std::string_view buffer) const;

  // State of a piece of a parameter, raw, for moving it between optimizers that hold pieces
  // of the same tensor (sharded training, rmsprop::mpi): the step count, the state dtype and,
  // for each buffer the parameter has (square_avg, grad_avg, momentum_buffer, master; empty
  // when absent), the bytes of elements [begin, end) — under 8-bit state the codes, then the
  // scales of the blocks they fill, so `begin` must start a block (a multiple of
  // kState8Block) and `end` end one or the tensor.
  struct StatePiece {
    std::int64_t step = 0;
    DType state_dtype = DType::f32;
    std::size_t size = 0;  // elements
    std::array<std::vector<std::byte>, 4> buffers;
  };
  StatePiece state_piece(std::size_t group, std::size_t index, std::size_t begin,
                         std::size_t end) const;
  // Writes a piece taken by state_piece() at element `begin` of a parameter: its step count
  // and state dtype become the piece's; a buffer it lacks is created (zero) and the pieces
  // then fill it. Every check (bounds, block edges, dtypes, sizes) comes before any change.
  void set_state_piece(std::size_t group, std::size_t index, std::size_t begin,
                       const StatePiece& piece);
  // The count of steps the schedule sees, as load() restores it.
  void set_steps_taken(std::int64_t steps);

  // The whole state (options, step counts, buffers) in the checkpoint format, written
  // atomically: see checkpoint.hpp. load() checks the file against this optimizer's groups
  // and leaves the optimizer unchanged on any error.
  void save(const std::filesystem::path& path) const;
  void load(const std::filesystem::path& path);
  // The same, with the whole file in memory (`name` stands for the path in messages): what
  // save() would write, and load() from those bytes.
  std::vector<std::byte> save_to_memory() const;
  void load_from_memory(std::span<const std::byte> bytes, std::string_view name = "(memory)");

  struct Impl;

 private:
  void load_sealed(const SealedFile& file, const std::string& name);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rmsprop
