#!/usr/bin/env bash
# Training speed and memory of lathe against PyTorch (Debian's), side by side, on the
# same model shape, batch, sequence length and thread count, for full fine-tuning and
# (bf16) LoRA / QLoRA; plus start-up time and a Llama-2-7B-shaped (2 layers) memory check.
#   bash bench/run_bench.sh [threads=2] [steps=5]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
steps=${2:-5}
model=configs/bench/llama-56m.json
out=${BENCH_OUT:-build/bench}
mkdir -p "$out"
lathe=./build/lathe
[ -x "$lathe" ] || bash scripts/build.sh >/dev/null

echo "# matrix-product peak (oneDNN, $threads threads)"
$lathe bench --peak --threads "$threads" | tee "$out/peak.json"

for precision in fp32 bf16; do
  echo "# $precision: lathe"
  $lathe bench --model-config $model --batch 4 --seq 256 --threads "$threads" \
    --precision $precision --steps "$steps" --warmup 1 | tee "$out/lathe_$precision.json"
  echo "# $precision: pytorch"
  /usr/bin/python3 bench/torch_peer.py --config $model --batch 4 --seq 256 --threads "$threads" \
    --precision $precision --steps "$steps" --warmup 1 | tail -1 | tee "$out/torch_$precision.json"
done

for peft in lora qlora; do
  echo "# bf16 $peft (r=16, all-linear): lathe"
  $lathe bench --model-config $model --batch 4 --seq 256 --threads "$threads" \
    --precision bf16 --steps "$steps" --warmup 1 --peft $peft --lora-r 16 | tee "$out/lathe_$peft.json"
done
echo "# bf16 lora (r=16, all-linear): pytorch (no QLoRA peer: bitsandbytes is not available)"
/usr/bin/python3 bench/torch_peer.py --config $model --batch 4 --seq 256 --threads "$threads" \
  --precision bf16 --steps "$steps" --warmup 1 --peft lora --lora-r 16 | tail -1 | tee "$out/torch_lora.json"

echo "# start-up: launch to first step, lathe train on a 56M HF folder (warm disk)"
$lathe bench --model-config $model --save-model "$out/llama-56m" --precision bf16 2>/dev/null
/usr/bin/python3 - "$out" <<'PY'
import json, random, sys
random.seed(0)
with open(sys.argv[1] + "/startup.jsonl", "w") as f:
    for _ in range(8):
        f.write(json.dumps({"input_ids": [random.randrange(32000) for _ in range(257)]}) + "\n")
PY
$lathe train /dev/null model.path="$out/llama-56m" data.train="$out/startup.jsonl" \
  data.seq_len=256 train.batch_size=4 train.max_steps=1 train.threads="$threads" \
  output.dir="$out/startup_run" output.overwrite=true 2>&1 | grep -o "first step starts [0-9.]*s after launch" | tee "$out/startup.txt"

echo "# lathe prep: GSM8K train, gsm8k template, Llama 2 tokenizer, $threads threads (cold, then cached)"
gsm8k=../shared/data/gsm8k/train.jsonl
[ -f "$gsm8k" ] || gsm8k=examples/data/gsm8k_train.jsonl
llama2_tok=../shared/data/tokenizers/llama2
[ -d "$llama2_tok" ] || llama2_tok=tests/data/tokenizer/llama2
mkdir -p "$out/prep_model"
cp $model "$out/prep_model/config.json"
cp "$llama2_tok"/tokenizer* "$llama2_tok"/special_tokens_map.json "$out/prep_model/" 2>/dev/null || true
rm -rf "$out/prep_cache"
for run in cold cached; do
  OMP_NUM_THREADS=$threads $lathe prep /dev/null model.path="$out/prep_model" data.train="$gsm8k" \
    data.format=gsm8k data.seq_len=1024 data.cache_dir="$out/prep_cache" | sed "s/^/$run /"
done

echo "# Llama-2-7B shape, 2 layers, bf16, activation checkpointing: one step"
$lathe bench --model-config configs/bench/llama2-7b-2layers.json --batch 1 --seq 256 \
  --threads "$threads" --precision bf16 --activation-checkpointing --steps 1 --warmup 0 \
  | tee "$out/lathe_7b_2layers.json"

/usr/bin/python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
load = lambda n: json.load(open(f"{d}/{n}.json"))
print("\n| precision | lathe tok/s | PyTorch tok/s | speed-up | lathe MFU | lathe RSS MB | PyTorch RSS MB | RSS ratio |")
print("|---|---|---|---|---|---|---|---|")
for p in ("fp32", "bf16"):
    l, t = load(f"lathe_{p}"), load(f"torch_{p}")
    print(f"| {p} | {l['tokens_per_s']:.0f} | {t['tokens_per_s']:.0f} | {l['tokens_per_s']/t['tokens_per_s']:.2f}x "
          f"| {100*l['mfu']:.1f}% | {l['peak_rss_mb']:.0f} | {t['peak_rss_mb']:.0f} | {l['peak_rss_mb']/t['peak_rss_mb']:.2f} |")
print("\n| bf16, batch 4 x 256 | tok/s | step s | step vs full | MFU | peak RSS MB | RSS vs full | frozen bytes/param |")
print("|---|---|---|---|---|---|---|---|")
for engine, full, rows in (("lathe", "lathe_bf16", ("lathe_bf16", "lathe_lora", "lathe_qlora")),
                           ("PyTorch", "torch_bf16", ("torch_bf16", "torch_lora"))):
    f = load(full)
    for n in rows:
        r = load(n)
        kind = "full" if r.get("peft", "none") == "none" else f"{r['peft']} r={r['lora_r']}"
        mfu = f"{100*r['mfu']:.1f}%" if "mfu" in r else "-"
        fb = f"{r['frozen_linear_bytes_per_param']:.2f}" if "frozen_linear_bytes_per_param" in r else "-"
        print(f"| {engine} {kind} | {r['tokens_per_s']:.0f} | {r['step_time_s']:.2f} "
              f"| {r['step_time_s']/f['step_time_s']:.2f} | {mfu} | {r['peak_rss_mb']:.0f} "
              f"| {r['peak_rss_mb']/f['peak_rss_mb']:.2f} | {fb} |")
s = load("lathe_7b_2layers")
print(f"\n7B-shaped (2 layers): {s['params']/1e6:.0f}M params, step {s['step_time_s']:.1f}s, peak RSS {s['peak_rss_mb']/1024:.1f} GiB")
PY
