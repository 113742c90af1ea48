#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan, UBSan and LeakSanitizer on, in
# build-fuzz/), runs each over its saved corpus (fuzz/corpus/<target>: seeds from real
# files and regression inputs), then fuzzes each for SECONDS (default 60). Fails on any
# crash, sanitizer report, leak, timeout or out-of-memory; prints a table of executions and
# coverage per target and writes it to build-fuzz/fuzz_report.md.
#   bash scripts/fuzz.sh            60 s per target
#   bash scripts/fuzz.sh 600        longer
# A failing input is saved as build-fuzz/artifacts/<target>/crash-*; reproduce it with
# build-fuzz/fuzz/<target> FILE, and once fixed, copy it to fuzz/corpus/<target>/regress-*.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
bash scripts/setup.sh --test
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# RelWithDebInfo (-O2 -g), as libFuzzer's documentation builds: fast executions, and
# file:line in reports.
cmake -S . -B build-fuzz "${generator[@]}" "${launcher[@]}" -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLATHE_FUZZ=ON -DLATHE_TESTS=OFF -DLATHE_WERROR=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_all

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
# One thread per target: libFuzzer runs inputs one at a time, and two targets never run at
# once, so OpenMP threads would only add scheduling noise.
export OMP_NUM_THREADS=1
# 2048 MB: far above what any input up to -max_len needs (the largest seed, a 37 KB
# tokenizer.json, peaks near 100 MB under ASan); an allocation past it means a size taken
# from the input unchecked. 10 s per input: the slowest seed runs in well under 1 s.
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10)

targets=$(sed -n '/set(LATHE_FUZZ_TARGETS/,/)/p' fuzz/CMakeLists.txt | tr -s ' ()\n' '\n' |
  grep '^fuzz_')
logs=build-fuzz/logs
rm -rf "$logs"
mkdir -p "$logs"
failed=()
rows=()
for t in $targets; do
  bin=build-fuzz/fuzz/$t
  seeds=fuzz/corpus/$t
  work=build-fuzz/corpus/$t  # inputs found now; the saved corpus stays as committed
  mkdir -p "$work" "build-fuzz/artifacts/$t"
  echo "== $t: saved corpus ($(ls "$seeds" | wc -l) files)"
  if ! "$bin" "${limits[@]}" -runs=0 -artifact_prefix="build-fuzz/artifacts/$t/" "$seeds" \
      >"$logs/$t.corpus.log" 2>&1; then
    tail -n 40 "$logs/$t.corpus.log"
    failed+=("$t (saved corpus)")
    rows+=("| $t | - | - | - | - | - | FAILED on the saved corpus |")
    continue
  fi
  echo "== $t: fuzzing ${seconds}s"
  status=ok
  if ! "$bin" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/$t/" "$work" "$seeds" >"$logs/$t.log" 2>&1; then
    tail -n 60 "$logs/$t.log"
    failed+=("$t")
    status="FAILED: $(ls "build-fuzz/artifacts/$t" | head -1)"
  fi
  # libFuzzer's last status line: "#N DONE cov: E ft: F corp: U/SIZE ...".
  last=$(grep -E '^#[0-9]+' "$logs/$t.log" | tail -1 || true)
  field() { sed -nE "s/.* $1: ([^ ]+).*/\1/p" <<<"$last"; }
  stat() { sed -nE "s/^stat::$1: *([0-9]+).*/\1/p" "$logs/$t.log" | tail -1; }
  rows+=("| $t | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | $(field cov) | $(field ft) | $(field corp) | $status |")
done

{
  echo "Fuzzing: ${seconds} s per target, $(date -u +%Y-%m-%d), $(getconf _NPROCESSORS_ONLN) cores, clang $(clang++ -dumpversion)"
  echo
  echo "| target | executions | exec/s | cov (edges) | ft (features) | corpus (inputs/bytes) | result |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${rows[@]}"
} >build-fuzz/fuzz_report.md
cat build-fuzz/fuzz_report.md
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in build-fuzz/artifacts/, logs in $logs/)" >&2
  exit 1
fi
echo "fuzz: all $(wc -w <<<"$targets") targets passed"
