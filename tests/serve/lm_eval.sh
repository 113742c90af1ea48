#!/usr/bin/env bash
# EleutherAI's lm-evaluation-harness (the lm-eval pin of tests/requirements.txt in .venv/)
# against `lathe serve` on stories260K, through its local-completions model with lathe's own
# tokenizer (remote: /tokenizer_info, /tokenize), on the local tasks of tests/serve/lm_eval/:
#   - lathe_pubmedqa (loglikelihood, 40 PubMedQA rows): its accuracy equals what
#     `lathe eval --metrics choice_accuracy` computes from the same model and rows, and every
#     choice's log-likelihood agrees within 1e-4;
#   - lathe_gsm8k (generate_until, 40 GSM8K rows): every generation equals `lathe generate`'s
#     on the same prompt and stop strings.
# Skips (77) without lm-eval.
set -euo pipefail
lathe=$1
src=$2
venv="$src/.venv"
if ! "$venv/bin/python" -c "import lm_eval" 2>/dev/null; then
  echo "SKIPPED: no lm-eval in $venv; run: bash scripts/setup.sh --test"
  exit 77
fi
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
cd "$src"  # the task files name their data relative to the repository root
model=examples/stories260K

"$lathe" serve --model "$model" --port 0 --threads 1 --max-batch 8 >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  grep -q "ready at" "$tmp/serve.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/serve.log"; exit 1; }
  sleep 0.1
done
url=$(grep -o 'listening on http://[0-9.:]*' "$tmp/serve.log" | cut -d' ' -f3)
[ -n "$url" ] || { echo "FAILED: lathe serve did not start"; cat "$tmp/serve.log"; exit 1; }

# Offline: the datasets are local JSON files, the tokenizer is the server's.
export HF_HOME="$tmp/hf" HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$venv/bin/lm_eval" --model local-completions \
  --model_args "base_url=$url/v1/completions,model=stories260K,num_concurrent=4,max_length=512,tokenizer_backend=remote,tokenized_requests=True" \
  --tasks lathe_pubmedqa,lathe_gsm8k --include_path tests/serve/lm_eval --limit 40 \
  --output_path "$tmp/out" --log_samples >"$tmp/lm_eval.log" 2>&1 || {
  tail -40 "$tmp/lm_eval.log"
  exit 1
}
grep -A8 "^|" "$tmp/lm_eval.log" | head -12

"$lathe" eval /dev/null model.path="$model" data.format=pubmedqa train.precision=fp32 train.threads=1 \
  --data tests/serve/lm_eval/pubmedqa_40.jsonl --metrics choice_accuracy --max-samples 0 \
  --samples "$tmp/choices.jsonl" >"$tmp/eval.json" 2>"$tmp/eval.log" || {
  cat "$tmp/eval.log"
  exit 1
}
"$venv/bin/python" tests/serve/lm_eval_check.py "$lathe" "$model" "$tmp"

kill -TERM "$pid"
wait "$pid" || { echo "FAILED: lathe serve exited $? after SIGTERM"; exit 1; }
pid=
