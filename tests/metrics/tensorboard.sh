#!/usr/bin/env bash
# output.tensorboard=true, read back by the real TensorBoard: a run that crashed after its
# step-4 checkpoint (steps 5 logged) and was resumed to step 6. TensorBoard's own reader
# (EventAccumulator, the pin of tests/requirements.txt in .venv/) must find every scalar of
# metrics.jsonl at its step, each step once. Skips (77) without that TensorBoard.
set -euo pipefail
lathe=$1
src=$2
venv="$src/.venv"
if ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
  echo "SKIPPED: no tensorboard in $venv; run: bash scripts/setup.sh --test"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run="$tmp/run"
train() { # max_steps [more]
  local steps=$1
  shift
  "$lathe" train /dev/null model.path="$src/examples/stories260K" \
    data.train="$src/examples/data/gsm8k_train.jsonl" data.format=gsm8k data.seq_len=128 \
    data.test_split=0.01 eval.metrics=[loss,ppl] data.cache_dir="$tmp/cache" \
    train.precision=fp32 train.device=cpu train.batch_size=2 train.max_steps="$steps" \
    train.threads=2 output.save_every=2 output.keep_last=5 output.tensorboard=true \
    output.dir="$run" "$@" >>"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
}
train 5
# What a crash during step 6 leaves: steps 1-5 logged, the newest checkpoint step 4.
rm -rf "$run/checkpoints/step_00000005" "$run/final"
train 6 train.resume=true
"$venv/bin/python" - "$run" <<'PY'
import json, math, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = sys.argv[1]
acc = EventAccumulator(run + "/tensorboard", size_guidance={"scalars": 0})
acc.Reload()
expected = {}
for line in open(run + "/metrics.jsonl"):
    j = json.loads(line)
    for k, v in j.items():
        if k not in ("step", "time") and isinstance(v, (int, float)):
            expected.setdefault(k, []).append((j["step"], float(v)))
tags = sorted(acc.Tags()["scalars"])
assert tags == sorted(expected), (tags, sorted(expected))
checked = 0
for tag in tags:
    got = [(e.step, e.value) for e in acc.Scalars(tag)]
    want = expected[tag]
    steps = [s for s, _ in got]
    assert len(steps) == len(set(steps)), f"{tag}: a step appears twice: {steps}"
    assert [s for s, _ in want] == steps, f"{tag}: steps {steps}, metrics.jsonl has {[s for s, _ in want]}"
    for (s, g), (_, w) in zip(got, want):
        # TensorBoard scalars are float32.
        assert math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-30), f"{tag} step {s}: {g} vs {w}"
        checked += 1
loss_steps = [e.step for e in acc.Scalars("loss")]
assert loss_steps == [1, 2, 3, 4, 5, 6], loss_steps
print(f"TensorBoard read {len(tags)} tags, {checked} scalars, each equal to metrics.jsonl; "
      f"loss at steps {loss_steps}")
PY
echo "1 passed, 0 failed"
