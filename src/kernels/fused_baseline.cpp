// The fused kernel for the baseline target (flags in CMakeLists.txt).
#define RMSPROP_TARGET_NAMESPACE baseline
#include "fused_impl.inl"
