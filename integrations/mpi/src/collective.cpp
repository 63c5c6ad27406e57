#include "collective.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "rmsprop/error.hpp"

namespace rmsprop::mpi {

bool available() {
  return true;
}

Session::Session(int* argc, char*** argv) {
  int initialized = 0;
  detail::check(MPI_Initialized(&initialized), "MPI_Initialized");
  if (!initialized) {
    int provided = 0;
    detail::check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_ = true;
  }
}

Session::~Session() {
  if (owns_) MPI_Finalize();
}

void Session::abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; if it did, still end here
}

Communicator Communicator::world() {
  static const MPI_Comm world = MPI_COMM_WORLD;
  return of(&world);
}

Communicator Communicator::of(const void* mpi_comm) {
  int initialized = 0;
  detail::check(MPI_Initialized(&initialized), "MPI_Initialized");
  if (!initialized) {
    throw Error("rmsprop::mpi: MPI is not initialized (make an rmsprop::mpi::Session first)");
  }
  Communicator c;
  c.comm_ = std::make_shared<const MPI_Comm>(*static_cast<const MPI_Comm*>(mpi_comm));
  detail::check(MPI_Comm_rank(detail::comm_of(c), &c.rank_), "MPI_Comm_rank");
  detail::check(MPI_Comm_size(detail::comm_of(c), &c.size_), "MPI_Comm_size");
  return c;
}

void Communicator::set_timeout(double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds)) {
    throw InvalidOption("rmsprop::mpi: timeout " + std::to_string(seconds) +
                        " s: must be finite and > 0");
  }
  timeout_ = seconds;
}

namespace detail {
namespace {

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

int count(std::size_t n) {
  if (n > std::size_t(INT_MAX)) {
    throw InvalidArgument("rmsprop::mpi: a message of " + std::to_string(n) +
                          " values, more than MPI's int counts hold; use smaller buckets");
  }
  return int(n);
}

}  // namespace

MPI_Comm comm_of(const Communicator& c) {
  return *static_cast<const MPI_Comm*>(c.native());
}

void check(int result, const char* what) {
  if (result == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(result, text, &length);
  throw Error(std::string("rmsprop::mpi: ") + what + " failed: " + std::string(text, length));
}

void finish(const Communicator& comm, MPI_Request request, const char* what) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(comm.timeout());
  for (long polls = 0;; ++polls) {
    int done = 0;
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    if (clock::now() > deadline) {
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%g", comm.timeout());
      throw Error(std::string("rmsprop::mpi: ") + what + " has not completed after " + seconds +
                  " s on rank " + std::to_string(comm.rank()) + " of " +
                  std::to_string(comm.size()) +
                  ": another rank has stopped (killed, or not calling step()); "
                  "Communicator::set_timeout sets the limit");
    }
    // spin briefly (a collective on one machine completes in microseconds), then yield the
    // core to the ranks it waits for
    if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

std::vector<std::size_t> even_bounds(std::size_t n, int ranks) {
  std::vector<std::size_t> bounds(std::size_t(ranks) + 1);
  for (int r = 0; r <= ranks; ++r) bounds[r] = n / std::size_t(ranks) * std::size_t(r);
  bounds.back() = n;
  return bounds;
}

template <class T>
void average(const Communicator& comm, std::span<T> x, const std::vector<std::size_t>& bounds,
             bool gather, StepTraffic& traffic, std::vector<std::byte>& scratch) {
  const int ranks = comm.size(), me = comm.rank();
  const std::size_t begin = bounds[me], length = bounds[me + 1] - begin;
  std::vector<int> send_counts(ranks), send_at(ranks), receive_counts(ranks), receive_at(ranks);
  for (int r = 0; r < ranks; ++r) {
    send_counts[r] = count(bounds[r + 1] - bounds[r]);
    send_at[r] = count(bounds[r]);
    receive_counts[r] = count(length);
    receive_at[r] = count(length * std::size_t(r));
  }
  const std::span<T> parts = scratch_of<T>(scratch, length * std::size_t(ranks));
  MPI_Request request;
  check(MPI_Ialltoallv(x.data(), send_counts.data(), send_at.data(), mpi_type<T>(), parts.data(),
                       receive_counts.data(), receive_at.data(), mpi_type<T>(), comm_of(comm),
                       &request),
        "MPI_Ialltoallv");
  finish(comm, request, "MPI_Alltoallv");
  traffic.gradient_bytes_sent += (bounds.back() - length) * sizeof(T);
  traffic.gradient_bytes_received += (parts.size() - length) * sizeof(T);
  const T divisor = T(ranks);
  for (std::size_t i = 0; i < length; ++i) {
    T sum = parts[i];
    for (int r = 1; r < ranks; ++r) sum += parts[std::size_t(r) * length + i];
    x[begin + i] = sum / divisor;
  }
  if (gather) {
    all_gather_bytes(comm, std::as_writable_bytes(x), bounds, sizeof(T), traffic);
  }
}

template void average<float>(const Communicator&, std::span<float>, const std::vector<std::size_t>&,
                             bool, StepTraffic&, std::vector<std::byte>&);
template void average<double>(const Communicator&, std::span<double>,
                              const std::vector<std::size_t>&, bool, StepTraffic&,
                              std::vector<std::byte>&);

void all_gather_bytes(const Communicator& comm, std::span<std::byte> bytes,
                      const std::vector<std::size_t>& bounds, std::size_t width,
                      StepTraffic& traffic) {
  const int ranks = comm.size(), me = comm.rank();
  std::vector<int> counts(ranks), at(ranks);
  for (int r = 0; r < ranks; ++r) {
    counts[r] = count((bounds[r + 1] - bounds[r]) * width);
    at[r] = count(bounds[r] * width);
  }
  MPI_Request request;
  check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, bytes.data(), counts.data(), at.data(),
                        MPI_BYTE, comm_of(comm), &request),
        "MPI_Iallgatherv");
  finish(comm, request, "MPI_Allgatherv");
  traffic.gather_bytes_sent += std::size_t(counts[me]) * std::size_t(ranks - 1);
}

void check_agreement(const Communicator& comm, std::uint64_t value, const std::string& what) {
  unsigned long long low = value, high = value;
  MPI_Request requests[2];
  check(MPI_Iallreduce(MPI_IN_PLACE, &low, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm_of(comm),
                       &requests[0]),
        "MPI_Iallreduce");
  check(MPI_Iallreduce(MPI_IN_PLACE, &high, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm_of(comm),
                       &requests[1]),
        "MPI_Iallreduce");
  finish(comm, requests[0], "MPI_Allreduce");
  finish(comm, requests[1], "MPI_Allreduce");
  if (low != high) {
    throw InvalidArgument(what + " differ between the ranks (rank " + std::to_string(comm.rank()) +
                          " of " + std::to_string(comm.size()) + ")");
  }
}

std::vector<Piece> concatenate(const std::vector<ParamGroup>& groups, DType& dtype,
                               std::size_t& total, const char* who) {
  std::vector<Piece> pieces;
  total = 0;
  bool first = true;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t i = 0; i < groups[g].params.size(); ++i) {
      const Param& p = groups[g].params[i];
      const std::string where =
          std::string(who) + ": group " + std::to_string(g) + " parameter " + std::to_string(i);
      if (p.dtype != DType::f32 && p.dtype != DType::f64) {
        throw InvalidArgument(where + " is " + std::string(to_string(p.dtype)) +
                              "; averaging across ranks takes float32 or float64 gradients");
      }
      if (!first && p.dtype != dtype) {
        throw InvalidArgument(where + " is " + std::string(to_string(p.dtype)) + ", the others " +
                              std::string(to_string(dtype)) + ": one gradient dtype per optimizer");
      }
      dtype = p.dtype, first = false;
      pieces.push_back({g, i, total, p});
      total += p.size;
    }
  }
  return pieces;
}

std::uint64_t layout_fingerprint(const std::vector<Piece>& pieces) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  auto mix = [&](std::uint64_t v) {
    for (int b = 0; b < 8; ++b) h = (h ^ ((v >> (8 * b)) & 0xFF)) * 1099511628211ull;
  };
  for (const Piece& p : pieces) {
    mix(p.group), mix(p.index), mix(p.param.size), mix(std::uint64_t(p.param.dtype));
    mix(p.param.complex);
  }
  return h;
}

void check_same_gradients(const Communicator& comm, const std::vector<Piece>& pieces,
                          const std::string& who) {
  std::uint64_t present = 1469598103934665603ull;  // FNV-1a of the has-a-gradient bits
  for (const Piece& p : pieces) {
    present = (present ^ std::uint64_t(p.param.grad != nullptr)) * 1099511628211ull;
  }
  check_agreement(comm, present, who + ": the parameters with a gradient");
}

std::vector<ParamGroup> groups_of(const std::vector<Piece>& pieces,
                                  const std::vector<Options>& options) {
  std::vector<ParamGroup> groups;
  for (const Options& o : options) groups.push_back({{}, o});
  for (const Piece& p : pieces) groups[p.group].params.push_back(p.param);
  return groups;
}

void send_to_root(const Communicator& comm, std::span<const std::byte> mine,
                  const std::function<void(std::span<const std::byte>)>& receive) {
  constexpr std::size_t kMessage = std::size_t(1) << 30;
  constexpr int kTag = 0x52;  // 'R'
  unsigned long long size = mine.size();
  std::vector<unsigned long long> sizes(std::size_t(comm.size()));
  MPI_Request request;
  check(MPI_Igather(&size, 1, MPI_UNSIGNED_LONG_LONG, sizes.data(), 1, MPI_UNSIGNED_LONG_LONG, 0,
                    comm_of(comm), &request),
        "MPI_Igather");
  finish(comm, request, "MPI_Gather");
  if (comm.rank() != 0) {
    for (std::size_t at = 0; at < mine.size(); at += kMessage) {
      const std::size_t n = std::min(kMessage, mine.size() - at);
      check(MPI_Isend(mine.data() + at, int(n), MPI_BYTE, 0, kTag, comm_of(comm), &request),
            "MPI_Isend");
      finish(comm, request, "MPI_Send to rank 0");
    }
    return;
  }
  receive(mine);
  std::vector<std::byte> theirs;
  for (int r = 1; r < comm.size(); ++r) {
    theirs.resize(sizes[std::size_t(r)]);
    for (std::size_t at = 0; at < theirs.size(); at += kMessage) {
      const std::size_t n = std::min(kMessage, theirs.size() - at);
      check(MPI_Irecv(theirs.data() + at, int(n), MPI_BYTE, r, kTag, comm_of(comm), &request),
            "MPI_Irecv");
      finish(comm, request, "MPI_Recv from a rank");
    }
    receive(theirs);
  }
}

void raise_if_any_rank_failed(const Communicator& comm, const std::string& error,
                              const std::string& what) {
  int first = error.empty() ? INT_MAX : comm.rank();
  MPI_Request request;
  check(MPI_Iallreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm_of(comm), &request),
        "MPI_Iallreduce");
  finish(comm, request, "MPI_Allreduce");
  if (first == INT_MAX) return;
  unsigned long long length = comm.rank() == first ? error.size() : 0;
  check(MPI_Ibcast(&length, 1, MPI_UNSIGNED_LONG_LONG, first, comm_of(comm), &request),
        "MPI_Ibcast");
  finish(comm, request, "MPI_Bcast");
  std::string text = comm.rank() == first ? error : std::string(length, ' ');
  check(MPI_Ibcast(text.data(), count(length), MPI_CHAR, first, comm_of(comm), &request),
        "MPI_Ibcast");
  finish(comm, request, "MPI_Bcast");
  throw CheckpointError(what + ": failed on rank " + std::to_string(first) + " of " +
                        std::to_string(comm.size()) + ": " + text);
}

}  // namespace detail
}  // namespace rmsprop::mpi
