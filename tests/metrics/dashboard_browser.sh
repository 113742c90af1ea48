#!/usr/bin/env bash
# The dashboard in a real browser. A finished run (6 steps, eval samples written by
# `lathe eval --samples RUN/samples/final.jsonl`) and a run still training on the bundled
# stories260K model, which serves its own page (output.dashboard). Headless chromium,
# driven by Selenium (tests/metrics/dashboard_browser.py), checks that the training run's
# page charts its loss and shows each new step within 2 s of its metrics.jsonl line, and
# that `lathe dashboard FINISHED RUNNING` overlays the two runs. Screenshots:
# BUILD_DIR/dashboard.png (two runs) and BUILD_DIR/dashboard_live.png (the running run).
# Usage: dashboard_browser.sh LATHE SRC_DIR BUILD_DIR. Skips (77) without chromium,
# chromedriver or the Selenium of tests/requirements.txt in .venv/.
set -euo pipefail
lathe=$1
src=$2
build=$3
venv="$src/.venv"
chromium=$(command -v chromium || true)
driver=$(command -v chromedriver || true)
if [ -z "$chromium" ] || [ -z "$driver" ]; then
  echo "SKIPPED: no chromium or chromedriver on PATH; run: bash scripts/setup.sh --test"
  exit 77
fi
if ! "$venv/bin/python" -c "import selenium" 2>/dev/null; then
  echo "SKIPPED: no selenium in $venv; run: bash scripts/setup.sh --test"
  exit 77
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
common=(model.path="$src/examples/stories260K" data.train="$src/examples/data/gsm8k_train.jsonl"
  data.format=gsm8k data.seq_len=128 data.test_split=0.01 data.cache_dir="$tmp/cache"
  train.precision=fp32 train.device=cpu train.batch_size=4 train.threads=1 train.log_every=50)

# The finished run: lr 3e-3, with samples the way docs/monitoring.md says to write them.
finished="$tmp/lr_3e-3"
"$lathe" train /dev/null "${common[@]}" output.dir="$finished" train.lr=3e-3 train.max_steps=6 \
  >"$tmp/finished.log" 2>&1 || { cat "$tmp/finished.log"; exit 1; }
"$lathe" eval /dev/null model.path="$finished/final" data.train="$src/examples/data/gsm8k_train.jsonl" \
  data.format=gsm8k data.seq_len=128 data.test_split=0.01 data.cache_dir="$tmp/cache" \
  train.threads=1 --metrics exact_match --max-samples 3 --max-new-tokens 16 \
  --samples "$finished/samples/final.jsonl" >"$tmp/eval.log" 2>&1 || { cat "$tmp/eval.log"; exit 1; }

# The running run: lr 1e-3, 8 micro-batches a step (real work, ~0.1-0.3 s a step on one
# core) and more steps than the test lasts; it is stopped (SIGTERM) at the end. Started
# directly, so that $! is lathe itself and the cleanup's kill reaches it.
running="$tmp/lr_1e-3"
live_port=$(free_port)
"$lathe" train /dev/null "${common[@]}" output.dir="$running" train.lr=1e-3 train.grad_accum=8 \
  train.max_steps=100000 output.dashboard="$live_port" >"$tmp/running.log" 2>&1 &
pids+=($!)
# Up when the trainer has loaded the model and the data (a few seconds).
for _ in $(seq 600); do
  grep -q "dashboard: http" "$tmp/running.log" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$tmp/running.log"; exit 1; }
  sleep 0.1
done
grep -q "dashboard: http" "$tmp/running.log" || { echo "the training run did not serve its dashboard"; cat "$tmp/running.log"; exit 1; }

both_port=$(free_port)
"$lathe" dashboard "$finished" "$running" --port "$both_port" >"$tmp/dashboard.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q "dashboard: http" "$tmp/dashboard.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "dashboard: http" "$tmp/dashboard.log" || { cat "$tmp/dashboard.log"; exit 1; }

# A port in use is refused, naming the address and the option.
if "$lathe" dashboard "$finished" --port "$both_port" >"$tmp/busy.log" 2>&1; then
  echo "a second dashboard served port $both_port"; exit 1
fi
grep -q "127.0.0.1:$both_port: the port is in use" "$tmp/busy.log" || { cat "$tmp/busy.log"; exit 1; }
# A missing run folder is named.
if "$lathe" dashboard "$tmp/no_such_run" --port "$(free_port)" >"$tmp/missing.log" 2>&1; then
  echo "a dashboard of a missing folder started"; exit 1
fi
grep -q "no_such_run does not exist" "$tmp/missing.log" || { cat "$tmp/missing.log"; exit 1; }

"$venv/bin/python" "$src/tests/metrics/dashboard_browser.py" --chromium "$chromium" \
  --chromedriver "$driver" --live "http://127.0.0.1:$live_port/" \
  --both "http://127.0.0.1:$both_port/" --running "$running" --finished "$finished" \
  --screenshots "$build"
echo "1 passed, 0 failed"
