#!/usr/bin/env bash
# train.profile_steps=[2,3]: trace.json follows the Trace Event Format (the JSON object
# form Perfetto and chrome://tracing open), covers exactly steps 2 and 3, names its threads,
# and the ops and collectives inside each step add up to its duration within 5%.
set -euo pipefail
lathe=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A 4-layer, 256-wide Llama (10.7M parameters): ops long enough that a step is mostly ops,
# as in real runs, and a run of seconds.
cat >"$tmp/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
 "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 4,
 "num_key_value_heads": 2, "vocab_size": 16000, "max_position_embeddings": 512,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "torch_dtype": "float32"}
JSON
"$lathe" bench --model-config "$tmp/config.json" --save-model "$tmp/model" >/dev/null 2>&1
/usr/bin/python3 -c '
import json, random, sys
random.seed(0)
with open(sys.argv[1], "w") as f:
    for _ in range(32):
        f.write(json.dumps({"input_ids": [random.randrange(16000) for _ in range(129)]}) + "\n")
' "$tmp/rows.jsonl"
"$lathe" train /dev/null model.path="$tmp/model" data.train="$tmp/rows.jsonl" data.seq_len=128 \
  train.batch_size=4 train.max_steps=4 train.precision=fp32 train.device=cpu train.threads=2 \
  train.profile_steps=[2,3] output.dir="$tmp/run" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
grep -q "wrote $tmp/run/trace.json" "$tmp/log" || { cat "$tmp/log"; echo "FAILED: no trace written"; exit 1; }
/usr/bin/python3 - "$tmp/run/trace.json" <<'PY'
import json, sys

doc = json.load(open(sys.argv[1]))
events = doc["traceEvents"]
assert isinstance(events, list) and events, "traceEvents must be a non-empty array"
names = {}
for e in events:
    # Trace Event Format: every event has a name, a phase, a process and a thread; complete
    # events ("X") a start and a duration in microseconds; metadata ("M") their args.
    for key in ("name", "ph", "pid", "tid"):
        assert key in e, f"event without {key}: {e}"
    assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
    if e["ph"] == "M":
        assert e["name"] == "thread_name" and isinstance(e["args"]["name"], str), e
        names[e["tid"]] = e["args"]["name"]
    else:
        assert e["ph"] == "X", f"unexpected phase {e['ph']}"
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float)), e
        assert e["dur"] >= 0, e
steps = sorted((e for e in events if e.get("cat") == "step"), key=lambda e: e["ts"])
assert [s["args"]["step"] for s in steps] == [2, 3], [s.get("args") for s in steps]
assert names.get(steps[0]["tid"]) == "training", names
for s in steps:
    lo, hi = s["ts"], s["ts"] + s["dur"]
    inside = [e for e in events if e["ph"] == "X" and e["tid"] == s["tid"] and
              e.get("cat") in ("op", "collective") and lo <= e["ts"] and e["ts"] + e["dur"] <= hi + 1]
    kinds = {e["name"] for e in inside}
    for op in ("matmul (layers)", "matmul (lm_head)", "attention fwd", "attention bwd", "adamw"):
        assert op in kinds, f"step {s['args']['step']}: no {op} event"
    share = sum(e["dur"] for e in inside) / s["dur"]
    print(f"step {s['args']['step']}: {s['dur'] / 1e3:.1f} ms, {len(inside)} ops summing to "
          f"{100 * share:.1f}% of it")
    assert 0.95 <= share <= 1.0001, f"ops cover {100 * share:.1f}% of step {s['args']['step']}"
PY
echo "1 passed, 0 failed"
