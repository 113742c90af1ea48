"""A tiny random Llama in an HF folder, for a given tokenizer's vocabulary: one layer,
hidden size 16, GQA (2 heads, 1 key/value head), a tied embedding. A one-step lathe run on
it writes a final/ folder with that tokenizer in a second (a 128256-row embedding is 8 MB).
"""
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file


def write(folder, vocab, tokenizer_files, seed=0):
    os.makedirs(folder, exist_ok=True)
    C, I, H, KV, D = 16, 32, 2, 1, 8
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": C,
              "intermediate_size": I, "num_hidden_layers": 1, "num_attention_heads": H,
              "num_key_value_heads": KV, "head_dim": D, "vocab_size": vocab,
              "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "tie_word_embeddings": True, "hidden_act": "silu", "torch_dtype": "float32"}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    p = "model.layers.0."
    tensors = {"model.embed_tokens.weight": normal(vocab, C),
               "model.norm.weight": np.ones(C, np.float32),
               p + "input_layernorm.weight": np.ones(C, np.float32),
               p + "post_attention_layernorm.weight": np.ones(C, np.float32),
               p + "self_attn.q_proj.weight": normal(H * D, C),
               p + "self_attn.k_proj.weight": normal(KV * D, C),
               p + "self_attn.v_proj.weight": normal(KV * D, C),
               p + "self_attn.o_proj.weight": normal(C, H * D),
               p + "mlp.gate_proj.weight": normal(I, C),
               p + "mlp.up_proj.weight": normal(I, C),
               p + "mlp.down_proj.weight": normal(C, I)}
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    for path in tokenizer_files:
        shutil.copyfile(path, os.path.join(folder, os.path.basename(path)))
