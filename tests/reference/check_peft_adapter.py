#!/usr/bin/python3
"""Checks a LoRA adapter folder against PEFT's on-disk layout, with nothing but json and
the safetensors byte format: adapter_config.json keys and values, tensor names, dtypes and
shapes (from the base model's config.json). Exits non-zero with the problems listed.

Usage: /usr/bin/python3 tests/reference/check_peft_adapter.py ADAPTER_DIR BASE_CONFIG_JSON
"""
import json
import re
import struct
import sys

# Fields of peft.LoraConfig (PEFT 0.7-0.15): from_pretrained passes the json as keyword
# arguments, so a key outside this set would make PEFT refuse the file.
LORA_CONFIG_FIELDS = {
    "peft_type", "task_type", "auto_mapping", "base_model_name_or_path", "revision",
    "inference_mode", "r", "target_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out",
    "bias", "use_rslora", "modules_to_save", "init_lora_weights", "layers_to_transform",
    "layers_pattern", "rank_pattern", "alpha_pattern", "megatron_config", "megatron_core",
    "loftq_config", "use_dora", "layer_replication", "exclude_modules", "lora_bias",
}
REQUIRED = {"peft_type": str, "r": int, "lora_alpha": (int, float), "target_modules": (list, str),
            "lora_dropout": (int, float), "bias": str, "task_type": str}
MODULES = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
           "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
NAME = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\."
                  r"(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_(A|B)\.weight$")


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data_len = len(f.read())
    return header, data_len


def main(adapter_dir, base_config):
    problems = []
    cfg = json.load(open(f"{adapter_dir}/adapter_config.json"))
    for k in cfg:
        if k not in LORA_CONFIG_FIELDS:
            problems.append(f"adapter_config.json: '{k}' is not a LoraConfig field")
    for k, t in REQUIRED.items():
        if not isinstance(cfg.get(k), t):
            problems.append(f"adapter_config.json: '{k}' missing or of the wrong type: {cfg.get(k)!r}")
    if cfg.get("peft_type") != "LORA" or cfg.get("task_type") != "CAUSAL_LM":
        problems.append("adapter_config.json: expected peft_type LORA and task_type CAUSAL_LM")
    targets = cfg.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else targets
    for t in targets:
        if t not in MODULES:
            problems.append(f"adapter_config.json: unknown target module {t!r}")

    base = json.load(open(base_config))
    C, I, L = base["hidden_size"], base["intermediate_size"], base["num_hidden_layers"]
    H, KV = base["num_attention_heads"], base.get("num_key_value_heads", base["num_attention_heads"])
    D = base.get("head_dim") or C // H
    dims = {"q_proj": (C, H * D), "k_proj": (C, KV * D), "v_proj": (C, KV * D),
            "o_proj": (H * D, C), "gate_proj": (C, I), "up_proj": (C, I), "down_proj": (I, C)}
    r = cfg.get("r")

    header, data_len = read_header(f"{adapter_dir}/adapter_model.safetensors")
    seen = set()
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        m = NAME.match(name)
        if not m:
            problems.append(f"tensor {name!r} does not follow PEFT's naming")
            continue
        layer, parent, module, ab = int(m[1]), m[2], m[3], m[4]
        if MODULES[module] != parent:
            problems.append(f"{name}: {module} belongs under {MODULES[module]}")
        if layer >= L or module not in targets:
            problems.append(f"{name}: not a target of this config / model")
        if info["dtype"] not in ("F32", "BF16", "F16"):
            problems.append(f"{name}: dtype {info['dtype']}")
        fan_in, fan_out = dims[module]
        want = [r, fan_in] if ab == "A" else [fan_out, r]
        if info["shape"] != want:
            problems.append(f"{name}: shape {info['shape']}, PEFT expects {want}")
        size = {"F32": 4, "BF16": 2, "F16": 2}.get(info["dtype"], 0)
        b, e = info["data_offsets"]
        if e - b != size * want[0] * want[1]:
            problems.append(f"{name}: byte size {e - b} does not match its shape")
        end = max(end, e)
        seen.add((layer, module, ab))
    if end != data_len:
        problems.append(f"data section is {data_len} bytes, tensors end at {end}")
    for layer in range(L):
        for module in targets:
            for ab in "AB":
                if (layer, module, ab) not in seen:
                    problems.append(f"missing lora_{ab} of layer {layer} {module}")
    for p in problems:
        print("PEFT layout:", p)
    print(f"checked {len(seen)} tensors, {len(cfg)} config keys: "
          f"{'OK' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
