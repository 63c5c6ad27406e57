#include <algorithm>
#include <cstring>

#include "collective.hpp"
#include "rmsprop/error.hpp"

namespace rmsprop::mpi {

struct GradientAverager::Impl {
  Communicator comm;
  std::size_t bucket_bytes;
  StepTraffic traffic;
  std::vector<std::byte> bucket_scratch, parts_scratch;  // kept from call to call

  // Gradients in buckets of at most bucket_bytes, in concatenation order: each bucket
  // averaged, then copied back.
  template <class T>
  void average(const std::vector<detail::Piece>& pieces, std::size_t total) {
    const std::size_t capacity = std::max<std::size_t>(1, bucket_bytes / sizeof(T));
    const std::span<T> bucket = detail::scratch_of<T>(bucket_scratch, std::min(capacity, total));
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

GradientAverager::GradientAverager(Communicator comm, std::size_t bucket_bytes)
    : impl_(std::make_unique<Impl>(Impl{std::move(comm), bucket_bytes, {}, {}, {}})) {}
GradientAverager::~GradientAverager() = default;
GradientAverager::GradientAverager(GradientAverager&&) noexcept = default;

void GradientAverager::average(const std::vector<Param>& params) {
  Impl& m = *impl_;
  m.traffic = {};
  DType dtype = DType::f32;
  std::size_t total = 0;
  const std::vector<detail::Piece> pieces =
      detail::concatenate({ParamGroup{params, Options{}}}, dtype, total, "GradientAverager");
  detail::check_agreement(m.comm, detail::layout_fingerprint(pieces),
                          "GradientAverager: the parameters' dtypes and sizes");
  detail::check_same_gradients(m.comm, pieces, "GradientAverager::average");
  if (m.comm.size() == 1) return;  // the average of one rank's gradients: themselves
  if (dtype == DType::f64) {
    m.average<double>(pieces, total);
  } else {
    m.average<float>(pieces, total);
  }
}

const StepTraffic& GradientAverager::last_traffic() const {
  return impl_->traffic;
}
const Communicator& GradientAverager::communicator() const {
  return impl_->comm;
}

}  // namespace rmsprop::mpi
