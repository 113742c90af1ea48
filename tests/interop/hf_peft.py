"""PEFT loads the LoRA adapters lathe trains: peft.PeftModel.from_pretrained(stories260K,
final/) for
  - an adapter on PEFT's default targets (q_proj, v_proj; r 8, alpha 32, dropout 0.05),
  - one on every linear layer (all-linear; r 4, alpha 8) saved as bf16
    (output.save_dtype=bf16),
computes the logits of `lathe logits --model stories260K --adapter final/` within 1e-4
(max |a - b| / max |b|), both in fp32, while the adapter moves the logits by far more
than that (so the comparison sees it). The saved layout is also checked without PEFT by
tests/reference/check_peft_adapter.py.

Usage (tests/interop/in_venv.sh runs it with .venv's Python):
  hf_peft.py LATHE_BINARY REPO_DIR
"""
import os
import subprocess
import sys
import tempfile

import peft
import torch
import transformers
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

import lathe_runs


def main():
    lathe, repo = sys.argv[1], os.path.abspath(sys.argv[2])
    base = os.path.join(repo, "examples", "stories260K")
    print(f"peft {peft.__version__}, transformers {transformers.__version__}, "
          f"torch {torch.__version__}")
    cases = [("LoRA q_proj,v_proj (fp32)", ["peft.method=lora"]),
             ("LoRA all-linear saved as bf16", ["peft.method=lora", "peft.target_modules=all-linear",
                                                "peft.r=4", "peft.alpha=8", "output.save_dtype=bf16"])]
    tok = AutoTokenizer.from_pretrained(base)
    with tempfile.TemporaryDirectory() as scratch:
        for n, (label, overrides) in enumerate(cases):
            adapter = lathe_runs.train(lathe, repo, f"{scratch}/run{n}", *overrides)
            subprocess.run(["/usr/bin/python3", f"{repo}/tests/reference/check_peft_adapter.py",
                            adapter, f"{base}/config.json"], check=True)
            model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32,
                                                         attn_implementation="eager")
            model = PeftModel.from_pretrained(model, adapter).eval()
            lathe_runs.compare(f"{label}: PeftModel", lathe, scratch, base, model, tok,
                               adapter=adapter)
            # What the adapter changes, so that a comparison that ignored it would fail.
            _, with_adapter = lathe_runs.lathe_logits(lathe, scratch, base, lathe_runs.PROMPTS[0],
                                                      adapter)
            _, without = lathe_runs.lathe_logits(lathe, scratch, base, lathe_runs.PROMPTS[0])
            moved = lathe_runs.rel_error(with_adapter, without)
            print(f"{label}: the adapter moves the logits by {moved:.2e} relative")
            if moved < 100 * lathe_runs.MAX_REL:
                sys.exit(f"FAILED: {label}: the adapter barely changes the logits ({moved:.2e})")
    print(f"{len(cases)} adapters: PEFT loads each and computes lathe's base + adapter logits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
