#!/usr/bin/env bash
# CTest python_pip_install: `pip install --no-build-isolation .` from a copy of the source
# (pip builds in-tree; the copy keeps the checkout clean), into a target folder, using only
# Debian's packages; then the installed module works from another directory.
#   pip_install_check.sh SOURCE_DIR PYTHON
set -euo pipefail
source_dir=$1
python=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$source_dir" --exclude='./build*' --exclude='./runs' --exclude='./.git' -cf - . |
  (mkdir "$work/src" && tar -C "$work/src" -xf -)
# The CUDA kernels are compiled and tested by the main build; here they would only add minutes,
# as would the core's -O3 and its AVX2 / AVX-512 kernels (this checks the install, not the
# kernels: -O1, as the sanitizer build compiles the core, and the baseline kernel alone).
if ! (cd "$work/src" && RMSPROP_CUDA=OFF \
        RMSPROP_CMAKE_ARGS="-DRMSPROP_CORE_OPTIMIZATION=-O1 -DRMSPROP_X86_KERNELS=OFF" \
        "$python" -m pip install --no-build-isolation --no-deps --no-index \
        --target "$work/site" . > "$work/pip.log" 2>&1); then
  cat "$work/pip.log"
  exit 1
fi
cd /
PYTHONPATH="$work/site" "$python" -c '
import numpy as np, rmsprop
w = np.ones(4, dtype=np.float32)
opt = rmsprop.RMSprop([w], lr=0.1, flavor="tf1")
opt.step([np.full(4, 2.0, dtype=np.float32)])
assert rmsprop.__file__.startswith("'"$work/site"'"), rmsprop.__file__
assert (w < 1).all(), w
print("installed and stepped:", rmsprop.__file__, w)
'
