"""`lathe export --gguf` read back by llama.cpp's own Python package (gguf-py, the pin of
tests/requirements.txt): every type of three models, each checked against its HF folder.

Usage: gguf_export_test.py LATHE SRC_DIR WORK_DIR

Models: stories260K (examples/, SentencePiece-style tokenizer.json, tied, rows of 64 and
172: fallbacks everywhere), a random Llama around Meta's Llama 2 tokenizer.model (bf16
weights, rows of 256 and 512: real q4_K blocks), and one around the Llama 3 tokenizer.json
from the shared data (llama3 rope scaling, untied lm_head; skipped with a message where
the shared data is absent). Per model and type:
- metadata equal to config.json, tokenizer tokens / scores / types by the converter's
  rules, special ids, add_*_token, merges and chat template equal to gguf-py's SpecialVocab;
- tensor names, shapes (ggml order) and types by the converter's and llama-quantize's
  rules, offsets aligned to 32;
- values: the source weights, q_proj/k_proj rows permuted by the converter's
  LlamaModel.permute formula, then: f32 identical, f16 / bf16 bytes identical to gguf-py's
  conversion, q8_0 / q4_0 / q5_0 bytes identical to gguf.quants.quantize (which matches
  ggml's reference quantizers), and every type's dequantized values within its bound;
- rope_freqs equal to the converter's torch computation.
"""
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

LATHE, SRC, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
SHARED = os.environ.get("LATHE_SHARED_DATA") or os.path.join(SRC, "..", "shared", "data")
TYPES = {"f32": (Q.F32, 0), "f16": (Q.F16, 1), "bf16": (Q.BF16, 32), "q8_0": (Q.Q8_0, 7),
         "q4_0": (Q.Q4_0, 2), "q4_k": (Q.Q4_K, 15)}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        data = raw[8 + n + b:8 + n + e]
        if info["dtype"] == "F32":
            x = np.frombuffer(data, np.float32)
        elif info["dtype"] == "BF16":
            x = (np.frombuffer(data, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            x = np.frombuffer(data, np.float16).astype(np.float32)
        out[name] = x.reshape(info["shape"])
    return out


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py's LlamaModel.permute, verbatim in numpy."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def expected_tensors(model_dir, cfg):
    st = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
                 "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
                 "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    out = {}
    for name, x in st.items():
        if name in names:
            out[names[name]] = x
            continue
        parts = name.split(".")
        hf = ".".join(parts[3:-1])
        g = f"blk.{parts[2]}.{per_layer[hf]}.weight"
        if hf == "self_attn.q_proj":
            x = permute(x, heads, heads)
        elif hf == "self_attn.k_proj":
            x = permute(x, heads, kv)
        out[g] = x
    return out


def rope_freqs_reference(cfg):
    """LlamaModel.generate_extra_tensors, the converter's own code, in torch when available."""
    rope = cfg["rope_scaling"]
    base, dim = cfg["rope_theta"], cfg["hidden_size"] // cfg["num_attention_heads"]
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    import math
    import torch
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    low_wavelen, high_wavelen = old / low, old / high
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(factors, dtype=torch.float32).numpy()


def looks_special(t):
    return (t in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (t.startswith("<|") and t.endswith("|>"))
            or (t.startswith("<｜") and t.endswith("｜>")) or (t.startswith("<unused") and t.endswith(">")))


def expected_vocab(model_dir, cfg):
    """(model, pre, tokens, scores or None, types) by the converter's rules."""
    V = cfg["vocab_size"]
    tc_path = os.path.join(model_dir, "tokenizer_config.json")
    tc = json.load(open(tc_path)) if os.path.exists(tc_path) else {}
    spm_path = os.path.join(model_dir, "tokenizer.model")
    if os.path.exists(spm_path) and open(spm_path, "rb").read(1) == b"\x0a":
        # TextModel._create_vocab_sentencepiece, with Debian's sentencepiece.
        from sentencepiece import SentencePieceProcessor
        sp = SentencePieceProcessor()
        sp.LoadFromFile(spm_path)
        tokens = [f"[PAD{i}]" for i in range(V)]
        scores, types = [-10000.0] * V, [5] * V
        for i in range(min(sp.vocab_size(), V)):
            tokens[i], scores[i] = sp.IdToPiece(i), sp.GetScore(i)
            types[i] = (2 if sp.IsUnknown(i) else 3 if sp.IsControl(i) else 5 if sp.IsUnused(i)
                        else 6 if sp.IsByte(i) else 1)
        for key, data in tc.get("added_tokens_decoder", {}).items():
            i, text = int(key), data["content"]
            if i >= V:
                continue
            if data.get("special") or looks_special(text):
                types[i] = 3
            else:
                text, types[i] = text.replace("\u2581", " "), 4
            scores[i], tokens[i] = -1000.0, text
        return "llama", "default", tokens, scores, types
    tj = json.load(open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8"))
    vocab = {i: t for t, i in tj["model"]["vocab"].items()}
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    if tj["model"].get("byte_fallback"):
        # LlamaHfVocab's tokens and types (special ids: bos/eos/unk/pad of tokenizer_config).
        special_ids = set()
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            name = tc.get(key)
            name = name.get("content") if isinstance(name, dict) else name
            for i, t in vocab.items():
                if name and t == name:
                    special_ids.add(i)
        n = max(len(vocab), V)
        tokens = [vocab.get(i, f"[PAD{i}]") for i in range(n)]
        types = [6 if t.startswith("<0x") and len(t) == 6 else 3 if i in special_ids else 1
                 for i, t in enumerate(tokens)]
        # lathe's scores (the converter writes -1000): minus the rank of the first merge
        # that makes a token, below every merge for tokens no merge makes.
        merges = tj["model"]["merges"]
        ids = {t: i for i, t in vocab.items()}
        scores = [-float(len(merges) + 1)] * n
        for rank in reversed(range(len(merges))):
            m = merges[rank]
            a, b = m.split(" ") if isinstance(m, str) else m
            scores[ids[a + b]] = -float(rank)
        return "llama", "default", tokens, scores, types
    # get_vocab_base (byte-level).
    decoder = {int(k): v for k, v in tc.get("added_tokens_decoder", {}).items()}
    added_all = dict(decoder)
    added_all.update(added)
    tokens, types = [], []
    for i in range(V):
        if i in added_all:
            a = added_all[i]
            t = a["content"]
            if a.get("special") or looks_special(t):
                types.append(3)
            else:
                t = t.replace("\u2581", " ")
                types.append(4)
        elif i in vocab:
            t = vocab[i]
            types.append(1)
        else:
            t = f"[PAD{i}]"
            types.append(5)
        tokens.append(t)
    # The converter's hash of its ids on a fixed text: "llama-bpe" for Meta's tokenizer.json
    # whose post-processor adds <|begin_of_text|>, "smaug-bpe" for the April 2024 one without.
    procs = tj.get("post_processor") or {}
    procs = procs.get("processors", [procs])
    adds_bos = any(p.get("type") == "TemplateProcessing" and len(p.get("single", [])) > 1
                   and "SpecialToken" in p["single"][0] for p in procs)
    return "gpt2", "llama-bpe" if adds_bos else "smaug-bpe", tokens, None, types


def field(reader, key):
    if isinstance(reader, LightReader):
        return reader.kv.get(key)
    f = reader.fields.get(key)
    return None if f is None else f.contents()


class LightReader:
    """The same view of a GGUF file as GGUFReader (kv, tensors with name, tensor_type, shape,
    data_offset, data), parsed in plain Python: GGUFReader makes a numpy view per string and
    takes 10-40 s on a file with the Llama 3 vocabulary (128256 tokens, 280147 merges), so
    the Llama 3 model's f16, bf16, q4_0 and q4_k files are read with this one, after its
    f32 and q8_0 files were read with GGUFReader and the two readers agreed on them."""

    SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
               11: "<q", 12: "<d"}

    def __init__(self, path):
        import collections
        self.mm = np.memmap(path, mode="r")
        self.buf, self.pos = self.mm.tobytes(), 0
        assert self.take(4) == b"GGUF" and self.u(4) == 3
        n_tensors, n_kv = self.u(8), self.u(8)
        self.kv = {}
        for _ in range(n_kv):
            key = self.str()
            self.kv[key] = self.value(self.u(4))
        T = collections.namedtuple("T", "name tensor_type shape data_offset data")
        infos = []
        for _ in range(n_tensors):
            name = self.str()
            dims = [self.u(8) for _ in range(self.u(4))]
            infos.append((name, Q(self.u(4)), dims, self.u(8)))
        start = (self.pos + 31) // 32 * 32
        self.tensors = []
        for name, t, dims, off in infos:
            np_shape = tuple(reversed(dims))
            if t == Q.F32:
                data = self.mm[start + off:].view(np.uint8)[:4 * int(np.prod(dims))].view(np.float32)
            elif t == Q.F16:
                data = self.mm[start + off:].view(np.uint8)[:2 * int(np.prod(dims))].view(np.float16)
            else:
                np_shape = gguf.quant_shape_to_byte_shape(np_shape, t)
                data = self.mm[start + off:start + off + int(np.prod(np_shape))].view(np.uint8)
            self.tensors.append(T(name, t, np.array(dims), start + off, data.reshape(np_shape)))

    def take(self, n):
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def u(self, n):
        return int.from_bytes(self.take(n), "little")

    def str(self):
        return self.take(self.u(8)).decode("utf-8")

    def value(self, t):
        if t == 8:
            return self.str()
        if t == 9:
            sub, n = self.u(4), self.u(8)
            return [self.value(sub) for _ in range(n)]
        fmt = self.SCALARS[t]
        v = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        return float(v) if t == 6 else v


def bf16_bytes(x):
    return gguf.quants.quantize(x.astype(np.float32), Q.BF16)


def expected_type(name, shape, wanted):
    if len(shape) < 2 or name.endswith("_norm.weight"):
        return Q.F32
    cols = shape[-1]
    t = wanted
    if t == Q.Q4_K and cols % 256:
        t = Q.Q5_0
    if cols % gguf.GGML_QUANT_SIZES[t][0]:
        t = Q.F16
    return t


def bound(t, block):
    amax = np.abs(block).max()
    return {Q.Q8_0: amax / 127 * 0.57, Q.Q5_0: amax / 16 * 1.01, Q.Q4_0: amax / 8 * 1.01,
            Q.Q4_K: amax * 2 / 15 * 1.1}[t]


def check_model(label, model_dir, summary):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // heads)
    source = expected_tensors(model_dir, cfg)
    tok_model, tok_pre, tokens, scores, types = expected_vocab(model_dir, cfg)
    sv = gguf.SpecialVocab(model_dir, load_merges=tok_model == "gpt2",
                           n_vocab=None if tok_model == "gpt2" else len(tokens))
    # The converter's own gguf-py (newer than PyPI's 0.19.0) also says "add nothing" for a
    # ByteLevel post-processor; tests/io/llama_cpp_check.py runs that converter itself.
    tj_path = os.path.join(model_dir, "tokenizer.json")
    post = (json.load(open(tj_path, encoding="utf-8")).get("post_processor") or {}) if os.path.exists(tj_path) else {}
    if any(p.get("type") == "ByteLevel" for p in post.get("processors", [post])):
        sv.add_special_token.setdefault("bos", False)
        sv.add_special_token.setdefault("eos", False)
    for type_name, (wanted, file_type) in TYPES.items():
        out = os.path.join(WORK, f"{label}-{type_name}.gguf")
        t0 = time.time()
        r = subprocess.run([LATHE, "export", "--model", model_dir, "--gguf", out, "--type", type_name],
                           capture_output=True, text=True)
        if r.returncode != 0:
            check(False, f"{label} {type_name}: lathe export failed: {r.stderr}")
            continue
        export_s = time.time() - t0
        light = label == "llama3" and type_name not in ("f32", "q8_0")
        reader = LightReader(out) if light else gguf.GGUFReader(out)
        if label == "llama3" and type_name == "q8_0":
            other = LightReader(out)
            for key in (k for k in reader.fields if not k.startswith("GGUF.")):
                check(field(reader, key) == field(other, key), f"GGUFReader and LightReader disagree on {key}")
        what = f"{label} {type_name}"
        meta = {
            "general.architecture": "llama", "general.file_type": file_type,
            "general.quantization_version": 2,
            "llama.block_count": cfg["num_hidden_layers"],
            "llama.context_length": cfg["max_position_embeddings"],
            "llama.embedding_length": cfg["hidden_size"],
            "llama.feed_forward_length": cfg["intermediate_size"],
            "llama.attention.head_count": heads,
            "llama.attention.head_count_kv": cfg.get("num_key_value_heads", heads),
            "llama.attention.layer_norm_rms_epsilon": float(np.float32(cfg["rms_norm_eps"])),
            "llama.rope.freq_base": float(np.float32(cfg.get("rope_theta", 10000.0))),
            "llama.vocab_size": cfg["vocab_size"], "llama.rope.dimension_count": head_dim,
            "tokenizer.ggml.model": tok_model, "tokenizer.ggml.pre": tok_pre,
        }
        for key, value in meta.items():
            check(field(reader, key) == value, f"{what}: {key} = {field(reader, key)!r}, expected {value!r}")
        check(field(reader, "tokenizer.ggml.tokens") == tokens, f"{what}: tokenizer.ggml.tokens")
        check(field(reader, "tokenizer.ggml.token_type") == types, f"{what}: tokenizer.ggml.token_type")
        if scores is not None:
            check(np.array_equal(np.array(field(reader, "tokenizer.ggml.scores"), np.float32),
                                 np.array(scores, np.float32)), f"{what}: tokenizer.ggml.scores")
        else:
            check(field(reader, "tokenizer.ggml.scores") is None, f"{what}: gpt2 vocab with scores")
        id_keys = {"bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id",
                   "sep": "seperator_token_id", "pad": "padding_token_id", "mask": "mask_token_id",
                   "eot": "eot_token_id", "eom": "eom_token_id"}
        for typ, key in id_keys.items():
            want = sv.special_token_ids.get(typ)
            check(field(reader, "tokenizer.ggml." + key) == want,
                  f"{what}: tokenizer.ggml.{key} = {field(reader, 'tokenizer.ggml.' + key)}, SpecialVocab {want}")
        for typ in ("bos", "eos", "sep"):
            want = sv.add_special_token.get(typ)
            got = field(reader, f"tokenizer.ggml.add_{typ}_token")
            check(got == want, f"{what}: add_{typ}_token = {got}, SpecialVocab {want}")
        check(field(reader, "tokenizer.chat_template") == sv.chat_template, f"{what}: chat_template")
        if tok_model == "gpt2":
            check(field(reader, "tokenizer.ggml.merges") == sv.merges, f"{what}: merges")

        tensors = {t.name: t for t in reader.tensors}
        names = set(source) | ({"rope_freqs.weight"} if cfg.get("rope_scaling") else set())
        check(set(tensors) == names, f"{what}: tensors {sorted(set(tensors) ^ names)} differ")
        stats = {}
        for name, t in tensors.items():
            check(t.data_offset % 32 == 0, f"{what}: {name} not aligned to 32")
            if name == "rope_freqs.weight":
                try:
                    ref = rope_freqs_reference(cfg)
                except ImportError:
                    print("note: no torch; rope_freqs not compared")
                    continue
                got = gguf.quants.dequantize(t.data, t.tensor_type)
                check(t.tensor_type == Q.F32 and np.array_equal(got, ref),
                      f"{what}: rope_freqs {got} != converter's {ref}")
                continue
            x = source[name]
            check(list(t.shape) == list(reversed(x.shape)), f"{what}: {name} shape {list(t.shape)}")
            want_type = expected_type(name, x.shape, wanted)
            check(t.tensor_type == want_type, f"{what}: {name} is {t.tensor_type.name}, expected {want_type.name}")
            got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(x.shape)
            tt = t.tensor_type
            if tt == Q.F32:
                same = np.array_equal(got, x)
            elif tt == Q.Q4_K:
                same = None  # gguf-py has no q4_K quantizer: tests/io/llama_cpp.sh compares llama-quantize's
            else:
                ref = gguf.quants.quantize(x, tt)
                same = np.array_equal(np.ascontiguousarray(t.data).view(np.uint8).ravel(),
                                      np.ascontiguousarray(ref).view(np.uint8).ravel())
            if same is not None:
                check(same, f"{what}: {name} ({tt.name}) bytes differ from gguf-py's")
            if tt in (Q.Q8_0, Q.Q4_0, Q.Q5_0, Q.Q4_K):
                bs = gguf.GGML_QUANT_SIZES[tt][0]
                xb, gb = x.reshape(-1, bs), got.reshape(-1, bs)
                amax = np.abs(xb).max(axis=1, keepdims=True)
                lim = {Q.Q8_0: amax / 127 * 0.57, Q.Q5_0: amax / 16 * 1.01, Q.Q4_0: amax / 8 * 1.01,
                       Q.Q4_K: amax * 2 / 15 * 1.1}[tt]
                check(bool((np.abs(gb - xb) <= lim).all()), f"{what}: {name} ({tt.name}) outside its bound")
            elif tt == Q.F16:
                check(np.array_equal(got, x.astype(np.float16).astype(np.float32)), f"{what}: {name} f16 values")
            elif tt == Q.BF16:
                check(np.array_equal(got, (bf16_bytes(x).view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(x.shape)),
                      f"{what}: {name} bf16 values")
            s = stats.setdefault(tt.name, [0, 0, 0.0])
            s[0] += 1
            s[1] += 1 if same else 0
            s[2] = max(s[2], float(np.abs(got - x).max() / max(np.abs(x).max(), 1e-30)))
        for tname, (n, identical, rel) in sorted(stats.items()):
            summary.append(f"{label:8} {type_name:5} {tname:5} tensors {n:3}  bytes identical to gguf-py: "
                           f"{identical if tname != 'Q4_K' else '-':>3}  max |err| / max |w| {rel:.2e}")
        summary.append(f"{label:8} {type_name:5} exported in {export_s:.2f} s, {os.path.getsize(out) / 1e6:.2f} MB")


def main():
    os.makedirs(WORK, exist_ok=True)
    summary = []
    models = [("stories", os.path.join(SRC, "examples", "stories260K"))]
    llama2 = os.path.join(WORK, "llama2-tok")
    subprocess.run([sys.executable, os.path.join(SRC, "tests", "io", "make_tiny_llama.py"), llama2,
                    "--tokenizer", os.path.join(SRC, "tests", "data", "tokenizer", "llama2"),
                    "--hidden", "256", "--intermediate", "512", "--dtype", "BF16"], check=True)
    models.append(("llama2", llama2))
    llama3_tok = os.path.join(SHARED, "tokenizers", "llama3")
    if os.path.exists(os.path.join(llama3_tok, "tokenizer.json")):
        llama3 = os.path.join(WORK, "llama3-tok")
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "io", "make_tiny_llama.py"), llama3,
                        "--tokenizer", llama3_tok, "--hidden", "64", "--intermediate", "128",
                        "--heads", "2", "--kv-heads", "1", "--llama3-rope", "--untied"], check=True)
        models.append(("llama3", llama3))
    else:
        print(f"note: no Llama 3 tokenizer at {llama3_tok} (set LATHE_SHARED_DATA); that model is skipped")
    for label, model_dir in models:
        check_model(label, model_dir, summary)
    print("\n".join(summary))
    print(f"{len(failures)} failed" if failures else "all GGUF checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
