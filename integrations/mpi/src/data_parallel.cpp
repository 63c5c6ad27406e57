#include <algorithm>
#include <cstring>
#include <optional>

#include "collective.hpp"
#include "rmsprop/error.hpp"

namespace rmsprop::mpi {

struct DataParallel::Impl {
  Communicator comm;
  std::vector<detail::Piece> pieces;
  DType dtype = DType::f32;
  std::size_t total = 0, bucket_values = 1;
  Optimizer optimizer;
  StepTraffic traffic;
  std::vector<std::byte> bucket_scratch, parts_scratch;  // kept from step to step

  // Gradients in buckets of at most bucket_values, in concatenation order: each bucket
  // averaged, then copied back.
  template <class T>
  void average_gradients() {
    const std::span<T> bucket =
        detail::scratch_of<T>(bucket_scratch, std::min(bucket_values, total));
    struct Segment {
      T* grad;
      std::size_t at, count;
    };
    std::vector<Segment> segments;
    std::size_t used = 0;
    auto flush = [&] {
      if (used == 0) return;
      detail::average<T>(comm, std::span<T>(bucket.data(), used),
                         detail::even_bounds(used, comm.size()), true, traffic, parts_scratch);
      for (const Segment& s : segments) {
        std::memcpy(s.grad, bucket.data() + s.at, s.count * sizeof(T));
      }
      segments.clear();
      used = 0;
    };
    for (const detail::Piece& piece : pieces) {
      if (piece.param.grad == nullptr) continue;
      T* grad = static_cast<T*>(piece.param.grad);
      for (std::size_t done = 0; done < piece.param.size;) {
        const std::size_t n = std::min(piece.param.size - done, bucket.size() - used);
        std::memcpy(bucket.data() + used, grad + done, n * sizeof(T));
        segments.push_back({grad + done, used, n});
        used += n, done += n;
        if (used == bucket.size()) flush();
      }
    }
    flush();
  }
};

DataParallel::DataParallel(std::vector<ParamGroup> groups, Communicator comm,
                           std::size_t bucket_bytes)
    : impl_(std::make_unique<Impl>(
          Impl{comm, {}, DType::f32, 0, 1, Optimizer(std::vector<ParamGroup>{}), {}, {}, {}})) {
  impl_->pieces = detail::concatenate(groups, impl_->dtype, impl_->total, "DataParallel");
  detail::check_agreement(comm, detail::layout_fingerprint(impl_->pieces),
                          "DataParallel: the parameters' dtypes and sizes");
  impl_->bucket_values = std::max<std::size_t>(1, bucket_bytes / size_of(impl_->dtype));
  impl_->optimizer = Optimizer(std::move(groups));
}

DataParallel::~DataParallel() = default;
DataParallel::DataParallel(DataParallel&&) noexcept = default;

StepResult DataParallel::step() {
  Impl& m = *impl_;
  m.traffic = {};
  detail::check_same_gradients(m.comm, m.pieces, "DataParallel::step");
  if (m.dtype == DType::f64) {
    m.average_gradients<double>();
  } else {
    m.average_gradients<float>();
  }
  return m.optimizer.step();
}

Optimizer& DataParallel::optimizer() {
  return impl_->optimizer;
}
const Optimizer& DataParallel::optimizer() const {
  return impl_->optimizer;
}
const StepTraffic& DataParallel::last_traffic() const {
  return impl_->traffic;
}

void DataParallel::save(const std::filesystem::path& path) const {
  std::string error;
  if (impl_->comm.rank() == 0) {  // every rank holds the same state
    try {
      impl_->optimizer.save(path);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  detail::raise_if_any_rank_failed(impl_->comm, error, "DataParallel::save " + path.string());
}

void DataParallel::load(const std::filesystem::path& path) {
  Impl& m = *impl_;
  std::string error;
  std::optional<Optimizer> fresh;
  try {
    std::vector<Options> options;
    for (std::size_t g = 0; g < m.optimizer.num_groups(); ++g) {
      options.push_back(m.optimizer.options(g));
    }
    fresh.emplace(detail::groups_of(m.pieces, options));
    fresh->load(path);
    fresh->set_kernel_config(m.optimizer.kernel_config());
    fresh->set_schedule(m.optimizer.schedule());
  } catch (const std::exception& e) {
    error = e.what();
  }
  detail::raise_if_any_rank_failed(m.comm, error, "DataParallel::load " + path.string());
  m.optimizer = std::move(*fresh);
}

}  // namespace rmsprop::mpi
