#!/usr/bin/env bash
# Builds here (no GPU needed) what scripts/gpu-check.sh runs on the GPU machine, packed in
# gpu-bin/bundle.tar.xz (gpu-bin/ is ignored by git: name it in the device tool's carry):
# - the CUDA test and benchmark binaries (Release, device code for sm_90 and its PTX, the CUDA
#   runtime static, so they run on newer systems than this Debian 12);
# - librmsprop.a (the core with its CUDA kernels) and the flags CMake compiles the Python
#   extension with: gpu-check.sh then builds the extension there in seconds, compiling only its
#   two sources (the kernel table takes ~5 minutes to compile there);
# - the libgomp they load (used there only where the system has none), and GoogleTest
#   (headers, static libraries, CMake package) for building rmsprop_torch_tests there.
# The working tree and the carried folder travel within 64 MiB: xz takes ~90 MB to ~20.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=${RMSPROP_GPU_PREPARE_TREE:-build}
RMSPROP_BUILD_TARGETS="rmsprop_cuda_tests rmsprop-cuda-bench _core" \
  bash scripts/build.sh "$tree" -DRMSPROP_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$stage/gtest/include" "$stage/gtest/lib/x86_64-linux-gnu/cmake"
cp "$tree/tests/rmsprop_cuda_tests" "$tree/bench/rmsprop-cuda-bench" "$tree/librmsprop.a" "$stage/"
strip "$stage/rmsprop_cuda_tests" "$stage/rmsprop-cuda-bench"
strip --strip-debug "$stage/librmsprop.a"
# The Python extension's own compile flags, as CMake generated them (without LTO: the other
# machine's compiler may not read this one's LTO objects).
flags=$tree/python/CMakeFiles/_core.dir/flags.make
{
  sed -n 's/^CXX_DEFINES = //p' "$flags"
  sed -n 's/^CXX_FLAGS = //p' "$flags" | sed 's/-flto[^ ]*//g; s/-fno-fat-lto-objects//; s/-W[a-z-]*//g'
} > "$stage/python-flags.txt"
cp -L "$(ldd "$stage/rmsprop_cuda_tests" | awk '/libgomp/ {print $3}')" "$stage/lib/"
multiarch=/usr/lib/x86_64-linux-gnu
cp -r "$multiarch/cmake/GTest" "$stage/gtest/lib/x86_64-linux-gnu/cmake/"
cp "$multiarch"/libgtest*.a "$multiarch"/libgmock*.a "$stage/gtest/lib/x86_64-linux-gnu/"
cp -r /usr/include/gtest /usr/include/gmock "$stage/gtest/include/"
rm -rf gpu-bin
mkdir -p gpu-bin
tar -C "$stage" -cf - . | xz -T0 -6 > gpu-bin/bundle.tar.xz
echo "gpu-prepare: $(du -sh "$stage" | cut -f1) packed into $(du -h gpu-bin/bundle.tar.xz | cut -f1) (gpu-bin/bundle.tar.xz)"
echo "gpu-prepare: the working tree that travels: $(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1) bytes"
