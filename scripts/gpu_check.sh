#!/usr/bin/env bash
# The GPU acceptance run, on a GPU machine from the repository root, with gpu-bundle/ from
# scripts/gpu_bundle.sh. In this order, each step time-boxed and none stopping the others:
#   1. nvidia-smi                      6. QLoRA 1B (lathe only: tokens/s, memory)
#   2. the Cuda* gtests                7. 8B LoRA r=16 with checkpointing, lathe vs HF+PEFT
#   3. lathe bench --peak (cuBLASLt)   8. attention 1x4096 h32 kv8 d128: bench_cuda_kernels
#   4. 1B full fine-tune, lathe vs HF     vs torch SDPA (flash)
#   5. 1B LoRA r=16, lathe vs HF+PEFT
# then a summary table (check, PASS/FAIL/NOT RUN, threshold, numbers). The whole run stays
# within LATHE_GPU_BUDGET_S seconds (default 460, under 8 minutes): a step gets its own cap
# or what is left of the budget, whichever is less, and is NOT RUN when under 10 s remain.
# Results: JSON lines in $OUT/gpu-check.jsonl if $OUT is set, else gpu-results/; the logs
# of every step beside it (logs/). Without a GPU or a bundle every step reports NOT RUN
# at once and the table still prints. Exit status 1 when a check FAILs.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
T0=$SECONDS
BUDGET=${LATHE_GPU_BUDGET_S:-460}
PY=${PYTHON:-python3}
RES_DIR=${OUT:-gpu-results}
mkdir -p "$RES_DIR/logs"
RES_DIR=$(cd "$RES_DIR" && pwd)
LOG=$RES_DIR/logs
RES=$RES_DIR/gpu-check.jsonl
: >"$RES"
results() { "$PY" "$ROOT/bench/gpu/results.py" "$@"; }
record() { results record "$RES" "$@" || echo "warning: could not record $1" >&2; }

# Seconds a step may run: its cap, or what is left of the budget less RESERVE (seconds
# kept for the steps after it); 0 when under 10 s would remain.
step_limit() {
  local left=$((BUDGET - (SECONDS - T0) - ${RESERVE:-0}))
  if [ "$left" -lt 10 ]; then echo 0; elif [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}

# run_step NAME CAP REQUIRES CMD...: runs CMD under timeout with stdout and stderr in
# logs/NAME.{out,err}, echoing both, and records the last JSON line of stdout. REQUIRES:
# "gpu" or "bundle" (the bundle and a GPU).
run_step() {
  local name=$1 cap=$2 needs=$3
  shift 3
  echo "== $name: $*"
  if [ "$HAVE_GPU" != 1 ]; then
    record "$name" not_run --note "no GPU"
    return
  fi
  if [ "$needs" = bundle ] && [ "$HAVE_BUNDLE" != 1 ]; then
    record "$name" not_run --note "no gpu-bundle/ (run scripts/gpu_bundle.sh first)"
    return
  fi
  local limit
  limit=$(step_limit "$cap")
  if [ "$limit" -eq 0 ]; then
    record "$name" not_run --note "time budget of ${BUDGET}s spent"
    return
  fi
  local t=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>"$LOG/$name.err" | tee "$LOG/$name.out"
  local rc=${PIPESTATUS[0]}
  tail -n 4 "$LOG/$name.err" | sed 's/^/   | /'
  echo "   ($name: exit $rc after $((SECONDS - t)) s, limit ${limit} s)"
  record "$name" ran --rc "$rc" --stdout "$LOG/$name.out" --stderr "$LOG/$name.err" \
    --note "limit ${limit}s"
}

# --- the machine and the bundle ---
HAVE_GPU=0
echo "== nvidia-smi"
if timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
  --format=csv,noheader >"$LOG/nvidia-smi.txt" 2>&1 && [ -s "$LOG/nvidia-smi.txt" ]; then
  HAVE_GPU=1
  cat "$LOG/nvidia-smi.txt"
  record nvidia-smi ok --note "$(head -1 "$LOG/nvidia-smi.txt")"
else
  echo "no GPU: $(head -1 "$LOG/nvidia-smi.txt" 2>/dev/null)"
  record nvidia-smi not_run --note "no driver or no GPU"
fi
HAVE_BUNDLE=0
if [ -f gpu-bundle/env.sh ]; then
  HAVE_BUNDLE=1
  # The bundle's largest libraries come xz-compressed (see gpu_bundle.sh).
  for f in gpu-bundle/lib/*.xz; do
    [ -e "$f" ] || continue
    so=${f%.xz}
    [ -f "$so" ] && continue
    if command -v xz >/dev/null; then
      xz -dkc "$f" >"$so.tmp"
    else
      "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$so.tmp"
    fi
    mv "$so.tmp" "$so"
  done
  # shellcheck disable=SC1091
  source gpu-bundle/env.sh
  missing=$(ldd gpu-bundle/bin/lathe_tests 2>&1 | grep "not found" || true)
  if [ -n "$missing" ]; then
    echo "missing libraries: $missing" >&2
    if ! ldconfig -p 2>/dev/null | grep -q libcublasLt.so.13 &&
      [ ! -f "${CUDA_HOME:-/usr/local/cuda}/lib64/libcublasLt.so.13" ]; then
      echo "libcublasLt.so.13 (CUDA 13) not found: set CUDA_HOME to a CUDA 13 toolkit" >&2
    fi
  fi
  # The tests read the goldens and stories260K from here, not the build machine's paths.
  export LATHE_GOLDEN_DIR=$ROOT/gpu-bundle/golden LATHE_SOURCE_DIR=$ROOT \
    LATHE_BINARY=$ROOT/gpu-bundle/bin/lathe
else
  echo "no gpu-bundle/: run scripts/gpu_bundle.sh on the build machine first" >&2
fi
LATHE=gpu-bundle/bin/lathe
M1B=configs/bench/llama3-1b.json
M8B=configs/bench/llama3-8b.json
SHAPE=(--batch 1 --seq 2048)

# --- 2. every CUDA test: kernels, attention, whole models, products ---
echo "== CUDA tests"
if [ "$HAVE_GPU" = 1 ] && [ "$HAVE_BUNDLE" = 1 ] && [ "$(step_limit 120)" -gt 0 ]; then
  limit=$(step_limit 120)
  timeout --kill-after=10 "$limit" gpu-bundle/bin/lathe_tests --gtest_filter='Cuda*:SharedMath*' \
    --gtest_output="json:$LOG/cuda_tests.json" 2>&1 | tee "$LOG/cuda_tests.txt"
  results gtest "$RES" "$LOG/cuda_tests.json" --rc "${PIPESTATUS[0]}"
else
  record cuda_tests not_run --note "$([ "$HAVE_GPU" = 1 ] && echo "no gpu-bundle/ or no time" || echo "no GPU")"
fi

# --- 3-7. training throughput, lathe and its peers, the same shape and settings ---
run_step lathe_peak 30 bundle "$LATHE" bench --peak --device cuda
run_step lathe_1b_full 60 bundle "$LATHE" bench --device cuda --model-config "$M1B" "${SHAPE[@]}" \
  --precision bf16 --steps 5 --warmup 2
run_step hf_1b_full 75 gpu "$PY" bench/gpu/hf_peer.py --config "$M1B" "${SHAPE[@]}" --steps 5 --warmup 2
run_step lathe_1b_lora 50 bundle "$LATHE" bench --device cuda --model-config "$M1B" "${SHAPE[@]}" \
  --precision bf16 --peft lora --lora-r 16 --steps 5 --warmup 2
run_step hf_1b_lora 60 gpu "$PY" bench/gpu/hf_peer.py --config "$M1B" "${SHAPE[@]}" --peft lora --r 16 \
  --steps 5 --warmup 2
run_step lathe_1b_qlora 60 bundle "$LATHE" bench --device cuda --model-config "$M1B" "${SHAPE[@]}" \
  --precision bf16 --peft qlora --lora-r 16 --steps 5 --warmup 2
# lathe draws the random weights on the host, one at a time (LlamaModel::init_random,
# ~10 ns a parameter): ~80 s of the 8B step before its first step. 70 s stay for step 8.
RESERVE=70 run_step lathe_8b_lora 150 bundle "$LATHE" bench --device cuda --model-config "$M8B" "${SHAPE[@]}" \
  --precision bf16 --peft lora --lora-r 16 --activation-checkpointing --steps 2 --warmup 1
RESERVE=70 run_step hf_8b_lora 100 gpu "$PY" bench/gpu/hf_peer.py --config "$M8B" "${SHAPE[@]}" --peft lora --r 16 \
  --checkpointing --steps 2 --warmup 1

# --- 8. attention at one shape: lathe (fp32 CUDA cores) vs FlashAttention through SDPA ---
run_step lathe_attention 40 bundle gpu-bundle/bin/bench_cuda_kernels --quick
run_step sdpa_attention 40 gpu "$PY" bench/gpu/sdpa_peer.py --batch 1 --seq 4096 --heads 32 \
  --kv-heads 8 --head-dim 128

echo
echo "== summary ($((SECONDS - T0)) s; results in $RES, logs in $LOG/)"
results summary "$RES"
