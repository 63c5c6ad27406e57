// The CUDA backend's launch planner (plain C++, tested on any machine): every chunk of every
// tensor goes to exactly one block, launches respect their limits, each tensor is in exactly
// one launch (whole, in order), empty tensors still get a slot (capturable steps count them).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "cuda/launch.hpp"

namespace rmsprop::cuda::detail {
namespace {

struct Launch {
  std::vector<std::size_t> slots;                     // tensor index per slot
  std::vector<std::pair<int, std::uint32_t>> blocks;  // (slot, chunk), as the kernel finds them
};

// The planner's launches, each block decoded as the kernels decode it (slot_of_block).
std::vector<Launch> plan(const std::vector<std::size_t>& sizes, int max_slots = kMaxTensors) {
  std::vector<Launch> launches(1);
  std::uint32_t first_block[kMaxTensors + 1];
  auto add = [&](std::size_t k) -> int {
    if (int(launches.back().slots.size()) == max_slots) return -1;
    launches.back().slots.push_back(k);
    return int(launches.back().slots.size()) - 1;
  };
  auto flush = [&](int blocks, int tensors) {
    EXPECT_EQ(std::size_t(tensors), launches.back().slots.size());
    EXPECT_EQ(first_block[tensors], std::uint32_t(blocks));
    for (int b = 0; b < blocks; ++b) {
      const int slot = slot_of_block(first_block, tensors, std::uint32_t(b));
      launches.back().blocks.push_back({slot, std::uint32_t(b) - first_block[slot]});
    }
    launches.emplace_back();
  };
  plan_launches(
      sizes.size(), [&](std::size_t k) { return sizes[k]; }, add, flush, first_block);
  launches.pop_back();  // the empty one started by the last flush
  return launches;
}

void check_cover(const std::vector<std::size_t>& sizes, const std::vector<Launch>& launches) {
  std::map<std::pair<std::size_t, std::size_t>, int> seen;  // (tensor, chunk) -> times
  std::vector<std::size_t> slotted;                         // tensors in launch order
  for (const Launch& l : launches) {
    EXPECT_LE(l.slots.size(), std::size_t(kMaxTensors));
    EXPECT_FALSE(l.slots.empty());
    for (std::size_t k : l.slots) slotted.push_back(k);
    for (auto [slot, chunk] : l.blocks) {
      ASSERT_LT(std::size_t(slot), l.slots.size());
      ++seen[{l.slots[slot], chunk}];
    }
  }
  // every tensor exactly once, in order: none is split between launches
  EXPECT_EQ(slotted.size(), sizes.size());
  for (std::size_t k = 0; k < slotted.size(); ++k) EXPECT_EQ(slotted[k], k);
  std::size_t expected_blocks = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    const std::size_t chunks = (sizes[k] + kChunkElements - 1) / kChunkElements;
    expected_blocks += chunks;
    for (std::size_t c = 0; c < chunks; ++c) {
      EXPECT_EQ((seen[{k, c}]), 1) << "tensor " << k << " chunk " << c;
    }
  }
  EXPECT_EQ(seen.size(), expected_blocks);
}

TEST(CudaLaunchPlan, CoversEveryChunkOnceWithinTheLimits) {
  const std::vector<std::vector<std::size_t>> cases = {
      {},
      {0},
      {1},
      {0, 0, 5, 0},
      {kChunkElements - 1, kChunkElements, kChunkElements + 1},
      {0, kChunkElements * 5000 + 17, 0, 3},            // one launch, thousands of blocks
      std::vector<std::size_t>(kMaxTensors, 1000),      // exactly one full launch
      std::vector<std::size_t>(kMaxTensors + 1, 1000),  // one more: a second launch
      std::vector<std::size_t>(300, 0),
  };
  for (const auto& sizes : cases) {
    SCOPED_TRACE(sizes.size());
    const auto launches = plan(sizes);
    check_cover(sizes, launches);
    EXPECT_EQ(launches.size(), (sizes.size() + kMaxTensors - 1) / kMaxTensors);
  }
}

TEST(CudaLaunchPlan, EmptyTensorsOwnNoBlockWhereverTheyAre) {
  const std::vector<std::size_t> sizes = {0, 0, 1, 0, 2 * kChunkElements, 0, 0, 5, 0};
  const auto launches = plan(sizes);
  ASSERT_EQ(launches.size(), 1u);
  const std::vector<std::pair<int, std::uint32_t>> expected = {{2, 0}, {4, 0}, {4, 1}, {7, 0}};
  EXPECT_EQ(launches[0].blocks, expected);
}

TEST(CudaLaunchPlan, ALaunchWithoutRoomStartsANewOne) {
  // A planner told "no room" after 3 tensors (as for a full set of coefficients) still
  // covers everything.
  std::vector<std::size_t> sizes(10, kChunkElements + 1);
  const auto launches = plan(sizes, 3);
  EXPECT_EQ(launches.size(), 4u);
  check_cover(sizes, launches);
}

TEST(CudaLaunchPlan, ArgumentsFitTheKernelParameterLimit) {
  EXPECT_LE(sizeof(StepLaunch), kMaxArgumentBytes);
  EXPECT_LE(sizeof(ScanLaunch), kMaxArgumentBytes);
  EXPECT_EQ(pack_elements(DType::f32) * 4, 16u);
  EXPECT_EQ(pack_elements(DType::bf16) * 2, 16u);
  EXPECT_EQ(pack_elements(DType::f64) * 8, 16u);
}

}  // namespace
}  // namespace rmsprop::cuda::detail
