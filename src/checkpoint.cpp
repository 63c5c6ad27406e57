// Optimizer::save / load in the format described in checkpoint.hpp.
#include "rmsprop/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "optimizer_impl.hpp"
#include "rmsprop/error.hpp"

namespace rmsprop {

static_assert(std::endian::native == std::endian::little,
              "the checkpoint format is little-endian; add byte swapping for this host");

namespace {

constexpr std::array<char, 8> kMagic = {'R', 'M', 'S', 'P', 'C', 'K', 'P', 'T'};
constexpr std::size_t kHeaderBytes = 24;
constexpr std::size_t kTrailerBytes = 4;
enum : std::uint8_t { kHasSquareAvg = 1, kHasGradAvg = 2, kHasMomentum = 4, kHasMaster = 8 };

class Writer {
 public:
  template <class T>
  void put(T value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void put_bytes(const std::byte* data, std::size_t n) {
    if (n) bytes_.insert(bytes_.end(), data, data + n);
  }
  void put_string(const std::string& s) {
    put(std::uint32_t(s.size()));
    put_bytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
  }
  std::vector<std::byte>& bytes() { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

// Bounds-checked reading: any read past the end is a truncated file.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  template <class T>
  T get(const char* what) {
    T value;
    std::memcpy(&value, take(sizeof(T), what), sizeof(T));
    return value;
  }
  const std::byte* take(std::size_t n, const char* what) {
    if (n > bytes_.size() - at_) {
      fail(std::string("truncated while reading ") + what + " at byte " +
           std::to_string(at_ + kHeaderBytes));
    }
    const std::byte* p = bytes_.data() + at_;
    at_ += n;
    return p;
  }
  std::string get_string(const char* what) {
    auto n = get<std::uint32_t>(what);
    return std::string(reinterpret_cast<const char*>(take(n, what)), n);
  }
  bool at_end() const { return at_ == bytes_.size(); }
  [[noreturn]] void fail(const std::string& why) const {
    throw CheckpointError("cannot load checkpoint " + path_ + ": " + why);
  }

 private:
  std::span<const std::byte> bytes_;
  std::size_t at_ = 0;
  std::string path_;
};

std::vector<std::byte> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw CheckpointError("cannot open checkpoint " + path.string() + ": " + std::strerror(errno));
  }
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

void copy_buffer(Reader& r, AlignedBuffer& buffer, std::size_t bytes, const char* what) {
  const std::byte* src = r.take(bytes, what);
  buffer = AlignedBuffer(bytes);
  if (bytes) std::memcpy(buffer.data(), src, bytes);
}

}  // namespace

std::uint32_t crc32(std::span<const std::byte> bytes) {
  static const auto kTable = [] {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::byte b : bytes) crc = kTable[(crc ^ std::uint32_t(b)) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  auto fail = [&](const std::string& what) {
    throw CheckpointError("cannot write checkpoint " + path.string() + ": " + what + ": " +
                          std::strerror(errno));
  };
  std::string temp = path.string() + ".tmp-XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0) fail("cannot create a temporary file beside it");
  auto cleanup = [&](const std::string& what) {
    int saved = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    errno = saved;
    fail(what);
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) cleanup("write failed");
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) cleanup("fsync failed");
  if (::close(fd) != 0) {
    ::unlink(temp.c_str());
    fail("close failed");
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temp.c_str());
    errno = saved;
    fail("rename failed");
  }
  // The rename is durable only once the folder's entry is on disk.
  std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : ".";
  int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void Optimizer::save(const std::filesystem::path& path) const {
  Writer w;
  w.put_bytes(reinterpret_cast<const std::byte*>(kMagic.data()), kMagic.size());
  w.put(kCheckpointVersion);
  w.put(std::uint32_t(0));
  w.put(std::uint64_t(0));  // payload size, patched below
  w.put(impl_->steps_taken);
  w.put(std::uint32_t(impl_->groups.size()));
  for (const Group& g : impl_->groups) {
    auto pairs = g.options.to_pairs();
    w.put(std::uint32_t(pairs.size()));
    for (const auto& [name, value] : pairs) {
      w.put_string(name);
      w.put_string(value);
    }
    w.put(std::uint32_t(g.params.size()));
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const Param& p = g.params[i];
      const ParamState& s = g.states[i];
      w.put(std::uint8_t(p.dtype));
      w.put(std::uint64_t(p.size));
      w.put(s.step);
      w.put(std::uint8_t(s.state_dtype));
      std::uint8_t mask =
          (s.square_avg.empty() ? 0 : kHasSquareAvg) | (s.grad_avg.empty() ? 0 : kHasGradAvg) |
          (s.momentum_buffer.empty() ? 0 : kHasMomentum) | (s.master.empty() ? 0 : kHasMaster);
      w.put(mask);
      for (const AlignedBuffer* b : {&s.square_avg, &s.grad_avg, &s.momentum_buffer, &s.master}) {
        w.put_bytes(b->data(), b->bytes());
      }
    }
  }
  auto& bytes = w.bytes();
  std::uint64_t payload = bytes.size() - kHeaderBytes;
  std::memcpy(bytes.data() + 16, &payload, sizeof payload);
  std::uint32_t crc = crc32(bytes);
  w.put(crc);
  write_file_atomically(path, bytes);
}

void Optimizer::load(const std::filesystem::path& path) {
  const std::vector<std::byte> file = read_file(path);
  const std::string name = path.string();
  auto fail = [&](const std::string& why) {
    throw CheckpointError("cannot load checkpoint " + name + ": " + why);
  };
  if (file.size() < kHeaderBytes + kTrailerBytes) {
    fail("file is " + std::to_string(file.size()) + " bytes, shorter than any checkpoint");
  }
  if (std::memcmp(file.data(), kMagic.data(), kMagic.size()) != 0) {
    fail("not an rmsprop checkpoint (bad magic)");
  }
  std::uint32_t version;
  std::memcpy(&version, file.data() + 8, 4);
  if (version < kOldestCheckpointVersion || version > kCheckpointVersion) {
    fail("unsupported format version " + std::to_string(version) + " (this build reads " +
         std::to_string(kOldestCheckpointVersion) + " to " + std::to_string(kCheckpointVersion) +
         ")");
  }
  std::uint64_t payload;
  std::memcpy(&payload, file.data() + 16, 8);
  if (payload != file.size() - kHeaderBytes - kTrailerBytes) {
    fail("header says " + std::to_string(payload) + " payload bytes but the file holds " +
         std::to_string(file.size() - kHeaderBytes - kTrailerBytes) + " (truncated or extended)");
  }
  std::uint32_t stored_crc;
  std::memcpy(&stored_crc, file.data() + file.size() - kTrailerBytes, 4);
  const std::span<const std::byte> all(file);
  const std::uint32_t crc = crc32(all.first(file.size() - kTrailerBytes));
  if (crc != stored_crc) fail("checksum mismatch (the file is corrupted)");

  Reader r(all.subspan(kHeaderBytes, payload), name);
  const auto steps_taken = r.get<std::int64_t>("steps_taken");
  if (steps_taken < 0) fail("negative steps_taken " + std::to_string(steps_taken));
  const auto num_groups = r.get<std::uint32_t>("group count");
  if (num_groups != impl_->groups.size()) {
    fail("it has " + std::to_string(num_groups) + " parameter groups, this optimizer has " +
         std::to_string(impl_->groups.size()));
  }
  std::vector<Options> options(num_groups);
  std::vector<std::vector<ParamState>> states(num_groups);
  for (std::size_t gi = 0; gi < num_groups; ++gi) {
    const Group& g = impl_->groups[gi];
    const auto num_pairs = r.get<std::uint32_t>("option count");
    if (num_pairs > 1000) fail("implausible option count " + std::to_string(num_pairs));
    std::vector<std::pair<std::string, std::string>> pairs(num_pairs);
    for (auto& [key, value] : pairs) {
      key = r.get_string("option name");
      value = r.get_string("option value");
    }
    try {
      options[gi] = Options::from_pairs(pairs);
    } catch (const InvalidOption& e) {
      fail("group " + std::to_string(gi) + " options: " + e.what());
    }
    const auto num_params = r.get<std::uint32_t>("parameter count");
    if (num_params != g.params.size()) {
      fail("group " + std::to_string(gi) + " has " + std::to_string(num_params) +
           " parameters, this optimizer's has " + std::to_string(g.params.size()));
    }
    states[gi].resize(num_params);
    for (std::size_t i = 0; i < num_params; ++i) {
      const Param& p = g.params[i];
      const std::string at = "group " + std::to_string(gi) + ", parameter " + std::to_string(i);
      const auto dtype = r.get<std::uint8_t>("dtype");
      const auto size = r.get<std::uint64_t>("element count");
      if (dtype != std::uint8_t(p.dtype) || size != p.size) {
        fail(at + " is " + std::to_string(size) + " values of dtype code " + std::to_string(dtype) +
             " in the file but " + std::to_string(p.size) + " values of " +
             std::string(to_string(p.dtype)) + " here");
      }
      ParamState& s = states[gi][i];
      s.step = r.get<std::int64_t>("step count");
      if (s.step < 0) fail(at + " has a negative step count " + std::to_string(s.step));
      const auto state_dtype = r.get<std::uint8_t>("state dtype");
      const bool half = p.dtype == DType::bf16 || p.dtype == DType::f16;
      // the one precision rule (Precision::supported), for the state alone
      const bool known = state_dtype < dtype_table().size() ||
                         (version >= 2 && state_dtype == std::uint8_t(DType::i8_block));
      const bool state_ok =
          known && Precision{p.dtype, DType(state_dtype), false, false}.supported();
      if (!state_ok) {
        fail(at + " has state dtype code " + std::to_string(state_dtype) + ", invalid for " +
             std::string(to_string(p.dtype)) + " parameters");
      }
      s.state_dtype = DType(state_dtype);
      const auto mask = r.get<std::uint8_t>("buffer mask");
      if (mask > 15 || ((mask & kHasMaster) && !half)) {
        fail(at + " has an invalid buffer mask " + std::to_string(mask));
      }
      const std::size_t bytes = storage_bytes(s.state_dtype, p.size);
      if (mask & kHasSquareAvg) copy_buffer(r, s.square_avg, bytes, "square_avg");
      if (mask & kHasGradAvg) copy_buffer(r, s.grad_avg, bytes, "grad_avg");
      if (mask & kHasMomentum) copy_buffer(r, s.momentum_buffer, bytes, "momentum_buffer");
      if (mask & kHasMaster) copy_buffer(r, s.master, p.size * 4, "master weights");
    }
  }
  if (!r.at_end()) fail("unexpected bytes after the last parameter");

  // Nothing above changed the optimizer; now commit everything at once.
  for (std::size_t gi = 0; gi < num_groups; ++gi) {
    impl_->groups[gi].options = options[gi];
    impl_->groups[gi].states = std::move(states[gi]);
  }
  impl_->steps_taken = steps_taken;
}

}  // namespace rmsprop
