"""Writes a small random HF Llama folder around a real tokenizer, for the GGUF tests.

Usage: make_tiny_llama.py OUT --tokenizer DIR [--hidden 256] [--intermediate 512]
       [--layers 2] [--heads 4] [--kv-heads 2] [--vocab N] [--llama3-rope] [--untied]
       [--dtype F32|BF16] [--seed 0]

config.json as transformers writes it for LlamaForCausalLM, model.safetensors (written here
with numpy: an 8-byte header length, the JSON header, the data), and the tokenizer files
of DIR copied. Weights are N(0, 0.02), norms around 1; --vocab defaults to the tokenizer's
size (tokenizer.json vocab + added tokens, or 32000 for a bare tokenizer.model).
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                   "special_tokens_map.json")


def tokenizer_size(dir_):
    path = os.path.join(dir_, "tokenizer.json")
    if not os.path.exists(path):
        return 32000
    tok = json.load(open(path, encoding="utf-8"))
    ids = list(tok["model"]["vocab"].values()) + [a["id"] for a in tok.get("added_tokens", [])]
    return max(ids) + 1


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, (dtype, array) in tensors.items():
        raw = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def to_bf16_bits(x):
    """Round-to-nearest-even float32 -> bfloat16 bits (uint16)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--intermediate", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=0)
    p.add_argument("--llama3-rope", action="store_true")
    p.add_argument("--untied", action="store_true")
    p.add_argument("--dtype", default="F32", choices=["F32", "BF16"])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    os.makedirs(a.out, exist_ok=True)
    for f in TOKENIZER_FILES:
        path = os.path.join(a.tokenizer, f)
        # A tiktoken tokenizer.model (Meta's Llama 3 download) is not in HF folders, and
        # llama.cpp's converter would try to read it as SentencePiece.
        if os.path.exists(path) and (f != "tokenizer.model" or open(path, "rb").read(1) == b"\x0a"):
            shutil.copyfile(path, os.path.join(a.out, f))
    vocab = a.vocab or tokenizer_size(a.tokenizer)
    head_dim = a.hidden // a.heads
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": a.hidden, "intermediate_size": a.intermediate,
        "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads, "vocab_size": vocab,
        "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0 if a.llama3_rope else 10000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 256}
        if a.llama3_rope else None,
        "tie_word_embeddings": not a.untied, "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "torch_dtype": "bfloat16" if a.dtype == "BF16" else "float32",
    }
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=2)

    rng = np.random.default_rng(a.seed)
    shapes = {"model.embed_tokens.weight": (vocab, a.hidden)}
    for l in range(a.layers):
        b = f"model.layers.{l}."
        shapes.update({
            b + "input_layernorm.weight": (a.hidden,),
            b + "self_attn.q_proj.weight": (a.heads * head_dim, a.hidden),
            b + "self_attn.k_proj.weight": (a.kv_heads * head_dim, a.hidden),
            b + "self_attn.v_proj.weight": (a.kv_heads * head_dim, a.hidden),
            b + "self_attn.o_proj.weight": (a.hidden, a.heads * head_dim),
            b + "post_attention_layernorm.weight": (a.hidden,),
            b + "mlp.gate_proj.weight": (a.intermediate, a.hidden),
            b + "mlp.up_proj.weight": (a.intermediate, a.hidden),
            b + "mlp.down_proj.weight": (a.hidden, a.intermediate),
        })
    shapes["model.norm.weight"] = (a.hidden,)
    if a.untied:
        shapes["lm_head.weight"] = (vocab, a.hidden)
    tensors = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            x = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            x = 0.02 * rng.standard_normal(shape)
        x = x.astype(np.float32)
        tensors[name] = ("BF16", to_bf16_bits(x)) if a.dtype == "BF16" else ("F32", x)
    write_safetensors(os.path.join(a.out, "model.safetensors"), tensors)


if __name__ == "__main__":
    main()
