// rmsprop: train real models with the RMSProp family (libtorch), compare optimizers, and
// benchmark the optimizer step. `rmsprop SUBCOMMAND --help` for each.
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "commands.hpp"

namespace {

// Messages may quote a damaged file's bytes: what is not UTF-8 is written as \xNN, so that the
// terminal, a log or a Python caller reading the output as text gets it all.
std::string printable(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t at) { return at < text.size() ? unsigned(text[at]) & 0xFFu : 0u; };
  while (i < text.size()) {
    const unsigned b = byte(i);
    // the length of a well-formed sequence starting here (Unicode 15, table 3-7), else 0
    std::size_t n = 0;
    auto in = [&](std::size_t at, unsigned lo, unsigned hi) {
      return byte(at) >= lo && byte(at) <= hi;
    };
    if (b < 0x80) {
      n = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      n = in(i + 1, 0x80, 0xBF) ? 2 : 0;
    } else if (b >= 0xE0 && b <= 0xEF) {
      const unsigned lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
      n = in(i + 1, lo, hi) && in(i + 2, 0x80, 0xBF) ? 3 : 0;
    } else if (b >= 0xF0 && b <= 0xF4) {
      const unsigned lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
      n = in(i + 1, lo, hi) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF) ? 4 : 0;
    }
    if (n == 0) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02X", b);
      out += hex;
      n = 1;
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rmsprop: train models with the RMSProp optimizer family, compare optimizers, benchmark "
      "the step.\nWith no arguments, `rmsprop train` trains the Fashion-MNIST classifier."};
  app.require_subcommand(1);
  rmsprop::cli::add_train_command(app);
  rmsprop::cli::add_compare_command(app);
  rmsprop::cli::add_bench_command(app);
  rmsprop::cli::add_experiment_command(app);
  rmsprop::cli::add_tune_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "rmsprop: %s\n", printable(e.what_without_backtrace()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rmsprop: %s\n", printable(e.what()).c_str());
    return 1;
  }
  return 0;
}
