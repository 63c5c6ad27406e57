// rmsprop::mpi under mpirun (CTest: -np 2 and -np 4 on loopback). Every rank runs every test
// in the same order, so the collectives inside them match up.
#include "rmsprop/mpi.hpp"

#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/kernel.hpp"

namespace rmsprop::mpi {
namespace {

Communicator world() {
  return Communicator::world();
}

// Linear least squares on a fixed global batch: the mean gradient of (w·x − y)²/2 over a set
// of rows. Rank r of N takes rows [r·B/N, (r+1)·B/N): the mean of the N rank means is the
// global mean.
template <class T>
struct Problem {
  std::size_t dim, rows;
  std::vector<double> x, y;

  Problem(std::size_t dim_, std::size_t rows_, std::vector<double> x_, std::vector<double> y_)
      : dim(dim_), rows(rows_), x(std::move(x_)), y(std::move(y_)) {}
  Problem(std::size_t dim_, std::size_t rows_) : dim(dim_), rows(rows_), x(dim_ * rows_), y(rows_) {
    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal;
    for (double& v : x) v = normal(rng);
    for (double& v : y) v = normal(rng);
  }

  // The gradient, summed in double then rounded to T, and |terms| summed for the bound.
  void gradient(const std::vector<T>& w, std::size_t first, std::size_t count, std::vector<T>& g,
                std::vector<double>* magnitude = nullptr) const {
    std::vector<double> sum(dim, 0.0), mag(dim, 0.0);
    for (std::size_t r = first; r < first + count; ++r) {
      double residual = -y[r];
      for (std::size_t j = 0; j < dim; ++j) residual += double(w[j]) * x[r * dim + j];
      for (std::size_t j = 0; j < dim; ++j) {
        sum[j] += residual * x[r * dim + j];
        mag[j] += std::abs(residual * x[r * dim + j]);
      }
    }
    for (std::size_t j = 0; j < dim; ++j) g[j] = T(sum[j] / double(count));
    if (magnitude) {
      for (std::size_t j = 0; j < dim; ++j) (*magnitude)[j] = mag[j] / double(count);
    }
  }
};

Options flavor(const char* name) {
  Options o;
  o.lr = 1e-2;
  if (std::string(name) == "centered_momentum") o.centered = true, o.momentum = 0.9;
  if (std::string(name) == "bias_corrected") o.bias_correction = true;
  return o;
}

TEST(DataParallel, RanksOnTheGlobalBatchMatchOneProcessInFloat64) {
  const Communicator comm = world();
  const std::size_t rows = 48;  // divisible by 2 and 4
  const Problem<double> problem(37, rows);
  for (const char* name : {"plain", "centered_momentum", "bias_corrected"}) {
    std::vector<double> w(problem.dim, 0.0), g(problem.dim), w_ref(w), g_ref(g);
    DataParallel dp({{{Param::of(std::span(w), std::span(g))}, flavor(name)}}, comm);
    Optimizer reference({Param::of(std::span(w_ref), std::span(g_ref))}, flavor(name));
    const std::size_t share = rows / std::size_t(comm.size());
    for (int step = 0; step < 100; ++step) {
      problem.gradient(w, share * std::size_t(comm.rank()), share, g);
      problem.gradient(w_ref, 0, rows, g_ref);
      dp.step();
      reference.step();
      for (std::size_t j = 0; j < w.size(); ++j) {
        // both sides round the same mean differently (N partial means, then their mean):
        // a few ulps of the gradient, which the step passes on at most scaled by lr / √v
        ASSERT_NEAR(w[j], w_ref[j], 1e-12 * std::max(1.0, std::abs(w_ref[j])))
            << name << " step " << step << " element " << j;
      }
    }
  }
}

TEST(DataParallel, Float32AverageIsWithinTheSummationBound) {
  const Communicator comm = world();
  const std::size_t rows = 48;
  const Problem<float> problem(29, rows);
  std::vector<float> w(problem.dim, 0.25f), g(problem.dim);
  DataParallel dp({{{Param::of(std::span(w), std::span(g))}, flavor("plain")}}, comm,
                  /*bucket_bytes=*/64);  // several buckets, one parameter across them
  const std::size_t share = rows / std::size_t(comm.size());
  problem.gradient(w, share * std::size_t(comm.rank()), share, g);
  // The exact mean (double) and the mean of |terms|. Each rank's mean is rounded once to
  // float32 (relative u = 2^-24), the N means are summed in float32 (N − 1 additions) and
  // divided by N once: |error| ≤ γ_N · Σ_r|mean_r| / N + u·|mean| with γ_k = k·u/(1 − k·u)
  // (Higham, Accuracy and Stability of Numerical Algorithms, 3.1), and Σ_r|mean_r| ≤
  // N · (Σ|terms| / B).
  std::vector<double> exact(problem.dim), mean_magnitude(problem.dim);
  {
    Problem<double> same = {problem.dim, problem.rows, problem.x, problem.y};
    std::vector<double> wd(w.begin(), w.end());
    same.gradient(wd, 0, rows, exact, &mean_magnitude);
  }
  dp.step();
  const double u = std::ldexp(1.0, -24), n = double(comm.size());
  const double gamma = n * u / (1 - n * u);
  for (std::size_t j = 0; j < problem.dim; ++j) {
    const double bound = gamma * mean_magnitude[j] + 2 * u * std::abs(exact[j]);
    EXPECT_NEAR(double(g[j]), exact[j], bound) << "element " << j;
  }
  // and every rank holds the same averaged gradient and parameters, bit for bit
  std::vector<float> first(g);
  MPI_Bcast(first.data(), int(first.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_EQ(0, std::memcmp(first.data(), g.data(), g.size() * sizeof(float)));
}

// Tensors whose shard edges fall inside them, one under state8_min_size.
struct Model {
  std::vector<std::vector<float>> w, g;
  explicit Model(const std::vector<std::size_t>& sizes) {
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1, 1);
    for (std::size_t n : sizes) {
      w.emplace_back(n), g.emplace_back(n);
      for (float& v : w.back()) v = u(rng);
    }
  }
  std::vector<Param> params() {
    std::vector<Param> out;
    for (std::size_t t = 0; t < w.size(); ++t)
      out.push_back(Param::of(std::span(w[t]), std::span(g[t])));
    return out;
  }
  // This rank's gradient at step `step`: different on every rank.
  void fill(int rank, int step) {
    for (std::size_t t = 0; t < w.size(); ++t) {
      for (std::size_t i = 0; i < w[t].size(); ++i) {
        g[t][i] =
            std::sin(float(i + 1) * 0.001f * float(t + 1) + float(rank) + 0.1f * float(step)) +
            0.01f * w[t][i];
      }
    }
  }
};

TEST(ShardedOptimizer, EqualsDataParallelBitwiseAndHoldsItsShareOfTheState) {
  const Communicator comm = world();
  const std::vector<std::size_t> sizes = {50000, 30001, 7, 20000, 3000};
  for (const char* name : {"plain", "centered_momentum", "bias_corrected", "int8"}) {
    Options o = flavor(std::string(name) == "int8" ? "centered_momentum" : name);
    if (std::string(name) == "int8") o.state_dtype = StateDType::int8;  // 3000 < 4096: float32
    Model a(sizes), b(sizes);
    DataParallel dp({{a.params(), o}}, comm);
    ShardedOptimizer sharded({{b.params(), o}}, comm);
    for (int step = 0; step < 20; ++step) {
      a.fill(comm.rank(), step), b.fill(comm.rank(), step);
      dp.step();
      sharded.step();
      for (std::size_t t = 0; t < sizes.size(); ++t) {
        ASSERT_EQ(0, std::memcmp(a.w[t].data(), b.w[t].data(), sizes[t] * sizeof(float)))
            << name << " step " << step << " tensor " << t;
      }
    }
    // this rank's state: its shard, 1/N of the values give or take a chunk
    std::size_t held = 0;
    const Optimizer& shard = sharded.shard_optimizer();
    for (std::size_t gi = 0; gi < shard.num_groups(); ++gi) {
      for (std::size_t i = 0; i < shard.num_params(gi); ++i) {
        held += shard.state_values(gi, i, "square_avg").size();
      }
    }
    const double share = double(sharded.total_values()) / comm.size();
    EXPECT_EQ(held, sharded.shard_end() - sharded.shard_begin()) << name;
    EXPECT_LE(std::abs(double(held) - share), double(kChunkElements)) << name;
  }
}

// The averager alone, with fresh gradient buffers at every call (as libtorch may allocate
// them), gives DataParallel's averaged gradients.
TEST(GradientAverager, AveragesAsDataParallelWithBuffersThatChangeBetweenCalls) {
  const Communicator comm = world();
  const std::vector<std::size_t> sizes = {40000, 7, 9999};
  Model a(sizes);
  DataParallel dp({{a.params(), flavor("plain")}}, comm, /*bucket_bytes=*/4096);
  GradientAverager averager(comm, /*bucket_bytes=*/4096);
  for (int step = 0; step < 3; ++step) {
    Model b(sizes);  // new buffers
    b.w = a.w;
    a.fill(comm.rank(), step), b.fill(comm.rank(), step);
    dp.step();  // averages a.g in place, then steps a.w
    averager.average(b.params());
    for (std::size_t t = 0; t < sizes.size(); ++t) {
      ASSERT_EQ(0, std::memcmp(a.g[t].data(), b.g[t].data(), sizes[t] * sizeof(float)));
    }
    EXPECT_EQ(averager.last_traffic().gradient_bytes_sent, dp.last_traffic().gradient_bytes_sent);
  }
}

TEST(ShardedOptimizer, SameWorldSizeSameBitsRunAfterRun) {
  const Communicator comm = world();
  const std::vector<std::size_t> sizes = {40000, 9999};
  Model a(sizes), b(sizes);
  ShardedOptimizer first({{a.params(), flavor("centered_momentum")}}, comm);
  ShardedOptimizer second({{b.params(), flavor("centered_momentum")}}, comm);
  for (int step = 0; step < 10; ++step) {
    a.fill(comm.rank(), step), b.fill(comm.rank(), step);
    first.step(), second.step();
  }
  for (std::size_t t = 0; t < sizes.size(); ++t) {
    EXPECT_EQ(0, std::memcmp(a.w[t].data(), b.w[t].data(), sizes[t] * sizeof(float)));
  }
}

TEST(NonFinite, OneRanksNaNMakesEveryRankSkipOrThrow) {
  const Communicator comm = world();
  const std::vector<std::size_t> sizes = {40000};
  for (NonFinitePolicy policy : {NonFinitePolicy::skip, NonFinitePolicy::error}) {
    Options o = flavor("plain");
    o.non_finite = policy;
    Model a(sizes), b(sizes);
    DataParallel dp({{a.params(), o}}, comm);
    ShardedOptimizer sharded({{b.params(), o}}, comm);
    a.fill(comm.rank(), 0), b.fill(comm.rank(), 0);
    if (comm.rank() == comm.size() - 1) {  // the last rank's NaN, in rank 0's shard
      a.g[0][5] = b.g[0][5] = std::numeric_limits<float>::quiet_NaN();
    }
    const std::vector<float> before = a.w[0];
    if (policy == NonFinitePolicy::skip) {
      EXPECT_FALSE(dp.step().applied);
      EXPECT_FALSE(sharded.step().applied);
    } else {
      EXPECT_THROW(dp.step(), NonFiniteError);
      EXPECT_THROW(sharded.step(), NonFiniteError);
    }
    EXPECT_EQ(a.w[0], before);
    EXPECT_EQ(b.w[0], before);
  }
}

TEST(Layout, DifferentShapesOnTheRanksAreRefusedOnEveryRank) {
  const Communicator comm = world();
  if (comm.size() == 1) GTEST_SKIP() << "one rank: nothing can differ";
  Model m({comm.rank() == 0 ? std::size_t(10) : std::size_t(11)});
  EXPECT_THROW(DataParallel({{m.params(), flavor("plain")}}, comm), InvalidArgument);
  EXPECT_THROW(ShardedOptimizer({{m.params(), flavor("plain")}}, comm), InvalidArgument);
}

TEST(Layout, OtherGradientDTypesAreRefusedByName) {
  std::vector<bfloat16> w(4), g(4);
  try {
    DataParallel({{{Param::of(std::span(w), std::span(g))}, flavor("plain")}}, world());
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("group 0 parameter 0 is bfloat16"), std::string::npos)
        << e.what();
  }
}

// NOTE: [dyadic gradients] Micro-batch gradients that are multiples of 2^-6 in [-16, 16]: the
// sum of up to 64 of them and its halvings are exact in float32, so a rank's mean over its
// micro-batches and the ranks' average of those means are the global mean, exactly, at any
// power-of-two world size. Runs at different N are then comparable bit for bit.
void fill_dyadic(Model& m, int first, int count, int step) {
  for (std::size_t t = 0; t < m.g.size(); ++t) {
    for (std::size_t i = 0; i < m.g[t].size(); ++i) {
      float sum = 0;
      for (int micro = first; micro < first + count; ++micro) {
        const std::size_t h =
            i * 2654435761u + t * 97 + std::size_t(micro) * 131 + std::size_t(step) * 1009;
        sum += float(int(h % 2049) - 1024) / 64.0f;
      }
      m.g[t][i] = sum / float(count);
    }
  }
}

// A file name all ranks of `comm` agree on (rank 0's process id in it), removed at the end.
struct SharedFile {
  std::filesystem::path path;
  explicit SharedFile(const char* name) {
    long long pid = ::getpid();
    MPI_Bcast(&pid, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    path = std::filesystem::temp_directory_path() /
           ("rmsprop-mpi-" + std::to_string(pid) + "-" + name + ".ckpt");
  }
  ~SharedFile() {
    MPI_Barrier(MPI_COMM_WORLD);
    std::error_code ignored;
    if (Communicator::world().rank() == 0) std::filesystem::remove(path, ignored);
  }
};

bool same_bits(const Model& a, const std::vector<std::vector<float>>& w) {
  for (std::size_t t = 0; t < w.size(); ++t) {
    if (std::memcmp(a.w[t].data(), w[t].data(), w[t].size() * sizeof(float)) != 0) return false;
  }
  return true;
}

// Saved at N ranks after 5 steps, resumed at N/2 and at 1 rank (sharded, data parallel, and a
// plain Optimizer in one process): the same 5 further steps give the same bits as never
// stopping (NOTE: [dyadic gradients]).
std::vector<std::byte> bytes_of(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> chars{std::istreambuf_iterator<char>(in), {}};
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

TEST(Checkpoint, SavedAtNRanksResumesAtFewerOnTheSameTrajectory) {
  const Communicator comm = world();
  const int n = comm.size();
  if ((n & (n - 1)) != 0) GTEST_SKIP() << "the exact comparison needs a power-of-two world size";
  const std::vector<std::size_t> sizes = {50000, 30001, 7, 20000, 3000};
  for (const char* name : {"centered_momentum_bias", "int8"}) {
    SCOPED_TRACE(name);
    Options o = flavor("centered_momentum");
    o.bias_correction = true;
    if (std::string(name) == "int8") o.state_dtype = StateDType::int8;  // 3000, 7: float32
    const SharedFile file(name);
    Model run(sizes);
    ShardedOptimizer sharded({{run.params(), o}}, comm);
    for (int step = 0; step < 5; ++step) fill_dyadic(run, comm.rank(), 1, step), sharded.step();
    sharded.save(file.path);
    // in memory: the file's bytes on rank 0, nothing elsewhere
    const std::vector<std::byte> in_memory = sharded.save_to_memory();
    if (comm.rank() == 0) {
      EXPECT_TRUE(in_memory == bytes_of(file.path));
    } else {
      EXPECT_TRUE(in_memory.empty());
    }
    const std::vector<std::vector<float>> at_save = run.w;
    for (int step = 5; step < 10; ++step) fill_dyadic(run, comm.rank(), 1, step), sharded.step();
    const std::vector<std::vector<float>> never_stopped = run.w;

    std::vector<int> fewer_ranks = {1};
    if (n >= 4) fewer_ranks.insert(fewer_ranks.begin(), n / 2);
    for (int m : fewer_ranks) {
      MPI_Comm sub;
      MPI_Comm_split(MPI_COMM_WORLD, comm.rank() < m ? 0 : MPI_UNDEFINED, comm.rank(), &sub);
      if (comm.rank() < m) {
        const Communicator fewer = Communicator::of(&sub);
        const int share = n / m;
        Model a(sizes), b(sizes), c(sizes);
        a.w = b.w = c.w = at_save;
        Options other = o;
        other.lr = 0.5;  // the file's options win, as in Optimizer::load
        ShardedOptimizer resumed({{a.params(), other}}, fewer);
        DataParallel parallel({{b.params(), other}}, fewer);
        ShardedOptimizer from_memory({{c.params(), other}}, fewer);
        resumed.load(file.path);
        parallel.load(file.path);
        from_memory.load_from_memory(bytes_of(file.path));
        EXPECT_EQ(resumed.steps_taken(), 5);
        for (int step = 5; step < 10; ++step) {
          fill_dyadic(a, fewer.rank() * share, share, step);
          fill_dyadic(b, fewer.rank() * share, share, step);
          fill_dyadic(c, fewer.rank() * share, share, step);
          resumed.step(), parallel.step(), from_memory.step();
        }
        EXPECT_TRUE(same_bits(a, never_stopped)) << "sharded, " << m << " of " << n << " ranks";
        EXPECT_TRUE(same_bits(b, never_stopped)) << "data parallel, " << m << " of " << n;
        EXPECT_TRUE(same_bits(c, never_stopped)) << "from memory, " << m << " of " << n;
        MPI_Comm_free(&sub);
      }
      MPI_Barrier(MPI_COMM_WORLD);
    }
    if (comm.rank() == 0) {  // one process, no MPI in the step
      Model one(sizes);
      one.w = at_save;
      Optimizer plain({{one.params(), o}});
      plain.load(file.path);
      for (int step = 5; step < 10; ++step) fill_dyadic(one, 0, n, step), plain.step();
      EXPECT_TRUE(same_bits(one, never_stopped)) << "Optimizer, one process";
    }
  }
}

// A file one rank cannot read: every rank throws naming that rank, and every rank's state is
// as before (the next steps equal those of a twin that never tried).
TEST(Checkpoint, AFileOneRankCannotLoadFailsOnEveryRankAndChangesNothing) {
  const Communicator comm = world();
  const std::vector<std::size_t> sizes = {40000, 9999};
  const SharedFile file("refused");
  Model a(sizes), twin(sizes);
  ShardedOptimizer sharded({{a.params(), flavor("centered_momentum")}}, comm);
  ShardedOptimizer untouched({{twin.params(), flavor("centered_momentum")}}, comm);
  for (int step = 0; step < 3; ++step) {
    a.fill(comm.rank(), step), twin.fill(comm.rank(), step);
    sharded.step(), untouched.step();
  }
  sharded.save(file.path);
  for (int step = 3; step < 5; ++step) {
    a.fill(comm.rank(), step), twin.fill(comm.rank(), step);
    sharded.step(), untouched.step();
  }
  const int last = comm.size() - 1;
  const auto path = comm.rank() == last ? file.path.string() + ".missing" : file.path.string();
  const std::string expected = "failed on rank " + std::to_string(last);
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (attempt == 0) sharded.load(path);
      if (attempt == 1) {
        Model other({123});  // another model's checkpoint: refused by every rank
        if (comm.rank() == 0) {
          Optimizer(other.params(), flavor("plain")).save(file.path.string() + ".other");
        }
        MPI_Barrier(MPI_COMM_WORLD);
        sharded.load(file.path.string() + ".other");
      }
      ADD_FAILURE() << "loaded";
    } catch (const CheckpointError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(attempt == 0 ? expected : "failed on rank 0"), std::string::npos) << what;
      if (attempt == 0 && comm.rank() == last) {
        EXPECT_NE(what.find(".missing"), std::string::npos) << what;
      }
    }
  }
  if (comm.rank() == 0) std::filesystem::remove(file.path.string() + ".other");
  EXPECT_EQ(sharded.steps_taken(), 5);
  for (int step = 5; step < 8; ++step) {
    a.fill(comm.rank(), step), twin.fill(comm.rank(), step);
    sharded.step(), untouched.step();
  }
  EXPECT_TRUE(same_bits(a, twin.w));
  // and a save rank 0 cannot write is refused on every rank
  EXPECT_THROW(sharded.save("/proc/rmsprop-cannot-write-here.ckpt"), CheckpointError);
}

}  // namespace
}  // namespace rmsprop::mpi

int main(int argc, char** argv) {
  rmsprop::mpi::Session session(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (rmsprop::mpi::Communicator::world().rank() != 0) {  // one rank prints
    delete ::testing::UnitTest::GetInstance()->listeners().Release(
        ::testing::UnitTest::GetInstance()->listeners().default_result_printer());
  }
  return RUN_ALL_TESTS();
}
