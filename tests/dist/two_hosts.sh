#!/usr/bin/env bash
# Two hosts on one machine: two network namespaces joined by a veth pair stand in for two
# machines on a network. mpirun (run inside the first namespace) starts one lathe process
# in each over OpenMPI's rsh launcher, whose "ssh" is a script that enters the other
# namespace with `ip netns exec`; the processes meet over the TCP transport only (no shared
# memory), so every byte between them crosses the veth. For each strategy the per-step
# losses of 2 processes x micro-batch 1 must match 1 process x micro-batch 2 (fp32,
# relative 1e-5), each process must run in its own namespace, and the veth counters must
# grow by at least one gradient's volume per step in each direction.
# Skips (exit 0, "SKIPPED: <reason>") only where network namespaces cannot be created.
# Usage: two_hosts.sh LATHE_BINARY GOLDEN_DIR
set -euo pipefail

lathe=$(realpath "$1")
golden=$(realpath "$2")
g="$golden/gqa_untied"
steps=10

. "$(dirname "$0")/run_helpers.sh"
[ -x "$lathe" ] || fail "no lathe binary at $1"
[ -f "$g/model/model.safetensors" ] || fail "no golden model under $g (run the reference.generate test)"
command -v mpirun >/dev/null || fail "mpirun not found (scripts/setup.sh installs openmpi-bin)"

# --- Can this machine make network namespaces? -------------------------------------------
command -v ip >/dev/null || { echo "SKIPPED: no 'ip' command (iproute2 is not installed)"; exit 0; }
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: network namespaces need root (running as uid $(id -u))"; exit 0
fi

# Names unique to this run (a run killed outright may have left its namespaces behind).
tag=$$
while [ -e "/run/netns/lathe2h_a_$tag" ] || [ -e "/run/netns/lathe2h_b_$tag" ]; do
  tag="$$$(( RANDOM % 1000 ))"
done
ns_a="lathe2h_a_$tag" ns_b="lathe2h_b_$tag"
veth_a="l2h${tag}a" veth_b="l2h${tag}b"     # at most 15 characters
tmp=$(mktemp -d)
mpirun_pid=""

cleanup() {
  local rc=$?
  set +e
  [ -n "$mpirun_pid" ] && kill "$mpirun_pid" 2>/dev/null
  # Whatever the test started that still runs inside its namespaces (an orted, a rank).
  for ns in "$ns_a" "$ns_b"; do
    if [ -e "/run/netns/$ns" ]; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
      ip netns del "$ns" 2>/dev/null     # deleting a namespace deletes its end of the veth
    fi
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! err=$(ip netns add "$ns_a" 2>&1); then
  echo "SKIPPED: cannot create a network namespace: $err"; exit 0
fi
ip netns add "$ns_b"

# --- The network: 10.X.Y.1/24 <-veth-> 10.X.Y.2/24 ----------------------------------------
x=$(( 100 + 10#$tag % 100 )) y=$(( (10#$tag / 100) % 250 + 1 ))
subnet="10.$x.$y.0/24" ip_a="10.$x.$y.1" ip_b="10.$x.$y.2"
ip link add "$veth_a" netns "$ns_a" type veth peer name "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$ip_a/24" dev "$veth_a"
ip -n "$ns_b" addr add "$ip_b/24" dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up
# Reachable: a TCP connection to a closed port of the other end is refused (not lost).
reachable=no
for _ in 1 2 3 4 5 6 7 8 9 10; do
  probe=$(ip netns exec "$ns_a" timeout 2 bash -c "exec 3<>/dev/tcp/$ip_b/9" 2>&1 || true)
  case "$probe" in *refused*) reachable=yes; break ;; esac
  sleep 0.2
done
[ "$reachable" = yes ] || \
  { ip netns exec "$ns_a" sh -c "ip -4 addr show; ip route" >&2; fail "$ip_a cannot reach $ip_b over the veth"; }
echo "namespaces $ns_a ($ip_a, $veth_a) and $ns_b ($ip_b, $veth_b) on $subnet"

# --- The launch agent: mpirun's "ssh" into a namespace ------------------------------------
# Called by the rsh launcher as `agent.sh [options] HOST COMMAND...`; runs COMMAND in the
# namespace of HOST with that host's own temporary directory, and logs where it went.
mkdir -p "$tmp/host_a" "$tmp/host_b"
cat >"$tmp/agent.sh" <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
case "\$host" in
  $ip_a) ns=$ns_a; dir=$tmp/host_a ;;
  $ip_b) ns=$ns_b; dir=$tmp/host_b ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
echo "\$host \$ns" >>"$tmp/agent.log"
exec ip netns exec "\$ns" env TMPDIR="\$dir" sh -c "\$*"
EOF
chmod +x "$tmp/agent.sh"
printf '%s slots=1\n%s slots=1\n' "$ip_a" "$ip_b" >"$tmp/hostfile"

export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
mpi=(mpirun -np 2 --hostfile "$tmp/hostfile" --map-by node --bind-to none
     --mca plm rsh --mca plm_rsh_agent "$tmp/agent.sh"
     --mca pml ob1 --mca btl tcp,self
     --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet"
     -x OMP_NUM_THREADS -x OMP_WAIT_POLICY -x PATH)
[ -n "${LD_LIBRARY_PATH:-}" ] && mpi+=(-x LD_LIBRARY_PATH)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)

# Runs the mpirun command line "$@" inside the first namespace (in the background, so that
# the trap can end it), with a time limit.
in_a() {
  ip netns exec "$ns_a" env TMPDIR="$tmp/host_a" timeout 120 "$@" &
  mpirun_pid=$!
  local rc=0
  wait "$mpirun_pid" || rc=$?
  mpirun_pid=""
  return "$rc"
}

# --- Each rank in its own namespace ------------------------------------------------------
in_a "${mpi[@]}" sh -c 'echo "rank $OMPI_COMM_WORLD_RANK netns $(stat -L -c %i /proc/self/ns/net)" \
  "ips $(ip -4 -o addr show | awk "{print \$4}" | tr "\n" " ")"' >"$tmp/where.txt" 2>&1 || \
  { cat "$tmp/where.txt" >&2; fail "mpirun across the namespaces did not start"; }
cat "$tmp/where.txt"
inode_a=$(stat -L -c %i "/run/netns/$ns_a") inode_b=$(stat -L -c %i "/run/netns/$ns_b")
grep -q "^rank 0 netns $inode_a ips .*$ip_a/24" "$tmp/where.txt" || fail "rank 0 is not in $ns_a"
grep -q "^rank 1 netns $inode_b ips .*$ip_b/24" "$tmp/where.txt" || fail "rank 1 is not in $ns_b"
grep -q "^$ip_b $ns_b\$" "$tmp/agent.log" || fail "mpirun did not go through the launch agent to $ip_b"
echo "rank 0 runs in $ns_a (netns inode $inode_a), rank 1 in $ns_b (netns inode $inode_b)"

# --- Training ----------------------------------------------------------------------------
common=(train /dev/null model.path="$g/model" data.train="$g/train/data.jsonl" data.seq_len=24
        data.shuffle=true train.precision=fp32 train.lr=2e-3 train.weight_decay=0.1
        train.betas=[0.9,0.95] train.warmup_steps=3 train.max_steps=$steps train.grad_clip=0.5
        train.grad_accum=2 train.threads=1 output.save_dtype=fp32)

counter() { ip netns exec "$ns_a" cat "/sys/class/net/$veth_a/statistics/$1"; }

# The bytes of one full gradient (fp32, the size of every tensor of the model).
st="$g/model/model.safetensors"
header=$(od -An -t u8 -N 8 "$st" | tr -d ' ')
grad_bytes=$(( $(stat -c %s "$st") - 8 - header ))

"$lathe" "${common[@]}" train.batch_size=2 output.dir="$tmp/one" >"$tmp/one.log" 2>&1 || \
  { cat "$tmp/one.log" >&2; fail "the single-process run failed"; }
losses "$tmp/one" >"$tmp/one.loss"
[ "$(wc -l <"$tmp/one.loss")" -eq "$steps" ] || fail "the single-process run logged $(wc -l <"$tmp/one.loss") losses, not $steps"

for strategy in no_shard zero1 shard_grad_op full_shard; do
  out="$tmp/two_$strategy"
  tx0=$(counter tx_bytes) rx0=$(counter rx_bytes)
  : >"$tmp/agent.log"
  in_a "${mpi[@]}" "$lathe" "${common[@]}" train.batch_size=1 dist.strategy=$strategy \
    output.dir="$out" >"$tmp/$strategy.log" 2>&1 || \
    { cat "$tmp/$strategy.log" >&2; fail "$strategy: the 2-process run across the namespaces failed"; }
  tx=$(( $(counter tx_bytes) - tx0 )) rx=$(( $(counter rx_bytes) - rx0 ))
  grep -q "^$ip_b $ns_b\$" "$tmp/agent.log" || fail "$strategy: rank 1 was not launched into $ns_b"

  losses "$out" >"$out.loss"
  [ "$(wc -l <"$out.loss")" -eq "$steps" ] || fail "$strategy: $(wc -l <"$out.loss") losses, not $steps"
  worst=$(worst_rel "$out.loss" "$tmp/one.loss")
  below "$worst" 1e-5 || {
    paste "$out.loss" "$tmp/one.loss" >&2
    fail "$strategy: losses differ by $worst (relative) from the single process"
  }
  # Every step moves at least one gradient's worth each way between the two processes.
  need=$(( steps * grad_bytes ))
  [ "$tx" -ge "$need" ] && [ "$rx" -ge "$need" ] || \
    fail "$strategy: the veth carried tx $tx / rx $rx bytes, less than $steps steps x $grad_bytes gradient bytes"
  echo "$strategy: 2 processes on 2 namespaces x micro-batch 1 vs 1 process x 2: worst loss difference" \
       "$worst (relative, $steps steps); veth $veth_a tx $tx rx $rx bytes (>= $need)"
done
echo "PASSED"
