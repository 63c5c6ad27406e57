#include "search_space.hpp"

#include <charconv>
#include <cmath>

#include "rmsprop/error.hpp"
#include "rmsprop/options.hpp"

namespace rmsprop::cli {
namespace {

// The option's own checks (kind, then range) on one value, as a trial's `train` would apply them.
void check_value(const std::string& name, const std::string& text) {
  Options check;
  check.set(name, text);
  check.validate();
}

bool read_number(const std::string& text, double& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && std::isfinite(out);
}

}  // namespace

Dimension parse_dimension(const std::string& spec, const std::string& flag) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    throw InvalidOption(flag + " '" + spec + "': expected NAME=...");
  }
  const auto where = [&] { return flag + " '" + spec + "': "; };
  Dimension d;
  const OptionInfo& info = option_info(spec.substr(0, eq));  // unknown names are refused here
  d.name = std::string(info.name);
  const std::string values = spec.substr(eq + 1);
  try {
    if (values.find(':') == std::string::npos) {
      for (std::size_t at = 0; at <= values.size();) {
        const std::size_t comma = std::min(values.find(',', at), values.size());
        d.choices.push_back(values.substr(at, comma - at));
        check_value(d.name, d.choices.back());
        at = comma + 1;
      }
      return d;
    }
    if (info.kind != OptionKind::number && info.kind != OptionKind::optional_number) {
      throw InvalidOption(d.name + " is not a number option; give its values as a list (" + d.name +
                          "=" + (info.kind == OptionKind::boolean ? "true,false" : "A,B") + ")");
    }
    const auto first = values.find(':'), second = values.find(':', first + 1);
    const std::string scale = second == std::string::npos ? "" : values.substr(second + 1);
    if (!read_number(values.substr(0, first), d.lo) ||
        !read_number(values.substr(first + 1, second - first - 1), d.hi) ||
        (!scale.empty() && scale != "log")) {
      throw InvalidOption("expected NAME=LO:HI or NAME=LO:HI:log with finite numbers LO < HI");
    }
    d.log = scale == "log";
    if (!(d.lo < d.hi)) {
      throw InvalidOption("an empty or inverted range (LO < HI needed, got " + number_text(d.lo) +
                          " and " + number_text(d.hi) + ")");
    }
    if (d.log && d.lo <= 0) {
      throw InvalidOption("a log range must stay above 0 (got LO " + number_text(d.lo) + ")");
    }
    check_value(d.name, number_text(d.lo));
    check_value(d.name, number_text(d.hi));
  } catch (const InvalidOption& e) {
    throw InvalidOption(where() + e.what());
  }
  return d;
}

std::string number_text(double value) {
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  return std::string(text, end);
}

}  // namespace rmsprop::cli
