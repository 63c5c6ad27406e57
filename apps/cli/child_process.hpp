// Child processes of `rmsprop tune`: its trials (`rmsprop train`) and its Optuna helper.
// Each dies with the parent (PR_SET_PDEATHSIG): a tune process killed with -9 leaves no trial
// running on behind it, writing into a study that a `--resume` continues.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace rmsprop::cli {

struct ChildSetup {
  std::vector<std::pair<int, int>> descriptors;  // (parent's descriptor, number in the child)
  std::filesystem::path output;                  // stdout and stderr go here; "" keeps ours
};

// Starts argv[0] (a path) with argv; the parent's other descriptors must be close-on-exec
// (pipe2(O_CLOEXEC)) so that only the ones named reach the child. Throws naming argv[0].
pid_t start_child(const std::vector<std::string>& argv, const ChildSetup& setup);

// A pipe whose two ends are close-on-exec: {read end, write end}.
std::pair<int, int> cloexec_pipe();

// The exit status as a number: the code, or 128 + the signal that ended it (as shells say).
int exit_code(int wait_status);

}  // namespace rmsprop::cli
