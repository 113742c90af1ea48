#!/usr/bin/python3
"""PyTorch peer for lathe's training-speed benchmark.

/usr/bin/python3 bench/torch_peer.py --config CONFIG_JSON --batch 4 --seq 256 --steps N \
    --warmup W --threads 2 --precision fp32|bf16

Trains the reference Llama (tests/reference/llama_ref.py) from a random init on random
ids with AdamW and prints one JSON line of timings. bf16 is standard autocast mixed
precision: fp32 master weights and optimizer, forward + loss under CPU bf16 autocast.
"""
import time

T_START = time.perf_counter()  # before the heavy imports: startup cost is part of the result

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
import torch  # noqa: E402
from llama_ref import Llama, init_weights, token_ce  # noqa: E402


def blas_info():
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return m.group(1) if m else "unknown"


def main():
    ap = argparse.ArgumentParser(description="PyTorch peer for the lathe training benchmark")
    ap.add_argument("--config", required=True, help="HF-style config.json")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as f:
        cfg = json.load(f)
    cfg.setdefault("rms_norm_eps", 1e-5)
    cfg.setdefault("rope_theta", 10000.0)
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])

    model = Llama(cfg)
    init_weights(model, torch.Generator().manual_seed(args.seed))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, cfg["vocab_size"], (args.batch, args.seq + 1), generator=gen)
    x, y = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
    bf16 = args.precision == "bf16"

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = token_ce(model(x), y, "mean")  # token_ce upcasts logits to fp32
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    first_step_done = None
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        if first_step_done is None:
            first_step_done = t1
        if i >= args.warmup:
            times.append(t1 - t0)

    median = statistics.median(times) if times else float("nan")
    # ru_maxrss is in KiB on Linux.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "peer": "pytorch",
        "torch_version": torch.__version__,
        # fp32 matmuls go to this BLAS (Debian's torch: "generic" = netlib reference BLAS,
        # much slower than oneDNN, which serves the bf16 path); recorded to explain results.
        "blas": blas_info(),
        "precision": args.precision,
        "threads": args.threads,
        "batch": args.batch,
        "seq": args.seq,
        "steps": args.steps,
        "warmup": args.warmup,
        "tokens_per_s": args.batch * args.seq / median if times else None,
        "step_time_s": median,
        "peak_rss_mb": round(peak_rss_mb, 1),
        # From interpreter start of this script (before importing torch) to the end of
        # the first training step, whether that step is warm-up or timed.
        "startup_to_first_step_s": first_step_done - T_START,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
