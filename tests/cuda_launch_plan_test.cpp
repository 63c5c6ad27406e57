// The CUDA backend's launch planner (plain C++, tested on any machine): every chunk of every
// tensor goes to exactly one block, launches respect their limits, a tensor split across
// launches keeps its slot in each, empty tensors still get a slot (capturable steps count them).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "cuda/launch.hpp"

namespace rmsprop::cuda::detail {
namespace {

struct Launch {
  std::vector<std::size_t> slots;                              // tensor index per slot
  std::vector<std::pair<std::uint8_t, std::uint32_t>> blocks;  // (slot, chunk)
};

std::vector<Launch> plan(const std::vector<std::size_t>& sizes, int max_slots = kMaxTensors) {
  std::vector<Launch> launches(1);
  std::uint8_t block_tensor[kMaxBlocks];
  std::uint32_t block_chunk[kMaxBlocks];
  auto add = [&](std::size_t k) -> int {
    if (int(launches.back().slots.size()) == max_slots) return -1;
    launches.back().slots.push_back(k);
    return int(launches.back().slots.size()) - 1;
  };
  auto flush = [&](int blocks) {
    for (int b = 0; b < blocks; ++b)
      launches.back().blocks.push_back({block_tensor[b], block_chunk[b]});
    launches.emplace_back();
  };
  plan_launches(
      sizes.size(), [&](std::size_t k) { return sizes[k]; }, add, flush, block_tensor, block_chunk);
  launches.pop_back();  // the empty one started by the last flush
  return launches;
}

void check_cover(const std::vector<std::size_t>& sizes, const std::vector<Launch>& launches) {
  std::map<std::pair<std::size_t, std::size_t>, int> seen;  // (tensor, chunk) -> times
  std::set<std::size_t> slotted;
  for (const Launch& l : launches) {
    EXPECT_LE(l.blocks.size(), std::size_t(kMaxBlocks));
    EXPECT_LE(l.slots.size(), std::size_t(kMaxTensors));
    EXPECT_FALSE(l.slots.empty());
    for (std::size_t k : l.slots) slotted.insert(k);
    for (auto [slot, chunk] : l.blocks) {
      ASSERT_LT(slot, l.slots.size());
      ++seen[{l.slots[slot], chunk}];
    }
  }
  std::size_t expected_blocks = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    EXPECT_TRUE(slotted.count(k)) << "tensor " << k << " never had a slot";
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
      {kChunkElements * kMaxBlocks},         // exactly one full launch
      {kChunkElements * kMaxBlocks + 1, 3},  // a tensor split across launches
      {kChunkElements * 1000 + 17},          // a tensor over four launches
      std::vector<std::size_t>(100, 1000),   // more tensors than one launch holds
      std::vector<std::size_t>(300, 0),
  };
  for (const auto& sizes : cases) {
    SCOPED_TRACE(sizes.size());
    check_cover(sizes, plan(sizes));
  }
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
  EXPECT_LE(sizeof(StepLaunch), 4096u);
  EXPECT_LE(sizeof(ScanLaunch), 4096u);
  EXPECT_EQ(pack_elements(DType::f32) * 4, 16u);
  EXPECT_EQ(pack_elements(DType::bf16) * 2, 16u);
  EXPECT_EQ(pack_elements(DType::f64) * 8, 16u);
}

}  // namespace
}  // namespace rmsprop::cuda::detail
