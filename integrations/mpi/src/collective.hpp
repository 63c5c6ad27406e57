// The one reduction of the MPI backend (NOTE: [MPI backend] in rmsprop/mpi.hpp) and the
// concatenated view of a parameter list it works on.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "rmsprop/mpi.hpp"

namespace rmsprop::mpi::detail {

MPI_Comm comm_of(const Communicator& c);

// Throws rmsprop::Error naming `what` when an MPI call did not return MPI_SUCCESS.
void check(int mpi_result, const char* what);

// Waits for a nonblocking collective, at most comm.timeout() seconds: then throws
// rmsprop::Error naming `what` and this rank (every collective here is nonblocking for this).
void finish(const Communicator& comm, MPI_Request request, const char* what);

// The parts of [0, n) that the ranks own: bounds[r] .. bounds[r + 1], size() + 1 entries.
std::vector<std::size_t> even_bounds(std::size_t n, int ranks);

// Averages `x` across the ranks: rank r sums the part [bounds[r], bounds[r+1]) of every rank's
// x in rank order and divides by the world size; with `gather` every rank then receives every
// part, else only its own part of x holds the average. `traffic` adds the bytes this rank
// sent and received. Every rank calls it with the same n and bounds.
// `scratch` holds the received parts between calls (steps reuse it: a fresh allocation each
// step costs its page faults, measured 50x the step on this machine).
template <class T>
void average(const Communicator& comm, std::span<T> x, const std::vector<std::size_t>& bounds,
             bool gather, StepTraffic& traffic, std::vector<std::byte>& scratch);

// `bytes` as n values of T, grown when needed and kept (the scratch of a step).
template <class T>
std::span<T> scratch_of(std::vector<std::byte>& bytes, std::size_t n) {
  if (bytes.size() < n * sizeof(T)) bytes.resize(n * sizeof(T));
  return {reinterpret_cast<T*>(bytes.data()), n};
}

// Gives every rank every part of `bytes` (rank r's part: [bounds[r], bounds[r+1]) × width).
void all_gather_bytes(const Communicator& comm, std::span<std::byte> bytes,
                      const std::vector<std::size_t>& bounds, std::size_t width,
                      StepTraffic& traffic);

// The same value on every rank? Throws InvalidArgument(what + ...) on every rank if not.
void check_agreement(const Communicator& comm, std::uint64_t value, const std::string& what);

// One parameter's place in the concatenation of a parameter list.
struct Piece {
  std::size_t group, index;  // in the caller's groups
  std::size_t offset;        // first value in the concatenation
  Param param;
};

// The concatenation of `groups`' parameters in group order. Gradients must all be float32 or
// all float64 (with their parameter's dtype): else InvalidArgument naming the parameter.
std::vector<Piece> concatenate(const std::vector<ParamGroup>& groups, DType& dtype,
                               std::size_t& total, const char* who);

// A fingerprint of the layout (dtypes and sizes), equal on ranks with equal shapes.
std::uint64_t layout_fingerprint(const std::vector<Piece>& pieces);

// Every rank has a gradient for the same parameters? Else InvalidArgument on every rank.
void check_same_gradients(const Communicator& comm, const std::vector<Piece>& pieces,
                          const std::string& who);

// The caller's groups again, from their concatenation, with `options` per group.
std::vector<ParamGroup> groups_of(const std::vector<Piece>& pieces,
                                  const std::vector<Options>& options);

// Rank 0 calls `receive` with every rank's `mine`, its own included, in rank order; the others
// send theirs (in pieces of at most 1 GiB: MPI counts are ints).
void send_to_root(const Communicator& comm, std::span<const std::byte> mine,
                  const std::function<void(std::span<const std::byte>)>& receive);

// Every rank learns whether any rank failed (its `error` not empty): then every rank throws
// CheckpointError with `what` and the lowest failing rank's message; else nothing happens.
// What a rank would change is changed only after this: all ranks change, or none.
void raise_if_any_rank_failed(const Communicator& comm, const std::string& error,
                              const std::string& what);

}  // namespace rmsprop::mpi::detail
