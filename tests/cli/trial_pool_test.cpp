// TrialPool, the trial processes of `rmsprop tune`, with shell scripts for trials.
#include "trial_pool.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

namespace rmsprop::cli {
namespace {

class TrialPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("trial-pool-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A trial running `script` in /bin/sh; its reports go to descriptor 3.
  void start(TrialPool& pool, std::size_t trial, const std::string& script) {
    pool.start(trial, {"/bin/sh", "-c", script}, dir_ / ("trial-" + std::to_string(trial)));
  }

  std::filesystem::path dir_;
};

// Two trials that end in the same poll: the second end is queued, and the pool must still
// count that trial as running until next() returns it (else tune starts one trial too many).
TEST_F(TrialPoolTest, ATrialCountsAsRunningUntilItsEndIsReturned) {
  TrialPool pool;
  start(pool, 0, "exit 0");
  start(pool, 1, "exit 3");
  EXPECT_EQ(pool.running(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both have ended by now
  std::map<std::size_t, int> codes;
  for (std::size_t left = 2; left-- > 0;) {
    const TrialPool::Event e = pool.next();
    ASSERT_TRUE(e.ended);
    codes[e.trial] = e.exit_code;
    EXPECT_EQ(pool.running(), left);
  }
  EXPECT_EQ(codes, (std::map<std::size_t, int>{{0, 0}, {1, 3}}));
  EXPECT_THROW(pool.next(), std::logic_error);
}

TEST_F(TrialPoolTest, ReportsArriveBeforeTheEndAndBadLinesAreSkipped) {
  TrialPool pool;
  start(pool, 7,
        "echo '{\"epoch\": 1, \"val_loss\": 0.5}' >&3; echo 'not json' >&3; "
        "printf '{\"epoch\": 2, ' >&3; sleep 0.1; echo '\"val_loss\": 0.25}' >&3");
  TrialPool::Event e = pool.next();
  ASSERT_FALSE(e.ended);
  EXPECT_EQ(e.trial, 7u);
  EXPECT_EQ(e.epoch["epoch"], 1);
  e = pool.next();  // a line written in two pieces arrives whole
  ASSERT_FALSE(e.ended);
  EXPECT_EQ(e.epoch["val_loss"], 0.25);
  EXPECT_EQ(pool.running(), 1u);
  e = pool.next();
  EXPECT_TRUE(e.ended);
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_EQ(pool.running(), 0u);
}

TEST_F(TrialPoolTest, AStoppedTrialEndsWithSigterm) {
  TrialPool pool;
  start(pool, 0, "exec sleep 60");
  pool.stop(0);
  const TrialPool::Event e = pool.next();
  EXPECT_TRUE(e.ended);
  EXPECT_EQ(e.exit_code, 128 + 15);
}

TEST(TrialSlots, FlagsWinElseOneTrialPerCoreSharingTheCores) {
  EXPECT_EQ(trial_slots(3, 5, 10).jobs, 3);
  EXPECT_EQ(trial_slots(3, 5, 10).threads, 5);
  const TrialSlots one = trial_slots(0, 0, 1);  // never more jobs than trials
  EXPECT_EQ(one.jobs, 1);
  EXPECT_EQ(one.threads, int(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace
}  // namespace rmsprop::cli
