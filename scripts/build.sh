#!/usr/bin/env bash
# Configures and builds one build folder: build.sh DIR [cmake options...]
# RMSPROP_BUILD_TARGETS="a b" builds only those targets (and what they need).
# Prints a line per target as it is built; the compiler's full output is in DIR.build.log
# (and its tail on the terminal when the build fails).
set -euo pipefail
dir=$1
shift
cmake -S "$(dirname "$0")/.." -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" > "$dir.configure.log" 2>&1 \
  || { cat "$dir.configure.log"; exit 1; }
echo "== building $dir on $(nproc) cores (compiler output: $dir.build.log)"
targets=()
for t in ${RMSPROP_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
if ! cmake --build "$dir" -j "$(nproc)" "${targets[@]}" 2>&1 | tee "$dir.build.log" \
    | { grep --line-buffered -E '^\[ *[0-9]+%\] Built target' || true; }; then
  tail -60 "$dir.build.log"
  exit 1
fi
