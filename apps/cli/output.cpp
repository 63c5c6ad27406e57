#include "output.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <stdexcept>

namespace rmsprop::cli {

std::filesystem::path make_run_folder(const std::string& requested, const std::string& command) {
  std::filesystem::path dir = requested;
  if (dir.empty()) {
    const std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    dir = std::filesystem::path("runs") / (command + "-" + stamp);
    for (int k = 2; std::filesystem::exists(dir); ++k) {
      dir = std::filesystem::path("runs") / (command + "-" + stamp + "-" + std::to_string(k));
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw std::runtime_error("--out " + dir.string() + ": cannot create the folder (" +
                             ec.message() + ")");
  }
  // before any work: a folder that exists but takes no files is found now, not after an epoch
  std::string probe = (dir / ".write-test-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) {
    throw std::runtime_error("--out " + dir.string() + ": cannot write in the folder (" +
                             std::strerror(errno) + ")");
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return dir;
}

nlohmann::json to_json(const TrainResult& r) {
  nlohmann::json epochs = nlohmann::json::array();
  double seconds = 0, optimizer = 0;
  for (const EpochRecord& e : r.epochs) {
    epochs.push_back({{"epoch", e.epoch},
                      {"train_loss", e.train_loss},
                      {"train_accuracy", e.train_accuracy},
                      {"val_loss", e.val_loss},
                      {"val_accuracy", e.val_accuracy},
                      {"seconds", e.seconds},
                      {"optimizer_seconds", e.optimizer_seconds}});
    seconds += e.seconds;
    optimizer += e.optimizer_seconds;
  }
  nlohmann::json out = {{"model", r.model},
                        {"parameters", r.parameters},
                        {"epochs", epochs},
                        {"weights_digest", r.weights_digest}};
  out["seconds_per_epoch"] = r.epochs.empty() ? 0.0 : seconds / double(r.epochs.size());
  out["optimizer_share"] = seconds > 0 ? optimizer / seconds : 0.0;
  out["test"] = {
      {"loss", r.test_loss ? nlohmann::json(*r.test_loss) : nlohmann::json()},
      {"accuracy", r.test_accuracy ? nlohmann::json(*r.test_accuracy) : nlohmann::json()}};
  out["initial_loss"] = r.initial_loss;
  out["diverged"] = r.diverged;
  return out;
}

nlohmann::json to_json(const Dataset& data) {
  return {{"name", data.name},
          {"train", data.train.size()},
          {"validation", data.val.size()},
          {"test", data.test.size()}};
}

void write_json(const std::filesystem::path& path, const nlohmann::json& document) {
  std::ofstream out(path);
  out << document.dump(2) << "\n";
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

void write_epochs_csv(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, TrainResult>>& runs, bool classify) {
  std::ofstream out(path);
  const bool labelled = runs.size() > 1 || !runs.front().first.empty();
  out << (labelled ? "optimizer," : "")
      << "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,optimizer_seconds\n";
  char line[512];
  for (const auto& [label, result] : runs) {
    for (const EpochRecord& e : result.epochs) {
      if (labelled) out << label << ",";
      if (classify) {
        std::snprintf(line, sizeof line, "%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n",
                      static_cast<long long>(e.epoch), e.train_loss, e.train_accuracy, e.val_loss,
                      e.val_accuracy, e.seconds, e.optimizer_seconds);
      } else {
        std::snprintf(line, sizeof line, "%lld,%.6g,,%.6g,,%.6g,%.6g\n",
                      static_cast<long long>(e.epoch), e.train_loss, e.val_loss, e.seconds,
                      e.optimizer_seconds);
      }
      out << line;
    }
  }
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

namespace {

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string python_interpreter() {
  const char* python = std::getenv("RMSPROP_PYTHON");
  return python ? python : RMSPROP_DEFAULT_PYTHON;
}

std::filesystem::path app_script(const std::string& file) {
  for (std::filesystem::path folder : {RMSPROP_SCRIPTS_SOURCE, RMSPROP_SCRIPTS_INSTALLED}) {
    if (std::filesystem::exists(folder / file)) return folder / file;
  }
  return std::filesystem::path(RMSPROP_SCRIPTS_SOURCE) / file;
}

bool plot(const std::vector<std::string>& arguments) {
  const char* script = std::getenv("RMSPROP_PLOT_SCRIPT");
  std::string command = quoted(python_interpreter()) + " " +
                        quoted(script ? std::string(script) : app_script("plot.py").string());
  for (const std::string& a : arguments) {
    command += ' ';  // not " " + quoted(a): GCC 12 warns falsely (-Wrestrict, PR 105651)
    command += quoted(a);
  }
  const int status = std::system(command.c_str());
  if (status != 0) {
    std::fprintf(stderr,
                 "rmsprop: no plot drawn (%s exited with %d; plots need Debian's "
                 "python3-matplotlib); the CSV and JSON results are written\n",
                 command.c_str(), status);
    return false;
  }
  return true;
}

}  // namespace rmsprop::cli
