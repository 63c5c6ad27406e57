// The benchmark's peer: the obvious fused RMSProp loop, in its own translation unit compiled
// with -march=native (the strongest version of the peer on the machine that runs it).
#pragma once

void naive_loop(bool momentum, bool centered, float* p, const float* g, float* sq, float* m,
                float* b, long n, int threads, float bias_correction);
