#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "collective.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"

namespace rmsprop::mpi {
namespace {

// Shard edges: an even split of the concatenation, each edge moved down to a whole kernel
// chunk of the tensor it falls in (NOTE: [MPI backend]) — so the shard optimizer's chunks,
// 8-bit blocks included, are the whole tensor's.
std::vector<std::size_t> shard_bounds(const std::vector<detail::Piece>& pieces, std::size_t total,
                                      int ranks) {
  std::vector<std::size_t> bounds = detail::even_bounds(total, ranks);
  for (std::size_t r = 1; r + 1 < bounds.size(); ++r) {
    const std::size_t x = bounds[r];
    for (const detail::Piece& p : pieces) {
      if (x >= p.offset && x < p.offset + p.param.size) {
        bounds[r] = p.offset + (x - p.offset) / kChunkElements * kChunkElements;
        break;
      }
    }
    bounds[r] = std::max(bounds[r], bounds[r - 1]);
  }
  return bounds;
}

std::size_t value_width(const Param& p) {
  return size_of(p.dtype);
}

}  // namespace

struct ShardedOptimizer::Impl {
  Communicator comm;
  std::vector<detail::Piece> pieces;
  std::vector<Options> group_options;
  DType dtype = DType::f32;
  std::size_t total = 0;
  std::vector<std::size_t> bounds;
  // The shard optimizer's groups: which of ours each is (an 8-bit group is split in two, see
  // below), and the optimizer (none when this rank's shard is empty).
  std::vector<std::size_t> group_of;
  std::optional<Optimizer> shard;
  StepTraffic traffic;
  std::vector<std::byte> flat_scratch, parts_scratch;  // kept from step to step

  std::size_t begin() const { return bounds[std::size_t(comm.rank())]; }
  std::size_t end() const { return bounds[std::size_t(comm.rank()) + 1]; }

  template <class T>
  StepResult step();
};

ShardedOptimizer::ShardedOptimizer(std::vector<ParamGroup> groups, Communicator comm)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.comm = comm;
  m.pieces = detail::concatenate(groups, m.dtype, m.total, "ShardedOptimizer");
  for (std::size_t g = 0; g < groups.size(); ++g) {
    groups[g].options.validate();
    if (groups[g].options.stochastic_rounding) {
      throw InvalidOption("ShardedOptimizer: group " + std::to_string(g) +
                          " asks for stochastic_rounding, whose random stream is indexed by the "
                          "element's place in the whole tensor; not supported with sharded state");
    }
    m.group_options.push_back(groups[g].options);
  }
  detail::check_agreement(comm, detail::layout_fingerprint(m.pieces),
                          "ShardedOptimizer: the parameters' dtypes and sizes");
  m.bounds = shard_bounds(m.pieces, m.total, comm.size());
  // This rank's views. Under state_dtype=int8 a tensor keeps float32 state below
  // state8_min_size by its whole size, not its shard's: such a group is split into one for
  // tensors with 8-bit state (min size 0) and one with float32 state.
  std::vector<ParamGroup> shard_groups;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    ParamGroup eight{{}, groups[g].options}, rest{{}, groups[g].options};
    const bool int8 = groups[g].options.state_dtype == StateDType::int8;
    if (int8) eight.options.state8_min_size = 0, rest.options.state_dtype = StateDType::float32;
    for (const detail::Piece& p : m.pieces) {
      if (p.group != g) continue;
      const std::size_t lo = std::max(p.offset, m.begin());
      const std::size_t hi = std::min(p.offset + p.param.size, m.end());
      if (lo >= hi) continue;
      Param view = p.param;
      const std::size_t skip = (lo - p.offset) * value_width(p.param);
      view.data = static_cast<std::byte*>(p.param.data) + skip;
      view.grad = p.param.grad ? static_cast<std::byte*>(p.param.grad) + skip : nullptr;
      view.size = hi - lo;
      const bool eight_bit = int8 && double(p.param.size) >= groups[g].options.state8_min_size;
      (eight_bit || !int8 ? eight : rest).params.push_back(view);
    }
    for (ParamGroup* part : {&eight, &rest}) {
      if (part->params.empty()) continue;
      shard_groups.push_back(std::move(*part));
      m.group_of.push_back(g);
    }
  }
  if (!shard_groups.empty()) m.shard.emplace(std::move(shard_groups));
}

ShardedOptimizer::~ShardedOptimizer() = default;
ShardedOptimizer::ShardedOptimizer(ShardedOptimizer&&) noexcept = default;

template <class T>
StepResult ShardedOptimizer::Impl::step() {
  traffic = {};
  detail::check_same_gradients(comm, pieces, "ShardedOptimizer::step");
  // Reduce-scatter: this rank's part of the concatenated gradients, averaged, written back
  // into the gradient buffers it steps.
  const std::span<T> flat = detail::scratch_of<T>(flat_scratch, total);
  for (const detail::Piece& p : pieces) {
    if (p.param.grad) {
      std::memcpy(flat.data() + p.offset, p.param.grad, p.param.size * sizeof(T));
    }
  }
  detail::average<T>(comm, flat, bounds, false, traffic, parts_scratch);
  // Every rank learns whether any rank's part holds a non-finite value, per group: then all
  // skip or all throw, as one process would (the planner sees only this rank's part).
  std::vector<int> where(group_options.size(), 0);  // 1 + the rank that saw it, or 0
  for (const detail::Piece& p : pieces) {
    if (!p.param.grad) continue;
    const std::size_t lo = std::max(p.offset, begin()),
                      hi = std::min(p.offset + p.param.size, end());
    for (std::size_t i = lo; i < hi; ++i) {
      if (!std::isfinite(flat[i])) where[p.group] = comm.rank() + 1;
    }
    if (lo < hi) {
      std::memcpy(static_cast<T*>(p.param.grad) + (lo - p.offset), flat.data() + lo,
                  (hi - lo) * sizeof(T));
    }
  }
  MPI_Request request;
  detail::check(MPI_Iallreduce(MPI_IN_PLACE, where.data(), int(where.size()), MPI_INT, MPI_MAX,
                               detail::comm_of(comm), &request),
                "MPI_Iallreduce");
  detail::finish(comm, request, "MPI_Allreduce");
  for (std::size_t g = 0; g < where.size(); ++g) {
    if (where[g] == 0) continue;
    if (group_options[g].non_finite == NonFinitePolicy::error) {
      throw NonFiniteError("ShardedOptimizer: the averaged gradient of group " + std::to_string(g) +
                           " holds NaN or inf (in rank " + std::to_string(where[g] - 1) +
                           "'s shard); nothing was changed");
    }
    if (group_options[g].non_finite == NonFinitePolicy::skip) {
      StepResult skipped;
      skipped.applied = false;
      return skipped;
    }
  }
  StepResult result;
  if (shard) result = shard->step();
  result.updated = 0;
  for (const detail::Piece& p : pieces) result.updated += p.param.grad != nullptr;
  // All-gather: every rank's updated part into every rank's parameters.
  // the gradients' scratch serves again: their averages are in the gradient buffers now
  const std::span<std::byte> params = std::as_writable_bytes(flat);
  for (const detail::Piece& p : pieces) {
    std::memcpy(params.data() + p.offset * sizeof(T), p.param.data, p.param.size * sizeof(T));
  }
  detail::all_gather_bytes(comm, params, bounds, sizeof(T), traffic);
  for (const detail::Piece& p : pieces) {
    std::memcpy(p.param.data, params.data() + p.offset * sizeof(T), p.param.size * sizeof(T));
  }
  return result;
}

StepResult ShardedOptimizer::step() {
  return impl_->dtype == DType::f64 ? impl_->step<double>() : impl_->step<float>();
}

std::size_t ShardedOptimizer::shard_begin() const {
  return impl_->begin();
}
std::size_t ShardedOptimizer::shard_end() const {
  return impl_->end();
}
std::size_t ShardedOptimizer::total_values() const {
  return impl_->total;
}
const Optimizer& ShardedOptimizer::shard_optimizer() const {
  if (!impl_->shard) throw Error("ShardedOptimizer: this rank's shard is empty");
  return *impl_->shard;
}
const StepTraffic& ShardedOptimizer::last_traffic() const {
  return impl_->traffic;
}

}  // namespace rmsprop::mpi
