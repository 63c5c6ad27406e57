#!/usr/bin/env bash
# Installs what the project needs on Debian 12, from Debian's packages only.
set -euo pipefail
packages=(
  build-essential cmake g++ clang-format
  clang-14 libclang-rt-14-dev libomp-14-dev  # scripts/fuzz.sh: libFuzzer, OpenMP for clang
  googletest libgtest-dev libbenchmark-dev   # tests, benchmarks
  python3-torch python3-numpy                # tests/golden/generate.py: real PyTorch goldens
  python3-dev pybind11-dev python3-pytest    # the Python module and its tests
  python3-pip python3-setuptools python3-wheel  # pip install --no-build-isolation .
  libtorch-dev libcli11-dev nlohmann-json3-dev zlib1g-dev  # the rmsprop CLI and rmsprop::torch
  dataset-fashion-mnist python3-matplotlib   # its data and its plots
  python3-optuna                             # rmsprop tune --search tpe (TPE, pruning, SQLite)
  libopenmpi-dev openmpi-bin                 # rmsprop::mpi and its tests (mpirun)
  debootstrap                                # scripts/test-torch2.sh: a Debian 13 root (torch 2.x)
  # Debian's libtorch calls libblas.so.3; the reference BLAS there makes a small MLP's matmuls
  # 7x slower than OpenBLAS (docs/benchmarks.md). Debian's alternatives pick OpenBLAS once
  # it is installed, for every program using libblas.so.3.
  libopenblas0-pthread
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all Debian packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
