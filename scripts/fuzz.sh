#!/usr/bin/env bash
# Builds the checkpoint fuzzer (clang 14, libFuzzer + ASan + UBSan; only the core library) in
# DIR (default build-fuzz) and runs its CTest: the seeds, then RMSPROP_FUZZ_SECONDS (default
# 60) of fuzzing. The core without its AVX2 and AVX-512 kernels: the step after a load runs the
# baseline kernel, and the parser is the same. For a longer local run, after this:
#   bash fuzz/run-checkpoint-fuzz.sh DIR/fuzz/checkpoint_fuzzer DIR/fuzz/make_checkpoint_corpus \
#     tests/recorded/checkpoint-v1.ckpt DIR/fuzz/checkpoint-fuzz 86400 -runs=1000000
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-fuzz}
CC=clang-14 CXX=clang++-14 bash scripts/build.sh "$dir" -DRMSPROP_FUZZ=ON \
  -DRMSPROP_FUZZ_SECONDS="${RMSPROP_FUZZ_SECONDS:-60}" -DRMSPROP_WERROR=ON \
  -DRMSPROP_BUILD_TESTS=OFF -DRMSPROP_BUILD_APPS=OFF -DRMSPROP_BUILD_BENCH=OFF \
  -DRMSPROP_BUILD_PYTHON=OFF -DRMSPROP_BUILD_TORCH=OFF -DRMSPROP_BUILD_MPI=OFF -DRMSPROP_CUDA=OFF \
  -DRMSPROP_X86_KERNELS=OFF
(cd "$dir" && ctest --output-on-failure)
