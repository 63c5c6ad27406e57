#!/usr/bin/env bash
# Installs what the project needs on Debian 12, from Debian's packages only.
set -euo pipefail
packages=(
  build-essential cmake g++ clang-format
  googletest libgtest-dev libbenchmark-dev   # tests, benchmarks
  python3-torch python3-numpy                # tests/golden/generate.py: real PyTorch goldens
  python3-dev pybind11-dev python3-pytest    # the Python module and its tests
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
