// Optimizer::state_piece / set_state_piece: a parameter's state over a range of its elements,
// as raw bytes in its state dtype (8-bit: codes and the scales of whole blocks).
#include <algorithm>
#include <cstring>
#include <string>

#include "optimizer_impl.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/state8.hpp"
#include "rmsprop/step_plan.hpp"
#include "text.hpp"

namespace rmsprop {
namespace {

constexpr AlignedBuffer ParamState::*kBuffers[] = {&ParamState::square_avg, &ParamState::grad_avg,
                                                   &ParamState::momentum_buffer,
                                                   &ParamState::master};
constexpr const char* kBufferNames[] = {"square_avg", "grad_avg", "momentum_buffer",
                                        "master weights"};

// Where elements [begin, end) of a buffer of `n` values of `dtype` lie: one or two byte ranges
// (8-bit state: the codes, and the scales of the blocks), {offset, length} each.
struct Ranges {
  std::size_t at[2] = {0, 0}, bytes[2] = {0, 0};
};
Ranges ranges_of(DType dtype, std::size_t n, std::size_t begin, std::size_t end) {
  Ranges r;
  if (begin == end) return r;
  if (dtype != DType::i8_block) {
    r.at[0] = begin * size_of(dtype), r.bytes[0] = (end - begin) * size_of(dtype);
    return r;
  }
  r.at[0] = begin, r.bytes[0] = end - begin;
  const std::size_t first = begin / kState8Block, last = state8_blocks(end);
  r.at[1] = state8_scales_offset(n) + first * sizeof(float);
  r.bytes[1] = (last - first) * sizeof(float);
  return r;
}

// The refusal of a range that is not one a piece may take, or "".
std::string range_problem(DType dtype, std::size_t n, std::size_t begin, std::size_t end) {
  if (begin > end || end > n) {
    return "elements [" + std::to_string(begin) + ", " + std::to_string(end) +
           ") are not within its " + std::to_string(n);
  }
  if (dtype == DType::i8_block &&
      (begin % kState8Block != 0 || (end % kState8Block != 0 && end != n))) {
    return "elements [" + std::to_string(begin) + ", " + std::to_string(end) +
           ") split a block of 8-bit state (" + std::to_string(kState8Block) + " values)";
  }
  return "";
}

DType stored_dtype(std::size_t k, DType state) {
  return k == 3 ? DType::f32 : state;
}

}  // namespace

Optimizer::StatePiece Optimizer::state_piece(std::size_t group, std::size_t index,
                                             std::size_t begin, std::size_t end) const {
  step_count(group, index);  // checks that the parameter exists
  const Param& p = impl_->groups[group].params[index];
  const ParamState& s = impl_->groups[group].states[index];
  StatePiece piece;
  piece.step = s.step;
  piece.state_dtype = s.state_dtype;
  piece.size = end - begin;
  for (std::size_t k = 0; k < 4; ++k) {
    const AlignedBuffer& b = s.*kBuffers[k];
    if (b.empty()) continue;
    const DType dtype = stored_dtype(k, s.state_dtype);
    if (const std::string problem = range_problem(dtype, p.size, begin, end); !problem.empty()) {
      throw InvalidArgument("state_piece: " + where(group, index) + ": " + problem);
    }
    const Ranges r = ranges_of(dtype, p.size, begin, end);
    for (int part = 0; part < 2; ++part) {
      piece.buffers[k].insert(piece.buffers[k].end(), b.data() + r.at[part],
                              b.data() + r.at[part] + r.bytes[part]);
    }
  }
  return piece;
}

void Optimizer::set_state_piece(std::size_t group, std::size_t index, std::size_t begin,
                                const StatePiece& piece) {
  step_count(group, index);
  const Param& p = impl_->groups[group].params[index];
  ParamState& s = impl_->groups[group].states[index];
  const std::string at = "set_state_piece: " + where(group, index) + ": ";
  if (const std::string problem = step_count_problem(piece.step); !problem.empty()) {
    throw InvalidArgument(at + "the piece has " + problem);
  }
  const bool half = p.dtype == DType::bf16 || p.dtype == DType::f16;
  if (!Precision{p.dtype, piece.state_dtype, false, false}.supported()) {
    throw InvalidArgument(at + std::string(to_string(piece.state_dtype)) +
                          " state is invalid for " + std::string(to_string(p.dtype)) +
                          " parameters");
  }
  const std::size_t end = begin + piece.size;
  for (std::size_t k = 0; k < 4; ++k) {
    if (piece.buffers[k].empty()) continue;
    if (k == 3 && !half) throw InvalidArgument(at + "master weights for a 32/64-bit parameter");
    const DType dtype = stored_dtype(k, piece.state_dtype);
    const AlignedBuffer& b = s.*kBuffers[k];
    if (!b.empty() && stored_dtype(k, s.state_dtype) != dtype) {
      throw InvalidArgument(at + "its " + kBufferNames[k] + " holds " +
                            std::string(to_string(s.state_dtype)) + " state, the piece " +
                            std::string(to_string(piece.state_dtype)));
    }
    if (const std::string problem = range_problem(dtype, p.size, begin, end); !problem.empty()) {
      throw InvalidArgument(at + problem);
    }
    const Ranges r = ranges_of(dtype, p.size, begin, end);
    if (piece.buffers[k].size() != r.bytes[0] + r.bytes[1]) {
      throw InvalidArgument(at + "the piece's " + kBufferNames[k] + " has " +
                            std::to_string(piece.buffers[k].size()) + " bytes, " +
                            std::to_string(piece.size) + " values of " +
                            std::string(to_string(dtype)) + " take " +
                            std::to_string(r.bytes[0] + r.bytes[1]));
    }
  }
  // Checked: now change.
  for (std::size_t k = 0; k < 4; ++k) {
    if (piece.buffers[k].empty()) continue;
    const DType dtype = stored_dtype(k, piece.state_dtype);
    AlignedBuffer& b = s.*kBuffers[k];
    if (b.empty()) {
      b = AlignedBuffer(storage_bytes(dtype, p.size));
      std::memset(b.data(), 0, b.bytes());
    }
    const Ranges r = ranges_of(dtype, p.size, begin, end);
    std::memcpy(b.data() + r.at[0], piece.buffers[k].data(), r.bytes[0]);
    std::memcpy(b.data() + r.at[1], piece.buffers[k].data() + r.bytes[0], r.bytes[1]);
  }
  s.step = piece.step;
  if (p.size > 0) s.state_dtype = piece.state_dtype;
}

void Optimizer::set_steps_taken(std::int64_t steps) {
  if (const std::string problem = step_count_problem(steps); !problem.empty()) {
    throw InvalidArgument("set_steps_taken: " + problem);
  }
  impl_->steps_taken = steps;
}

}  // namespace rmsprop
