#!/usr/bin/env bash
# What watching a run costs its training steps, on the 56M bench model: the same run
# (batch 4 x 256 tokens, bf16, 2 threads) three ways, interleaved over rounds so drift of a
# shared machine falls on all three alike:
#   plain        output.tensorboard=false, no dashboard
#   tensorboard  output.tensorboard=true
#   both         output.tensorboard=true and output.dashboard=PORT, polled once a second
#                the way an open page polls it (/api/poll with its offsets, /api/runs)
# Per way: median and spread of the wall time between consecutive metrics.jsonl lines
# (the step plus its logging, TensorBoard included) and of step_time_s, the first 2 steps
# of each run left out (warm-up); plus the server's time per poll as the client saw it.
# On a shared machine these wall times move by more than the costs measured, so the costs
# are then measured in CPU time (build/bench_watch_cost: TensorBoard's write of a step
# line, and the server's CPU time for one poll that brings one new line) and set against
# the plain step time.
#   bash bench/dashboard_overhead.sh [steps=12] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-12}
rounds=${2:-2}
threads=2
model=configs/bench/llama-56m.json
out=${BENCH_OUT:-build/bench/dashboard}
lathe=./build/lathe
[ -x "$lathe" ] || bash scripts/build.sh >/dev/null
mkdir -p "$out"
python=/usr/bin/python3

[ -d "$out/llama-56m" ] || $lathe bench --model-config $model --save-model "$out/llama-56m" \
  --precision bf16 2>/dev/null
$python - "$out" <<'PY'
import json, random, sys
random.seed(0)
with open(sys.argv[1] + "/rows.jsonl", "w") as f:
    for _ in range(64):
        f.write(json.dumps({"input_ids": [random.randrange(32000) for _ in range(257)]}) + "\n")
PY

poller() { # url seconds_log: polls like the page until killed
  $python - "$1" "$2" <<'PY'
import json, sys, time, urllib.request
url, log = sys.argv[1], sys.argv[2]
offset, head, spent, loaded = 0, "", [], False
while True:
    t = time.perf_counter()
    try:
        if not loaded:  # the page's first request, once the trainer serves
            urllib.request.urlopen(url + "api/runs").read()
            loaded = True
            t = time.perf_counter()
        j = json.load(urllib.request.urlopen(f"{url}api/poll?offset={offset}&head={head}"))
        offset, head = j["runs"][0]["offset"], j["runs"][0]["head"]
        spent.append(time.perf_counter() - t)
        with open(log, "w") as f:
            json.dump(spent, f)
    except OSError:
        pass  # not up yet, or already gone
    time.sleep(1.0)
PY
}

run() { # way round
  local way=$1 dir="$out/run_$1_$2" extra=() poll_pid=""
  case "$way" in
    tensorboard) extra=(output.tensorboard=true) ;;
    both)
      local port
      port=$($python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      extra=(output.tensorboard=true output.dashboard="$port")
      poller "http://127.0.0.1:$port/" "$dir.polls.json" &
      poll_pid=$!
      ;;
  esac
  $lathe train /dev/null model.path="$out/llama-56m" data.train="$out/rows.jsonl" data.seq_len=256 \
    train.batch_size=4 train.max_steps="$steps" train.threads=$threads train.precision=bf16 \
    output.dir="$dir" output.overwrite=true "${extra[@]}" >"$dir.log" 2>&1 ||
    { cat "$dir.log"; exit 1; }
  if [ -n "$poll_pid" ]; then
    kill "$poll_pid" 2>/dev/null || true
    wait "$poll_pid" 2>/dev/null || true
  fi
}

cmake --build build --target bench_watch_cost >/dev/null
./build/bench_watch_cost 2000 | tee "$out/watch_cost.json"

for r in $(seq "$rounds"); do
  for way in plain tensorboard both; do
    echo "round $r: $way"
    run "$way" "$r"
  done
done

$python - "$out" "$rounds" <<'PY'
import glob, json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
res = {}
print(f"{'way':12} {'wall s/step median [min, max]':34} {'step_time_s median [min, max]':34} n")
for way in ("plain", "tensorboard", "both"):
    wall, step = [], []
    for r in range(1, rounds + 1):
        lines = [json.loads(l) for l in open(f"{out}/run_{way}_{r}/metrics.jsonl") if '"loss"' in l]
        lines = lines[2:]  # warm-up
        wall += [b["time"] - a["time"] for a, b in zip(lines, lines[1:])]
        step += [l["step_time_s"] for l in lines]
    res[way] = (statistics.median(wall), statistics.median(step))
    print(f"{way:12} {statistics.median(wall):8.3f} [{min(wall):.3f}, {max(wall):.3f}]{'':13}"
          f"{statistics.median(step):8.3f} [{min(step):.3f}, {max(step):.3f}]{'':13}{len(wall)}")
polls = []
for p in glob.glob(f"{out}/run_both_*.polls.json"):
    polls += json.load(open(p))
base = res["plain"][0]
for way in ("tensorboard", "both"):
    print(f"{way}: wall time per step {100 * (res[way][0] / base - 1):+.2f}% against plain")
if polls:
    per_s = statistics.median(polls)
    print(f"dashboard: {len(polls)} polls, median {1e3 * per_s:.2f} ms each (client-side, "
          f"max {1e3 * max(polls):.2f} ms): at 1 poll/s at most {100 * per_s:.2f}% of one core")
cost = json.load(open(f"{out}/watch_cost.json"))
step_s = res["plain"][1]
tb, poll = cost["tensorboard_cpu_s_per_line"], cost["dashboard_cpu_s_per_poll"]
# Per step: one TensorBoard line, and step_s polls (one a second) of the open page.
share = (tb + poll * step_s) / step_s
print(f"CPU time: TensorBoard {1e6 * tb:.1f} us per line, dashboard {1e3 * poll:.2f} ms per poll; "
      f"on a {step_s:.2f} s step polled once a second: {100 * share:.3f}% of the step "
      f"(as if every CPU-second of serving stalled the step)")
json.dump({"cpu_share_of_step": share,
           "wall_median_s": {k: v[0] for k, v in res.items()},
           "step_time_median_s": {k: v[1] for k, v in res.items()},
           "poll_median_s": statistics.median(polls) if polls else None},
          open(f"{out}/summary.json", "w"), indent=1)
PY
