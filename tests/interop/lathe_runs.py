"""What the transformers and PEFT checks share: short lathe runs on the bundled stories260K,
lathe's logits (`lathe logits --output`), and the comparison with a PyTorch model's.
"""
import json
import os
import subprocess
import sys

import torch
from safetensors import safe_open

# fp32 on both sides: the limit of the project's fp32 reference checks (docs/training.md).
MAX_REL = 1e-4

# Texts whose logits are compared: plain story text, a GSM8K question repeated to about
# 300 tokens (RoPE far from position 0; stories260K's context is 512), and special tokens
# written in the text.
PROMPTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    " ".join(["Natalia sold clips to 48 of her friends in April, and then she sold half as many "
              "clips in May. How many clips did Natalia sell altogether in April and May?"] * 4),
    "Tom said </s><s> hello",
]


def train(lathe, repo, out, *overrides):
    """A 4-step fp32 run on the bundled stories260K and GSM8K sample; returns final/."""
    cmd = [lathe, "train", "/dev/null", f"model.path={repo}/examples/stories260K",
           f"data.train={repo}/examples/data/gsm8k_train.jsonl", "data.format=gsm8k",
           "data.seq_len=128", f"data.cache_dir={out}/../cache", "train.precision=fp32",
           "train.batch_size=2", "train.threads=2", "train.max_steps=4", "train.lr=1e-2",
           "train.warmup_steps=0", "eval.metrics=[]", f"output.dir={out}", *overrides]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stderr}")
    return os.path.join(out, "final")


def lathe_logits(lathe, scratch, model, prompt, adapter=None):
    """lathe's token ids of `prompt` and its fp32 logits [tokens, vocab]."""
    path = os.path.join(scratch, "logits.safetensors")
    cmd = [lathe, "logits", "--model", model, "--prompt", prompt, "--output", path,
           "--threads", "2", "--top", "0"]
    if adapter:
        cmd += ["--adapter", adapter]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stderr}")
    with safe_open(path, "pt") as f:
        return json.loads(f.metadata()["input_ids"]), f.get_tensor("logits")


def rel_error(got, want):
    """max |got - want| / max |want| (the per-tensor relative error of the C++ tests)."""
    return ((got - want).abs().max() / want.abs().max()).item()


def compare(label, lathe, scratch, model_dir, hf_model, hf_tokenizer, prompts=PROMPTS,
            adapter=None):
    """HF's ids and logits against lathe's, prompt by prompt; returns the worst relative
    error and fails the test when the ids differ or it exceeds MAX_REL."""
    worst = 0.0
    for prompt in prompts:
        ids, ours = lathe_logits(lathe, scratch, model_dir, prompt, adapter)
        hf_ids = hf_tokenizer(prompt).input_ids
        if hf_ids != ids:
            sys.exit(f"FAILED: {label}: {prompt!r} tokenizes to\n  lathe {ids}\n  HF    {hf_ids}")
        with torch.no_grad():
            theirs = hf_model(torch.tensor([ids])).logits[0].float()
        if theirs.shape != ours.shape:
            sys.exit(f"FAILED: {label}: logits {tuple(theirs.shape)} vs lathe's {tuple(ours.shape)}")
        worst = max(worst, rel_error(ours, theirs))
    status = "ok" if worst <= MAX_REL else "FAILED"
    print(f"{label}: {len(prompts)} prompts, ids equal, logits max relative difference "
          f"{worst:.2e} (limit {MAX_REL:.0e}) {status}")
    if worst > MAX_REL:
        sys.exit(1)
    return worst
