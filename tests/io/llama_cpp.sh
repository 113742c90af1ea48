#!/usr/bin/env bash
# llama.cpp itself on lathe's GGUF exports (tests/io/llama_cpp_check.py): llama-quantize
# --pure's bytes equal lathe's quantizers', llama-server generates stories260K's greedy
# tokens as `lathe generate` does (f32, f16; q8_0, q4_0, q4_k reported) and tokenizes as
# `lathe tokenize` does. llama.cpp comes from scripts/llama_cpp.sh (built once into
# build/llama.cpp, about 40 min on 2 busy cores the first time); gguf-py from .venv/.
# Skips (77) without the gguf pin or where llama.cpp cannot be downloaded or built.
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
if ! bash "$src/scripts/llama_cpp.sh" >"$log" 2>&1; then
  cat "$log"
  echo "SKIPPED: llama.cpp could not be downloaded or built (see above)"
  exit 77
fi
bin=$(tail -n 1 "$log")
head -n -1 "$log"
start=$(date +%s)
OMP_NUM_THREADS=2 "$venv/bin/python" "$src/tests/io/llama_cpp_check.py" "$lathe" "$src" "$bin" "$tmp"
echo "llama.cpp checks: $(($(date +%s) - start)) s"
