// The search space of `rmsprop tune`: which values a search may give each option, from
// `NAME=V1,V2,...` (a list, any option) or `NAME=LO:HI[:log]` (a range, number options).
#pragma once

#include <string>
#include <vector>

namespace rmsprop::cli {

struct Dimension {
  std::string name;                  // the option's canonical name (rho -> alpha)
  std::vector<std::string> choices;  // a list; empty for a range
  double lo = 0, hi = 0;             // a range: lo < hi, both valid values of the option
  bool log = false;                  // a range sampled uniformly in log(value): lo > 0

  bool is_range() const { return choices.empty(); }
};

// Parses one `--space` (or `--grid`, `--range`) argument; throws InvalidOption naming the flag,
// the argument and what is wrong: no NAME=, an unknown option, a value the option refuses, a
// range on a bool or choice option, an empty or inverted range, a log range reaching 0.
Dimension parse_dimension(const std::string& spec, const std::string& flag);

// A sampled number as option text: the shortest text that reads back as the same double.
std::string number_text(double value);

}  // namespace rmsprop::cli
