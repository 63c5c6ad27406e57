// Text shared by option parsing, the checkpoint format and the messages that name things.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rmsprop {

// The shortest text that reads back as exactly `value` ("0.01", "1e-08", "inf").
std::string format_double(double value);

// Parses all of `text` as a double; throws InvalidOption naming `field` and the text otherwise.
double parse_double(std::string_view field, std::string_view text);

// true/false/1/0/yes/no/on/off; throws InvalidOption naming `field` and the text otherwise.
bool parse_bool(std::string_view field, std::string_view text);

// "group 1, parameter 3": how messages name a parameter.
std::string where(std::size_t group, std::size_t index);

}  // namespace rmsprop
