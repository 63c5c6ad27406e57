// Writes the checkpoint fuzzer's seed corpus and dictionary, from the library itself (so they
// follow the format and the option table as they change):
//   make_checkpoint_corpus SEED_DIR DICTIONARY VERSION_ONE_FILE
// Seeds: each model of checkpoint_models.hpp saved before any step and after three steps, and
// the recorded version-1 file. Dictionary: the magic, every option name and every value it
// can be written with (choices, true/false, the models' numbers), bare and length-prefixed as
// the format stores strings.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "checkpoint_models.hpp"
#include "rmsprop/checkpoint.hpp"
#include "rmsprop/options.hpp"

namespace {

namespace fs = std::filesystem;
using namespace rmsprop;

// One dictionary line: "..." with every byte outside printable ASCII (and \ and ") escaped.
std::string entry(const std::string& bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"') {
      out += char(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    }
  }
  return out + "\"";
}

std::string length_prefixed(const std::string& s) {
  const std::uint32_t n = std::uint32_t(s.size());
  return std::string(reinterpret_cast<const char*>(&n), 4) + s;
}

void write(const fs::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s SEED_DIR DICTIONARY VERSION_ONE_FILE\n", argv[0]);
    return 2;
  }
  const fs::path seeds = argv[1];
  fs::create_directories(seeds);
  std::set<std::string> words = {std::string(kOptimizerCheckpoint.magic.data(), 8)};
  for (const auto& entry : fuzz::kModels) {
    fuzz::Model model;
    entry.build(model);
    Optimizer& opt = model.opt();
    write(seeds / (std::string(entry.name) + "-0.ckpt"), opt.save_to_memory());
    for (int step = 0; step < 3; ++step) {
      model.fill_gradients(step);
      opt.step();
    }
    write(seeds / (std::string(entry.name) + "-3.ckpt"), opt.save_to_memory());
    for (std::size_t g = 0; g < opt.num_groups(); ++g) {
      for (const auto& [name, value] : opt.options(g).to_pairs()) words.insert(value);
    }
  }
  fs::copy_file(argv[3], seeds / "version_one-recorded.ckpt", fs::copy_options::overwrite_existing);
  for (const OptionInfo& info : option_table()) {
    words.insert(std::string(info.name));
    for (std::string_view choice : info.choices) words.insert(std::string(choice));
  }
  words.insert("true"), words.insert("false"), words.insert("");
  std::ofstream dict(argv[2]);
  for (const std::string& w : words) {
    if (!w.empty()) dict << entry(w) << "\n";
    dict << entry(length_prefixed(w)) << "\n";
  }
  return dict.good() ? 0 : 1;
}
