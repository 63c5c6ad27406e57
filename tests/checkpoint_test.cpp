// Checkpoints: exact round trips, and every kind of damaged or mismatched file refused with a
// clear error and the optimizer left as it was.
#include "rmsprop/checkpoint.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint_models.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/optimizer.hpp"
#include "rmsprop/step_plan.hpp"
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
  fuzz::rewrite_crc(std::span(reinterpret_cast<std::byte*>(bytes.data()), bytes.size()));
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

// Files that are not regular files are refused before anything is read from them: a FIFO with
// no writer would block a read, /dev/zero would be read until memory runs out.
TEST_F(Checkpoint, OnlyARegularFileIsRead) {
  Model target;
  const fs::path fifo = path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const auto& [p, kind] :
       std::vector<std::pair<fs::path, std::string>>{{dir_, "a directory"},
                                                     {fifo, "a FIFO"},
                                                     {"/dev/zero", "a character device"},
                                                     {"/dev/urandom", "a character device"}}) {
    const std::string message = load_error(target.opt, p);
    EXPECT_NE(message.find(p.string() + ": it is " + kind + ", not a regular file"),
              std::string::npos)
        << message;
  }
}

TEST_F(Checkpoint, APathWithANulByteIsRefused) {
  Model m;
  m.opt.save(path("good.ckpt"));
  const fs::path with_nul(path("good.ckpt").string() + std::string("\0junk", 5));
  EXPECT_NE(load_error(m.opt, with_nul).find("NUL byte at character"), std::string::npos);
  EXPECT_THROW(m.opt.save(path("new.ckpt").string() + std::string("\0junk", 5)), CheckpointError);
  EXPECT_FALSE(fs::exists(path("new.ckpt")));
}

// save() renames over its target: only a regular file (or nothing) may be there.
TEST_F(Checkpoint, SaveReplacesOnlyARegularFile) {
  Model m;
  const fs::path fifo = path("fifo"), folder = path("folder"), link = path("link");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_directory(folder);
  write(path("target"), "x");
  fs::create_symlink(path("target"), link);
  for (const auto& [p, kind] : std::vector<std::pair<fs::path, std::string>>{
           {fifo, "a FIFO"}, {folder, "a directory"}, {link, "a symbolic link"}}) {
    try {
      m.opt.save(p);
      ADD_FAILURE() << p;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find("it is " + kind +
                                           ", not a regular file; refusing to replace it"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_TRUE(fs::is_directory(folder));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(read(path("target")), "x");
  m.opt.save(path("target"));
  EXPECT_GT(fs::file_size(path("target")), 1u);
}

// The byte offset of parameter 0's step count in a one-group file (after the options).
std::size_t first_step_offset(const std::string& file) {
  std::size_t at = 24 + 8 + 4;  // header, steps_taken, group count
  std::uint32_t pairs;
  std::memcpy(&pairs, file.data() + at, 4);
  at += 4;
  for (std::uint32_t k = 0; k < 2 * pairs; ++k) {
    std::uint32_t n;
    std::memcpy(&n, file.data() + at, 4);
    at += 4 + n;
  }
  return at + 4 + 1 + 8;  // parameter count, dtype, element count
}

// Every count the writer can produce, the loader takes; nothing above: a count of INT64_MAX
// loaded would overflow at the next step and make the next save unloadable.
TEST_F(Checkpoint, StepCountsArePastTwoToThe53Refused) {
  std::vector<float> w = {1, 2, 3}, g = {0.5f, -1, 2};
  Optimizer opt({Param::of(w, g)}, Options{});
  opt.step();
  opt.save(path("good.ckpt"));
  const std::string good = read(path("good.ckpt"));
  const std::size_t step_at = first_step_offset(good);
  std::int64_t one;
  std::memcpy(&one, good.data() + step_at, 8);
  ASSERT_EQ(one, 1);
  auto with = [&](std::size_t at, std::int64_t value) {
    std::string bytes = good;
    std::memcpy(bytes.data() + at, &value, 8);
    return with_valid_crc(bytes);
  };
  const std::int64_t big = std::numeric_limits<std::int64_t>::max();
  write(path("a.ckpt"), with(24, big));
  EXPECT_NE(load_error(opt, path("a.ckpt"))
                .find("steps_taken is a step count of 9223372036854775807, past the most"),
            std::string::npos);
  write(path("b.ckpt"), with(step_at, kMaxStepCount + 1));
  EXPECT_NE(load_error(opt, path("b.ckpt"))
                .find("group 0, parameter 0 has a step count of 9007199254740993"),
            std::string::npos);
  write(path("c.ckpt"), with(step_at, -1));
  EXPECT_NE(load_error(opt, path("c.ckpt")).find("a negative step count -1"), std::string::npos);
  EXPECT_EQ(opt.step_count(0, 0), 1);

  // the largest count loads; the step past it is refused and changes nothing
  write(path("max.ckpt"), with(step_at, kMaxStepCount));
  opt.load(path("max.ckpt"));
  const std::vector<float> before = w;
  try {
    opt.step();
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("has taken 9007199254740992 steps, the most"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(w, before);
  EXPECT_EQ(opt.step_count(0, 0), kMaxStepCount);
  opt.save(path("again.ckpt"));  // what it holds, it writes, and reads back
  EXPECT_EQ(load_error(opt, path("again.ckpt")), "");
}

TEST_F(Checkpoint, ReservedHeaderBytesMustBeZero) {
  Model m;
  m.opt.save(path("good.ckpt"));
  std::string bytes = read(path("good.ckpt"));
  bytes[12] = 1;
  write(path("r.ckpt"), with_valid_crc(bytes));
  EXPECT_NE(load_error(m.opt, path("r.ckpt")).find("reserved header bytes 12-15 are 1, not 0"),
            std::string::npos);
}

// What load accepts, save writes back byte for byte: options in another spelling are refused.
TEST_F(Checkpoint, OptionsNotAsSaveWritesThemAreRefused) {
  Model m;
  m.steps(2);
  m.opt.save(path("good.ckpt"));
  const std::string good = read(path("good.ckpt"));
  const std::size_t eps = good.find("1e-08");
  ASSERT_NE(eps, std::string::npos);
  std::string bytes = good;
  bytes[eps + 1] = 'E';  // 1E-08: the same number, not the text save writes
  write(path("e.ckpt"), with_valid_crc(bytes));
  EXPECT_NE(load_error(m.opt, path("e.ckpt"))
                .find("is eps=1E-08 where this library writes eps=1e-08 (not a file save() wrote)"),
            std::string::npos)
      << load_error(m.opt, path("e.ckpt"));
  // the good file: loaded, saved, identical
  m.opt.load(path("good.ckpt"));
  m.opt.save(path("again.ckpt"));
  EXPECT_EQ(read(path("again.ckpt")), good);
}

TEST_F(Checkpoint, InMemoryBytesAreTheFileAndLoadTheSame) {
  Model m;
  m.steps(3);
  m.opt.save(path("f.ckpt"));
  const std::vector<std::byte> bytes = m.opt.save_to_memory();
  const std::string file = read(path("f.ckpt"));
  ASSERT_EQ(bytes.size(), file.size());
  EXPECT_EQ(std::memcmp(bytes.data(), file.data(), file.size()), 0);
  Model other;
  other.opt.load_from_memory(bytes);
  EXPECT_EQ(other.opt.save_to_memory(), bytes);
  std::vector<std::byte> damaged = bytes;
  damaged[30] ^= std::byte{1};
  try {
    other.opt.load_from_memory(damaged, "my-bytes");
    ADD_FAILURE() << "a damaged checkpoint loaded";
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot load checkpoint my-bytes: checksum mismatch (the file is corrupted)");
  }
}

// The fuzzer's rules (fuzz/checkpoint_models.hpp: load_problem) over its seeds and every
// single-bit flip before their checksum, the checksum made right again so that each flip
// reaches the parser: refused with a reason and nothing changed, or saved back byte for byte.
TEST(CheckpointCorpus, EveryCrcFixedBitFlipOfEverySeedIsRefusedWithAReasonOrRoundTrips) {
  for (const auto& entry : fuzz::kModels) {
    std::vector<std::byte> seed;
    if (std::string_view(entry.name) == "version_one") {  // its seed is the recorded file
      const std::string file =
          Checkpoint::read(std::string(RMSPROP_RECORDED_DIR) + "/checkpoint-v1.ckpt");
      ASSERT_FALSE(file.empty());
      seed.resize(file.size());
      std::memcpy(seed.data(), file.data(), file.size());
    } else {
      fuzz::Model source;
      entry.build(source);
      for (int step = 0; step < 3; ++step) source.fill_gradients(step), source.opt().step();
      seed = source.opt().save_to_memory();
    }
    fuzz::Model target;
    entry.build(target);
    ASSERT_EQ(fuzz::load_problem(target, seed), "") << entry.name;
    int accepted = 0, refused = 0;
    for (std::size_t at = 0; at + 4 < seed.size(); ++at) {
      for (int bit = 0; bit < 8; ++bit) {
        std::vector<std::byte> flipped = seed;
        flipped[at] ^= std::byte(1u << bit);
        fuzz::rewrite_crc(flipped);
        fuzz::Model fresh;
        entry.build(fresh);
        const std::vector<std::byte> before = fresh.opt().save_to_memory();
        ASSERT_EQ(fuzz::load_problem(fresh, flipped), "")
            << entry.name << ", byte " << at << ", bit " << bit;
        (fresh.opt().save_to_memory() == before ? refused : accepted) += 1;
      }
    }
    // both outcomes occur: flips in the buffers' values load, flips in the structure do not
    EXPECT_GT(accepted, 0) << entry.name;
    EXPECT_GT(refused, 0) << entry.name;
  }
}

}  // namespace
}  // namespace rmsprop
