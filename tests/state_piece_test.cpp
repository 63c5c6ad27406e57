// Optimizer::state_piece / set_state_piece: state moved between optimizers that hold pieces of
// the same tensor (what sharded training does) continues the same trajectory to the bit.
#include <gtest/gtest.h>

#include <cmath>
#include <span>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/state8.hpp"

namespace rmsprop {
namespace {

struct Case {
  const char* name;
  Options options;
};

std::vector<Case> cases() {
  Options plain, centered, eight, bf16;
  centered.centered = true, centered.momentum = 0.9, centered.bias_correction = true;
  eight = centered, eight.state_dtype = StateDType::int8, eight.state8_min_size = 0;
  bf16 = centered, bf16.state_dtype = StateDType::bfloat16;
  return {{"plain", plain}, {"centered_momentum", centered}, {"int8", eight}, {"bf16", bf16}};
}

void fill_gradient(std::vector<float>& g, int step) {
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.37f * float(i) + float(step));
}

Param view(std::vector<float>& w, std::vector<float>& g, std::size_t begin, std::size_t end) {
  return Param::of(std::span(w).subspan(begin, end - begin),
                   std::span(g).subspan(begin, end - begin));
}

// A tensor of n values stepped whole by one optimizer, and in two pieces [0, k), [k, n) by two:
// the pieces' state put into a fresh whole optimizer continues as the first one does.
TEST(StatePiece, PiecesOfStateRejoinedContinueTheSameTrajectory) {
  const std::size_t n = 3 * kState8Block + 77, k = 2 * kState8Block;
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    std::vector<float> w(n, 0.5f), g(n), w2 = w;
    Optimizer whole({Param::of(w, g)}, c.options);
    Optimizer low({view(w2, g, 0, k)}, c.options), high({view(w2, g, k, n)}, c.options);
    for (int step = 0; step < 5; ++step) {
      fill_gradient(g, step);
      whole.step(), low.step(), high.step();
    }
    ASSERT_EQ(w, w2);  // elementwise rule, blocks aligned: the pieces step as the whole
    const auto a = whole.state_piece(0, 0, 0, k), b = low.state_piece(0, 0, 0, k);
    EXPECT_EQ(a.buffers, b.buffers);
    EXPECT_EQ(whole.state_piece(0, 0, k, n).buffers, high.state_piece(0, 0, 0, n - k).buffers);

    std::vector<float> w3 = w;
    Optimizer rejoined({Param::of(w3, g)}, c.options);
    rejoined.set_state_piece(0, 0, k, high.state_piece(0, 0, 0, n - k));
    rejoined.set_state_piece(0, 0, 0, low.state_piece(0, 0, 0, k));
    rejoined.set_steps_taken(whole.steps_taken());
    EXPECT_EQ(rejoined.step_count(0, 0), 5);
    EXPECT_EQ(rejoined.state_dtype(0, 0), whole.state_dtype(0, 0));
    for (int step = 5; step < 10; ++step) {
      fill_gradient(g, step);
      whole.step(), rejoined.step();
    }
    EXPECT_EQ(w, w3);
    EXPECT_EQ(whole.state_piece(0, 0, 0, n).buffers, rejoined.state_piece(0, 0, 0, n).buffers);
  }
}

TEST(StatePiece, BadPiecesAreRefusedByNameAndChangeNothing) {
  Options eight;
  eight.state_dtype = StateDType::int8, eight.state8_min_size = 0;
  const std::size_t n = 2 * kState8Block;
  std::vector<float> w(n, 1), g(n, 0.25f), w2(n, 1);
  Optimizer a({Param::of(w, g)}, eight), b({Param::of(w2, g)}, eight);
  a.step();
  const std::string before = b.state_piece(0, 0, 0, n).buffers[0].empty() ? "empty" : "set";
  auto refused = [&](auto&& call, const std::string& words) {
    try {
      call();
      ADD_FAILURE() << "accepted; expected: " << words;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  refused([&] { a.state_piece(0, 0, 1, n); }, "split a block of 8-bit state");
  refused([&] { a.state_piece(0, 0, 0, n + 1); }, "are not within its 512");
  refused([&] { a.state_piece(0, 1, 0, 1); }, "group 0, parameter 1 does not exist");
  auto piece = a.state_piece(0, 0, 0, kState8Block);
  refused([&] { b.set_state_piece(0, 0, 100, piece); }, "split a block");
  auto short_piece = piece;
  short_piece.buffers[0].pop_back();
  refused([&] { b.set_state_piece(0, 0, 0, short_piece); }, "has 259 bytes");
  auto negative = piece;
  negative.step = -1;
  refused([&] { b.set_state_piece(0, 0, 0, negative); }, "set_state_piece: group 0, parameter 0");
  auto master = piece;
  master.buffers[3].resize(4);
  refused([&] { b.set_state_piece(0, 0, 0, master); }, "master weights for a 32/64-bit");
  refused([&] { b.set_steps_taken(-3); }, "set_steps_taken");
  EXPECT_EQ(b.step_count(0, 0), 0);
  EXPECT_TRUE(b.state_piece(0, 0, 0, n).buffers[0].empty());
  EXPECT_EQ(before, "empty");

  // a float32-state optimizer refuses an 8-bit piece once it holds float32 state
  Options f32;
  std::vector<float> w3(n, 1);
  Optimizer c({Param::of(w3, g)}, f32);
  c.step();
  refused([&] { c.set_state_piece(0, 0, 0, piece); }, "holds float32 state, the piece int8");
}

}  // namespace
}  // namespace rmsprop
