#!/usr/bin/env bash
# The Slurm job file, run by a real Slurm: a one-node cluster on this machine (munged,
# slurmctld and slurmd, all configured and kept in a temporary folder) runs the sbatch
# script that `lathe job slurm` writes. The script must pass `bash -n`, be accepted by
# sbatch, and its job must complete with 2 processes started by `srun --mpi=pmix` that
# meet over MPI: metrics.jsonl with every step, final/ written by 2 processes, and the
# per-step losses equal (fp32, relative 1e-6) to a plain `mpirun -np 2` run of the same
# config. A second job gets the SIGTERM that #SBATCH --signal=B:TERM@120 sends before the
# time limit: it must stop with a checkpoint, requeue itself, resume from that step and
# still match an uninterrupted mpirun run. Every daemon the test started is stopped on exit.
# Skips (exit 77, "SKIPPED: <reason>") only where Slurm is not installed or its daemons
# cannot be started here.
# Usage: local_slurm.sh LATHE_BINARY GOLDEN_DIR
set -euo pipefail

lathe=$(realpath "$1")
golden=$(realpath "$2")
g="$golden/gqa_untied"
steps=4

. "$(dirname "$0")/run_helpers.sh"
check_inputs "$1" "$g"

# --- Is Slurm here? ------------------------------------------------------------------------
for c in slurmctld slurmd sbatch srun sinfo squeue scancel scontrol munged; do
  command -v "$c" >/dev/null || \
    skip "no '$c' command (scripts/setup.sh installs slurmctld, slurmd, slurm-client and munge)"
done
# slurmd starts every job's processes as the job's user, which takes root.
[ "$(id -u)" -eq 0 ] || skip "slurmd needs root to start jobs (running as uid $(id -u))"

tmp=$(mktemp -d)
chmod 755 "$tmp"   # munged requires every folder above its socket to be searchable by all
SLURM_CONF="$tmp/slurm.conf"   # exported once munged runs: the daemons from there on have it
started=no

# Every process of this test's cluster (the daemons, slurmstepd, the job's processes)
# carries SLURM_CONF=$tmp/slurm.conf in its environment: these ids are the ones to stop.
cluster_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    { tr '\0' '\n' <"$p/environ" | grep -qxF "SLURM_CONF=$SLURM_CONF"; } 2>/dev/null && echo "${p#/proc/}"
  done
  return 0
}

cleanup() {
  local rc=$?
  set +e
  trap '' INT TERM   # a second Ctrl-C must not leave the daemons running
  if [ "$started" = yes ]; then
    # Only this cluster's jobs and daemons (SLURM_CONF); the commands give up when its
    # slurmctld is gone.
    timeout 5 scancel --full --quiet --user=root 2>/dev/null
    for _ in $(seq 20); do [ -z "$(timeout 5 squeue -h 2>/dev/null)" ] && break; sleep 0.25; done
    timeout 5 scontrol shutdown >/dev/null 2>&1
    for _ in $(seq 20); do [ -z "$(cluster_pids)" ] && break; sleep 0.25; done
  fi
  for pid in $(cluster_pids); do kill -9 "$pid" 2>/dev/null; done
  [ -f "$tmp/munge/munged.pid" ] && kill "$(cat "$tmp/munge/munged.pid")" 2>/dev/null
  for _ in $(seq 20); do [ -S "$tmp/munge/socket" ] || break; sleep 0.1; done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Logs of the daemons when something goes wrong.
logs() {
  local f
  for f in "$tmp"/munge/munged.log "$tmp"/log/*.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
  done
  return 0
}

# --- munge: the credentials slurmctld, slurmd and the commands exchange -------------------
mkdir -p "$tmp/munge" "$tmp/tmpfs" "$tmp/state" "$tmp/spool" "$tmp/log" "$tmp/submit"
chmod 700 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
chmod 711 "$tmp/munge"
munged --force --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/socket" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
  --seed-file="$tmp/munge/munged.seed" >"$tmp/munge/start.log" 2>&1 || \
  { cat "$tmp/munge/start.log"; logs; skip "munged does not start"; }
for _ in $(seq 50); do [ -S "$tmp/munge/socket" ] && break; sleep 0.1; done
[ -S "$tmp/munge/socket" ] || { logs; skip "munged started but made no socket"; }

# --- slurm.conf: this machine as the one node ------------------------------------------------
host=$(hostname -s)
# The node as slurmd sees it ("CPUs=2 Boards=1 ... RealMemory=24105"); it must have room
# for the job's 2 processes x 1 core.
node=$(slurmd -C 2>/dev/null | sed -n 's/^NodeName=[^ ]* //p' | head -n 1)
[ -n "$node" ] || skip "slurmd -C does not describe this machine"
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
[ "${cpus:-0}" -ge 2 ] || fail "the job needs 2 cores; slurmd sees '$node'"
write_conf() {
  cat >"$SLURM_CONF" <<EOF
# A one-node cluster for tests/dist/local_slurm.sh, everything under $tmp.
ClusterName=lathetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: how long a requeued job waits before it starts again (default 120 s).
AuthInfo=socket=$tmp/munge/socket,cred_expire=5
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
# The node's temporary folder: the pmix plugin makes a folder per job step there, named by
# the job id, which restarts at 1 for every cluster this test starts.
TmpFS=$tmp/tmpfs
# No cgroups: processes are tracked by their parents, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
# Schedule every second (a requeued job waits cred_expire, then the next pass starts it).
SchedulerParameters=sched_interval=1,bf_interval=1
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

# --- The daemons -------------------------------------------------------------------------------
# Two ports below the kernel's ephemeral range (whose ports outgoing connections take) that
# no socket uses; when one is taken all the same (another run, a race), the daemons stop and
# start again on the next pair.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${low:-0}" -gt 12000 ] || low=32768
next_port() { echo $(( 10000 + ($1 + 2 - 10000) % (low - 10002) )); }
port_used() { ss -tanH 2>/dev/null | awk '{print $4}' | grep -qE ":($1|$(($1 + 1)))\$"; }
port=$(( 10000 + ($$ * 2) % (low - 10002) ))
export SLURM_CONF
started=yes
for attempt in 1 2 3; do
  while port_used "$port"; do port=$(next_port "$port"); done
  write_conf
  slurmctld -f "$SLURM_CONF" >"$tmp/log/slurmctld.start" 2>&1 || \
    { cat "$tmp/log/slurmctld.start"; logs; skip "slurmctld does not start"; }
  slurmd -f "$SLURM_CONF" -N "$host" >"$tmp/log/slurmd.start" 2>&1 || \
    { cat "$tmp/log/slurmd.start"; logs; skip "slurmd does not start"; }
  state=""
  deadline=$(( SECONDS + 30 ))
  while [ $SECONDS -lt $deadline ]; do
    state=$(timeout 5 sinfo -h -n "$host" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    grep -qs "fatal:" "$tmp"/log/*.log && break
    sleep 0.2
  done
  [ "$state" = idle ] && break
  { grep -qs "Address already in use" "$tmp"/log/*.log && [ "$attempt" -lt 3 ]; } || \
    { timeout 5 sinfo >&2 || true; logs; skip "the node did not come up idle (state '$state')"; }
  echo "ports $port/$((port + 1)) are taken; again on others"
  for pid in $(cluster_pids); do kill -9 "$pid" 2>/dev/null; done
  for _ in $(seq 20); do [ -z "$(cluster_pids)" ] && break; sleep 0.1; done
  rm -rf "$tmp/state" "$tmp/spool" "$tmp/log" && mkdir -p "$tmp/state" "$tmp/spool" "$tmp/log"
  port=$(next_port "$port")
done
srun --mpi=list 2>&1 | grep -qw pmix || \
  { srun --mpi=list >&2 || true; fail "this Slurm has no pmix MPI plugin, which the job file's srun --mpi=pmix needs"; }
echo "Slurm $(sinfo -V | awk '{print $2}'): node $host ($node) idle on ports $port/$((port + 1))," \
     "MPI plugins: $(srun --mpi=list 2>&1 | sed -n 's/^[[:space:]]\+//p' | grep -v '^MPI' | tr '\n' ' ')"

# --- Job files -------------------------------------------------------------------------------
export OMP_WAIT_POLICY=PASSIVE
# The config of job NAME as overrides of an empty file, for `lathe job` and mpirun alike:
# micro-batch 1 for the first job; 4, with 4 accumulated, for the second.
config() {
  local batch="train.batch_size=1"
  [ "$1" = requeue ] && batch="train.batch_size=4 train.grad_accum=4"
  # shellcheck disable=SC2086  # $batch is two words
  echo model.path="$g/model" data.train="$g/train/data.jsonl" data.seq_len=24 data.shuffle=true \
    train.precision=fp32 train.lr=2e-3 train.warmup_steps=1 train.max_steps="$2" $batch \
    train.threads=1 output.save_dtype=fp32 output.dir="$tmp/$1${3:-}"
}
# Writes the job file $tmp/submit/NAME.sbatch for STEPS steps into $tmp/NAME, and checks it.
make_job() {
  local file="$tmp/submit/$1.sbatch"
  # shellcheck disable=SC2046  # config's words are paths under $tmp, without spaces
  "$lathe" job slurm /dev/null $(config "$1" "$2") --name "$1" --nodes 1 --procs-per-node 2 \
    --cpus-per-task 1 --time 00:05:00 --lathe "$lathe" -o "$file" >"$tmp/$1.job.log" 2>&1 || \
    { cat "$tmp/$1.job.log" >&2; fail "lathe job slurm failed"; }
  bash -n "$file" || fail "$1: the job file is not valid bash"
  timeout 30 sbatch --test-only "$file" >"$tmp/$1.test_only.log" 2>&1 || \
    { cat "$tmp/$1.test_only.log" >&2; fail "$1: sbatch --test-only rejects the job file"; }
}
submit() {
  local id
  id=$(cd "$tmp/submit" && timeout 30 sbatch --parsable "$1.sbatch") || fail "$1: sbatch refused the job file"
  echo "${id%%;*}"
}
field() { timeout 10 scontrol show job "$1" 2>/dev/null | grep -o " $2=[^ ]*" | head -n 1 | cut -d= -f2; }
# Waits (at most $2 s) for job $1 to end; fails, with its log, unless it completed with 0.
wait_done() {
  local id=$1 name=$2 limit=$3 state="" deadline=$(( SECONDS + $3 ))
  while [ $SECONDS -lt $deadline ]; do
    state=$(field "$id" JobState)
    case "$state" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;; esac
    sleep 0.25
  done
  if [ "$state" != COMPLETED ] || [ "$(field "$id" ExitCode)" != 0:0 ]; then
    [ -f "$tmp/submit/$name-$id.out" ] && { echo "--- $name-$id.out" >&2; cat "$tmp/submit/$name-$id.out" >&2; }
    timeout 10 scontrol show job "$id" >&2 || true
    logs
    fail "$name: job $id is ${state:-in no state} with exit code $(field "$id" ExitCode)" \
         "(waited up to $limit s for COMPLETED with 0)"
  fi
}
# The run's per-step losses against mpirun -np 2's of the same config (relative 1e-6).
against_mpirun() {
  local name=$1 steps=$2 worst
  local mpi=(mpirun -np 2 --bind-to none --oversubscribe -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY)
  [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
  # shellcheck disable=SC2046
  timeout 120 env -u SLURM_CONF "${mpi[@]}" "$lathe" train /dev/null $(config "$name" "$steps" .mpirun) \
    >"$tmp/$name.mpirun.log" 2>&1 || { cat "$tmp/$name.mpirun.log" >&2; fail "$name: the mpirun run failed"; }
  losses "$tmp/$name" >"$tmp/$name.loss"
  losses "$tmp/$name.mpirun" >"$tmp/$name.mpirun.loss"
  [ "$(wc -l <"$tmp/$name.loss")" -eq "$steps" ] || fail "$name: $(wc -l <"$tmp/$name.loss") losses, not $steps"
  [ "$(wc -l <"$tmp/$name.mpirun.loss")" -eq "$steps" ] || fail "$name: mpirun logged $(wc -l <"$tmp/$name.mpirun.loss") losses"
  worst=$(worst_rel "$tmp/$name.loss" "$tmp/$name.mpirun.loss")
  below "$worst" 1e-6 || {
    paste "$tmp/$name.loss" "$tmp/$name.mpirun.loss" >&2
    fail "$name: the Slurm job's losses differ by $worst (relative) from mpirun -np 2"
  }
  echo "$worst"
}
# What every finished job must show: 2 tasks that trained together and wrote final/.
check_run() {
  local id=$1 name=$2 steps=$3 out="$tmp/submit/$2-$1.out"
  [ "$(field "$id" NumTasks)" = 2 ] || { timeout 10 scontrol show job "$id" >&2; fail "$name: job $id did not have 2 tasks"; }
  [ -f "$tmp/submit/$name-$id.yaml" ] || fail "$name: the job did not write its config to the submit folder"
  grep -q "written by 2 processes" "$out" || { cat "$out" >&2; fail "$name: final/ was not written by 2 processes"; }
  [ -f "$tmp/$name/final/model.safetensors" ] || fail "$name: no final/model.safetensors"
  [ "$(grep -o '"step":[0-9]*' "$tmp/$name/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')" = "$(seq -s ' ' "$steps") " ] || \
    fail "$name: metrics.jsonl does not log steps 1..$steps once each"
  [ "$(grep -c '"comm_bytes"' "$tmp/$name/metrics.jsonl")" -eq "$steps" ] || \
    fail "$name: metrics.jsonl shows no communication: the processes did not train together"
}

# --- A job runs ----------------------------------------------------------------------------
make_job run "$steps"
id=$(submit run)
wait_done "$id" run 120
check_run "$id" run "$steps"
worst=$(against_mpirun run "$steps")
echo "job $id: COMPLETED, 2 tasks (srun --mpi=pmix), $steps steps, final/ written by 2 processes;" \
     "losses vs mpirun -np 2: worst relative difference $worst"

# --- A job stopped before its time limit is requeued and resumes -----------------------------
# #SBATCH --signal=B:TERM@120 has Slurm send SIGTERM to the batch script: here it comes
# early, once the job has logged a step. The processes must save a checkpoint and exit 0,
# the script requeue the job, and the job's second run continue from that checkpoint. The
# training processes are paused (SIGSTOP) while the signal travels (scancel, slurmctld,
# slurmd, the script's trap, scancel again), so that it lands a step or two after the pause
# however long that takes, and not after the last step.
long=300
make_job requeue "$long"
id=$(submit requeue)
out="$tmp/submit/requeue-$id.out"
# The job's training processes (step 0 of this job on this cluster), found while they start.
deadline=$(( SECONDS + 60 ))
tasks=()
while [ ${#tasks[@]} -lt 2 ]; do
  [ $SECONDS -lt $deadline ] || { cat "$out" >&2 || true; fail "requeue: job $id has ${#tasks[@]} lathe processes after 60 s, not 2"; }
  tasks=()
  for p in $(pgrep -x lathe); do
    env_of=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null) || continue
    grep -qxF "SLURM_CONF=$SLURM_CONF" <<<"$env_of" && grep -qx "SLURM_JOB_ID=$id" <<<"$env_of" && \
      grep -qx "SLURM_STEP_ID=0" <<<"$env_of" && tasks+=("$p")
  done
  sleep 0.05
done
# Their first step.
until [ -s "$tmp/requeue/metrics.jsonl" ]; do
  [ $SECONDS -lt $deadline ] || { cat "$out" >&2 || true; fail "requeue: job $id logged no steps in 60 s"; }
  sleep 0.01
done
kill -STOP "${tasks[@]}"
paused=$(grep -c '"step"' "$tmp/requeue/metrics.jsonl")
timeout 30 scancel --batch --signal=TERM "$id"
# SIGTERM (15) pending: bit 14 of the process's shared pending-signal mask.
term_pending() { local m; m=$(sed -n 's/^ShdPnd:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null) || return 1; (( (16#${m:-0} >> 14) & 1 )); }
deadline=$(( SECONDS + 30 ))
for p in "${tasks[@]}"; do
  until term_pending "$p" || [ ! -e "/proc/$p" ]; do
    [ $SECONDS -lt $deadline ] || { kill -CONT "${tasks[@]}" 2>/dev/null; fail "requeue: the SIGTERM did not reach process $p within 30 s"; }
    sleep 0.05
  done
done
kill -CONT "${tasks[@]}" 2>/dev/null || true
wait_done "$id" requeue 120
[ "$(field "$id" Restarts)" = 1 ] || { cat "$out" >&2; fail "requeue: job $id was not requeued once (Restarts=$(field "$id" Restarts))"; }
grep -q "requeueing job $id" "$out" || { cat "$out" >&2; fail "requeue: the script did not requeue job $id"; }
stop=$(sed -n 's/^stopped at step \([0-9]*\): checkpoint saved.*/\1/p' "$out" | head -n 1)
[ -n "$stop" ] || { cat "$out" >&2; fail "requeue: the processes did not stop with a checkpoint"; }
[ "$stop" -le $(( paused + 2 )) ] || fail "requeue: paused after step $paused, but stopped only at step $stop"
grep -q "^resumed from .* (step $stop)" "$out" || { cat "$out" >&2; fail "requeue: the second run did not resume from step $stop"; }
check_run "$id" requeue "$long"
worst=$(against_mpirun requeue "$long")
echo "job $id: SIGTERM after step $paused -> stopped at step $stop with a checkpoint -> requeued -> resumed -> COMPLETED" \
     "($long steps); losses vs an uninterrupted mpirun -np 2: worst relative difference $worst"
echo "PASSED"
