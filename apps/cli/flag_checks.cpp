#include "flag_checks.hpp"

#include <charconv>
#include <string>
#include <thread>

namespace rmsprop::cli {
namespace {

// "" when `text` is wholly an integer of type T, else why not.
template <class T>
std::string parse_whole(const std::string& text, T& value) {
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error == std::errc::result_out_of_range) return "'" + text + "' is out of range";
  if (error != std::errc() || stop != end || text.empty()) {
    return "'" + text + "' is not " +
           (std::is_signed_v<T> ? "an integer" : "a non-negative integer");
  }
  return "";
}

}  // namespace

CLI::Validator integer_in(std::int64_t lo, std::int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) {
        std::int64_t value = 0;
        if (std::string why = parse_whole(text, value); !why.empty()) return why;
        if (value < lo || value > hi) {
          return std::to_string(value) + " is not in [" + std::to_string(lo) + ", " +
                 std::to_string(hi) + "]";
        }
        return std::string();
      },
      "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]", "integer_in");
}

CLI::Validator unsigned_integer() {
  return CLI::Validator(
      [](std::string& text) {
        std::uint64_t value = 0;
        return parse_whole(text, value);
      },
      "[0, 2^64-1]", "unsigned_integer");
}

CLI::Validator non_empty() {
  return CLI::Validator(
      [](std::string& text) {
        return text.empty() ? std::string("an empty value (leave the flag out for the default)")
                            : std::string();
      },
      "", "non_empty");
}

CLI::Validator thread_count() {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int most = kThreadsPerCore * cores;
  return CLI::Validator(
      [cores, most](std::string& text) {
        std::int64_t value = 0;
        if (std::string why = parse_whole(text, value); !why.empty()) return why;
        if (value < 0) return std::to_string(value) + " threads: must be >= 0 (0: all cores)";
        if (value > most) {
          return std::to_string(value) + " threads on " + std::to_string(cores) +
                 " cores: at most " + std::to_string(most) + " (" +
                 std::to_string(kThreadsPerCore) + " per core; more only wait for each other)";
        }
        return std::string();
      },
      "0.." + std::to_string(most), "thread_count");
}

}  // namespace rmsprop::cli
