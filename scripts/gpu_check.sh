#!/usr/bin/env bash
# Runs on a GPU machine from the repository root, with gpu-bundle/ from
# scripts/gpu_bundle.sh: the GPU's state, every CUDA test (CUDA against the CPU backend),
# then the kernel timings. Each step is time-boxed; the whole run stays under 8 minutes.
# Ends with a summary table: step, result, numbers.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -f gpu-bundle/env.sh ]; then
  echo "no gpu-bundle/: run scripts/gpu_bundle.sh on the build machine first" >&2
  exit 2
fi
# The bundle's largest libraries come xz-compressed (see gpu_bundle.sh).
for f in gpu-bundle/lib/*.xz; do
  [ -e "$f" ] || continue
  so=${f%.xz}
  [ -f "$so" ] && continue
  if command -v xz >/dev/null; then
    xz -dkc "$f" >"$so.tmp"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$so.tmp"
  fi
  mv "$so.tmp" "$so"
done
# shellcheck disable=SC1091
source gpu-bundle/env.sh
LOG=${LATHE_GPU_LOG:-gpu-check-logs}
mkdir -p "$LOG"
SUMMARY=()
add() { SUMMARY+=("$(printf '%-58s %-6s %s' "$1" "$2" "$3")"); }

echo "== nvidia-smi"
if timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
  --format=csv,noheader | tee "$LOG/nvidia-smi.txt"; then
  add "nvidia-smi" "ok" "$(head -1 "$LOG/nvidia-smi.txt")"
else
  add "nvidia-smi" "FAIL" "no driver or no GPU"
fi
if ! ldconfig -p 2>/dev/null | grep -q libcublasLt.so.13 &&
  [ ! -f "${CUDA_HOME:-/usr/local/cuda}/lib64/libcublasLt.so.13" ]; then
  echo "warning: libcublasLt.so.13 (CUDA 13) not found; set CUDA_HOME to a CUDA 13 toolkit" >&2
fi
echo "== missing libraries"
missing=$(ldd gpu-bundle/bin/lathe_tests | grep "not found" || true)
if [ -n "$missing" ]; then
  echo "$missing"
  add "libraries" "FAIL" "$(echo "$missing" | awk '{print $1}' | tr '\n' ' ')"
else
  add "libraries" "ok" "all resolved"
fi

echo "== CUDA tests"
# Each test prints its own line; the seed of a failure is in its message.
timeout 300 gpu-bundle/bin/lathe_tests --gtest_filter='Cuda*:SharedMath*' --gtest_brief=0 \
  --gtest_output="xml:$LOG/cuda_tests.xml" 2>&1 | tee "$LOG/cuda_tests.txt"
rc=${PIPESTATUS[0]}
while read -r line; do
  name=$(echo "$line" | sed -E 's/^\[ *([A-Z]+) *\] ([^ ]+).*/\2/')
  state=$(echo "$line" | sed -E 's/^\[ *([A-Z]+) *\].*/\1/')
  ms=$(echo "$line" | sed -nE 's/.*\(([0-9]+ ms)\).*/\1/p')
  case $state in OK) add "$name" "pass" "$ms" ;; FAILED) add "$name" "FAIL" "$ms" ;;
    SKIPPED) add "$name" "skip" "" ;; esac
done < <(grep -E '^\[ +(OK|FAILED|SKIPPED) +\] [A-Za-z0-9_]+\.[A-Za-z0-9_/]+ \(' "$LOG/cuda_tests.txt")
[ "$rc" -eq 124 ] && add "CUDA tests" "FAIL" "timed out after 300 s"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && add "CUDA tests" "FAIL" "exit code $rc"

echo "== kernel timings"
timeout 150 gpu-bundle/bin/bench_cuda_kernels 2>&1 | tee "$LOG/bench.jsonl"
brc=${PIPESTATUS[0]}
while read -r line; do
  name=$(echo "$line" | sed -nE 's/.*"name": "([^"]+)".*/\1/p')
  [ -z "$name" ] && continue
  nums=$(echo "$line" | sed -E 's/.*"name": "[^"]+", //; s/[{}"]//g')
  add "$name" "ok" "$nums"
done <"$LOG/bench.jsonl"
[ "$brc" -ne 0 ] && add "bench_cuda_kernels" "FAIL" "exit code $brc"

echo
echo "== summary (logs in $LOG/)"
printf '%-58s %-6s %s\n' "step" "result" "numbers"
for row in "${SUMMARY[@]}"; do echo "$row"; done
if printf '%s\n' "${SUMMARY[@]}" | grep -q ' FAIL '; then exit 1; fi
