// The optimizer checkpoint format (version 2; 1 still loads), read and written by
// Optimizer::save/load.
//
//   offset  size  field
//   0       8     magic "RMSPCKPT"
//   8       4     version (u32, 2)
//   12      4     reserved (0; anything else is refused)
//   16      8     payload size in bytes (u64)
//   24      n     payload
//   24+n    4     CRC-32 (IEEE) of bytes [0, 24+n)
//
// Payload: steps_taken (i64), group count (u32); per group: option count (u32) and that many
// (name, value) strings as Options::to_pairs writes them (u32 length + bytes; numbers in
// shortest round-trip text, so every double comes back exactly), parameter count (u32); per
// parameter: dtype (u8: 0 f32, 1 f64, 2 bf16, 3 f16), element count (u64), step count (i64,
// 0 to 2^53 as every count: kMaxStepCount), state dtype (u8, same codes), a mask of the
// buffers present (u8: 1 square_avg, 2 grad_avg, 4 momentum_buffer, 8 float32 master
// weights), then those buffers' raw values (state in the state dtype). All integers and floats
// little-endian.
//
// Writes go to a temporary file in the same folder, fsync'd, then renamed over the target, so
// a crash leaves the old checkpoint or the new one, never half of one. Loads check the magic,
// version, size, checksum and every count against the optimizer before changing anything.
//
// The envelope (magic, version, size, payload, CRC-32) is shared by every checkpoint file of
// this project (the optimizer's, the CLI's training checkpoint): `seal` writes it and
// `read_sealed` reads and checks it.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rmsprop {

// Version 2 adds 8-bit state (state dtype code 4, DType::i8_block: codes and scales as
// state8.hpp lays them out). Version 1 files (float state only) still load.
inline constexpr std::uint32_t kCheckpointVersion = 2;
inline constexpr std::uint32_t kOldestCheckpointVersion = 1;

// One kind of sealed file: its magic, the versions this build reads (it writes `newest`), and
// what messages call it ("checkpoint").
struct SealedFormat {
  std::array<char, 8> magic;
  std::uint32_t oldest, newest;
  std::string_view what;
};
inline constexpr SealedFormat kOptimizerCheckpoint{{'R', 'M', 'S', 'P', 'C', 'K', 'P', 'T'},
                                                   kOldestCheckpointVersion,
                                                   kCheckpointVersion,
                                                   "checkpoint"};

// The header, `payload` and its CRC-32, as `format.newest`.
std::vector<std::byte> seal(const SealedFormat& format, std::span<const std::byte> payload);

struct SealedFile {
  std::uint32_t version;
  std::vector<std::byte> bytes;  // the whole file
  std::span<const std::byte> payload() const;
};
inline constexpr std::size_t kSealedHeaderBytes = 24;  // payload offsets in messages count it

// Reads a sealed file and checks it: a regular file (a directory, FIFO or device is refused
// before anything is read from it), no more bytes than its header declares, the magic, a
// version this build reads, the size and the checksum. Throws CheckpointError naming the path
// and what is wrong.
SealedFile read_sealed(const std::filesystem::path& path, const SealedFormat& format);

// The same checks on a whole file already in memory; `name` stands for the path in messages.
SealedFile open_sealed(std::vector<std::byte> bytes, const SealedFormat& format,
                       std::string_view name);

// Writes `bytes` to `path` atomically (temp file + fsync + rename + fsync of the folder). What
// is at `path` must be nothing or a regular file: a directory, device, FIFO or symbolic link
// there is refused, not replaced. Throws CheckpointError naming the path and the reason.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes);

// Refuses (CheckpointError naming it) a path the system would read only part of: one holding
// a NUL byte, which every system call ends at.
void check_path(const std::filesystem::path& path, std::string_view what);

std::uint32_t crc32(std::span<const std::byte> bytes);

}  // namespace rmsprop
