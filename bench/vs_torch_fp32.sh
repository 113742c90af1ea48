#!/usr/bin/env bash
# lathe fp32 and bf16 training against PyTorch fp32 on the 56M model, in interleaved
# rounds (every configuration sees the same drift of a shared machine), with the speed-ups
# taken within each round and MFU against the matrix-product peak measured in the same
# run. PyTorch's bf16 (autocast) is left out where the CPU has no bf16 dot products: it
# runs on emulated kernels there, over a minute a step. Prints the CPU it ran on.
#   bash bench/vs_torch_fp32.sh [rounds=3] [threads=2] [steps=5]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
steps=${3:-5}
model=configs/bench/llama-56m.json
out=${BENCH_OUT:-build/bench}/vs_torch_fp32.jsonl
mkdir -p "$(dirname "$out")"
lathe=./build/lathe
[ -x "$lathe" ] || bash scripts/build.sh >/dev/null
common=(--batch 4 --seq 256 --threads "$threads" --steps "$steps" --warmup 1)
"$lathe" --version
: >"$out"
run() {  # name, command...
  local name=$1
  shift
  "$@" 2>/dev/null | tail -1 | sed "s/^{/{\"run\": \"$name\", /" >>"$out"
}
for r in $(seq "$rounds"); do
  echo "# round $r of $rounds"
  run lathe_fp32 "$lathe" bench --model-config $model "${common[@]}" --precision fp32
  run lathe_bf16 "$lathe" bench --model-config $model "${common[@]}" --precision bf16
  run torch_fp32 /usr/bin/python3 bench/torch_peer.py --config $model "${common[@]}" --precision fp32
done
/usr/bin/python3 - "$out" <<'PY'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(list)
for r in rows:
    by[r["run"]].append(r)
rng = lambda xs, f="{:.0f}": f"{f.format(min(xs))}–{f.format(max(xs))}"
cpu = next((r["cpu"] for r in rows if "cpu" in r), "?")
isa = next((r["cpu_kernels_isa"] + ", oneDNN " + r["onednn_isa"] for r in rows if "cpu_kernels_isa" in r), "?")
print(f"\n{cpu} ({isa}), batch 4 x 256, {len(by['torch_fp32'])} rounds")
print("| run | tok/s | step s | MFU | matmul peak GFLOP/s | peak RSS MB |")
print("|---|---|---|---|---|---|")
for name, rs in by.items():
    mfu = [r["mfu"] * 100 for r in rs if "mfu" in r]
    peak = [r["matmul_peak_gflops"] for r in rs if "matmul_peak_gflops" in r]
    print(f"| {name} | {rng([r['tokens_per_s'] for r in rs])} | {rng([r['step_time_s'] for r in rs], '{:.2f}')} "
          f"| {rng(mfu, '{:.0f}%') if mfu else '-'} | {rng(peak) if peak else '-'} | {rng([r['peak_rss_mb'] for r in rs])} |")
def ratios(a, b):
    return [y["step_time_s"] / x["step_time_s"] for x, y in zip(by[a], by[b])]
print()
print("lathe fp32 over PyTorch fp32:", rng(ratios("lathe_fp32", "torch_fp32"), "{:.2f}x"))
print("lathe bf16 over PyTorch fp32:", rng(ratios("lathe_bf16", "torch_fp32"), "{:.2f}x"))
PY
