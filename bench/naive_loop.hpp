// The benchmark's peer: the obvious fused RMSProp loop, compiled once per SIMD target and run
// for the target the library's kernels use on this CPU (the same ISA on both sides).
#pragma once

#include <cstddef>

// p and g are float32, or bfloat16 bit patterns (uint16) when `bf16`.
void naive_loop(bool momentum, bool centered, bool bf16, void* p, const void* g, float* sq,
                float* m, float* b, long n, int threads, float bias_correction);

// The roofline for a variant's access pattern: the same reads and writes with one add each
// (`buffers` state buffers: square_avg, then momentum_buffer, then grad_avg), over `tensors`
// tensors of n elements, in fused_step's chunks; `threads` > 0.
void traffic_loop(int buffers, bool bf16, std::size_t tensors, void* const* p, const void* const* g,
                  float* const* sq, float* const* m, float* const* b, long n, int threads);

// The same for float32 parameters and state stored `state_bytes` wide: 4 (float32), 2
// (bfloat16) or 1 (8-bit codes, and the block scales after them: the layout of
// rmsprop/state8.hpp); state[k][t] is buffer k of tensor t.
void state_traffic_loop(int buffers, int state_bytes, std::size_t tensors, float* const* p,
                        const float* const* g, void* const* const* state, long n, int threads);
