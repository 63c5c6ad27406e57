// The naive loop built for the avx512 target (flags in bench/CMakeLists.txt).
#define RMSPROP_NAIVE_NS naive_avx512
#include "naive_loop_impl.inl"
