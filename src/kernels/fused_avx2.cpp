// The fused kernel for the avx2 target (flags in CMakeLists.txt).
#define RMSPROP_TARGET_NAMESPACE avx2
#include "fused_impl.inl"
