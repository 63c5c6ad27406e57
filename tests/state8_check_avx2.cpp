// The Avx2Codec (encoder and decoder) against the scalar codec (state8_vector_check.inl), built
// with avx2 flags.
#define RMSPROP_CHECKED_CODEC Avx2Codec
#define RMSPROP_CHECK_FUNCTION state8_avx2_mismatching_blocks
#include "state8_vector_check.inl"
