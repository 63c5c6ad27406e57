#!/usr/bin/env bash
# run-checkpoint-fuzz.sh FUZZER CORPUS_WRITER VERSION_ONE_FILE WORK_DIR SECONDS [libFuzzer flags]
# Writes the seeds and dictionary, then fuzzes for SECONDS (0: only runs the seeds). The
# corpus it grows stays in WORK_DIR/corpus for the next run; a failing input is saved in
# WORK_DIR as crash-*/leak-*/timeout-* and the exit status is non-zero.
set -euo pipefail
fuzzer=$1 writer=$2 v1=$3 work=$4 seconds=$5
shift 5
mkdir -p "$work/corpus"
# ASan's fill of fresh allocations and a 256 MB quarantine cost a third of the executions per
# second here (the target allocates four optimizers per input); 8 MB still catches the
# use-after-free of a load's own buffers.
export ASAN_OPTIONS=${ASAN_OPTIONS:-max_malloc_fill_size=0:quarantine_size_mb=8}
"$writer" "$work/seeds" "$work/checkpoint.dict" "$v1"
flags=(-dict="$work/checkpoint.dict" -artifact_prefix="$work/" -print_final_stats=1 -print_funcs=0
       -timeout=10 -rss_limit_mb=1024 -max_len=16384)
if [ "$seconds" = 0 ]; then
  exec "$fuzzer" "${flags[@]}" -runs=0 "$work/seeds" "$@"
fi
exec "$fuzzer" "${flags[@]}" -max_total_time="$seconds" "$work/corpus" "$work/seeds" "$@"
