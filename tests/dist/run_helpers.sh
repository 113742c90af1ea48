# Shared by the multi-process shell tests (two_hosts.sh, local_slurm.sh, local_ray.sh); sourced.
fail() { echo "FAILED: $*" >&2; exit 1; }
skip() { echo "SKIPPED: $*"; exit 77; }
# What every multi-process test checks first: the lathe binary ($lathe, given as $1), the
# golden model case $2, and mpirun.
check_inputs() {
  [ -x "$lathe" ] || fail "no lathe binary at $1"
  [ -f "$2/model/model.safetensors" ] || fail "no golden model under $2 (run the reference.generate test)"
  command -v mpirun >/dev/null || fail "mpirun not found (scripts/setup.sh installs openmpi-bin)"
}
# The per-step losses of a run folder, one per line.
losses() { grep -o '"loss":[-0-9.eE+]*' "$1/metrics.jsonl" | cut -d: -f2; }
# The worst relative difference between two loss files, line by line (the second is the
# reference), as %.2e.
worst_rel() {
  paste "$1" "$2" | awk '
    { d = $1 - $2; if (d < 0) d = -d; b = $2 < 0 ? -$2 : $2; r = d / b; if (r > w) w = r }
    END { printf "%.2e", w }'
}
# Whether worst_rel's value $1 is below the tolerance $2.
below() { awk -v w="$1" -v t="$2" 'BEGIN { exit !(w < t) }'; }
