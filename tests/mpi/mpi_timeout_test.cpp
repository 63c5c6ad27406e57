// A rank that stops calling step(): the others end with rmsprop::Error naming the collective
// and themselves after Communicator::timeout(), not a hang. (Its own program: the collective
// left unfinished breaks MPI for anything after it.) CTest passes on the line it prints.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "rmsprop/error.hpp"
#include "rmsprop/mpi.hpp"

int main(int argc, char** argv) {
  rmsprop::mpi::Session session(&argc, &argv);
  rmsprop::mpi::Communicator comm = rmsprop::mpi::Communicator::world();
  comm.set_timeout(2.0);
  std::vector<float> w(1000, 1.0f), g(1000, 0.5f);
  rmsprop::mpi::DataParallel dp({{{rmsprop::Param::of(std::span(w), std::span(g))}, {}}}, comm);
  dp.step();                             // all ranks once
  if (comm.rank() == comm.size() - 1) {  // this one stops taking part, as if it hung
    std::this_thread::sleep_for(std::chrono::seconds(30));
    _exit(0);
  }
  const auto start = std::chrono::steady_clock::now();
  try {
    dp.step();
    std::printf("rank %d: step() returned without the last rank\n", comm.rank());
  } catch (const rmsprop::Error& e) {
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool named =
        std::string(e.what()).find("rank " + std::to_string(comm.rank())) != std::string::npos;
    std::printf("rank %d: %s after %.1f s: %s\n", comm.rank(),
                named && waited >= 2.0 && waited < 20 ? "timed out as expected" : "wrong error",
                waited, e.what());
  }
  std::fflush(stdout);
  _exit(0);  // MPI cannot be finalized with a collective left unfinished
}
