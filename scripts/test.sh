#!/usr/bin/env bash
# Sets up the machine, then builds and runs every test twice: a Release build, and an
# AddressSanitizer + UndefinedBehaviorSanitizer build. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${RMSPROP_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup-debian.sh

echo "== Release build and tests"
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j "$(nproc)")

echo "== ASan + UBSan build and tests"
bash scripts/build.sh build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRMSPROP_SANITIZE=ON
(cd build-sanitize && ctest --output-on-failure -j "$(nproc)")
