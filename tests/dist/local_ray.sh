#!/usr/bin/env bash
# The Ray job file, run by a real Ray: a one-node cluster on this machine (`ray start --head`
# with its ports, temporary folder and resources private to the test) runs the entrypoint
# that `lathe job ray` writes, submitted with the command its own header gives
# (`ray job submit --working-dir . -- python <file>`). The job must succeed with 2 processes
# that meet over MPI: metrics.jsonl with every step, final/ written by 2 processes, and the
# per-step losses equal (fp32, relative 1e-6) to `lathe launch --nproc 2` of the same config.
# Every process of the cluster is stopped on exit, and its folder removed.
# Ray comes from .venv/ (bash scripts/setup.sh --test installs the pin of
# tests/requirements.txt there). Skips (exit 77, "SKIPPED: <reason>") only where that Ray is
# missing or its cluster cannot be started here.
# Usage: local_ray.sh LATHE_BINARY GOLDEN_DIR SOURCE_DIR
set -euo pipefail

lathe=$(realpath "$1")
golden=$(realpath "$2")
src=$(realpath "$3")
g="$golden/gqa_untied"
venv="$src/.venv"
steps=4

. "$(dirname "$0")/run_helpers.sh"
check_inputs "$1" "$g"

# --- Is Ray here? ---------------------------------------------------------------------------
install="run: bash scripts/setup.sh --test (creates .venv/ and installs tests/requirements.txt)"
[ -x "$venv/bin/python" ] || skip "no virtual environment at $venv; $install"
[ -x "$venv/bin/ray" ] || skip "no 'ray' command in $venv; $install"
why=$("$venv/bin/python" "$src/scripts/pins_satisfied.py" "$src/tests/requirements.txt" 2>&1) || {
  why=${why//setup: /}
  skip "$venv lacks pins of tests/requirements.txt: ${why//$'\n'/; }; $install"
}
ray_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ray"))')

# Nothing leaves this machine: no usage reports (the CLI asks otherwise on a terminal).
export RAY_USAGE_STATS_ENABLED=0
tmp=$(mktemp -d)
# The job writes its config on the node at /tmp/lathe-<name>/config.yaml: a name of its own
# keeps this run apart from another run of the test.
name="raytest-$$"
started=no

# Every process of this test's cluster (gcs_server, raylet, the dashboard, the workers, the
# job's driver, mpirun and lathe) carries LATHE_RAY_TEST_CLUSTER=$tmp, which `ray start` had
# in its environment: these ids are the ones to stop. `ray stop` would stop every Ray
# cluster on the machine, another run's included.
# One grep over all environments (NUL-separated entries): the cluster has a few dozen
# processes among hundreds.
cluster_pids() {
  grep -lzxF "LATHE_RAY_TEST_CLUSTER=$tmp" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | grep -vx "$$"
  return 0
}

cleanup() {
  local rc=$? pids
  set +e
  trap '' INT TERM   # a second Ctrl-C must not leave the cluster running
  if [ "$started" = yes ]; then
    pids=$(cluster_pids)
    # shellcheck disable=SC2086  # a list of ids
    [ -n "$pids" ] && kill -TERM $pids 2>/dev/null
    # gcs_server takes a few seconds to exit on SIGTERM; what is left after 5 s is killed.
    for _ in $(seq 50); do [ -z "$(cluster_pids)" ] && break; sleep 0.1; done
    for pid in $(cluster_pids); do kill -9 "$pid" 2>/dev/null; done
  fi
  rm -rf "$tmp" "/tmp/lathe-$name"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# What the cluster logged when something goes wrong: its processes' errors and the job
# server's log.
logs() {
  local f
  for f in "$tmp"/ray/session_latest/logs/*.err "$tmp"/ray/session_latest/logs/dashboard.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  return 0
}

# --- The cluster: this machine, 2 CPUs, on ports nobody uses --------------------------------
# Four ports (GCS, dashboard, Ray client server, dashboard agent; the rest Ray picks freely)
# below the kernel's ephemeral range, whose ports outgoing connections take, and above Ray's
# worker ports (10002-19999). A port taken all the same (a race) makes `ray start` fail: the
# test then tries the next four.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${low:-0}" -gt 21000 ] || low=32768
next_port() { echo $(( 20000 + ($1 + 4 - 20000) % (low - 20004) )); }
port_used() { ss -tanH 2>/dev/null | awk '{print $4}' | grep -qE ":($1|$(($1 + 1))|$(($1 + 2))|$(($1 + 3)))\$"; }
port=$(( 20000 + ($$ * 4) % (low - 20004) ))
mkdir -p "$tmp/ray" "$tmp/submit"
started=yes
t0=$SECONDS
for attempt in 1 2 3; do
  while port_used "$port"; do port=$(next_port "$port"); done
  # The job's entrypoint (`python <file>`) runs with the PATH that `ray start` had, as on a
  # real cluster, where Ray's own Python is on PATH: here the virtual environment's.
  # --node-ip-address=127.0.0.1: Ray registers the node under the address it reaches others
  # with all the same (services.resolve_ip_for_localhost); mpirun takes either as this host.
  # The object store is limited to what a few small tasks need (default: 30% of RAM).
  if LATHE_RAY_TEST_CLUSTER="$tmp" PATH="$venv/bin:$PATH" timeout 120 "$venv/bin/ray" start --head \
       --node-ip-address=127.0.0.1 --port="$port" \
       --dashboard-host=127.0.0.1 --dashboard-port=$((port + 1)) \
       --ray-client-server-port=$((port + 2)) --dashboard-agent-listen-port=$((port + 3)) \
       --num-cpus=2 --num-gpus=0 --object-store-memory=$((100 * 1024 * 1024)) \
       --temp-dir="$tmp/ray" --disable-usage-stats >"$tmp/start.log" 2>&1; then
    break
  fi
  { grep -qiE "address already in use|port .* (is|already) (in use|taken)" "$tmp/start.log" && \
      [ "$attempt" -lt 3 ]; } || { cat "$tmp/start.log"; logs; skip "ray start --head does not start a cluster here"; }
  echo "ports $port-$((port + 3)) are taken; again on others"
  for pid in $(cluster_pids); do kill -9 "$pid" 2>/dev/null; done
  rm -rf "$tmp/ray" && mkdir -p "$tmp/ray"
  port=$(next_port "$port")
done
# The Ray commands below are the virtual environment's, and talk to this cluster's job
# server and to no other.
export PATH="$venv/bin:$PATH"
export RAY_ADDRESS="http://127.0.0.1:$((port + 1))"
echo "Ray $ray_version: one node, 2 CPUs, GCS on port $port, job server on $RAY_ADDRESS" \
     "(started in $((SECONDS - t0)) s)"

# --- The job file --------------------------------------------------------------------------
export OMP_WAIT_POLICY=PASSIVE
# The config, as overrides of an empty file, for `lathe job` and `lathe launch` alike: the
# one of local_slurm.sh's first job.
config() {
  echo model.path="$g/model" data.train="$g/train/data.jsonl" data.seq_len=24 data.shuffle=true \
    train.precision=fp32 train.lr=2e-3 train.warmup_steps=1 train.max_steps="$steps" train.batch_size=1 \
    train.threads=1 output.save_dtype=fp32 output.dir="$tmp/$1"
}
file="$tmp/submit/lathe_ray_job.py"
# shellcheck disable=SC2046  # config's words are paths under $tmp, without spaces
"$lathe" job ray /dev/null $(config run) --name "$name" --nodes 1 --procs-per-node 2 \
  --cpus-per-task 1 --lathe "$lathe" -o "$file" >"$tmp/job.log" 2>&1 || \
  { cat "$tmp/job.log" >&2; fail "lathe job ray failed"; }
"$venv/bin/python" -m py_compile "$file" || fail "the job file is not valid Python"

# --- Submitted as its header says ------------------------------------------------------------
# The header's line "    ray job submit --working-dir . -- python lathe_ray_job.py", run from
# the folder holding the file, with an id to follow the job by.
read -ra submit <<<"$(grep -m 1 '^ *ray job submit ' "$file")"
[ "${submit[*]:0:3}" = "ray job submit" ] || fail "the job file's header gives no 'ray job submit' command"
id="lathe-ray-test-$$"
# The job's state and its log from the job server's REST API (GET /api/jobs/<id>[/logs]),
# which answers in milliseconds where `ray job status` and `ray job logs` spend seconds
# importing ray.
job_api() {
  "$venv/bin/python" -c 'import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/api/jobs/" + sys.argv[2], timeout=10) as r:
    print(json.load(r)[sys.argv[3]])' "$RAY_ADDRESS" "$@"
}
job_status() { job_api "$1" status 2>/dev/null || true; }
(cd "$tmp/submit" && timeout 120 ray job submit --submission-id "$id" --no-wait "${submit[@]:3}") \
  >"$tmp/submit.log" 2>&1 || { cat "$tmp/submit.log" >&2; logs; fail "ray job submit refused the job: ${submit[*]}"; }
t0=$SECONDS
limit=180
deadline=$(( SECONDS + limit ))
status=""
while [ $SECONDS -lt $deadline ]; do
  status=$(job_status "$id")
  case "$status" in SUCCEEDED | FAILED | STOPPED) break ;; esac
  sleep 0.5
done
job_s=$((SECONDS - t0))
job_api "$id/logs" logs >"$tmp/job.out" 2>&1 || true
if [ "$status" != SUCCEEDED ]; then
  cat "$tmp/job.out" >&2
  logs
  fail "job $id is ${status:-in no state} (waited up to $limit s for SUCCEEDED)"
fi

# --- What it must show: 2 processes that trained together ------------------------------------
grep -q "written by 2 processes" "$tmp/job.out" || { cat "$tmp/job.out" >&2; fail "final/ was not written by 2 processes"; }
[ -f "$tmp/run/final/model.safetensors" ] || fail "no final/model.safetensors"
[ "$(grep -o '"step":[0-9]*' "$tmp/run/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')" = "$(seq -s ' ' "$steps") " ] || \
  fail "metrics.jsonl does not log steps 1..$steps once each"
[ "$(grep -c '"comm_bytes"' "$tmp/run/metrics.jsonl")" -eq "$steps" ] || \
  fail "metrics.jsonl shows no communication: the processes did not train together"

# --- The same losses as lathe launch --nproc 2 -----------------------------------------------
# shellcheck disable=SC2046
timeout 120 "$lathe" launch --nproc 2 -- train /dev/null $(config launch) >"$tmp/launch.log" 2>&1 || \
  { cat "$tmp/launch.log" >&2; fail "lathe launch --nproc 2 failed"; }
losses "$tmp/run" >"$tmp/run.loss"
losses "$tmp/launch" >"$tmp/launch.loss"
[ "$(wc -l <"$tmp/run.loss")" -eq "$steps" ] || fail "$(wc -l <"$tmp/run.loss") losses, not $steps"
[ "$(wc -l <"$tmp/launch.loss")" -eq "$steps" ] || fail "lathe launch logged $(wc -l <"$tmp/launch.loss") losses"
worst=$(worst_rel "$tmp/run.loss" "$tmp/launch.loss")
below "$worst" 1e-6 || {
  paste "$tmp/run.loss" "$tmp/launch.loss" >&2
  fail "the Ray job's losses differ by $worst (relative) from lathe launch --nproc 2"
}
echo "job $id: SUCCEEDED in $job_s s, 2 processes (mpirun over the placement group's node), $steps steps," \
     "final/ written by 2 processes; losses vs lathe launch --nproc 2: worst relative difference $worst"
echo "PASSED"
