#!/usr/bin/python3
"""PyTorch peer for lathe's training-speed benchmark.

/usr/bin/python3 bench/torch_peer.py --config CONFIG_JSON --batch 4 --seq 256 --steps N \
    --warmup W --threads 2 --precision fp32|bf16 [--peft none|lora] [--lora-r 16] \
    [--lora-targets all-linear | q_proj k_proj ...]

Trains the reference Llama (tests/reference/llama_ref.py) from a random init on random
ids with AdamW and prints one JSON line of timings. bf16 is standard autocast mixed
precision: fp32 master weights and optimizer, forward + loss under CPU bf16 autocast.

--peft lora does what PEFT's LoRA does (written out here: no peft/transformers on this
machine): each target nn.Linear is wrapped so y = base(x) + (alpha/r)·B(A(dropout(x))),
alpha = 2r, dropout 0, A kaiming-uniform and B zero (PEFT's init); every base weight is
frozen and AdamW sees only the adapters. --peft qlora is refused: it needs bitsandbytes'
4-bit kernels, which this machine does not have.
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

# PEFT's module names for the seven projections of a Llama block ("all-linear" = all of
# them; PEFT's all-linear leaves lm_head out, and so does this).
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def blas_info():
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return m.group(1) if m else "unknown"


def parse_lora_targets(names, ap):
    on = set()
    for n in (t for name in names for t in name.split(",") if t):
        if n in ("all-linear", "all_linear"):
            on.update(LORA_TARGETS)
        elif n in LORA_TARGETS:
            on.add(n)
        else:
            ap.error(f"--lora-targets: unknown module '{n}'; Llama's are "
                     f"{', '.join(LORA_TARGETS)} (or all-linear)")
    if not on:
        ap.error("--lora-targets is empty")
    return [t for t in LORA_TARGETS if t in on]


class LoraLinear(torch.nn.Module):
    """PEFT's lora.Linear forward: result = base(x); result += B(A(dropout(x))) * scaling,
    with x cast to the adapter dtype and the sum cast back to the base output's dtype."""

    def __init__(self, base, r, alpha, dropout, adapter_dtype):
        super().__init__()
        self.base_layer = base
        self.lora_dropout = torch.nn.Dropout(dropout) if dropout > 0 else torch.nn.Identity()
        # nn.Linear's own init is kaiming_uniform_(a=sqrt(5)), PEFT's init for lora_A.
        self.lora_A = torch.nn.Linear(base.in_features, r, bias=False, dtype=adapter_dtype)
        self.lora_B = torch.nn.Linear(r, base.out_features, bias=False, dtype=adapter_dtype)
        torch.nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        result = self.base_layer(x)
        result_dtype = result.dtype
        x = x.to(self.lora_A.weight.dtype)
        result = result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling
        return result.to(result_dtype)


def apply_lora(model, targets, r, alpha, dropout, adapter_dtype):
    """get_peft_model: freeze everything, then swap each target Linear for a LoraLinear."""
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name in targets:
                base = getattr(parent, name, None)
                if isinstance(base, torch.nn.Linear):
                    setattr(parent, name, LoraLinear(base, r, alpha, dropout, adapter_dtype))
    return [p for n, p in model.named_parameters() if ".lora_" in n]


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
    ap.add_argument("--peft", choices=("none", "lora", "qlora"), default="none",
                    help="none = full fine-tune; lora = frozen base + LoRA adapters")
    ap.add_argument("--lora-r", type=int, default=16, help="LoRA rank (alpha = 2r)")
    ap.add_argument("--lora-targets", nargs="+", default=["all-linear"],
                    help="projections to adapt (PEFT names, space- or comma-separated), "
                         "or all-linear")
    args = ap.parse_args()
    if args.peft == "qlora":
        ap.error("--peft qlora is not supported by the PyTorch peer: QLoRA needs "
                 "bitsandbytes' NF4 kernels, which are not installed here (and dequantizing "
                 "in Python would not measure what a QLoRA user runs); use --peft lora")
    if args.lora_r <= 0:
        ap.error("--lora-r must be positive")
    lora_targets = parse_lora_targets(args.lora_targets, ap) if args.peft == "lora" else None

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as f:
        cfg = json.load(f)
    cfg.setdefault("rms_norm_eps", 1e-5)
    cfg.setdefault("rope_theta", 10000.0)
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])

    bf16 = args.precision == "bf16"
    lora = args.peft == "lora"
    # LoRA + bf16 the way a PEFT user runs it: the model loaded with torch_dtype=bfloat16
    # (transformers builds it under that default dtype, so no fp32 copy ever exists; the
    # frozen base - linears, embeddings, norms, lm_head - is stored in bf16, as lathe's
    # --peft lora stores its frozen base in the run's precision), the adapters in fp32
    # (get_peft_model's autocast_adapter_dtype=True default upcasts them), and forward +
    # loss under bf16 autocast (Trainer's bf16=True). Full fine-tuning keeps the fp32
    # master weights of the plain --precision bf16 mode. fp32 runs are fp32 throughout.
    base_dtype = torch.bfloat16 if (lora and bf16) else torch.float32
    torch.set_default_dtype(base_dtype)
    try:
        model = Llama(cfg)
    finally:
        torch.set_default_dtype(torch.float32)
    # Draws in fp32 one tensor at a time and copies (rounding) into the base's dtype, so a
    # bf16 base holds the same values as the fp32 one, rounded.
    init_weights(model, torch.Generator().manual_seed(args.seed))
    if lora:
        params = apply_lora(model, lora_targets, args.lora_r, 2.0 * args.lora_r, 0.0,
                            torch.float32)
    else:
        params = list(model.parameters())
    model.train()
    opt = torch.optim.AdamW(params, lr=1e-4)
    gen = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, cfg["vocab_size"], (args.batch, args.seq + 1), generator=gen)
    x, y = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()

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
    result = {
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
        "peft": args.peft,
        "trainable_params": sum(p.numel() for p in params),
    }
    if lora:
        result.update({
            "lora_r": args.lora_r,
            "lora_alpha": 2 * args.lora_r,
            "lora_targets": lora_targets,
            "frozen_base_dtype": str(base_dtype).replace("torch.", ""),
        })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
