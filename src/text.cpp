#include "text.hpp"

#include <charconv>
#include <system_error>

#include "rmsprop/error.hpp"

namespace rmsprop {

std::string format_double(double value) {
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

double parse_double(std::string_view field, std::string_view text) {
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (!text.empty() && *begin == '+') ++begin;  // from_chars refuses a leading '+'
  auto result = std::from_chars(begin, end, value);
  if (text.empty() || result.ec != std::errc() || result.ptr != end) {
    throw InvalidOption("invalid value for " + std::string(field) + ": '" + std::string(text) +
                        "' is not a number");
  }
  return value;
}

bool parse_bool(std::string_view field, std::string_view text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  throw InvalidOption("invalid value for " + std::string(field) + ": '" + std::string(text) +
                      "' is not a boolean (true/false)");
}

std::string where(std::size_t group, std::size_t index) {
  return "group " + std::to_string(group) + ", parameter " + std::to_string(index);
}

}  // namespace rmsprop
