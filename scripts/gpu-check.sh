#!/usr/bin/env bash
# The whole GPU check in one command, from the repository root of a machine with an NVIDIA GPU:
#
#   bash scripts/gpu-prepare.sh          # here (no GPU needed): gpu-bin/bundle.tar.xz
#   bash scripts/gpu-check.sh OUT        # there: everything below, results in OUT
#
# 1. The CUDA tests and benchmark built by gpu-prepare.sh (rmsprop_cuda_tests,
#    rmsprop-cuda-bench; the CUDA runtime is static, so Debian 12 binaries run on newer systems).
# 2. compute-sanitizer memcheck and racecheck over the CUDA tests (tests/cuda/sanitize.sh).
# 3. The Python extension built there for its own Python (pybind11 from that Python), in the
#    background while 1-2 run: by default its two sources compiled there and linked with the
#    core (CUDA kernels for sm_90) built here by gpu-prepare.sh, in seconds; with
#    RMSPROP_GPU_PYTHON_BUILD=cmake the whole project's CMake build there (nvcc, sm_90, all
#    cores: ~5.5 minutes on an H200 machine's 16 cores, the kernel table's four files being
#    the long pole). Then python/tests/test_cuda.py, the rest of python/tests,
#    bench/cuda_state8_bench.py (8-bit state: memory, time) and bench/cuda_torch_bench.py
#    against that machine's torch.
# 4. rmsprop::torch's tests against that machine's libtorch (with CUDA), where its CMake
#    package configures (the log says why not): built in the background after the extension
#    (quick: in a tree of their own, the core without its AVX2 / AVX-512 kernels; cmake: in
#    the same tree), run if built before the deadline.
# 5. Real optax and timm beside our flavors (tests/golden/record_libraries.py, on the CPU):
#    OUT/libraries.txt is the golden file tests/golden_test.cpp reads.
#
# OUT gets summary.txt (everything that matters, also printed at the end), libraries.txt and
# logs.tar.gz (every phase's full output, the timeline and the exit codes). Each phase has a
# time limit, so the whole check ends in about 8 minutes even when a phase hangs. Where there
# is no GPU every GPU phase reports skipped (the dry run: the builds, the control flow, the
# comparison against the libraries' stand-ins, the output layout).
#
# Environment: RMSPROP_GPU_BIN (default gpu-bin), RMSPROP_PYTHON (default python3),
# RMSPROP_GPU_BUILD (default /tmp/rmsprop-gpu-build), RMSPROP_CUDA_ARCH (default 90),
# RMSPROP_GPU_CHECK_DEADLINE (default 480 seconds; phases are cut to end before it),
# RMSPROP_GPU_PYTHON_BUILD (quick or cmake, above), RMSPROP_GPU_CHECK_PHASES (the phases to
# run, default all: cuda-tests cuda-bench sanitizer python-cuda python-tests state8-bench
# torch-bench libraries torch-tests).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
logs=$out/logs
bin=$(realpath -m "${RMSPROP_GPU_BIN:-gpu-bin}")
phases=${RMSPROP_GPU_CHECK_PHASES:-cuda-tests cuda-bench sanitizer python-cuda python-tests state8-bench torch-bench libraries torch-tests}
want() { [[ " $phases " == *" $1 "* ]]; }
py=${RMSPROP_PYTHON:-python3}
build=${RMSPROP_GPU_BUILD:-/tmp/rmsprop-gpu-build}
arch=${RMSPROP_CUDA_ARCH:-90}
jobs=$(nproc)
deadline=${RMSPROP_GPU_CHECK_DEADLINE:-480}  # seconds: every phase ends before it
: > "$logs/status.txt"

log() { printf '[%4ds] %s\n' "$SECONDS" "$*" | tee -a "$logs/timeline.txt"; }

# phase NAME LIMIT COMMAND...: runs COMMAND with a time limit (seconds; cut to what is left
# before the deadline, keeping 20 s for the summary), its output in logs/NAME.txt; records
# "NAME exit seconds" in logs/status.txt (exit 124: timed out; "skipped": no time left).
phase() {
  local name=$1 limit=$2 began=$SECONDS rc left
  shift 2
  if ! want "$name"; then
    log "$name: not asked for (RMSPROP_GPU_CHECK_PHASES)"
    return 0
  fi
  left=$((deadline - 20 - SECONDS))
  if [ $left -lt 15 ]; then
    echo "$name skipped 0" >> "$logs/status.txt"
    log "$name: skipped (the deadline, ${deadline}s, is near)"
    return 1
  fi
  [ $left -lt $limit ] && limit=$left
  log "$name: start (limit ${limit}s)"
  timeout -k 10 "$limit" "$@" > "$logs/$name.txt" 2>&1
  rc=$?
  echo "$name $rc $((SECONDS - began))" >> "$logs/status.txt"
  log "$name: exit $rc after $((SECONDS - began))s"
  return $rc
}

if [ -f "$bin/bundle.tar.xz" ]; then
  mkdir -p "$build-bin"
  tar -C "$build-bin" -xJf "$bin/bundle.tar.xz"
  bin=$build-bin
fi
pybuild=${RMSPROP_GPU_PYTHON_BUILD:-quick}
[ -f "$bin/librmsprop.a" ] || pybuild=cmake

gpu=0
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then gpu=1; fi
log "gpu-check: GPU present: $gpu; binaries from $bin; python $py; build in $build"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git status --porcelain 2>/dev/null | grep -q . && echo '(with uncommitted changes)')"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1 || echo "nvidia-smi: none"
  (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1 | tail -2
  echo "compute-sanitizer: $(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || echo none)"
  g++ --version | head -1
  cmake --version | head -1
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $jobs"
  "$py" - << 'EOF'
import importlib, sys
print("python", sys.version.split()[0], sys.executable)
for name in ("torch", "numpy", "pybind11", "pytest", "xdist", "jax", "optax", "timm"):
    try:
        m = importlib.import_module(name)
        print(f"{name} {getattr(m, '__version__', '?')}")
    except Exception as e:
        print(f"{name}: not importable ({type(e).__name__}: {e})")
try:
    import torch
    print("torch cuda:", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())
except Exception as e:
    print("torch cuda: ?", e)
EOF
} > "$logs/env.txt" 2>&1

# --- 3 (background): the Python extension, then rmsprop::torch's tests -----------------------
# Quick: the extension's sources with CMake's flags for them (gpu-prepare.sh kept them), linked
# with the prebuilt core and the static CUDA runtime, the package's .py files beside it.
build_python_quick() {
  local include pybind suffix flags cuda=/usr/local/cuda
  include=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  # pybind11 from that Python's packages, else the system's headers (Debian's pybind11-dev)
  pybind=$("$py" -c 'import pybind11; print("-isystem", pybind11.get_include())' 2>/dev/null)
  suffix=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  read -r -a flags <<< "$(tr '\n' ' ' < "$bin/python-flags.txt")"
  mkdir -p "$build/python/rmsprop"
  cp python/rmsprop/*.py "$build/python/rmsprop/"
  for source in module torch_stepper; do
    g++ "${flags[@]}" -Iinclude -isystem "$include" $pybind -isystem "$cuda/include" \
      -c "python/src/$source.cpp" -o "$build/$source.o" &
  done
  wait -n && wait -n || return 1
  g++ -shared -o "$build/python/rmsprop/_core$suffix" "$build/module.o" "$build/torch_stepper.o" \
    "$bin/librmsprop.a" -fopenmp -L"$cuda/lib64" -lcudart_static -ldl -lrt -lpthread || return 1
  touch "$build/.python-built"
  echo "built $build/python/rmsprop/_core$suffix from the prebuilt core"
}

# libtorch's CMake package (from that Python's torch) and GoogleTest's (carried in gpu-bin/gtest),
# into torch_prefix and gtest_dir; either may be empty.
find_torch_and_gtest() {
  torch_prefix=$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)
  gtest_dir=$(ls -d "$bin"/gtest/lib/*/cmake/GTest 2>/dev/null | head -1)
}
build_python_cmake() {
  local pybind torch_prefix gtest_dir configure
  pybind=$("$py" -m pybind11 --cmakedir 2>/dev/null || true)
  find_torch_and_gtest
  configure=(cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DRMSPROP_PYTHON="$(command -v "$py")"
    -DRMSPROP_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DRMSPROP_BUILD_APPS=OFF
    -DRMSPROP_BUILD_BENCH=OFF ${pybind:+-Dpybind11_DIR=$pybind})
  # With libtorch and GoogleTest where both configure; else the Python extension alone.
  if [ -n "$torch_prefix" ] && [ -n "$gtest_dir" ] &&
     "${configure[@]}" -DRMSPROP_BUILD_TORCH=ON -DRMSPROP_BUILD_TESTS=ON \
       -DCMAKE_PREFIX_PATH="$torch_prefix" -DGTest_DIR="$gtest_dir" > "$logs/configure.txt" 2>&1; then
    echo "configured with libtorch ($torch_prefix) and GoogleTest ($gtest_dir)"
  else
    echo "libtorch/GoogleTest did not configure (logs/configure.txt): the Python extension alone"
    rm -rf "$build"
    "${configure[@]}" -DRMSPROP_BUILD_TORCH=OFF -DRMSPROP_BUILD_TESTS=OFF \
      > "$logs/configure-python.txt" 2>&1 || { cat "$logs/configure-python.txt"; return 1; }
  fi
  cmake --build "$build" -j "$jobs" --target _core || return 1
  touch "$build/.python-built"
  if [ -d "$build/tests/CMakeFiles/rmsprop_torch_tests.dir" ]; then
    cmake --build "$build" -j "$jobs" --target rmsprop_torch_tests \
      > "$logs/build-torch-tests.txt" 2>&1 &&
      ln -sf "$build/tests/rmsprop_torch_tests" "$build/rmsprop_torch_tests" &&
      touch "$build/.torch-tests-built"
  fi
  return 0
}
# Quick mode: rmsprop_torch_tests alone in a tree of its own (after the extension, beside the
# other phases), against that machine's libtorch: the core with its CUDA kernels and without its
# AVX2 / AVX-512 kernels (what is under test is the libtorch front end on the GPU).
build_torch_tests_quick() {
  local torch_prefix gtest_dir
  find_torch_and_gtest
  if [ -z "$torch_prefix" ] || [ -z "$gtest_dir" ]; then
    echo "no libtorch CMake package ('$torch_prefix') or GoogleTest ('$gtest_dir')"
    return 1
  fi
  cmake -S . -B "$build-torch" -DCMAKE_BUILD_TYPE=Release -DRMSPROP_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" -DRMSPROP_X86_KERNELS=OFF -DRMSPROP_BUILD_APPS=OFF \
    -DRMSPROP_BUILD_BENCH=OFF -DRMSPROP_BUILD_PYTHON=OFF -DRMSPROP_BUILD_MPI=OFF \
    -DRMSPROP_BUILD_TORCH=ON -DRMSPROP_BUILD_TESTS=ON -DCMAKE_PREFIX_PATH="$torch_prefix" \
    -DGTest_DIR="$gtest_dir" > "$logs/configure.txt" 2>&1 || { tail -20 "$logs/configure.txt"; return 1; }
  [ -d "$build-torch/tests/CMakeFiles/rmsprop_torch_tests.dir" ] ||
    { echo "configured without rmsprop_torch_tests (logs/configure.txt)"; return 1; }
  cmake --build "$build-torch" -j "$jobs" --target rmsprop_torch_tests || return 1
  ln -sf "$build-torch/tests/rmsprop_torch_tests" "$build/rmsprop_torch_tests"
  touch "$build/.torch-tests-built"
}
# the process and everything it started (the builds run make, nvcc and compilers below it)
kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill "$1" 2> /dev/null
}
rm -rf "$build" "$build-torch"
log "build-python ($pybuild): start in the background"
(
  build_python_$pybuild > "$logs/build-python.txt" 2>&1
  echo "build-python $? $SECONDS" >> "$logs/status.txt"
  if [ $pybuild = quick ] && want torch-tests; then
    build_torch_tests_quick > "$logs/build-torch-tests.txt" 2>&1
    echo "build-torch-tests $? $SECONDS" >> "$logs/status.txt"
  fi
) &
builder=$!

# --- 1, 2: the CUDA tests, the sanitizers, the CUDA benchmark (binaries from gpu-prepare.sh) --
tests_bin=$bin/rmsprop_cuda_tests
bench_bin=$bin/rmsprop-cuda-bench
# The libgomp carried from here serves only where the system has none.
if [ -x "$tests_bin" ] && ldd "$tests_bin" | grep -q "not found"; then
  export LD_LIBRARY_PATH="$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  log "using the carried $(ls "$bin/lib")"
fi
if [ ! -x "$tests_bin" ] || [ ! -x "$bench_bin" ]; then
  log "no $tests_bin / $bench_bin: run scripts/gpu-prepare.sh first (the C++ GPU phases are skipped)"
else
  phase cuda-tests 240 "$tests_bin" --gtest_output="xml:$logs/cuda_tests.xml"
  if [ $gpu = 1 ]; then
    phase cuda-bench 180 "$bench_bin" --repeats 20
  else
    phase cuda-bench 60 "$bench_bin" --quick --repeats 2
  fi
  # while the Python extension builds
  phase sanitizer 170 env RMSPROP_SANITIZE_BUDGET=${RMSPROP_SANITIZE_BUDGET:-80} bash tests/cuda/sanitize.sh "$tests_bin"
fi

# --- 3: the Python suite and the torch benchmark on the machine's torch ----------------------
log "waiting for the Python build"
while kill -0 $builder 2> /dev/null && [ ! -e "$build/.python-built" ] &&
      [ $SECONDS -lt $((deadline - 60)) ]; do
  sleep 2
done
if [ -e "$build/.python-built" ]; then
  export PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}"
  # 5 runs on the CPU beside the GPU phases (JAX kept off the GPU)
  want libraries && (JAX_PLATFORMS=cpu timeout -k 10 $((deadline - 30 - SECONDS)) "$py" tests/golden/record_libraries.py "$out/libraries.txt" \
     > "$logs/libraries.txt" 2>&1; echo "libraries $? $SECONDS" >> "$logs/status.txt") &
  flavors=$!
  xdist=()
  "$py" -c "import xdist" 2> /dev/null && xdist=(-n 8)
  phase python-cuda 240 "$py" -m pytest -v -rs -p no:cacheprovider python/tests/test_cuda.py
  phase python-tests 300 "$py" -m pytest -q -rs -p no:cacheprovider "${xdist[@]}" \
    python/tests --ignore=python/tests/test_cuda.py
  if [ $gpu = 1 ]; then
    phase state8-bench 120 "$py" bench/cuda_state8_bench.py --repeats 20
    phase torch-bench 300 "$py" bench/cuda_torch_bench.py --repeats 20
  else
    log "state8-bench, torch-bench: skipped (no GPU)"
  fi
  wait $flavors
else
  log "the Python build failed (logs/build-python.txt): Python phases skipped"
fi
log "waiting for the libtorch tests' build"
while kill -0 $builder 2> /dev/null && [ $SECONDS -lt $((deadline - 40)) ]; do sleep 2; done
if kill -0 $builder 2> /dev/null; then
  log "the libtorch tests' build is still running at the deadline: stopped"
  kill_tree $builder
fi
wait $builder
if [ -e "$build/.torch-tests-built" ]; then
  phase torch-tests 180 "$build/rmsprop_torch_tests" --gtest_output="xml:$logs/torch_tests.xml"
else
  log "rmsprop_torch_tests not built (logs/build-python.txt, configure.txt, build-torch-tests.txt)"
fi

# --- the summary ------------------------------------------------------------------------------
{
  echo "# GPU check, $(date -u +%Y-%m-%d) ($SECONDS s)"
  echo
  sed 's/^/    /' "$logs/env.txt"
  echo
  echo "## Phases (name, exit status, seconds; 124 = timed out)"
  sed 's/^/    /' "$logs/status.txt"
  for xml in cuda_tests torch_tests; do
    [ -f "$logs/$xml.xml" ] || continue
    echo
    echo "## $xml: $(grep -m1 '<testsuites' "$logs/$xml.xml" | grep -o 'tests="[0-9]*"\|failures="[0-9]*"\|disabled="[0-9]*"\|errors="[0-9]*"' | tr '\n' ' ')"
    echo "    skipped: $(grep -c '<skipped' "$logs/$xml.xml")"
    grep -B1 '<failure' "$logs/$xml.xml" | grep -o 'name="[^"]*"' | sed 's/^/    FAILED /' | head -40
  done
  echo
  echo "## compute-sanitizer"
  grep -E '^== |ERROR SUMMARY|budget|skipped|not run|PASSED|FAILED|timed out' "$logs/sanitizer.txt" 2>/dev/null | sed 's/^/    /' | head -40
  for name in cuda-bench state8-bench torch-bench; do
    [ -f "$logs/$name.txt" ] || continue
    echo
    echo "## $name"
    sed 's/^/    /' "$logs/$name.txt" | tail -40
  done
  for name in python-cuda python-tests; do
    [ -f "$logs/$name.txt" ] || continue
    echo
    echo "## $name"
    grep -E 'FAILED|ERROR|SKIPPED|[0-9]+ (passed|failed|skipped|error)' "$logs/$name.txt" | sed 's/^/    /' | tail -40
  done
  echo
  echo "## optax and timm beside our flavors (tests/golden/record_libraries.py)"
  sed 's/^/    /' "$logs/libraries.txt" 2>/dev/null | tail -40
  echo
  echo "## build"
  tail -5 "$logs/build-python.txt" 2>/dev/null | sed 's/^/    /'
  grep -m3 -iE 'error|not found|could not' "$logs/configure.txt" 2>/dev/null | sed 's/^/    configure: /'
  tail -3 "$logs/build-torch-tests.txt" 2>/dev/null | sed 's/^/    torch tests: /'
} > "$out/summary.txt" 2>&1
tar czf "$out/logs.tar.gz" -C "$out" logs && rm -rf "$logs"
cat "$out/summary.txt"
