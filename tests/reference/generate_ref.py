#!/usr/bin/python3
"""Greedy generation reference for lathe: a tiny random Llama and its greedy continuations,
computed the slow, obviously right way (the full sequence recomputed for every new token,
no KV cache), for tests/generate/greedy_test.cpp.

Usage: /usr/bin/python3 tests/reference/generate_ref.py --out DIR

Writes DIR/model/{config.json,model.safetensors} and DIR/expected.json with the prompts,
64 greedy tokens for each, and the smallest gap between the two largest logits over every
step. The gap matters: lathe computes in fp32 and greedy equality is only meaningful when no
step is a near-tie, so seeds are tried until every gap is at least MIN_MARGIN (the argmax
here is taken in float64).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import Llama, make_config, save_safetensors  # noqa: E402

NEW_TOKENS = 64
MIN_MARGIN = 1e-3
PROMPT_LENGTHS = [1, 6, 17, 3, 11]  # different lengths: each sequence has its own positions
CONFIG = make_config(64, 172, 3, 4, 2, 128, 1e-5, 10000.0, False, max_pos=128)


def init_weights(model, gen, std):
    """Matrices normal(0, std): larger than a trained model's 0.02, so the logits are spread
    and greedy decoding wanders over many tokens instead of repeating one."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(1.0 + 0.1 * noise if name.endswith("norm.weight") else std * noise)


def greedy(model, prompt, steps):
    ids = list(prompt)
    out, margin = [], float("inf")
    for _ in range(steps):
        logits = model(torch.tensor([ids]))[0, -1]
        top = torch.topk(logits, 2).values
        margin = min(margin, float(top[0] - top[1]))
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        ids.append(nxt)
    return out, margin


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    os.makedirs(os.path.join(args.out, "model"), exist_ok=True)
    # Seeds 100..104 have a near-tie somewhere (gap < 1e-3); starting at the first good one
    # keeps the fixture fast, and the loop still guards against a different torch RNG.
    for seed in range(105, 205):
        gen = torch.Generator().manual_seed(seed)
        model = Llama(CONFIG)
        init_weights(model, gen, 0.2)
        prompts = [torch.randint(3, CONFIG["vocab_size"], (n,), generator=gen).tolist()
                   for n in PROMPT_LENGTHS]
        model64 = Llama(CONFIG).double()
        model64.load_state_dict(model.state_dict())
        with torch.no_grad():
            runs = [greedy(model64, p, NEW_TOKENS) for p in prompts]
        margin = min(m for _, m in runs)
        distinct = min(len(set(toks)) for toks, _ in runs)
        if margin >= MIN_MARGIN and distinct >= 8:
            break
        print(f"seed {seed}: smallest logit gap {margin:.2e}, fewest distinct tokens "
              f"{distinct}; trying the next seed")
    else:
        sys.exit("no seed in 105..204 gives a generation without near-ties")

    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    with open(os.path.join(args.out, "model", "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    save_safetensors(os.path.join(args.out, "model", "model.safetensors"), weights)
    expected = {"generator": "tests/reference/generate_ref.py", "seed": seed,
                "torch_version": torch.__version__, "max_new_tokens": NEW_TOKENS,
                "min_logit_gap": margin, "prompts": prompts,
                "greedy": [toks for toks, _ in runs]}
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"seed {seed}: {len(prompts)} prompts x {NEW_TOKENS} greedy tokens; smallest logit "
          f"gap {margin:.2e}; distinct tokens per continuation >= {distinct}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
