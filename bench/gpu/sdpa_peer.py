#!/usr/bin/env python3
"""PyTorch peer for lathe's attention timings (bench_cuda_kernels' attention_fwd/bwd).

python3 bench/gpu/sdpa_peer.py [--batch 1] [--seq 4096] [--heads 32] [--kv-heads 8] \
    [--head-dim 128] [--reps 10]

torch.nn.functional.scaled_dot_product_attention, causal, bf16, with the FlashAttention
backend forced (torch.nn.attention.sdpa_kernel(SDPBackend.FLASH_ATTENTION)). GQA through
enable_gqa=True (K and V keep their 8 heads); if this PyTorch's flash backend refuses
that, K and V are repeated to 32 heads first (outside the timing) and the JSON says
"gqa": "repeat". Backward is torch.autograd.grad of the output against q, k and v with a
random dO. Times are the best of --reps after a warm-up (as bench_cuda_kernels), and the
FLOP counts are lathe's: forward 2·B·H·T²·D (the causal half of 4·B·H·T²·D), backward
2.5× that. Prints one JSON line.
"""
import argparse
import json
import sys


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--reps", type=int, default=10)
    return ap.parse_args(argv)


def best_ms(torch, f, reps):
    f()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        torch.cuda.synchronize()
        best = min(best, a.elapsed_time(b))
    return best


def main():
    args = parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        sys.exit(f"sdpa_peer: needs PyTorch with CUDA ({e})")
    if not torch.cuda.is_available():
        sys.exit(f"sdpa_peer: no CUDA device visible to PyTorch {torch.__version__}")
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as e:
        sys.exit(f"sdpa_peer: needs torch.nn.attention.sdpa_kernel (PyTorch >= 2.3): {e}")
    B, T, H, KV, D = args.batch, args.seq, args.heads, args.kv_heads, args.head_dim
    torch.manual_seed(0)
    dev, dt = "cuda", torch.bfloat16
    q = torch.randn(B, H, T, D, device=dev, dtype=dt, requires_grad=True)
    k = torch.randn(B, KV, T, D, device=dev, dtype=dt, requires_grad=True)
    v = torch.randn(B, KV, T, D, device=dev, dtype=dt, requires_grad=True)
    dout = torch.randn(B, H, T, D, device=dev, dtype=dt)
    gqa = "enable_gqa"
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        try:
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            kk, vv, kw = k, v, {"enable_gqa": True}
        except (RuntimeError, TypeError):
            gqa = "repeat"
            kk = k.detach().repeat_interleave(H // KV, dim=1).requires_grad_()
            vv = v.detach().repeat_interleave(H // KV, dim=1).requires_grad_()
            kw = {}

        def fwd():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, kk, vv, is_causal=True, **kw)

        out = F.scaled_dot_product_attention(q, kk, vv, is_causal=True, **kw)

        def bwd():
            torch.autograd.grad(out, (q, kk, vv), dout, retain_graph=True)

        f_ms = best_ms(torch, fwd, args.reps)
        b_ms = best_ms(torch, bwd, args.reps)
    flop = 2.0 * B * H * T * T * D
    print(json.dumps({
        "engine": "torch_sdpa_flash",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "dtype": "bf16",
        "gqa": gqa,
        "shape": f"{B}x{T}_h{H}_kv{KV}_d{D}",
        "fwd_ms": f_ms,
        "fwd_tflops": flop / f_ms / 1e9,
        "bwd_ms": b_ms,
        "bwd_tflops": 2.5 * flop / b_ms / 1e9,
    }), flush=True)


if __name__ == "__main__":
    main()
