#!/usr/bin/env bash
# Sets up the machine, builds, and runs the main job: `rmsprop train`, the seed's Fashion-MNIST
# classifier trained with RMSProp (10 epochs, then its test accuracy; results and plots under
# runs/). Arguments go to `rmsprop` instead (try --help, or train --help).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${RMSPROP_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup-debian.sh
# The CUDA backend takes minutes to compile: built here only where a GPU driver is loaded, or
# when asked (RMSPROP_CUDA=ON or AUTO); the tests' build (scripts/test.sh) always compiles it.
if [ -z "${RMSPROP_CUDA:-}" ]; then
  if [ -e /proc/driver/nvidia/version ]; then RMSPROP_CUDA=AUTO; else RMSPROP_CUDA=OFF; fi
fi
# Only the CLI: the tests and benchmarks are scripts/test.sh's to build.
RMSPROP_BUILD_TARGETS=rmsprop bash scripts/build.sh build -DRMSPROP_CUDA="$RMSPROP_CUDA"
[ $# -gt 0 ] || set -- train
exec ./build/apps/rmsprop "$@"
