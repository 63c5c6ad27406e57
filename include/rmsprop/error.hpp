// The exceptions the library throws. Each message names the offending value.
#pragma once

#include <stdexcept>
#include <string>

namespace rmsprop {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An option out of range, an unknown option name or flavor, an unparsable value.
struct InvalidOption : Error {
  using Error::Error;
};

// Buffers that do not fit together: sizes, dtypes, missing state.
struct InvalidArgument : Error {
  using Error::Error;
};

// A gradient holds NaN or ±inf and the policy is NonFinitePolicy::error.
struct NonFiniteError : Error {
  using Error::Error;
};

// A checkpoint that cannot be written, or cannot be trusted when read.
struct CheckpointError : Error {
  using Error::Error;
};

}  // namespace rmsprop
