// The Avx512Encoder against the scalar codec (state8_vector_check.inl), built with avx512 flags.
#define RMSPROP_CHECKED_ENCODER Avx512Encoder
#define RMSPROP_CHECK_FUNCTION state8_avx512_mismatching_blocks
#include "state8_vector_check.inl"
