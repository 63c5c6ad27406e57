#!/usr/bin/env bash
# compute-sanitizer's memcheck and racecheck over the CUDA tests: sanitize.sh RMSPROP_CUDA_TESTS.
# Exits 77 (CTest: skipped) with the reason where there is no GPU or no compute-sanitizer.
# The ten-million-element test is left out: under the sanitizer it takes minutes and covers
# no access pattern the smaller tests do not; the sweeps over every variant run the four
# representative ones (RMSPROP_CUDA_TEST_VARIANTS: the sanitizer instruments each kernel as it
# first runs, and 1575 kernels took more than 80 s on an H200). RMSPROP_SANITIZE_BUDGET=S gives each tool at most
# S seconds (scripts/gpu-check.sh): a tool stopped there reports how far it got and fails.
set -uo pipefail
binary=$1
if ! "$binary" --gtest_filter='Cuda.ReportsTheDevice' 2>&1 | grep -q "CUDA device(s)"; then
  echo "no CUDA device here: compute-sanitizer not run"
  exit 77
fi
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ ! -x "$sanitizer" ]; then
  echo "compute-sanitizer not found (PATH, /usr/local/cuda/bin): not run"
  exit 77
fi
filter='Cuda.*:-Cuda.MatchesReferenceBitwiseOnATenMillionElementTensor'
limit=()
[ -n "${RMSPROP_SANITIZE_BUDGET:-}" ] && limit=(timeout -k 5 "$RMSPROP_SANITIZE_BUDGET")
status=0
for tool in memcheck racecheck; do
  echo "== compute-sanitizer --tool $tool"
  began=$SECONDS
  RMSPROP_CUDA_TEST_VARIANTS=representative \
    "${limit[@]}" "$sanitizer" --tool "$tool" --error-exitcode 1 "$binary" --gtest_filter="$filter"
  rc=$?
  if [ $rc = 124 ]; then
    echo "== $tool timed out after $((SECONDS - began)) s (budget $RMSPROP_SANITIZE_BUDGET s): incomplete"
  else
    echo "== $tool exit $rc after $((SECONDS - began)) s"
  fi
  [ $rc = 0 ] || status=1
done
exit $status
