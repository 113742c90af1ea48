#!/usr/bin/env bash
# llama.cpp itself on lathe's GGUF exports (tests/io/llama_cpp_check.py): llama-quantize
# --pure's bytes equal lathe's quantizers', llama-server generates stories260K's greedy
# tokens as `lathe generate` does (f32, f16; q8_0, q4_0, q4_k reported) and tokenizes as
# `lathe tokenize` does, and its convert_hf_to_gguf.py writes the files lathe writes.
# llama.cpp comes from scripts/llama_cpp.sh (built once into
# build/llama.cpp: 14 min of CPU time the first time, then reused); gguf-py from .venv/.
# Skips (77) without the gguf pin, or where PyPI cannot be reached (outside CI).
set -euo pipefail
lathe=$1
src=$2
venv="$src/.venv"
if ! "$venv/bin/python" -c "import gguf" 2>/dev/null; then
  echo "SKIPPED: no gguf in $venv; run: bash scripts/setup.sh --test"
  exit 77
fi
log=$(mktemp)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$log"' EXIT
status=0
bash "$src/scripts/llama_cpp.sh" >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  cat "$log"
  # No PyPI is a missing tool (skip), except in CI, which must run this test; a build that
  # fails is a failure everywhere.
  if [ "$status" -eq 3 ] && [ "${CI:-}" != true ]; then
    echo "SKIPPED: llama.cpp's source could not be downloaded (see above)"
    exit 77
  fi
  echo "FAILED: scripts/llama_cpp.sh exited $status"
  exit 1
fi
bin=$(tail -n 1 "$log")
head -n -1 "$log"
start=$(date +%s)
OMP_NUM_THREADS=2 "$venv/bin/python" "$src/tests/io/llama_cpp_check.py" "$lathe" "$src" "$bin" "$tmp"
echo "llama.cpp checks: $(($(date +%s) - start)) s"
