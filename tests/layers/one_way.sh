#!/usr/bin/env bash
# Layers call only downwards (docs/architecture.md): every `#include "X/..."` in src/ must
# name a file of the same or a lower layer. Prints each include that goes up as
# file:line and fails. Usage: one_way.sh [SRC_DIR] (default: the src/ beside tests/).
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/../../src" && pwd)}

# Rank of a path relative to src/; the longest matching prefix wins. Most folders are one
# layer; the rows with a file or sub-folder name are the files whose place differs from
# their folder's, each with the reason.
layer_of() {
  case "$1" in
    core/*) echo 0 ;;
    # The implementations are built on the kernels; the interface (backend/*.h) is below them.
    backend/cpu/* | backend/cuda/*) echo 3 ;;
    backend/*) echo 1 ;;
    kernels/*) echo 2 ;;
    # Collectives know nothing of models; the model's sharded gathers run on them.
    dist/communicator.* | dist/comm_worker.*) echo 4 ;;
    # Model file formats (config.json, HF export, GGUF export, PEFT adapters) read and write
    # model types.
    io/hf_config.* | io/hf_export.* | io/gguf_export.* | io/peft_adapter.*) echo 6 ;;
    # Run records (TensorBoard event files) know only core; the trainer writes them.
    io/* | tokenizer/* | data/* | metrics/*) echo 4 ;;
    model/*) echo 5 ;;
    dist/*) echo 6 ;;
    generate/*) echo 7 ;;
    eval/*) echo 8 ;;
    # The server and the trainer are siblings: each knows generation, neither the other.
    train/* | serve/*) echo 9 ;;
    cli/*) echo 10 ;;
    *) echo unknown ;;
  esac
}

bad=0
checked=0
while IFS= read -r file; do
  rel=${file#"$src"/}
  from=$(layer_of "$rel")
  if [[ $from == unknown ]]; then
    echo "$rel: folder has no layer in tests/layers/one_way.sh; add it" >&2
    bad=1
    continue
  fi
  while IFS=: read -r line inc; do
    to=$(layer_of "$inc")
    checked=$((checked + 1))
    if [[ $to == unknown || $to -gt $from ]]; then
      echo "src/$rel:$line: includes \"$inc\" (layer $to) from layer $from" >&2
      bad=1
    fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]*/' "$file" |
    sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
done < <(find "$src" -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) | sort)

if [[ $bad != 0 ]]; then
  echo "layers.one_way: includes go up a layer (see above)" >&2
  exit 1
fi
echo "layers.one_way: $checked includes, all downwards or within a layer"
