// Optimizer::save / load in the format described in checkpoint.hpp.
#include "rmsprop/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "optimizer_impl.hpp"
#include "rmsprop/error.hpp"
#include "rmsprop/step_plan.hpp"
#include "text.hpp"

namespace rmsprop {

static_assert(std::endian::native == std::endian::little,
              "the checkpoint format is little-endian; add byte swapping for this host");

namespace {

constexpr std::size_t kHeaderBytes = kSealedHeaderBytes;
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
  std::size_t left() const { return bytes_.size() - at_; }
  std::size_t file_offset() const { return at_ + kHeaderBytes; }
  [[noreturn]] void fail(const std::string& why) const {
    throw CheckpointError("cannot load checkpoint " + path_ + ": " + why);
  }

 private:
  std::span<const std::byte> bytes_;
  std::size_t at_ = 0;
  std::string path_;
};

std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

template <class T>
T read_le(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof value);
  return value;
}

// Closes a descriptor however the scope ends.
struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

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

void check_path(const std::filesystem::path& path, std::string_view what) {
  const std::string& text = path.native();
  if (const auto nul = text.find('\0'); nul != std::string::npos) {
    throw CheckpointError(std::string(what) + " path '" + text.substr(0, nul) +
                          "\\0...' holds a NUL byte at character " + std::to_string(nul) +
                          ": no file has that name");
  }
}

std::span<const std::byte> SealedFile::payload() const {
  return std::span(bytes).subspan(kHeaderBytes, bytes.size() - kHeaderBytes - kTrailerBytes);
}

std::vector<std::byte> seal(const SealedFormat& format, std::span<const std::byte> payload) {
  std::vector<std::byte> bytes(kHeaderBytes + payload.size() + kTrailerBytes);
  std::memcpy(bytes.data(), format.magic.data(), format.magic.size());
  std::memcpy(bytes.data() + 8, &format.newest, 4);  // then 4 reserved bytes, 0
  const std::uint64_t size = payload.size();
  std::memcpy(bytes.data() + 16, &size, 8);
  if (!payload.empty()) std::memcpy(bytes.data() + kHeaderBytes, payload.data(), payload.size());
  const std::uint32_t crc = crc32(std::span(bytes).first(bytes.size() - kTrailerBytes));
  std::memcpy(bytes.data() + bytes.size() - kTrailerBytes, &crc, 4);
  return bytes;
}

namespace {

// The header's checks, shared by files and memory: `total` is the whole file's size.
void check_header(const std::byte* header, std::uint64_t total, const SealedFormat& format,
                  const std::function<void(const std::string&)>& fail) {
  if (std::memcmp(header, format.magic.data(), format.magic.size()) != 0) {
    fail("not an rmsprop " + std::string(format.what) + " (bad magic)");
  }
  const auto version = read_le<std::uint32_t>(header + 8);
  if (version < format.oldest || version > format.newest) {
    fail("unsupported format version " + std::to_string(version) + " (this build reads " +
         std::to_string(format.oldest) + " to " + std::to_string(format.newest) + ")");
  }
  const auto reserved = read_le<std::uint32_t>(header + 12);
  if (reserved != 0)
    fail("reserved header bytes 12-15 are " + std::to_string(reserved) + ", not 0");
  const auto payload = read_le<std::uint64_t>(header + 16);
  const std::uint64_t held = total - kHeaderBytes - kTrailerBytes;
  if (payload != held) {
    fail("header says " + std::to_string(payload) + " payload bytes but the file holds " +
         std::to_string(held) + " (truncated or extended)");
  }
}

void check_length(std::uint64_t total, const SealedFormat& format,
                  const std::function<void(const std::string&)>& fail) {
  if (total < kHeaderBytes + kTrailerBytes) {
    fail("file is " + std::to_string(total) + " bytes, shorter than any " +
         std::string(format.what));
  }
}

}  // namespace

SealedFile open_sealed(std::vector<std::byte> bytes, const SealedFormat& format,
                       std::string_view name) {
  const std::function<void(const std::string&)> fail = [&](const std::string& why) {
    throw CheckpointError("cannot load " + std::string(format.what) + " " + std::string(name) +
                          ": " + why);
  };
  check_length(bytes.size(), format, fail);
  check_header(bytes.data(), bytes.size(), format, fail);
  const std::span<const std::byte> all(bytes);
  const auto stored_crc = read_le<std::uint32_t>(all.data() + all.size() - kTrailerBytes);
  if (crc32(all.first(all.size() - kTrailerBytes)) != stored_crc) {
    fail("checksum mismatch (the file is corrupted)");
  }
  SealedFile out;
  out.version = read_le<std::uint32_t>(bytes.data() + 8);
  out.bytes = std::move(bytes);
  return out;
}

SealedFile read_sealed(const std::filesystem::path& path, const SealedFormat& format) {
  check_path(path, format.what);
  const std::string name = path.string();
  const std::function<void(const std::string&)> fail = [&](const std::string& why) {
    throw CheckpointError("cannot load " + std::string(format.what) + " " + name + ": " + why);
  };
  // O_NONBLOCK: opening a FIFO with no writer must not wait for one (it is refused below)
  const FileDescriptor file{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  if (file.fd < 0) {
    throw CheckpointError("cannot open " + std::string(format.what) + " " + name + ": " +
                          std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(file.fd, &info) != 0) fail(std::string("cannot stat it: ") + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) fail("it is " + file_kind(info.st_mode) + ", not a regular file");
  const std::uint64_t size = std::uint64_t(info.st_size);
  check_length(size, format, fail);
  // Reads exactly [offset, offset + n): a file that changes size while read is refused.
  std::vector<std::byte> bytes(kHeaderBytes);
  auto read_into = [&](std::size_t offset, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      const ssize_t got =
          ::pread(file.fd, bytes.data() + offset + done, n - done, off_t(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail(std::string("read failed: ") + std::strerror(errno));
      if (got == 0) fail("it ended at byte " + std::to_string(offset + done) + " while read");
      done += std::size_t(got);
    }
  };
  read_into(0, kHeaderBytes);
  check_header(bytes.data(), size, format, fail);  // before reading what it declares
  bytes.resize(std::size_t(size));
  read_into(kHeaderBytes, std::size_t(size) - kHeaderBytes);
  return open_sealed(std::move(bytes), format, name);
}

void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  check_path(path, "checkpoint");
  auto fail = [&](const std::string& what) {
    throw CheckpointError("cannot write checkpoint " + path.string() + ": " + what + ": " +
                          std::strerror(errno));
  };
  // rename() replaces whatever is there: only a regular file may be
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode)) {
    throw CheckpointError("cannot write checkpoint " + path.string() + ": it is " +
                          file_kind(existing.st_mode) +
                          ", not a regular file; refusing to replace it");
  }
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
  write_file_atomically(path, save_to_memory());
}

void Optimizer::load(const std::filesystem::path& path) {
  const std::string name = path.string();
  load_sealed(read_sealed(path, kOptimizerCheckpoint), name);
}

void Optimizer::load_from_memory(std::span<const std::byte> bytes, std::string_view name) {
  load_sealed(open_sealed({bytes.begin(), bytes.end()}, kOptimizerCheckpoint, name),
              std::string(name));
}

std::vector<std::byte> Optimizer::save_to_memory() const {
  Writer w;
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
  return seal(kOptimizerCheckpoint, w.bytes());
}

void Optimizer::load_sealed(const SealedFile& file, const std::string& name) {
  const std::uint32_t version = file.version;
  auto fail = [&](const std::string& why) {
    throw CheckpointError("cannot load checkpoint " + name + ": " + why);
  };
  Reader r(file.payload(), name);
  const auto steps_taken = r.get<std::int64_t>("steps_taken");
  if (const std::string problem = step_count_problem(steps_taken); !problem.empty()) {
    fail("steps_taken is " + problem);
  }
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
    if (num_pairs > 1000) {
      fail("group " + std::to_string(gi) + " has an implausible option count " +
           std::to_string(num_pairs) + " (byte " + std::to_string(r.file_offset() - 4) + ")");
    }
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
    // Exactly what save writes, or refused: a file taken in another spelling ("1E-08", an
    // option twice) would not save back as it was read. Older versions wrote fewer options.
    if (version == kCheckpointVersion) {
      const auto canonical = options[gi].to_pairs();
      for (std::size_t k = 0; k < std::max(canonical.size(), pairs.size()); ++k) {
        const auto text = [](const auto& list, std::size_t at) {
          return at < list.size() ? list[at].first + "=" + list[at].second : "(none)";
        };
        if (k >= canonical.size() || k >= pairs.size() || canonical[k] != pairs[k]) {
          fail("group " + std::to_string(gi) + " option " + std::to_string(k) + " is " +
               text(pairs, k) + " where this library writes " + text(canonical, k) +
               " (not a file save() wrote)");
        }
      }
    }
    const auto num_params = r.get<std::uint32_t>("parameter count");
    if (num_params != g.params.size()) {
      fail("group " + std::to_string(gi) + " has " + std::to_string(num_params) +
           " parameters, this optimizer's has " + std::to_string(g.params.size()));
    }
    states[gi].resize(num_params);
    for (std::size_t i = 0; i < num_params; ++i) {
      const Param& p = g.params[i];
      const std::string at = where(gi, i);
      const auto dtype = r.get<std::uint8_t>("dtype");
      const auto size = r.get<std::uint64_t>("element count");
      if (dtype != std::uint8_t(p.dtype) || size != p.size) {
        fail(at + " is " + std::to_string(size) + " values of dtype code " + std::to_string(dtype) +
             " in the file but " + std::to_string(p.size) + " values of " +
             std::string(to_string(p.dtype)) + " here");
      }
      ParamState& s = states[gi][i];
      s.step = r.get<std::int64_t>("step count");
      if (const std::string problem = step_count_problem(s.step); !problem.empty()) {
        fail(at + " has " + problem);
      }
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
      // save() marks the buffers that hold values: an empty parameter has none to mark
      if (p.size == 0 && mask != 0) {
        fail(at + " has no elements but buffer mask " + std::to_string(mask) +
             " (save writes 0 for it)");
      }
      const std::size_t bytes = storage_bytes(s.state_dtype, p.size);
      if (mask & kHasSquareAvg) copy_buffer(r, s.square_avg, bytes, "square_avg");
      if (mask & kHasGradAvg) copy_buffer(r, s.grad_avg, bytes, "grad_avg");
      if (mask & kHasMomentum) copy_buffer(r, s.momentum_buffer, bytes, "momentum_buffer");
      if (mask & kHasMaster) copy_buffer(r, s.master, p.size * 4, "master weights");
    }
  }
  if (!r.at_end()) {
    fail(std::to_string(r.left()) + " unexpected bytes after the last parameter, from byte " +
         std::to_string(r.file_offset()));
  }

  // Nothing above changed the optimizer; now commit everything at once.
  for (std::size_t gi = 0; gi < num_groups; ++gi) {
    impl_->groups[gi].options = options[gi];
    impl_->groups[gi].states = std::move(states[gi]);
  }
  impl_->steps_taken = steps_taken;
}

}  // namespace rmsprop
