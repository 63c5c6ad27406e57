#!/usr/bin/env bash
# Sets up the machine, builds, and runs the main job: RMSProp fitting a linear regression.
# Arguments go to the program (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${RMSPROP_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup-debian.sh
bash scripts/build.sh build > /dev/null
exec ./build/apps/rmsprop-linreg "$@"
