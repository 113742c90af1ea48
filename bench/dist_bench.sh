#!/usr/bin/env bash
# Data parallel on one machine: for 1, 2 and 4 processes and each strategy, the 56M model
# (micro-batch 1 × 256 per process, fp32): tokens/s, bytes each process sends per step
# next to the theory (ring all-reduce of the fp32 gradient: 2(N-1)/N · 4Ψ; reduce-scatter
# + all-gather: the same), the share of the step the training thread spent waiting on
# communication with the communication thread on (dist.overlap=true, the default) and
# off (every collective inline), with the tokens/s of both, and each
# process's peak RSS next to `lathe plan`'s prediction plus the process runtime (lathe,
# oneDNN and Open MPI themselves: measured per process count on a tiny model).
#   bash bench/dist_bench.sh [steps=3]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-3}
out=${BENCH_OUT:-build/bench/dist}
mkdir -p "$out"
lathe=./build/lathe
[ -x "$lathe" ] || bash scripts/build.sh >/dev/null
model=configs/bench/llama-56m.json
[ -d "$out/llama-56m" ] || $lathe bench --model-config $model --save-model "$out/llama-56m" --precision fp32 2>/dev/null
/usr/bin/python3 - "$out" <<'PY'
import json, random, sys
random.seed(0)
with open(sys.argv[1] + "/rows.jsonl", "w") as f:
    for _ in range(64):
        f.write(json.dumps({"input_ids": [random.randrange(32000) for _ in range(257)]}) + "\n")
PY
root=""; [ "$(id -u)" -eq 0 ] && root="--allow-run-as-root"
args=(model.path="$out/llama-56m" data.train="$out/rows.jsonl" data.seq_len=256 data.shuffle=false
      train.precision=fp32 train.batch_size=1 train.max_steps="$steps" train.threads=1 train.grad_clip=1.0
      dist.shard_group_size=2)
cat > "$out/tiny.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
 "num_key_value_heads": 4, "vocab_size": 32000, "max_position_embeddings": 512,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true}
JSON
[ -d "$out/tiny" ] || $lathe bench --model-config "$out/tiny.json" --save-model "$out/tiny" --precision fp32 2>/dev/null
echo "| processes | strategy | tok/s (all), overlap | tok/s, inline | bytes sent / process / step | theory | waiting on comm, overlap | comm thread busy | waiting, inline | peak RSS / process | plan + runtime | error |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for np in 1 2 4; do
  # The runtime: a 2-layer, 64-wide model's run with the same processes (its own plan subtracted).
  rm -f "$out/tiny_$np.rss"
  OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE mpirun $root --oversubscribe --bind-to none -np "$np" \
    /usr/bin/time -a -o "$out/tiny_$np.rss" -f "rss_kb %M" $lathe train /dev/null "${args[@]}" model.path="$out/tiny" \
    output.dir="$out/tiny_run_$np" output.overwrite=true >"$out/tiny_$np.log" 2>&1
  tiny_plan=$($lathe plan /dev/null "${args[@]}" model.path="$out/tiny" --world-size "$np" --json 2>/dev/null \
              | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['lathe']['total'] / 1048576)")
  runtime=$(/usr/bin/python3 -c "import re,sys; r=[int(x)/1024 for x in re.findall(r'rss_kb (\d+)', open('$out/tiny_$np.rss').read())]; print(max(r) - $tiny_plan)")
  for strategy in no_shard zero1 shard_grad_op full_shard hybrid_shard; do
    [ "$np" -eq 1 ] && [ "$strategy" != no_shard ] && continue
    [ "$strategy" = hybrid_shard ] && [ "$np" -lt 4 ] && continue  # groups of 2
    run="$out/run_${np}_$strategy"
    for overlap in true false; do
      r="$run"; [ $overlap = false ] && r="${run}_inline"
      rm -rf "$r" "$r.rss"
      # Each process appends its peak RSS as one line (its own write, never interleaved).
      OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE mpirun $root --oversubscribe --bind-to none -np "$np" \
        /usr/bin/time -a -o "$r.rss" -f "rss_kb %M" $lathe train /dev/null "${args[@]}" dist.strategy=$strategy \
        dist.overlap=$overlap output.dir="$r" >"$r.log" 2>&1
    done
    plan=$($lathe plan /dev/null "${args[@]}" dist.strategy=$strategy --world-size "$np" --json 2>/dev/null \
           | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d['lathe']['total'] / 1048576)" 2>/dev/null || echo "-")
    /usr/bin/python3 - "$run" "$np" "$strategy" "$plan" "$runtime" <<'PY'
import json, re, sys
run, np_, strategy, plan, runtime = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
def load(path):
    return [json.loads(l) for l in open(path + "/metrics.jsonl") if '"loss"' in l][1:]  # first step warms up
rows, inline = load(run), load(run + "_inline")
step_s = lambda rs: sum(r["step_time_s"] for r in rs)
tok = sum(r["tokens"] for r in rows) / step_s(rows)
tok_inline = sum(r["tokens"] for r in inline) / step_s(inline)
comm = sum(r.get("comm_bytes", 0) for r in rows) / len(rows)
share = sum(r.get("comm_s", 0) for r in rows) / step_s(rows)
thread = sum(r.get("comm_thread_s", 0) for r in rows) / step_s(rows)
share_inline = sum(r.get("comm_s", 0) for r in inline) / step_s(inline)
params = 55976448
# ZeRO-3 gathers the parameters for forward and backward and reduce-scatters gradients: 3
# transfers of the model where the others make 2 (lathe reuses the two layers still
# gathered where the forward turns into the backward, and gathers the head once a step).
if strategy == "hybrid_shard":  # full_shard in groups of 2, then an all-reduce of the shards
    theory = (3 * (2 - 1) / 2 + 2 * (np_ // 2 - 1) / (np_ // 2) / 2) * 4 * params
else:
    theory = (3 if strategy == "full_shard" else 2) * (np_ - 1) / np_ * 4 * params
rss = [int(x) / 1024 for x in re.findall(r"rss_kb (\d+)", open(run + ".rss").read())]
want = float(plan) + runtime
print(f"| {np_} | {strategy} | {tok:.0f} | {tok_inline:.0f} | {comm/1e6:.1f} MB | {theory/1e6:.1f} MB | "
      f"{100*share:.0f}% | {100*thread:.0f}% | {100*share_inline:.0f}% | "
      f"{max(rss):.0f} MB | {want:.0f} MB | {100*(max(rss)-want)/want:+.1f}% |")
PY
  done
done
