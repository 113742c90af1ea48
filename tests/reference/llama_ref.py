#!/usr/bin/python3
"""Independent PyTorch reference for lathe: tiny random Llama models, their outputs,
gradients and a short AdamW training run, written as golden files for the C++ tests.

Usage: /usr/bin/python3 tests/reference/llama_ref.py --out DIR

Deliberately self-contained (plain torch ops, no transformers, no safetensors package) so
that it checks lathe against the HF Llama semantics rather than against a shared library.
bench/torch_peer.py imports Llama, init_weights and rope_inv_freq from here.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = -100

# ----------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": (torch.float32, 4), "I32": (torch.int32, 4), "I64": (torch.int64, 8)}


def save_safetensors(path, tensors):
    """Write {name: tensor} as F32 safetensors, in the given order."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().cpu().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces so the data section (after the 8-byte length) starts 8-byte aligned.
    hjson += b" " * ((8 - (8 + len(hjson)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    """Read a safetensors file into {name: tensor}, in data-section order."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                             key=lambda kv: kv[1]["data_offsets"][0]):
        dtype, size = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        numel = math.prod(info["shape"])
        assert e - b == numel * size, f"{path}: {name}: byte size mismatch"
        buf = bytearray(data[b:e])  # copy: frombuffer needs writable memory to be safe
        out[name] = torch.frombuffer(buf, dtype=dtype).reshape(info["shape"]).clone() \
            if numel else torch.zeros(info["shape"], dtype=dtype)
    return out


# ----------------------------------------------------------------------------- model

def rope_inv_freq(cfg):
    """Per-pair rotary frequencies, with transformers' llama3 scaling when configured."""
    D = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    # fp32 like HF, so the reference carries the same rounding as a fp32 engine would.
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    assert rs.get("rope_type", rs.get("type")) == "llama3", rs
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old_ctx = rs["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old_ctx / low, inv / factor, inv)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old_ctx / high) & ~(wavelen > old_ctx / low)
    return torch.where(medium, smoothed, scaled)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        # Statistics in fp32 (a no-op in fp32; keeps bf16 autocast in the bench sane).
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, self.H, self.KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.D = cfg.get("head_dim") or C // self.H
        self.q_proj = nn.Linear(C, self.H * self.D, bias=False)
        self.k_proj = nn.Linear(C, self.KV * self.D, bias=False)
        self.v_proj = nn.Linear(C, self.KV * self.D, bias=False)
        self.o_proj = nn.Linear(self.H * self.D, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D).transpose(1, 2)  # [B,H,T,D]
        k = self.k_proj(x).view(B, T, self.KV, self.D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.KV, self.D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # GQA: query head h reads kv head h // (H/KV), i.e. each kv head repeated in place.
        rep = self.H // self.KV
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.D) + mask
        probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        out = (probs @ v).transpose(1, 2).reshape(B, T, self.H * self.D)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, I = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(C, I, bias=False)
        self.up_proj = nn.Linear(C, I, bias=False)
        self.down_proj = nn.Linear(I, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    """Module tree mirrors HF so named_parameters() yields the HF tensor names."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.model.layers = nn.ModuleList(Block(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.model.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if not self.tied:
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)

    def forward(self, ids):
        B, T = ids.shape
        pos = torch.arange(T, dtype=torch.float32)
        angles = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((angles, angles), dim=-1)  # [T,D]
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return F.linear(x, head)


def init_weights(model, gen):
    """normal(0, 0.02) matrices; norm weights 1 + 0.1*normal so they are not trivially 1."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(1.0 + 0.1 * noise if name.endswith("norm.weight") else 0.02 * noise)


def token_ce(logits, targets, reduction):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=IGNORE, reduction=reduction)


# ----------------------------------------------------------------------------- cases

def make_config(C, I, L, H, KV, V, eps, theta, tie, rope_scaling=None, max_pos=128):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": C, "intermediate_size": I, "num_hidden_layers": L,
            "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": C // H,
            "vocab_size": V, "rms_norm_eps": eps, "rope_theta": theta,
            "rope_scaling": rope_scaling, "tie_word_embeddings": tie,
            "max_position_embeddings": max_pos, "hidden_act": "silu",
            "attention_bias": False, "mlp_bias": False,
            "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}


CASES = {
    "gqa_untied": make_config(64, 176, 2, 4, 2, 256, 1e-5, 10000.0, False),
    "mha_tied": make_config(48, 128, 2, 4, 4, 200, 1e-6, 10000.0, True),
    "llama3_rope": make_config(
        64, 160, 2, 8, 2, 256, 1e-5, 500000.0, False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 256}),
}

TRAIN = {"seq_len": 24, "batch_size": 2, "grad_accum": 2, "lr": 2e-3, "weight_decay": 0.1,
         "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "schedule": "cosine", "warmup_steps": 3,
         "max_steps": 10, "grad_clip": 0.5, "shuffle": False, "pad_id": 0,
         "init": "model/model.safetensors", "data": "data.jsonl"}


def write_forward(case_dir, model, cfg, gen):
    B, T, V = 2, 20, cfg["vocab_size"]
    ids = torch.randint(3, V, (B, T), generator=gen)
    targets = torch.cat([ids[:, 1:], torch.full((B, 1), IGNORE)], dim=1)
    targets[1, :5] = IGNORE  # exercise ignored positions inside a row
    model.zero_grad(set_to_none=True)
    logits = model(ids)
    loss = token_ce(logits, targets, "mean")
    loss.backward()
    out = {"input_ids": ids.float(), "targets": targets.float(), "logits": logits,
           "loss": loss.reshape(1)}
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad
    save_safetensors(os.path.join(case_dir, "forward.safetensors"), out)
    model.zero_grad(set_to_none=True)
    return loss.item()


def make_rows(V, gen, n=40):
    rows = []
    for i in range(n):
        length = int(torch.randint(5, 29, (1,), generator=gen))
        ids = torch.randint(3, V, (length,), generator=gen).tolist()
        row = {"input_ids": ids}
        if i % 5 == 3:  # prompt masking: first half (length // 2 tokens) not trained on
            row["labels"] = [IGNORE] * (length // 2) + ids[length // 2:]
        rows.append(row)
    return rows


def micro_batch(rows, seq_len, pad_id):
    """Truncate, shift labels into next-token targets, right-pad to the longest row."""
    items = []
    for r in rows:
        ids = r["input_ids"][:seq_len]
        labels = r.get("labels", r["input_ids"])[:seq_len]
        items.append((ids, labels[1:] + [IGNORE]))
    T = max(len(ids) for ids, _ in items)
    x = torch.full((len(items), T), pad_id, dtype=torch.long)
    y = torch.full((len(items), T), IGNORE, dtype=torch.long)
    for b, (ids, tgt) in enumerate(items):
        x[b, :len(ids)] = torch.tensor(ids)
        y[b, :len(tgt)] = torch.tensor(tgt)
    return x, y


def lr_lambda(k, s):
    # HF get_cosine_schedule_with_warmup (num_cycles 0.5).
    if k < s["warmup_steps"]:
        return k / max(1, s["warmup_steps"])
    progress = (k - s["warmup_steps"]) / max(1, s["max_steps"] - s["warmup_steps"])
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(model, rows, s):
    return train_params(model, list(model.parameters()), rows, s)


def train_params(model, params, rows, s):
    opt = torch.optim.AdamW(params, lr=s["lr"], betas=(s["beta1"], s["beta2"]),
                            eps=s["eps"], weight_decay=s["weight_decay"])
    losses, lrs, norms = [], [], []
    bs, ga = s["batch_size"], s["grad_accum"]
    for k in range(s["max_steps"]):
        batches = []
        for j in range(ga):
            start = (k * ga + j) * bs
            batches.append(micro_batch([rows[(start + r) % len(rows)] for r in range(bs)],
                                       s["seq_len"], s["pad_id"]))
        # The step loss is normalised by the targets of the whole step, not per micro-batch.
        n_targets = sum(int((y != IGNORE).sum()) for _, y in batches)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for x, y in batches:
            part = token_ce(model(x), y, "sum") / n_targets
            part.backward()
            total += part.item()
        norm = torch.nn.utils.clip_grad_norm_(params, s["grad_clip"]).item()
        lr = s["lr"] * lr_lambda(k, s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(total)
        lrs.append(lr)
        norms.append(norm)
    return losses, lrs, norms


# ----------------------------------------------------------------------------- LoRA

LORA = {"r": 4, "lora_alpha": 8.0, "targets": ["q_proj", "k_proj", "v_proj", "o_proj",
                                                "gate_proj", "up_proj", "down_proj"]}


class LoraLinear(nn.Module):
    """y = base(x) + (alpha / r) * (x A^T) B^T, PEFT's LoRA formula (no dropout here)."""

    def __init__(self, base, r, alpha, gen):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.scaling = alpha / r
        # Both factors random (PEFT starts B at zero, which would hide A's gradient).
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features, generator=gen) / math.sqrt(base.in_features))
        self.lora_B = nn.Parameter(0.05 * torch.randn(base.out_features, r, generator=gen))

    def forward(self, x):
        return self.base(x) + self.scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)


def add_lora(model, gen):
    """Wraps the target projections; returns {PEFT tensor name: parameter}."""
    named = {}
    for i, layer in enumerate(model.model.layers):
        for parent_name in ("self_attn", "mlp"):
            parent = getattr(layer, parent_name)
            for proj in LORA["targets"]:
                if hasattr(parent, proj) and isinstance(getattr(parent, proj), nn.Linear):
                    wrapped = LoraLinear(getattr(parent, proj), LORA["r"], LORA["lora_alpha"], gen)
                    setattr(parent, proj, wrapped)
                    prefix = f"base_model.model.model.layers.{i}.{parent_name}.{proj}"
                    named[prefix + ".lora_A.weight"] = wrapped.lora_A
                    named[prefix + ".lora_B.weight"] = wrapped.lora_B
    for n, p in model.named_parameters():
        if "lora_" not in n:
            p.requires_grad_(False)
    return named


def write_adapter(folder, named):
    """PEFT's on-disk layout, written independently of lathe."""
    os.makedirs(folder, exist_ok=True)
    save_safetensors(os.path.join(folder, "adapter_model.safetensors"),
                     {n: p.detach() for n, p in named.items()})
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": LORA["r"],
                   "lora_alpha": LORA["lora_alpha"], "lora_dropout": 0.0,
                   "target_modules": LORA["targets"], "bias": "none",
                   "fan_in_fan_out": False, "use_rslora": False, "use_dora": False}, f, indent=2)


def run_lora_case(case_dir, cfg, seed):
    """LoRA on every projection of the case's model: forward/backward of the adapters on
    the forward batch, and ten AdamW steps training only the adapters."""
    lora_dir = os.path.join(case_dir, "lora")
    os.makedirs(lora_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    model = Llama(cfg)
    weights = load_safetensors(os.path.join(case_dir, "model", "model.safetensors"))
    model.load_state_dict(weights, strict=True)
    named = add_lora(model, gen)
    write_adapter(os.path.join(lora_dir, "adapter"), named)

    fwd = load_safetensors(os.path.join(case_dir, "forward.safetensors"))
    ids, targets = fwd["input_ids"].long(), fwd["targets"].long()
    logits = model(ids)
    loss = token_ce(logits, targets, "mean")
    loss.backward()
    out = {"logits": logits, "loss": loss.reshape(1)}
    for n, p in named.items():
        out["grad." + n] = p.grad
    save_safetensors(os.path.join(lora_dir, "forward.safetensors"), out)
    model.zero_grad(set_to_none=True)

    rows = [json.loads(line) for line in open(os.path.join(case_dir, "train", "data.jsonl"))]
    params = list(named.values())
    losses, lrs, norms = train_params(model, params, rows, TRAIN)
    with open(os.path.join(lora_dir, "expected.json"), "w") as f:
        json.dump({"train": TRAIN, "losses": losses, "lrs": lrs, "grad_norms": norms,
                   "lora": LORA}, f, indent=2)
    save_safetensors(os.path.join(lora_dir, "final.safetensors"),
                     {n: p.detach() for n, p in named.items()})
    print(f"  lora: forward loss {loss.item():.6f}; train loss {losses[0]:.6f} -> {losses[-1]:.6f}")


def run_case(out, name, cfg, seed):
    case_dir = os.path.join(out, name)
    for sub in ("model", "train"):
        os.makedirs(os.path.join(case_dir, sub), exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    model = Llama(cfg)
    init_weights(model, gen)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    with open(os.path.join(case_dir, "model", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_safetensors(os.path.join(case_dir, "model", "model.safetensors"), weights)

    fwd_loss = write_forward(case_dir, model, cfg, gen)

    rows = make_rows(cfg["vocab_size"], gen)
    with open(os.path.join(case_dir, "train", "data.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    losses, lrs, norms = train(model, rows, TRAIN)
    clipped = sum(n > TRAIN["grad_clip"] for n in norms)
    with open(os.path.join(case_dir, "train", "expected.json"), "w") as f:
        json.dump({"train": TRAIN, "losses": losses, "lrs": lrs, "grad_norms": norms}, f,
                  indent=2)
    save_safetensors(os.path.join(case_dir, "train", "final.safetensors"),
                     {n: p.detach() for n, p in model.named_parameters()})
    print(f"{name}: forward loss {fwd_loss:.6f}; train loss {losses[0]:.6f} -> "
          f"{losses[-1]:.6f}; grad_norm {min(norms):.3f}..{max(norms):.3f} "
          f"(clipped {clipped}/{len(norms)} at {TRAIN['grad_clip']})")
    run_lora_case(case_dir, cfg, seed + 100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    for seed, (name, cfg) in enumerate(CASES.items(), start=1234):
        run_case(args.out, name, cfg, seed)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"cases": list(CASES), "generator": "tests/reference/llama_ref.py",
                   "torch_version": torch.__version__}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
