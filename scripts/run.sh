#!/usr/bin/env bash
# Sets up the machine, builds, and runs the main job: `rmsprop train`, the seed's Fashion-MNIST
# classifier trained with RMSProp (10 epochs, then its test accuracy; results and plots under
# runs/). Arguments go to `rmsprop` instead (try --help, or train --help).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${RMSPROP_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup-debian.sh
bash scripts/build.sh build > /dev/null
[ $# -gt 0 ] || set -- train
exec ./build/apps/rmsprop "$@"
