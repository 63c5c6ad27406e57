// The Avx512Codec (encoder and decoder) against the scalar codec (state8_vector_check.inl), built
// with avx512 flags.
#define RMSPROP_CHECKED_CODEC Avx512Codec
#define RMSPROP_CHECK_FUNCTION state8_avx512_mismatching_blocks
#include "state8_vector_check.inl"
