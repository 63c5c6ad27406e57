#!/usr/bin/env bash
# CTest rmsprop_tests_simd_*: simd_rerun.sh TARGET COMMAND... runs COMMAND with RMSPROP_SIMD=
# TARGET, so that every test (goldens, properties, optimizers) also runs with that SIMD target
# as the kernels' default, not only the strongest one this CPU has; exits 77 (skipped) where
# this build and CPU cannot run TARGET.
set -uo pipefail
target=$1
shift
probe=$(RMSPROP_SIMD="$target" "$@" --gtest_filter=FusedKernel.ReportsItsTargets 2>&1)
if grep -q "is not a target this build and CPU have" <<< "$probe"; then
  echo "SIMD target $target: not available here"
  exit 77
fi
RMSPROP_SIMD="$target" exec "$@"
