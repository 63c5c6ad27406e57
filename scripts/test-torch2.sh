#!/usr/bin/env bash
# The Python suite and the libtorch optimizer's tests against torch 2.x: Debian 13 (trixie)'s
# python3-torch and libtorch-dev, in a Debian 13 root made with debootstrap beside this Debian
# 12 machine (never in its apt sources). Run as root (debootstrap, mount, chroot).
#
#   bash scripts/test-torch2.sh            # makes /var/tmp/rmsprop-trixie once (~3 min, ~2.5 GB)
#   RMSPROP_TRIXIE_ROOT=DIR bash scripts/test-torch2.sh
#
# The root is reused when complete (its marker names the package list); the build folder
# inside it (/build) is reused too, so a second run rebuilds only what changed. Only what the
# torch-2.x tests need is built: the Python module and rmsprop_torch_tests, no CUDA, and the
# core with its baseline kernel alone (the front ends are under test here; every SIMD kernel is
# tested against the reference in the Release and sanitizer trees).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=RMSPROP_TRIXIE_ROOT bash "$0" "$@"
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${RMSPROP_TRIXIE_ROOT:-/var/tmp/rmsprop-trixie}
packages=python3-torch,python3-numpy,python3-pytest,pybind11-dev,python3-dev,g++,cmake,make
packages=$packages,libtorch-dev,libgtest-dev
marker="$root/.rmsprop-root"

if [ "$(cat "$marker" 2>/dev/null)" != "$packages" ]; then
  command -v debootstrap > /dev/null || apt-get install -y -q debootstrap
  echo "== making a Debian 13 root in $root (debootstrap, ~3 min)"
  rm -rf "$root"
  debootstrap --variant=minbase --include="$packages" trixie "$root" \
    http://deb.debian.org/debian > "$root.debootstrap.log" 2>&1 \
    || { tail -30 "$root.debootstrap.log"; exit 1; }
  echo "$packages" > "$marker"
fi

mkdir -p "$root/src"
mount -t proc proc "$root/proc"
mount --bind "$repo" "$root/src"
cleanup() {
  umount "$root/src" || true
  umount "$root/proc" || true
}
trap cleanup EXIT

chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root PYTHONDONTWRITEBYTECODE=1 \
  /bin/bash -euo pipefail -c '
    echo "== torch $(python3 -c "import torch; print(torch.__version__)"), $(g++ --version | head -1)"
    cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DRMSPROP_CUDA=OFF \
      -DRMSPROP_BUILD_APPS=OFF -DRMSPROP_BUILD_BENCH=OFF -DRMSPROP_PYTHON=/usr/bin/python3 \
      -DRMSPROP_WERROR=ON -DRMSPROP_X86_KERNELS=OFF \
      > /build.configure.log 2>&1 || { cat /build.configure.log; exit 1; }
    cmake --build /build -j "$(nproc)" --target _core rmsprop_torch_tests
    echo "== libtorch optimizer tests (libtorch 2.x)"
    /build/tests/rmsprop_torch_tests --gtest_brief=1
    echo "== Python suite (torch 2.x)"
    cd /src/python/tests
    PYTHONPATH=/build/python python3 -m pytest -q -p no:cacheprovider
  '
