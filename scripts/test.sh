#!/usr/bin/env bash
# Sets up the machine, then builds and runs every test twice: a Release build, and an
# AddressSanitizer + UndefinedBehaviorSanitizer build; then the checkpoint loader under
# libFuzzer for RMSPROP_FUZZ_SECONDS (60; scripts/fuzz.sh); then the Python suite and the libtorch
# tests once more against torch 2.x (Debian 13's, in a debootstrap'd root: scripts/
# test-torch2.sh; RMSPROP_SKIP_TORCH2=1 leaves that out). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${RMSPROP_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup-debian.sh

# The Release build compiles the CUDA backend wherever nvcc is (CUDA code must at least compile
# and link in CI, which has no GPU: the GPU tests then skip, saying so). The sanitizer build
# leaves it out: ASan does not instrument device code, and it would double the CUDA build time.
cuda=AUTO
if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc > /dev/null; then
  cuda=ON
else
  echo "== no nvcc here (/usr/local/cuda/bin or PATH): the CUDA backend is not compiled"
fi

# Device code is compiled for sm_90 (+ its PTX) only here, not also for sm_80 as by default:
# every line of it compiles, with one machine-code compilation per file fewer.
echo "== Release build and tests (CUDA backend: $cuda)"
bash scripts/build.sh build -DRMSPROP_CUDA=$cuda -DCMAKE_CUDA_ARCHITECTURES=90 -DRMSPROP_WERROR=ON
(cd build && ctest --output-on-failure -j "$(nproc)")

echo "== ASan + UBSan build and tests"
# The library, the Python module, the libtorch optimizer and their tests, without the CLI and the
# benchmarks (compiled with libtorch under ASan they cost CI ~10 minutes; the CLI's tests run
# in the Release tree above). The core at -O1 and line tables only (-g1: reports still name
# file and line): the sanitizers check the source's accesses at any optimization level, and the
# intrinsics are the same code at -O1; the build took 9.4 instead of 19.3 minutes, its tests
# 267 instead of 272 s (2 cores, 2026-12-06).
bash scripts/build.sh build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRMSPROP_SANITIZE=ON \
  -DRMSPROP_CUDA=OFF -DRMSPROP_BUILD_APPS=OFF -DRMSPROP_BUILD_BENCH=OFF -DRMSPROP_WERROR=ON \
  -DRMSPROP_CORE_OPTIMIZATION=-O1 "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
# Not again under the sanitizers: the pip install (it builds its own, unsanitized module), the
# full-data training run (minutes under ASan; its code runs in cli_tests), and the checks that
# read no compiled code (golden files, clang-format).
(cd build-sanitize && ctest --output-on-failure -j "$(nproc)" \
  -E '^(python_pip_install|cli_default_train_accuracy|golden_files_are_reproducible|clang_format_clean)$')

echo "== the checkpoint fuzzer (clang, libFuzzer + ASan + UBSan)"
bash scripts/fuzz.sh build-fuzz

if [ "${RMSPROP_SKIP_TORCH2:-0}" != 1 ]; then
  echo "== torch 2.x: the Python suite and the libtorch tests (Debian 13 root)"
  bash scripts/test-torch2.sh
fi
