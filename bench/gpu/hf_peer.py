#!/usr/bin/env python3
"""Hugging Face peer for lathe's GPU training benchmark (`lathe bench --device cuda`).

python3 bench/gpu/hf_peer.py --config configs/bench/llama3-1b.json --batch 1 --seq 2048 \
    [--steps 5] [--warmup 2] [--peft none|lora] [--r 16] [--checkpointing]

transformers' LlamaForCausalLM built from an HF config.json with random weights, SDPA
attention, random token ids, torch.optim.AdamW(fused=True), lr 1e-4, weight decay 0 and
gradient clipping at 1.0 (lathe bench's settings). Prints one JSON line.

Precision, as HF Trainer runs with bf16=True:
  full fine-tune: fp32 master weights, gradients and AdamW state; forward and loss under
    torch.autocast(bfloat16) (Trainer's bf16=True is autocast, not a bf16 model).
  --peft lora: the frozen base in bf16 (torch_dtype=bfloat16, as a LoRA run loads it);
    PEFT's adapters on every linear layer of the blocks ("all-linear": lm_head left out),
    r, alpha = 2r, dropout 0, kept in fp32 by PEFT (autocast_adapter_dtype); forward
    under autocast.
These match lathe bench's bf16 (fp32 master weights, bf16 products) and its LoRA (bf16
frozen base, fp32 adapters, alpha = 2r).

MFU uses lathe's FLOP count (src/model/param_table.cpp): per token 6·P_matmul (full) or
4·P_matmul + 6·P_lora (LoRA), plus 12·L·H·D·T for attention, where P_matmul counts every
block projection and the lm_head; against the H100 SXM's dense bf16 989 TFLOP/s.
Peak memory: torch.cuda.max_memory_allocated over the whole run (weights included).
"""
import argparse
import json
import statistics
import sys
import time

DATASHEET_TFLOPS = 989.0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="HF config.json of the model shape")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--peft", choices=["none", "lora"], default="none")
    ap.add_argument("--r", type=int, default=16, help="LoRA rank (alpha = 2r)")
    ap.add_argument("--checkpointing", action="store_true",
                    help="gradient checkpointing (non-reentrant)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def matmul_params(c):
    C, L, I, V = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"]
    H, KV = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    D = c.get("head_dim") or C // H
    per_layer = C * (H * D + 2 * KV * D) + H * D * C + 3 * C * I
    return per_layer * L + V * C


def flops_per_token(c, seq, lora_params=None):
    H = c["num_attention_heads"]
    D = c.get("head_dim") or c["hidden_size"] // H
    attn = 12.0 * c["num_hidden_layers"] * H * D * seq
    if lora_params is None:
        return 6.0 * matmul_params(c) + attn
    return 4.0 * matmul_params(c) + 6.0 * lora_params + attn


def main():
    args = parse_args()
    t_start = time.perf_counter()
    try:
        import torch
    except ImportError as e:
        sys.exit(f"hf_peer: needs PyTorch with CUDA ({e})")
    if not torch.cuda.is_available():
        sys.exit(f"hf_peer: no CUDA device visible to PyTorch {torch.__version__}; "
                 "this peer measures GPU training only")
    try:
        import transformers
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError as e:
        sys.exit(f"hf_peer: needs transformers ({e})")
    with open(args.config) as f:
        cfg_json = json.load(f)
    cfg = LlamaConfig.from_dict(cfg_json)
    cfg.use_cache = False
    torch.manual_seed(args.seed)
    lora = args.peft == "lora"
    dtype = torch.bfloat16 if lora else torch.float32
    # Built on the GPU directly, in the dtype it trains in: random init, no host copy. The
    # cast covers transformers versions that take the dtype from the config instead.
    torch.set_default_dtype(dtype)
    with torch.device("cuda"):
        model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa")
    torch.set_default_dtype(torch.float32)
    model = model.to(dtype)
    # The peak counts from here: the weights in their training dtype, not a transient copy
    # made while building them (reset_peak_memory_stats starts the peak at what is held).
    torch.cuda.reset_peak_memory_stats()
    peft_version = None
    if lora:
        try:
            import peft
            from peft import LoraConfig, get_peft_model
        except ImportError as e:
            sys.exit(f"hf_peer: --peft lora needs peft ({e})")
        peft_version = peft.__version__
        model = get_peft_model(model, LoraConfig(r=args.r, lora_alpha=2 * args.r, lora_dropout=0.0,
                                                 target_modules="all-linear", bias="none",
                                                 task_type="CAUSAL_LM"))
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    total = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, fused=True)

    g = torch.Generator(device="cuda").manual_seed(7)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), device="cuda", generator=g)
    tokens = args.batch * args.seq
    times, losses, startup = [], [], None
    for s in range(args.warmup + args.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        if s == 0:
            startup = t0 - t_start
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=ids)  # HF shifts the labels inside
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        losses.append(out.loss.item())
        if s >= args.warmup:
            times.append(dt)
    step = statistics.median(times)
    fpt = flops_per_token(cfg_json, args.seq, trainable if lora else None)
    achieved = fpt * tokens / step
    print(json.dumps({
        "engine": "hf",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft_version": peft_version,
        "device": torch.cuda.get_device_name(0),
        "config": args.config,
        "precision": "bf16 autocast, fp32 master weights" if not lora
                     else "bf16 frozen base, fp32 adapters, autocast",
        "attention": "sdpa",
        "optimizer": "AdamW fused",
        "batch": args.batch,
        "seq": args.seq,
        "params": total,
        "trainable_params": trainable,
        "peft": args.peft,
        "lora_r": args.r if lora else None,
        "activation_checkpointing": args.checkpointing,
        "steps": args.steps,
        "tokens_per_s": tokens / step,
        "step_time_s": step,
        "model_tflop_per_step": fpt * tokens / 1e12,
        "achieved_tflops": achieved / 1e12,
        "mfu_datasheet": achieved / (DATASHEET_TFLOPS * 1e12),
        "datasheet_tflops": DATASHEET_TFLOPS,
        "peak_gpu_memory_mb": torch.cuda.max_memory_allocated() / 1048576.0,
        "startup_to_first_step_s": startup,
        "losses": losses,
    }), flush=True)


if __name__ == "__main__":
    main()
