#!/usr/bin/env python3
"""Writes the seed inputs in fuzz/corpus/<target>/ from real files: the shared data folder
(../shared/data, or $LATHE_SHARED_DATA, or the first argument) and the repository's test
fixtures. Re-running rewrites the same bytes; fuzz/corpus/PROVENANCE.md says where each
seed comes from. Regression inputs (crashes found and fixed) live next to the seeds, named
regress-*, and are not touched here."""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "LATHE_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
OUT = os.path.join(ROOT, "fuzz", "corpus")
FIXTURES = os.path.join(ROOT, "tests", "data", "fixtures")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- safetensors

def safetensors_bytes(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] laid out in order, header padded with spaces
    to a multiple of 8 as the reference writer does."""
    header, off = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def safetensors_subset(path, max_bytes):
    """The tensors of a real file no larger than max_bytes, with their bytes, re-laid out."""
    raw = read(path)
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    keep = []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        if end - b <= max_bytes:
            keep.append((name, e["dtype"], e["shape"], data[b:end]))
    keep.sort(key=lambda t: t[0])
    return safetensors_bytes(keep, header.get("__metadata__"))


stories = os.path.join(SHARED, "models", "stories260K", "hf")
put("fuzz_safetensors", "stories260K_small_tensors.safetensors",
    safetensors_subset(os.path.join(stories, "model.safetensors"), 4096))
put("fuzz_safetensors", "dtypes.safetensors", safetensors_bytes(
    [("w.f32", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3e38)),
     ("w.bf16", "BF16", [3], struct.pack("<3H", 0x3F80, 0x7F80, 0xFFC1)),
     ("w.f16", "F16", [1, 2], struct.pack("<2H", 0x3C00, 0x7C00)),
     ("scalar", "F32", [], struct.pack("<f", 7)),
     ("empty", "F32", [0, 4], b"")], {"format": "pt"}))

# ---- model.safetensors.index.json, against the two shards fuzz_safetensors_index writes

put("fuzz_safetensors_index", "two_shards.json", json.dumps({
    "metadata": {"total_size": 14},
    "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors",
                   "model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}, indent=2) + "\n")
put("fuzz_safetensors_index", "one_shard_missing_tensor.json", json.dumps({
    "metadata": {"total_size": 8},
    "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}, indent=2) + "\n")

# ---- tokenizer.json

def tokenizer_json_subset(path, keep):
    """The first `keep` vocabulary ids, the merges among them, and the added tokens
    renumbered to follow them: a valid tokenizer.json of the same kind, ~1% of the size."""
    j = json.loads(read(path))
    vocab = {t: i for t, i in j["model"]["vocab"].items() if i < keep}
    merges = []
    for m in j["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    j["model"]["vocab"] = vocab
    j["model"]["merges"] = merges
    added = [a for a in j["added_tokens"] if a["id"] < keep]
    extra = [a for a in j["added_tokens"] if a["id"] >= keep][:8]
    for i, a in enumerate(extra):
        a["id"] = keep + i
    j["added_tokens"] = added + extra
    return json.dumps(j, ensure_ascii=False, indent=2).encode()


put("fuzz_tokenizer_json", "stories260K_tokenizer.json", read(os.path.join(stories, "tokenizer.json")))
put("fuzz_tokenizer_json", "stories260K_tokenizer_and_text.json",
    read(os.path.join(stories, "tokenizer.json")) + b"\0" +
    read(os.path.join(FIXTURES, "gsm8k_train_head.jsonl")).split(b"\n")[0][:300])
toks = os.path.join(SHARED, "tokenizers")
put("fuzz_tokenizer_json", "llama2_first1000_tokenizer.json",
    tokenizer_json_subset(os.path.join(toks, "llama2", "tokenizer.json"), 1000))
put("fuzz_tokenizer_json", "llama3_first1000_tokenizer.json",
    tokenizer_json_subset(os.path.join(toks, "llama3", "tokenizer.json"), 1000))

# ---- tokenizer.model

def varint(b, i):
    v, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def sentencepiece_subset(raw, keep):
    """A ModelProto with its first `keep` pieces (field 1) and every other field as is."""
    out, i, pieces = bytearray(), 0, 0
    while i < len(raw):
        start = i
        key, i = varint(raw, i)
        wire = key & 7
        if wire == 0:
            _, i = varint(raw, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = varint(raw, i)
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wire)
        if key >> 3 == 1:
            pieces += 1
            if pieces > keep:
                continue
        out += raw[start:i]
    return bytes(out)


put("fuzz_tokenizer_model", "llama2_first1000.model",
    sentencepiece_subset(read(os.path.join(toks, "llama2", "tokenizer.model")), 1000))
llama3_ranks = read(os.path.join(toks, "llama3", "tokenizer.model")).split(b"\n")
put("fuzz_tokenizer_model", "llama3_first1000.tiktoken", b"\n".join(llama3_ranks[:1000]) + b"\n")

# ---- dataset rows: byte 0 = format | type << 3 | flags, byte 1 = encoder | seq_len (see
# fuzz/fuzz_data_rows.cpp)

FORMATS = ["alpaca", "chat", "gsm8k", "input_ids", "pubmedqa", "samsum", "template", "text"]
TYPES = [".jsonl", ".json", ".csv", ".txt"]


def rows_seed(name, fmt, ext, body, llama3=False, bos=True, seq_len=1010, flags=0, head=b""):
    sel = FORMATS.index(fmt) | TYPES.index(ext) << 3 | flags
    enc = int(llama3) | int(bos) << 1 | ((seq_len - 2) // 16) << 2
    put("fuzz_data_rows", name, bytes([sel, enc]) + head + body)


fx = lambda n: read(os.path.join(FIXTURES, n))
gsm8k = fx("gsm8k_train_head.jsonl")
rows_seed("gsm8k_head.jsonl", "gsm8k", ".jsonl", gsm8k)
rows_seed("gsm8k_head_skip_drop.jsonl", "gsm8k", ".jsonl", gsm8k, seq_len=402, flags=0xC0)
rows_seed("pubmedqa_ori_pqal_head.json", "pubmedqa", ".json", fx("pubmedqa_ori_pqal_head.json"))
rows_seed("pubmedqa_flat.jsonl", "pubmedqa", ".jsonl", fx("pubmedqa_flat.jsonl"), flags=0x20)
rows_seed("alpaca_rows.json", "alpaca", ".json", fx("alpaca_rows.json"))
rows_seed("chat_rows_llama3.jsonl", "chat", ".jsonl", fx("chat_rows.jsonl"), llama3=True)
rows_seed("chat_rows_llama2.jsonl", "chat", ".jsonl", fx("chat_rows.jsonl"), bos=False)
rows_seed("template_gsm8k.jsonl", "template", ".jsonl", gsm8k,
          head=b"Question: {question}\\nAnswer: \nanswer\n")
rows_seed("template_response_template.jsonl", "template", ".jsonl", gsm8k,
          head=b"Q: {question} {{braces}}\n{answer}\n")
questions = [json.loads(l)["question"] for l in gsm8k.decode().splitlines()]
rows_seed("text_documents.txt", "text", ".txt", "\n\n".join(questions).encode() + b"\n")
# SAMSum's own rows are CC BY-NC-ND (no derivatives), so the csv seeds are written here in
# its layout (id,dialogue,summary; quoted fields with newlines and "" quotes).
rows_seed("samsum_layout.csv", "samsum", ".csv",
          b'id,dialogue,summary\r\n1,"Ann: Lunch at 1?\nBob: Sure, the ""usual"" place \xf0\x9f\x98\x80",'
          b'Ann and Bob meet for lunch at 1.\r\n2,"Cy: Late again\nDee: ok",Cy is late. \r\n')
gsm_csv = "question,answer\n" + "".join(
    '"%s","%s"\n' % (json.loads(l)["question"].replace('"', '""'),
                     json.loads(l)["answer"].replace('"', '""')) for l in gsm8k.decode().splitlines())
rows_seed("gsm8k_head.csv", "gsm8k", ".csv", gsm_csv.encode())
rows_seed("input_ids.jsonl", "input_ids", ".jsonl",
          b'{"input_ids": [1, 15, 27, 300, 2]}\n{"input_ids": [1, 5, 6], "labels": [-100, 5, 6]}\n')

# ---- config YAML (+ NUL + overrides)

for name in sorted(os.listdir(os.path.join(ROOT, "configs"))):
    if name.endswith(".yaml"):
        put("fuzz_config", name, read(os.path.join(ROOT, "configs", name)))
# The ```yaml blocks of the docs: every key with its default (config.md), and the examples.
for doc in ("config.md", "lora.md", "training.md", "distributed.md", "eval.md"):
    text = read(os.path.join(ROOT, "docs", doc)).decode()
    for i, block in enumerate(text.split("```yaml\n")[1:]):
        put("fuzz_config", "docs_%s_%d.yaml" % (doc[:-3], i), block.split("```")[0])
put("fuzz_config", "lora_template.yaml", """# written for the fuzzer: the LoRA and template keys
model:
  path: ../shared/data/models/stories260K/hf
data:
  train: examples/data/gsm8k_head.jsonl
  format: template
  prompt_template: "Question: {question}\\nAnswer: "
  response_field: answer
  seq_len: 256
  too_long: drop
train:
  lr: 2.0e-4
  betas: [0.9, 0.95]
  schedule: linear
  warmup_steps: 10
peft:
  method: lora
  r: 16
  alpha: 32
""")
put("fuzz_config", "quickstart_with_overrides.yaml",
    read(os.path.join(ROOT, "configs", "quickstart.yaml")) +
    b"\0train.lr=3e-4\ntrain.betas=[0.9,0.95]\npeft.method=lora\npeft.r=16\ndata.format=gsm8k")

# ---- adapter_config.json: the keys PEFT's LoraConfig writes (as lathe writes them), and
# the compact form of tests/reference/llama_ref.py

peft = {"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "stories260K",
        "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
        "init_lora_weights": True, "layers_pattern": None, "layers_to_transform": None,
        "lora_alpha": 16.0, "lora_dropout": 0.05, "modules_to_save": None, "peft_type": "LORA",
        "r": 8, "rank_pattern": {}, "revision": None,
        "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM", "use_dora": False,
        "use_rslora": False}
put("fuzz_peft_config", "peft_lora.json", json.dumps(peft, indent=2) + "\n")
put("fuzz_peft_config", "all_linear.json", json.dumps(
    {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8,
     "target_modules": "all-linear"}) + "\n")

# ---- trainer_state.json (+ NUL + state.safetensors), as src/train/checkpoint.cpp writes

model_config = json.loads(read(os.path.join(stories, "config.json")))
state = {"format_version": 1, "step": 3, "sampler": {"epoch": 0, "offset": 12}, "seed": 42,
         "num_params": 4, "model_config": model_config}
put("fuzz_checkpoint", "trainer_state.json", json.dumps(state, indent=4))
f4 = struct.pack("<4f", 1, 2, 3, 4)
sharded = dict(state, shards=["state.safetensors"])
put("fuzz_checkpoint", "sharded_with_state.json", json.dumps(sharded).encode() + b"\0" + safetensors_bytes(
    [("params", "F32", [4], f4), ("adam.m", "F32", [4], f4), ("adam.v", "F32", [4], f4)],
    {"offset": "0", "count": "4"}))

# ---- lathe serve's request bodies: one byte for the endpoint (0 completions, 1 chat,
# 2 token lists), then the body as the openai client and lm-eval send it

put("fuzz_openai_request", "completions_text.json", b"\0" + json.dumps(
    {"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0.7,
     "top_p": 0.9, "n": 2, "stop": ["\n"], "seed": 7, "stream": True,
     "stream_options": {"include_usage": True}}).encode())
put("fuzz_openai_request", "completions_lm_eval.json", b"\0" + json.dumps(
    {"model": "stories260K", "prompt": [[1, 317, 269, 368], [1, 5]], "temperature": 0,
     "max_tokens": 1, "logprobs": 1, "seed": 1234, "echo": True}).encode())
put("fuzz_openai_request", "chat.json", b"\1" + json.dumps(
    {"model": "stories260K", "messages": [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "logprobs": True,
     "top_logprobs": 2, "max_completion_tokens": 8}).encode())
put("fuzz_openai_request", "detokenize.json", b"\2" + json.dumps({"tokens": [1, 317, 269]}).encode())
