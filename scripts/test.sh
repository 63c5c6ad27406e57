#!/usr/bin/env bash
# Sets up the machine, then builds and runs every test twice: a Release build, and an
# AddressSanitizer + UndefinedBehaviorSanitizer build. Exits non-zero on any failure.
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

echo "== Release build and tests (CUDA backend: $cuda)"
bash scripts/build.sh build -DRMSPROP_CUDA=$cuda
(cd build && ctest --output-on-failure -j "$(nproc)")

echo "== ASan + UBSan build and tests"
bash scripts/build.sh build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRMSPROP_SANITIZE=ON \
  -DRMSPROP_CUDA=OFF
(cd build-sanitize && ctest --output-on-failure -j "$(nproc)")
