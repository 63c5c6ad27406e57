// The optimizer checkpoint format (version 1), read and written by Optimizer::save/load.
//
//   offset  size  field
//   0       8     magic "RMSPCKPT"
//   8       4     version (u32, 1)
//   12      4     reserved (0)
//   16      8     payload size in bytes (u64)
//   24      n     payload
//   24+n    4     CRC-32 (IEEE) of bytes [0, 24+n)
//
// Payload: steps_taken (i64), group count (u32); per group: option count (u32) and that many
// (name, value) strings as Options::to_pairs writes them (u32 length + bytes; numbers in
// shortest round-trip text, so every double comes back exactly), parameter count (u32); per
// parameter: dtype (u8: 0 f32, 1 f64, 2 bf16, 3 f16), element count (u64), step count (i64),
// state dtype (u8, same codes), a mask of the buffers present (u8: 1 square_avg, 2 grad_avg,
// 4 momentum_buffer, 8 float32 master weights), then those buffers' raw values (state in the
// state dtype). All integers and floats little-endian.
//
// Writes go to a temporary file in the same folder, fsync'd, then renamed over the target, so
// a crash leaves the old checkpoint or the new one, never half of one. Loads check the magic,
// version, size, checksum and every count against the optimizer before changing anything.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

namespace rmsprop {

// Version 2 adds 8-bit state (state dtype code 4, DType::i8_block: codes and scales as
// state8.hpp lays them out). Version 1 files (float state only) still load.
inline constexpr std::uint32_t kCheckpointVersion = 2;
inline constexpr std::uint32_t kOldestCheckpointVersion = 1;

// Writes `bytes` to `path` atomically (temp file + fsync + rename + fsync of the folder).
// Throws CheckpointError naming the path and the system's reason.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes);

std::uint32_t crc32(std::span<const std::byte> bytes);

}  // namespace rmsprop
