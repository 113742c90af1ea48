#!/usr/bin/env bash
# lathe serve under load on this machine (loopback only, bounded): bench/serve_load.py's N
# streaming clients for S seconds, plus one client alone, on stories260K and on the 56M
# bench shape in fp32 and bf16 (configs/bench/llama-56m.json, random weights from `lathe bench --save-model`,
# the Llama 2 tokenizer of tests/data/tokenizer/llama2). Reports tokens/s, latency and
# time-to-first-token p50/p99, batch-1 latency, errors, and the server's peak RSS and its RSS
# a quarter of the way into the load and at the end (flat memory gains nothing between).
#
#   bash bench/serve_bench.sh [LATHE] [CLIENTS] [SECONDS]     (defaults: build/lathe 32 60)
#
# Then llama.cpp's llama-server (scripts/llama_cpp.sh builds it into build/llama.cpp, about
# 7 min the first time) on the same models as f16 GGUF (`lathe export --gguf`), with the
# same threads and load, side by side. Results: docs/serving.md#performance.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lathe=${1:-$root/build/lathe}
clients=${2:-32}
seconds=${3:-60}
threads=${LATHE_BENCH_THREADS:-$(nproc)}
tmp=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
python=/usr/bin/python3

# Waits for "ready at" (lathe) or a 200 from /health (llama-server); sets $url.
wait_ready() { # log port
  for _ in $(seq 1200); do
    if curl -sf "http://127.0.0.1:$2/health" >/dev/null 2>&1; then
      url="http://127.0.0.1:$2"
      return 0
    fi
    kill -0 "$server" 2>/dev/null || { cat "$1"; exit 1; }
    sleep 0.1
  done
  echo "server did not become ready" >&2
  cat "$1"
  exit 1
}
free_port() { $python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_lathe() { # label model_dir max_batch precision
  local port
  port=$(free_port)
  "$lathe" serve --model "$2" --port "$port" --threads "$threads" --max-batch "$3" \
    --precision "$4" --max-queue 256 >"$tmp/serve.log" 2>&1 &
  server=$!
  wait_ready "$tmp/serve.log" "$port"
  grep "ready at" "$tmp/serve.log"
  $python "$root/bench/serve_load.py" --url "$url" --model "$(basename "$2")" --pid "$server" \
    --clients "$clients" --seconds "$seconds" --label "$1" | tee -a "$tmp/results.jsonl"
  kill -TERM "$server"
  wait "$server"
  server=
}

run_llama_server() { # label gguf parallel
  local port
  port=$(free_port)
  "$llama_bin/llama-server" -m "$2" --host 127.0.0.1 --port "$port" -t "$threads" -np "$3" \
    -c $((512 * $3)) >"$tmp/llama.log" 2>&1 &
  server=$!
  wait_ready "$tmp/llama.log" "$port"
  $python "$root/bench/serve_load.py" --url "$url" --model "$(basename "$2")" --pid "$server" \
    --clients "$clients" --seconds "$seconds" --label "$1" | tee -a "$tmp/results.jsonl"
  kill -TERM "$server"
  wait "$server" || true
  server=
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $threads compute threads; $clients clients x $seconds s; load average $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the cores)"
stories="$root/examples/stories260K"
m56="$tmp/llama-56m"
"$lathe" bench --model-config "$root/configs/bench/llama-56m.json" --precision fp32 \
  --save-model "$m56" >/dev/null 2>&1
cp "$root"/tests/data/tokenizer/llama2/tokenizer* "$m56"/
[ -f "$root/tests/data/tokenizer/llama2/special_tokens_map.json" ] &&
  cp "$root/tests/data/tokenizer/llama2/special_tokens_map.json" "$m56"/

run_lathe "lathe stories260K" "$stories" 32 fp32
# The 56M model in fp32 and in bf16: bf16 holds 16-bit weights as llama.cpp's f16 GGUF
# does, and runs on bf16 dot products where the CPU has them (AVX512_BF16).
run_lathe "lathe llama-56m fp32" "$m56" 32 fp32
run_lathe "lathe llama-56m bf16" "$m56" 32 bf16
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -f "$root/scripts/llama_cpp.sh" ] && "$lathe" export --help 2>/dev/null | grep -q -- --gguf; then
  llama_bin=$(bash "$root/scripts/llama_cpp.sh" | tail -1)
  for m in "$stories" "$m56"; do
    "$lathe" export --model "$m" --gguf "$tmp/$(basename "$m").gguf" --type f16 >/dev/null
    run_llama_server "llama-server $(basename "$m") f16" "$tmp/$(basename "$m").gguf" 32
  done
else
  echo "llama-server comparison: not run; it needs scripts/llama_cpp.sh and lathe export --gguf"
fi
