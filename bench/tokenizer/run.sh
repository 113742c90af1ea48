#!/usr/bin/env bash
# lathe's tokenizers vs the SentencePiece library on the same texts, single thread.
# Usage: bash bench/tokenizer/run.sh [DATA_DIR]   (default: $LATHE_SHARED_DATA or ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/../.."
data="${1:-${LATHE_SHARED_DATA:-../shared/data}}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
g++ -std=c++20 -O3 -DNDEBUG -Isrc -o "$out/tokenizer_bench" src/tokenizer/*.cpp \
  bench/tokenizer/tokenizer_bench.cpp
"$out/tokenizer_bench" --data "$data"
/usr/bin/python3 bench/tokenizer/sentencepiece_bench.py --data "$data"
