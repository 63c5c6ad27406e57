#include <algorithm>
#include <cstring>
#include <optional>

#include "collective.hpp"
#include "rmsprop/error.hpp"

namespace rmsprop::mpi {

struct DataParallel::Impl {
  std::vector<detail::Piece> pieces;
  std::vector<Param> params;  // the caller's, in concatenation order
  GradientAverager averager;
  Optimizer optimizer;
};

DataParallel::DataParallel(std::vector<ParamGroup> groups, Communicator comm,
                           std::size_t bucket_bytes) {
  DType dtype = DType::f32;
  std::size_t total = 0;
  auto pieces = detail::concatenate(groups, dtype, total, "DataParallel");
  detail::check_agreement(comm, detail::layout_fingerprint(pieces),
                          "DataParallel: the parameters' dtypes and sizes");
  std::vector<Param> params;
  for (const detail::Piece& p : pieces) params.push_back(p.param);
  impl_ = std::make_unique<Impl>(Impl{std::move(pieces), std::move(params),
                                      GradientAverager(std::move(comm), bucket_bytes),
                                      Optimizer(std::move(groups))});
}

DataParallel::~DataParallel() = default;
DataParallel::DataParallel(DataParallel&&) noexcept = default;

StepResult DataParallel::step() {
  impl_->averager.average(impl_->params);
  return impl_->optimizer.step();
}

Optimizer& DataParallel::optimizer() {
  return impl_->optimizer;
}
const Optimizer& DataParallel::optimizer() const {
  return impl_->optimizer;
}
const StepTraffic& DataParallel::last_traffic() const {
  return impl_->averager.last_traffic();
}

void DataParallel::save(const std::filesystem::path& path) const {
  std::string error;
  if (impl_->averager.communicator().rank() == 0) {  // every rank holds the same state
    try {
      impl_->optimizer.save(path);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  detail::raise_if_any_rank_failed(impl_->averager.communicator(), error,
                                   "DataParallel::save " + path.string());
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
  detail::raise_if_any_rank_failed(m.averager.communicator(), error,
                                   "DataParallel::load " + path.string());
  m.optimizer = std::move(*fresh);
}

}  // namespace rmsprop::mpi
