"""transformers loads the folders lathe writes, unchanged, and computes lathe's logits:
AutoModelForCausalLM and AutoTokenizer on
  - final/ of a full fine-tune (fp32), and of one saved as bf16 (output.save_dtype=bf16),
  - a merged model (lathe merge of a LoRA run's adapter into stories260K),
  - final/ of a run that added special tokens (model.special_tokens: the vocabulary, the
    embedding and the tied lm_head grow from 512 to 514 rows),
each with no missing, unexpected or mismatched tensor, the same token ids as lathe for the
prompts of lathe_runs.PROMPTS (special tokens written in them included), and logits within
1e-4 (max |a - b| / max |b|) of `lathe logits` on the same folder, both in fp32.

Usage (tests/interop/in_venv.sh runs it with .venv's Python):
  hf_transformers.py LATHE_BINARY REPO_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

import lathe_runs


def load(folder, label):
    model, info = AutoModelForCausalLM.from_pretrained(
        folder, torch_dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        sys.exit(f"FAILED: {label}: transformers reports {problems}")
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def main():
    lathe, repo = sys.argv[1], os.path.abspath(sys.argv[2])
    base = os.path.join(repo, "examples", "stories260K")
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        full = lathe_runs.train(lathe, repo, f"{scratch}/full")
        full_bf16 = lathe_runs.train(lathe, repo, f"{scratch}/full_bf16", "output.save_dtype=bf16")
        with open(f"{scratch}/tokens.json", "w") as f:
            json.dump({"tokens": ["<|user|>", "<|assistant|>"]}, f)
        added = lathe_runs.train(lathe, repo, f"{scratch}/added",
                                 f"model.special_tokens={scratch}/tokens.json")
        adapter = lathe_runs.train(lathe, repo, f"{scratch}/lora", "peft.method=lora",
                                   "peft.target_modules=all-linear", "peft.r=4", "peft.alpha=8")
        merged = f"{scratch}/merged"
        subprocess.run([lathe, "merge", "--base", base, "--adapter", adapter, "-o", merged,
                        "--dtype", "fp32", "--threads", "2"], check=True, capture_output=True)

        chat = ["<|user|>What is 2+2?<|assistant|>4", "Hi <|user|> there<|assistant|>"]
        cases = [("final/ (fp32)", full, lathe_runs.PROMPTS),
                 ("final/ saved as bf16", full_bf16, lathe_runs.PROMPTS),
                 ("merged (lathe merge, fp32)", merged, lathe_runs.PROMPTS),
                 ("final/ with 2 added special tokens", added, lathe_runs.PROMPTS + chat)]
        for label, folder, prompts in cases:
            model, tok = load(folder, label)
            if label.startswith("final/ with"):
                rows = model.get_input_embeddings().weight.shape[0]
                if rows != 514 or tok.convert_tokens_to_ids("<|assistant|>") != 513:
                    sys.exit(f"FAILED: {label}: {rows} embedding rows, <|assistant|> is "
                             f"{tok.convert_tokens_to_ids('<|assistant|>')} (want 514 and 513)")
            lathe_runs.compare(label, lathe, scratch, folder, model, tok, prompts)
    print(f"{len(cases)} folders: transformers loads each unchanged and computes lathe's logits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
