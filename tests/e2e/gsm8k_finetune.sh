#!/usr/bin/env bash
# End to end: raw GSM8K rows -> lathe prep -> lathe train (gsm8k template, packing) on
# the bundled stories260K, and the eval loss after training is below the one before.
set -euo pipefail
lathe=$1
src=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=(model.path="$src/examples/stories260K" data.train="$src/examples/data/gsm8k_train.jsonl"
      data.eval="$src/examples/data/gsm8k_test.jsonl" data.format=gsm8k data.packing=true
      data.seq_len=256 data.cache_dir="$out/cache" train.batch_size=8 train.max_steps=40
      train.lr=3e-3 train.warmup_steps=5 train.threads=2 output.dir="$out/run")
"$lathe" prep /dev/null "${args[@]}"
"$lathe" prep /dev/null "${args[@]}" | grep -q "cache hit"
"$lathe" train /dev/null "${args[@]}" 2>"$out/train.log" || { cat "$out/train.log"; exit 1; }
/usr/bin/python3 - "$out/run/metrics.jsonl" <<'PY'
import json, sys
evals = [json.loads(l)["eval_loss"] for l in open(sys.argv[1]) if "eval_loss" in l]
print(f"eval loss before {evals[0]:.4f}, after {evals[-1]:.4f}")
assert len(evals) >= 2 and evals[-1] < evals[0] - 0.2, evals
PY
test -f "$out/run/final/model.safetensors"
test -f "$out/run/final/tokenizer.json"
echo "1 passed, 0 failed"
