"""Compares lm-eval's results (tests/serve/lm_eval.sh) with lathe's own.

Usage: lm_eval_check.py LATHE MODEL TMP, where TMP holds lm-eval's --output_path (out/),
`lathe eval --samples` (choices.jsonl) and its JSON line (eval.json).
"""
import glob
import json
import os
import subprocess
import sys

lathe, model, tmp = sys.argv[1:4]
failed = []


def latest(pattern):
    files = sorted(glob.glob(os.path.join(tmp, "out", "**", pattern), recursive=True))
    assert files, f"no {pattern} under {tmp}/out"
    return files[-1]


def samples(task):
    return sorted((json.loads(line) for line in open(latest(f"samples_{task}_*.jsonl"))),
                  key=lambda s: int(s["doc_id"]))


results = json.load(open(latest("results_*.json")))["results"]

# PubMedQA: the same accuracy, and the same log-likelihood for every choice.
acc = float(results["lathe_pubmedqa"]["acc,none"])
ours = json.loads(open(os.path.join(tmp, "eval.json")).read().strip().splitlines()[-1])
print(f"lathe_pubmedqa: lm-eval acc {acc:.4f}, lathe eval choice_accuracy "
      f"{ours['choice_accuracy']:.4f} on {ours['choice_rows']} rows")
if ours["choice_rows"] != 40 or abs(acc - ours["choice_accuracy"]) > 1e-12:
    failed.append("the accuracies differ")
rows = [json.loads(line) for line in open(os.path.join(tmp, "choices.jsonl"))]
worst = 0.0
docs = samples("lathe_pubmedqa")
assert len(docs) == 40, len(docs)
for doc in docs:
    theirs = [float(r[0]) for r in doc["filtered_resps"]]
    mine = rows[int(doc["doc_id"])]["logprobs"]
    worst = max(worst, max(abs(a - b) for a, b in zip(theirs, mine)))
print(f"lathe_pubmedqa: largest log-likelihood difference {worst:.2e}")
if worst > 1e-4:
    failed.append(f"log-likelihoods differ by {worst:.2e}")

# GSM8K: each generation equals lathe generate's for the same prompt (no BOS: lm-eval's
# tokens come from /tokenize without special tokens) and stop strings.
docs = samples("lathe_gsm8k")
prompts = os.path.join(tmp, "gsm8k_prompts.jsonl")
with open(prompts, "w") as f:
    for doc in docs:
        f.write(json.dumps({"prompt": doc["arguments"]["gen_args_0"]["arg_0"]}) + "\n")
out = os.path.join(tmp, "gsm8k_generate.jsonl")
subprocess.run([lathe, "generate", "--model", model, "--prompts", prompts, "--output", out,
                "--no-bos", "--max-new-tokens", "48", "--temperature", "0", "--stop", "\n\n",
                "--stop", "Question:", "--threads", "1"], check=True, capture_output=True)
gen = [json.loads(line)["completion"] for line in open(out)]
same = sum(doc["resps"][0][0] == g for doc, g in zip(docs, gen))
em = float(results["lathe_gsm8k"]["exact_match,flexible-extract"])
print(f"lathe_gsm8k: {same}/{len(docs)} generations equal lathe generate's; exact_match "
      f"{em:.4f}")
if len(docs) != 40 or same != len(docs):
    for doc, g in zip(docs, gen):
        if doc["resps"][0][0] != g:
            print(f"  doc {doc['doc_id']}: lm-eval {doc['resps'][0][0]!r} vs {g!r}")
            break
    failed.append("generations differ")

print("2 passed, 0 failed" if not failed else f"{2 - min(2, len(failed))} passed, {len(failed)} failed: {failed}")
sys.exit(1 if failed else 0)
