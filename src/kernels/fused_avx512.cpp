// The fused kernel for the avx512 target (flags in CMakeLists.txt).
#define RMSPROP_TARGET_NAMESPACE avx512
#include "fused_impl.inl"
