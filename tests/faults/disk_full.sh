#!/usr/bin/env bash
# A full disk while writing a checkpoint and while exporting final/: the run stops with an
# error naming the file and the checkpoint a resume would use; nothing half-written is left
# (no .tmp folder, no partial final/); after space is freed, train.resume=true continues,
# and its losses equal an uninterrupted run's. The disk is a small tmpfs mounted for the test
# (as root, or as root of a user namespace); skips (77) where neither can mount.
set -euo pipefail
lathe=$1
src=$2
if [ "$(id -u)" -ne 0 ] && [ -z "${LATHE_IN_USERNS:-}" ]; then
  if unshare -Urm true 2>/dev/null; then
    LATHE_IN_USERNS=1 exec unshare -Urm bash "$0" "$@"
  fi
  echo "SKIPPED: mounting a small tmpfs needs root or user namespaces (unshare -Urm)"
  exit 77
fi
tmp=$(mktemp -d)
disk="$tmp/disk"
mkdir -p "$disk"
cleanup() { umount "$disk" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
# stories260K: a checkpoint is 260032 parameters × 12 bytes (weights, AdamW m and v) =
# 3.1 MB; final/ in fp32 is 1.04 MB plus the tokenizer.
mount_disk() { # size
  umount "$disk" 2>/dev/null || true
  mount -t tmpfs -o "size=$1" tmpfs "$disk" ||
    { echo "SKIPPED: cannot mount a tmpfs at $disk"; exit 77; }
}
train() { # output_dir log max_steps [more overrides]
  local out=$1 log=$2 steps=$3
  shift 3
  "$lathe" train /dev/null model.path="$src/examples/stories260K" \
    data.train="$src/examples/data/gsm8k_train.jsonl" data.format=gsm8k data.seq_len=128 \
    data.cache_dir="$tmp/cache" train.precision=fp32 train.device=cpu train.batch_size=2 \
    train.max_steps="$steps" train.threads=2 output.save_every=2 output.keep_last=2 \
    output.dir="$out" "$@" >"$log" 2>&1
}
losses() { /usr/bin/python3 -c '
import json, sys
print(" ".join("%d:%r" % (j["step"], j["loss"]) for j in map(json.loads, open(sys.argv[1])) if "loss" in j))' "$1"; }

# The uninterrupted run, on the ordinary disk.
train "$tmp/ref" "$tmp/ref.log" 4 || { cat "$tmp/ref.log"; fail "reference run"; }

echo "== a full disk while writing the step-4 checkpoint (room for one: 5 MiB)"
mount_disk 5m
if train "$disk/run" "$tmp/a.log" 4; then fail "the run succeeded on a full disk"; fi
grep -q "error: checkpoint of step 4 not saved: cannot write $disk/run/checkpoints/step_00000004.tmp/state.safetensors" "$tmp/a.log" ||
  { cat "$tmp/a.log"; fail "the error does not name the checkpoint file"; }
grep -q "the disk is full" "$tmp/a.log" || { cat "$tmp/a.log"; fail "no disk-full advice"; }
grep -q "The newest complete checkpoint, $disk/run/checkpoints/step_00000002, is intact" "$tmp/a.log" ||
  { cat "$tmp/a.log"; fail "the error does not name the checkpoint to resume from"; }
[ "$(ls "$disk/run/checkpoints")" = "step_00000002" ] ||
  fail "checkpoints/ holds $(ls "$disk/run/checkpoints" | tr '\n' ' '), expected only step_00000002"
sed -n 's/^error: //p' "$tmp/a.log"
echo "-- after freeing space: train.resume=true"
mount -o remount,size=32m "$disk"
train "$disk/run" "$tmp/b.log" 4 train.resume=true || { cat "$tmp/b.log"; fail "resume"; }
grep -q "resumed from $disk/run/checkpoints/step_00000002 (step 2)" "$tmp/b.log" || { cat "$tmp/b.log"; fail "not resumed from step 2"; }
[ "$(losses "$disk/run/metrics.jsonl")" = "$(losses "$tmp/ref/metrics.jsonl")" ] ||
  fail "losses $(losses "$disk/run/metrics.jsonl") differ from the uninterrupted $(losses "$tmp/ref/metrics.jsonl")"
test -f "$disk/run/final/model.safetensors" || fail "no final model after the resume"
echo "resumed: steps and losses equal the uninterrupted run: $(losses "$disk/run/metrics.jsonl")"

echo "== a full disk while exporting final/ (room for the step-2 checkpoint, not final/: 4 MiB)"
mount_disk 4m
if train "$disk/run" "$tmp/c.log" 2; then fail "the export succeeded on a full disk"; fi
grep -q "error: the final model was not saved: cannot write $disk/run/final.tmp/" "$tmp/c.log" ||
  { cat "$tmp/c.log"; fail "the error does not name the file of final/"; }
grep -q "the disk is full" "$tmp/c.log" || { cat "$tmp/c.log"; fail "no disk-full advice"; }
[ ! -e "$disk/run/final" ] && [ ! -e "$disk/run/final.tmp" ] || fail "a partial final/ was left: $(ls "$disk/run")"
sed -n 's/^error: //p' "$tmp/c.log"
echo "-- after freeing space: train.resume=true"
mount -o remount,size=32m "$disk"
train "$disk/run" "$tmp/d.log" 2 train.resume=true || { cat "$tmp/d.log"; fail "resume"; }
"$lathe" generate --model "$disk/run/final" --prompt "Once" --max-new-tokens 4 --temperature 0 >/dev/null ||
  fail "the exported final/ does not load"
echo "exported after the resume; final/ loads"
echo "2 passed, 0 failed"
