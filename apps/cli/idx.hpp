// Reading IDX files (the MNIST family's format), gzip-compressed or not.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace rmsprop::cli {

// An IDX array of unsigned bytes: its dimensions and row-major values.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> values;
};

// Reads `path` (gzip or plain). Throws std::runtime_error naming the file and what is wrong:
// missing, unreadable, not gzip/IDX, a type other than unsigned byte, truncated, trailing data.
IdxArray read_idx(const std::filesystem::path& path);

}  // namespace rmsprop::cli
