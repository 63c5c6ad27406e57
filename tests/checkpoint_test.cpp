// Checkpoints: exact round trips, and every kind of damaged or mismatched file refused with a
// clear error and the optimizer left as it was.
#include "rmsprop/checkpoint.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/optimizer.hpp"
#include "test_util.hpp"

namespace rmsprop {
namespace {

namespace fs = std::filesystem;

class Checkpoint : public ::testing::Test {
 public:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rmsprop_ckpt_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path path(const std::string& name) const { return dir_ / name; }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  static void write(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  }
  fs::path dir_;
};

// A small model: two groups, float32 and float64, every state buffer in use.
struct Model {
  std::vector<float> a = {0.5f, -1.0f, 2.0f}, ga = std::vector<float>(3);
  std::vector<double> b = {1.0, -0.25}, gb = std::vector<double>(2);
  std::vector<float> c = {0.1f}, gc = std::vector<float>(1);
  Optimizer opt;
  testing::SplitMix64 rng{99};

  explicit Model(Options first = centered_momentum(),
                 Options second = Options::from_flavor(Flavor::tf1))
      : opt({ParamGroup{{Param::of(a, ga), Param::of(b, gb)}, first},
             ParamGroup{{Param::of(c, gc)}, second}}) {}
  static Options centered_momentum() {
    Options o;
    o.centered = true, o.momentum = 0.9, o.bias_correction = true, o.weight_decay = 0.01;
    return o;
  }
  void steps(int n) {
    for (int t = 0; t < n; ++t) {
      for (auto& g : ga) g = float(rng.uniform());
      for (auto& g : gb) g = rng.uniform();
      for (auto& g : gc) g = float(rng.uniform());
      opt.step();
    }
  }
};

TEST_F(Checkpoint, SaveLoadContinueIsBitwiseTheSameAsNeverStopping) {
  Model straight, stopped;
  straight.steps(25);
  stopped.steps(10);
  stopped.opt.save(path("at10.ckpt"));

  Model resumed;  // a fresh process: same buffers' values, fresh optimizer
  resumed.a = stopped.a, resumed.b = stopped.b, resumed.c = stopped.c;
  resumed.rng = stopped.rng;
  resumed.opt.load(path("at10.ckpt"));
  EXPECT_EQ(resumed.opt.steps_taken(), 10);
  EXPECT_EQ(resumed.opt.step_count(1, 0), 10);
  resumed.steps(15);
  EXPECT_EQ(resumed.a, straight.a);
  EXPECT_EQ(resumed.b, straight.b);
  EXPECT_EQ(resumed.c, straight.c);
}

TEST_F(Checkpoint, LoadRestoresTheSavedOptions) {
  Model saved;
  saved.steps(1);
  saved.opt.save(path("o.ckpt"));
  Model other(Options::sgd(0.5), Options::adagrad());
  other.opt.load(path("o.ckpt"));
  EXPECT_EQ(other.opt.options(0), saved.opt.options(0));
  EXPECT_EQ(other.opt.options(1), saved.opt.options(1));
}

TEST_F(Checkpoint, NoTemporaryFileIsLeftBehind) {
  Model m;
  m.steps(2);
  m.opt.save(path("x.ckpt"));
  m.opt.save(path("x.ckpt"));  // over an existing file
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"x.ckpt"});
}

TEST_F(Checkpoint, WritingWhereItCannotGivesAClearError) {
  Model m;
  try {
    m.opt.save(path("no/such/folder/x.ckpt"));
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/folder/x.ckpt"), std::string::npos) << e.what();
  }
}

// Feeds damaged versions of a good checkpoint, made by `damage(good, k)` for k = 0, 1, ...
// (nothing when it returns false), to a model that has taken other steps: every load must
// fail and leave that model's state byte-identical.
template <class Damage>
void expect_all_refused(Checkpoint& test, Damage damage) {
  Model m;
  m.steps(3);
  m.opt.save(test.path("good.ckpt"));
  const std::string good = test.read(test.path("good.ckpt"));
  Model target;
  target.steps(5);
  target.opt.save(test.path("before.ckpt"));
  std::string bad;
  for (std::size_t k = 0; damage(good, k, bad); ++k) {
    test.write(test.path("bad.ckpt"), bad);
    EXPECT_THROW(target.opt.load(test.path("bad.ckpt")), CheckpointError) << "damage " << k;
  }
  target.opt.save(test.path("after.ckpt"));
  EXPECT_EQ(test.read(test.path("after.ckpt")), test.read(test.path("before.ckpt")));
}

TEST_F(Checkpoint, TruncationAtEveryLengthIsRefusedAndChangesNothing) {
  expect_all_refused(*this, [](const std::string& good, std::size_t n, std::string& bad) {
    bad = good.substr(0, n);
    return n < good.size();
  });
}

TEST_F(Checkpoint, EveryFlippedByteIsRefusedAndChangesNothing) {
  const unsigned char masks[] = {0x01, 0x80, 0xFF};
  expect_all_refused(*this, [&](const std::string& good, std::size_t k, std::string& bad) {
    const std::size_t i = k / 3;
    if (i >= good.size()) return false;
    bad = good;
    bad[i] = char(bad[i] ^ masks[k % 3]);
    return true;
  });
}

// The message `load` gives for this file, "" if it loads.
std::string load_error(Optimizer& opt, const fs::path& p) {
  try {
    opt.load(p);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

// Rewrites the checksum so that a deliberate edit gets past it and reaches the later checks.
std::string with_valid_crc(std::string bytes) {
  const std::uint32_t crc =
      crc32(std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size() - 4));
  std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
  return bytes;
}

TEST_F(Checkpoint, EachKindOfBadFileHasItsOwnMessage) {
  Model m;
  m.steps(2);
  m.opt.save(path("good.ckpt"));
  const std::string good = read(path("good.ckpt"));
  Model target;

  EXPECT_NE(load_error(target.opt, path("missing.ckpt")).find("cannot open checkpoint"),
            std::string::npos);
  write(path("text.ckpt"), std::string(100, 'x'));
  EXPECT_NE(load_error(target.opt, path("text.ckpt")).find("not an rmsprop checkpoint"),
            std::string::npos);

  std::string v3 = good;
  v3[8] = 3;
  write(path("v3.ckpt"), with_valid_crc(v3));
  EXPECT_NE(load_error(target.opt, path("v3.ckpt"))
                .find("unsupported format version 3 (this build reads 1 to 2)"),
            std::string::npos);

  write(path("crc.ckpt"), good.substr(0, good.size() - 5) + char(good[good.size() - 5] ^ 1) +
                              good.substr(good.size() - 4));
  EXPECT_NE(load_error(target.opt, path("crc.ckpt")).find("checksum mismatch"), std::string::npos);

  write(path("short.ckpt"), good.substr(0, good.size() - 9));
  EXPECT_NE(load_error(target.opt, path("short.ckpt")).find("truncated or extended"),
            std::string::npos);
}

TEST_F(Checkpoint, AFileForAnotherModelIsRefused) {
  Model m;
  m.steps(2);
  m.opt.save(path("model.ckpt"));

  std::vector<float> w(4), g(4);
  Optimizer other_size({ParamGroup{{Param::of(w, g)}, Options{}}, ParamGroup{{}, Options{}}});
  EXPECT_NE(load_error(other_size, path("model.ckpt")).find("group 0 has 2 parameters"),
            std::string::npos);

  Optimizer one_group({Param::of(w, g)}, Options{});
  EXPECT_NE(load_error(one_group, path("model.ckpt"))
                .find("it has 2 parameter groups, this optimizer has 1"),
            std::string::npos);

  std::vector<float> a(3), ga(3), c(1), gc(1);
  std::vector<float> b32(2), gb32(2);  // float32 where the file has float64
  Optimizer wrong_dtype({ParamGroup{{Param::of(a, ga), Param::of(b32, gb32)}, Options{}},
                         ParamGroup{{Param::of(c, gc)}, Options{}}});
  const std::string message = load_error(wrong_dtype, path("model.ckpt"));
  EXPECT_NE(message.find("group 0, parameter 1 is 2 values of dtype code 1 in the file but 2 "
                         "values of float32 here"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace rmsprop
