// The naive loop built for the baseline target (flags in bench/CMakeLists.txt).
#define RMSPROP_NAIVE_NS naive_baseline
#include "naive_loop_impl.inl"
