#!/usr/bin/env bash
# Builds here (no GPU needed) what scripts/gpu-check.sh runs on the GPU machine, in gpu-bin/
# (ignored by git; name it in the device tool's carry): the CUDA test and benchmark binaries
# (Release, device code for sm_90 and its PTX, the CUDA runtime static), the libgomp they load
# (used there only if that system lacks one), and GoogleTest (headers, static libraries, CMake
# package) for building rmsprop_torch_tests there against its libtorch. Prints the sizes: the
# working tree and the carried folders travel within 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=${RMSPROP_GPU_PREPARE_TREE:-build}
RMSPROP_BUILD_TARGETS="rmsprop_cuda_tests rmsprop-cuda-bench" \
  bash scripts/build.sh "$tree" -DRMSPROP_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
rm -rf gpu-bin
mkdir -p gpu-bin/lib gpu-bin/gtest/include gpu-bin/gtest/lib/x86_64-linux-gnu/cmake
cp "$tree/tests/rmsprop_cuda_tests" "$tree/bench/rmsprop-cuda-bench" gpu-bin/
strip gpu-bin/rmsprop_cuda_tests gpu-bin/rmsprop-cuda-bench
cp -L "$(ldd gpu-bin/rmsprop_cuda_tests | awk '/libgomp/ {print $3}')" gpu-bin/lib/
multiarch=/usr/lib/x86_64-linux-gnu
cp -r "$multiarch/cmake/GTest" gpu-bin/gtest/lib/x86_64-linux-gnu/cmake/
cp "$multiarch"/libgtest*.a "$multiarch"/libgmock*.a gpu-bin/gtest/lib/x86_64-linux-gnu/
cp -r /usr/include/gtest /usr/include/gmock gpu-bin/gtest/include/
du -sh gpu-bin/* gpu-bin | sed 's/^/gpu-prepare: /'
echo "gpu-prepare: the working tree that travels: $(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1) bytes"
