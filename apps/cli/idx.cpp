#include "idx.hpp"

#include <zlib.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace rmsprop::cli {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw std::runtime_error(path.string() + ": " + what);
}

// The whole decompressed content (zlib reads plain files through the same call).
std::vector<std::uint8_t> slurp(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    fail(path,
         "no such file (Fashion-MNIST: apt-get install dataset-fashion-mnist, or --data DIR)");
  }
  std::unique_ptr<gzFile_s, decltype(&gzclose)> file(gzopen(path.c_str(), "rb"), &gzclose);
  if (!file) fail(path, "cannot open");
  std::vector<std::uint8_t> out;
  std::uint8_t buffer[1 << 16];
  for (;;) {
    const int n = gzread(file.get(), buffer, sizeof buffer);
    if (n < 0) {
      int code = 0;
      fail(path, std::string("damaged gzip data (") + gzerror(file.get(), &code) + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), buffer, buffer + n);
  }
  return out;
}

}  // namespace

IdxArray read_idx(const std::filesystem::path& path) {
  const std::vector<std::uint8_t> bytes = slurp(path);
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    fail(path, "not an IDX file (its first bytes are not the IDX magic 00 00 <type> <rank>)");
  }
  if (bytes[2] != 0x08) {
    fail(path, "IDX element type " + std::to_string(bytes[2]) + " is not unsigned byte (8)");
  }
  const std::size_t rank = bytes[3];
  if (rank == 0 || bytes.size() < 4 + 4 * rank) fail(path, "truncated IDX header");
  IdxArray a;
  std::size_t count = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    const std::uint8_t* p = &bytes[4 + 4 * d];
    const std::uint32_t n = std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 |
                            std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
    if (n == 0 || n > (1u << 28)) fail(path, "IDX dimension " + std::to_string(n) + " is invalid");
    a.dims.push_back(n);
    count *= n;
    if (count > (std::size_t(1) << 34)) fail(path, "IDX array is implausibly large");
  }
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() != header + count) {
    fail(path, "holds " + std::to_string(bytes.size() - header) + " data bytes, its header says " +
                   std::to_string(count) + (bytes.size() < header + count ? " (truncated)" : ""));
  }
  a.values.assign(bytes.begin() + std::ptrdiff_t(header), bytes.end());
  return a;
}

}  // namespace rmsprop::cli
