#!/usr/bin/env bash
# `lathe export --gguf` read back by llama.cpp's Python package (gguf-py, the pin of
# tests/requirements.txt in .venv/): tests/io/gguf_export_test.py. Skips (77) without it.
set -euo pipefail
lathe=$1
src=$2
venv="$src/.venv"
if ! "$venv/bin/python" -c "import gguf" 2>/dev/null; then
  echo "SKIPPED: no gguf in $venv; run: bash scripts/setup.sh --test"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
"$venv/bin/python" "$src/tests/io/gguf_export_test.py" "$lathe" "$src" "$tmp"
echo "GGUF checks: $(($(date +%s) - start)) s"
