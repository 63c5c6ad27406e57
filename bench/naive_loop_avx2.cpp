// The naive loop built for the avx2 target (flags in bench/CMakeLists.txt).
#define RMSPROP_NAIVE_NS naive_avx2
#include "naive_loop_impl.inl"
