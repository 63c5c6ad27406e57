// libFuzzer target: every input is loaded, as an optimizer checkpoint, into each model of
// checkpoint_models.hpp; what must hold is `load_problem`'s (a broken rule aborts, and
// libFuzzer keeps the input). Leaks, memory errors and undefined behaviour are the sanitizers'.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint_models.hpp"
#include "rmsprop/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = std::as_bytes(std::span(data, size));
  for (const auto& entry : rmsprop::fuzz::kModels) {
    rmsprop::fuzz::Model model;
    entry.build(model);
    if (const std::string problem = rmsprop::fuzz::load_problem(model, input); !problem.empty()) {
      std::fprintf(stderr, "checkpoint fuzzer, model %s: %s\n", entry.name, problem.c_str());
      std::abort();
    }
  }
  return 0;
}
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

// Structure-aware step after libFuzzer's own mutation: most mutants get their envelope made
// right again (payload size and CRC-32), so that they reach the payload's parser instead of
// all stopping at the checksum; the rest keep what the mutation did to the envelope.
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  constexpr std::size_t kHeader = rmsprop::kSealedHeaderBytes, kTrailer = 4;
  if (seed % 8 == 0 || size < kHeader + kTrailer) return size;
  const std::uint64_t payload = size - kHeader - kTrailer;
  std::memcpy(data + 16, &payload, 8);
  rmsprop::fuzz::rewrite_crc(std::as_writable_bytes(std::span(data, size)));
  return size;
}
