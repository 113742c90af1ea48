#!/usr/bin/env bash
# End to end, LoRA: fine-tune adapters on the bundled stories260K with GSM8K rows, then
# lathe eval (base vs base + adapter), merge, and check the merged model evaluates and
# generates exactly like base + adapter.
set -euo pipefail
lathe=$1
src=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
base="$src/examples/stories260K"
common=(data.train="$src/examples/data/gsm8k_train.jsonl" data.eval="$src/examples/data/gsm8k_test.jsonl"
        data.format=gsm8k data.seq_len=256 data.cache_dir="$out/cache" train.threads=2
        train.precision=fp32 train.batch_size=8)
"$lathe" train /dev/null model.path="$base" "${common[@]}" data.packing=true train.max_steps=40 \
  train.lr=1e-2 train.warmup_steps=5 peft.method=lora peft.r=16 peft.alpha=32 \
  peft.target_modules=all-linear output.dir="$out/run" 2>"$out/train.log" || { cat "$out/train.log"; exit 1; }
test -f "$out/run/final/adapter_config.json"
test -f "$out/run/final/adapter_model.safetensors"

ev=(eval.max_samples=16 eval.max_new_tokens=48 --metrics loss,ppl,exact_match,rouge)
"$lathe" eval /dev/null model.path="$base" "${common[@]}" "${ev[@]}" >"$out/base.json" 2>"$out/eval.log" \
  || { cat "$out/eval.log"; exit 1; }
"$lathe" eval /dev/null model.path="$base" peft.adapter="$out/run/final" "${common[@]}" "${ev[@]}" \
  >"$out/adapter.json" 2>>"$out/eval.log" || { cat "$out/eval.log"; exit 1; }
"$lathe" merge --base "$base" --adapter "$out/run/final" -o "$out/merged" --dtype fp32 2>>"$out/eval.log"
"$lathe" eval /dev/null model.path="$out/merged" "${common[@]}" "${ev[@]}" >"$out/merged.json" \
  2>>"$out/eval.log" || { cat "$out/eval.log"; exit 1; }

prompt=$'Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer: '
"$lathe" generate --model "$base" --adapter "$out/run/final" --prompt "$prompt" --max-new-tokens 32 \
  --threads 2 >"$out/gen_adapter.txt" 2>/dev/null
"$lathe" generate --model "$out/merged" --prompt "$prompt" --max-new-tokens 32 --threads 2 \
  >"$out/gen_merged.txt" 2>/dev/null
cmp "$out/gen_adapter.txt" "$out/gen_merged.txt"

/usr/bin/python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
base, ad, mg = (json.load(open(f"{d}/{n}.json")) for n in ("base", "adapter", "merged"))
for k in ("eval_loss", "eval_ppl", "exact_match", "rouge1", "rougeL"):
    print(f"{k:12s} base {base[k]:.4f}  base+adapter {ad[k]:.4f}  merged {mg[k]:.4f}")
assert ad["eval_loss"] < base["eval_loss"] - 0.5, (base, ad)
assert abs(mg["eval_loss"] - ad["eval_loss"]) < 1e-4 * ad["eval_loss"], (ad, mg)
assert mg["exact_match"] == ad["exact_match"] and mg["rougeL"] == ad["rougeL"], (ad, mg)
PY
echo "1 passed, 0 failed"
