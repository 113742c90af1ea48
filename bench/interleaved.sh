#!/usr/bin/env bash
# bf16 training speed on a machine whose speed drifts: lathe (full fine-tune on bf16 and
# on fp32 kernels, LoRA r=16 all-linear) and PyTorch (full, LoRA) on the 56M model, in
# interleaved rounds, so every configuration sees the same drift; prints the ranges.
#   bash bench/interleaved.sh [rounds=3] [threads=2] [steps=5]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
steps=${3:-5}
model=configs/bench/llama-56m.json
out=${BENCH_OUT:-build/bench}/interleaved.jsonl
mkdir -p "$(dirname "$out")"
lathe=./build/lathe
[ -x "$lathe" ] || bash scripts/build.sh >/dev/null
common=(--batch 4 --seq 256 --threads "$threads" --precision bf16 --steps "$steps" --warmup 1)
: >"$out"
run() {  # name, command...
  local name=$1
  shift
  "$@" | tail -1 | sed "s/^{/{\"run\": \"$name\", /" >>"$out"
}
for r in $(seq "$rounds"); do
  echo "# round $r of $rounds"
  run lathe_full "$lathe" bench --model-config $model "${common[@]}"
  run lathe_full_fp32_kernels env ONEDNN_MAX_CPU_ISA=AVX512_CORE "$lathe" bench --model-config $model "${common[@]}"
  run lathe_lora "$lathe" bench --model-config $model "${common[@]}" --peft lora --lora-r 16
  run torch_full /usr/bin/python3 bench/torch_peer.py --config $model "${common[@]}"
  run torch_lora /usr/bin/python3 bench/torch_peer.py --config $model "${common[@]}" --peft lora --lora-r 16
done
/usr/bin/python3 - "$out" <<'PY'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(list)
for r in rows:
    by[r["run"]].append(r)
rng = lambda xs, f="{:.0f}": f"{f.format(min(xs))}–{f.format(max(xs))}"
print("\n| bf16, batch 4 x 256 | tok/s | step s | MFU | peak RSS MB |")
print("|---|---|---|---|---|")
for name, rs in by.items():
    mfu = [r["mfu"] * 100 for r in rs if "mfu" in r]
    print(f"| {name} | {rng([r['tokens_per_s'] for r in rs])} | {rng([r['step_time_s'] for r in rs], '{:.2f}')} "
          f"| {rng(mfu, '{:.0f}%') if mfu else '-'} | {rng([r['peak_rss_mb'] for r in rs])} |")
# Ratios within a round: each pair ran back to back.
def ratios(a, b):
    return [x["step_time_s"] / y["step_time_s"] for x, y in zip(by[a], by[b])]
print()
print("lathe LoRA step / lathe full step:", rng(ratios("lathe_lora", "lathe_full"), "{:.2f}"))
print("PyTorch LoRA step / PyTorch full step:", rng(ratios("torch_lora", "torch_full"), "{:.2f}"))
print("lathe speed-up over PyTorch, full:", rng(ratios("torch_full", "lathe_full"), "{:.2f}x"))
print("lathe speed-up over PyTorch, LoRA:", rng(ratios("torch_lora", "lathe_lora"), "{:.2f}x"))
print("bf16 kernels speed-up over fp32 kernels:", rng(ratios("lathe_full_fp32_kernels", "lathe_full"), "{:.2f}x"))
PY
