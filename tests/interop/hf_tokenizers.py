"""Hugging Face's own tokenizer code gives lathe's ids (`lathe tokenize --input`): `tokenizers`
on tokenizer.json, on every text field of GSM8K, PubMedQA and SAMSum (../shared/data; the
repository's GSM8K sample and llama.cpp's test strings without it) and 3000 random strings
that stress the split rules; transformers' AutoTokenizer on the folder, on a quarter of
those; both on texts that write special tokens literally ("a<|eot_id|>b", " <s> ", "<s",
...). With BOS/EOS as the folder says (HF's default), and without.

Tokenizers: the real Llama 2 and Llama 3 tokenizer.json files (../shared/data), the
repository's stories260K tokenizer.json, the repository's Llama 2 tokenizer.model (against
transformers' LlamaTokenizer, which runs SentencePiece itself), and the tokenizer files lathe
writes into final/: from a tokenizer.model alone (Llama 2 SentencePiece, Llama 3 tiktoken)
and with special tokens added (model.special_tokens), each from a one-step run of a tiny
random model that has the tokenizer's vocabulary.

Usage (tests/interop/in_venv.sh runs it with .venv's Python):
  hf_tokenizers.py LATHE_BINARY REPO_DIR [--data SHARED_DATA_DIR]
Exits 1 naming the texts whose ids differ.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from tokenizers import Tokenizer
from transformers import AutoTokenizer, LlamaTokenizer
from transformers.utils import logging as hf_logging

import tiny_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "tokenizer"))
from sentencepiece_reference import corpus_texts, fuzz_texts  # noqa: E402

hf_logging.set_verbosity_error()  # "sequence longer than model_max_length" is expected here
ADDED = ["<|user|>", "<|assistant|>"]  # model.special_tokens of the lathe-written folders


def repo_texts(repo):
    """The corpus when ../shared/data is absent: the GSM8K sample and llama.cpp's strings."""
    out = []
    for name in ("gsm8k_train.jsonl", "gsm8k_test.jsonl"):
        with open(os.path.join(repo, "examples", "data", name), encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                out += [row["question"], row["answer"]]
    with open(os.path.join(repo, "tests", "data", "tokenizer", "llama.cpp",
                           "ggml-vocab-llama-spm.gguf.inp"), encoding="utf-8") as f:
        out += f.read().split("\n__ggml_vocab_test__\n")[:-1]
    return out


def special_texts(tokens):
    """Texts writing each token literally: alone, inside words, between spaces and newlines,
    twice, and cut short (which must stay plain text)."""
    out = []
    for t in tokens:
        out += [t, f"a{t}b", f" {t} ", f"x {t}  y", f"{t}{t}", f"\n{t}\n", f"Hello{t} world",
                f"{t}Hi", f" {t}", f"{t} ", t[:-1], t[1:], f"{t[:-1]} {t}"]
    out += ["<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] More [/INST]",
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            "<|user|>What is 2+2?<|assistant|>4</s>"]
    return out


def lathe_ids(lathe, folder, texts, add_special, scratch):
    path = os.path.join(scratch, "texts.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    cmd = [lathe, "tokenize", "--model", folder, "--input", path]
    if not add_special:
        cmd.append("--no-special")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    ids = [json.loads(line)["ids"] for line in out]
    assert len(ids) == len(texts), f"lathe tokenize gave {len(ids)} rows for {len(texts)} texts"
    return ids


def hf_runners(folder, kind):
    """(name, encode(texts, add_special) -> ids, every_text) of the HF code that reads this
    folder. `tokenizers` runs on every text; AutoTokenizer, which runs the same tokenizer.json
    with the BOS/EOS and special tokens of tokenizer_config.json, on a quarter of them."""
    if kind == "sentencepiece":
        # The folder has tokenizer.model only: LlamaTokenizer runs SentencePiece on it
        # (tests/tokenizer/reference_test.cpp compares SentencePiece on every text).
        slow = LlamaTokenizer.from_pretrained(folder)
        return [("transformers LlamaTokenizer (SentencePiece)",
                 lambda ts, sp: slow(ts, add_special_tokens=sp)["input_ids"], False)]
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(folder)
    return [("tokenizers",
             lambda ts, sp: [e.ids for e in tok.encode_batch(ts, add_special_tokens=sp)], True),
            (f"AutoTokenizer ({type(auto).__name__})",
             lambda ts, sp: auto(ts, add_special_tokens=sp)["input_ids"], False)]


def folder_specials(folder):
    """The folder's added tokens (all of Llama 3's named ones, three reserved)."""
    tok = AutoTokenizer.from_pretrained(folder, use_fast=os.path.exists(
        os.path.join(folder, "tokenizer.json")))
    names = [t.content for _, t in sorted(tok.added_tokens_decoder.items())]
    reserved = [n for n in names if "reserved" in n]
    return [n for n in names if "reserved" not in n] + reserved[:3]


def check(lathe, label, folder, kind, corpus, scratch):
    """Compares every runner with lathe; returns the number of differing texts."""
    specials = special_texts(folder_specials(folder))
    bad = 0
    # With BOS/EOS (HF's default) on the corpus; without, on its first 300 texts. The
    # special-token texts in both.
    for add_special, texts in ((True, corpus + specials), (False, corpus[:300] + specials)):
        t0 = time.time()
        ours = lathe_ids(lathe, folder, texts, add_special, scratch)
        t_lathe = time.time() - t0
        quarter = list(range(0, len(texts) - len(specials), 4)) + list(
            range(len(texts) - len(specials), len(texts)))
        for name, encode, every_text in hf_runners(folder, kind):
            which = range(len(texts)) if every_text else quarter
            t0 = time.time()
            theirs = encode([texts[i] for i in which], add_special)
            differ = [i for i, t in zip(which, theirs) if ours[i] != t]
            print(f"{label}: {name}, {'with' if add_special else 'without'} BOS/EOS: "
                  f"{len(which) - len(differ)}/{len(which)} texts equal "
                  f"({len(specials)} with special tokens written in them; lathe {t_lathe:.1f} s "
                  f"for {len(texts)}, {name.split()[0]} {time.time() - t0:.1f} s)")
            for i, t in [(i, t) for i, t in zip(which, theirs) if ours[i] != t][:5]:
                print(f"  DIFFER {texts[i][:100]!r}\n    lathe {ours[i][:40]}\n    hf    {t[:40]}")
            bad += len(differ)
    return bad


def lathe_final(lathe, repo, scratch, name, vocab, files, special_tokens):
    """final/ of a one-step lathe run: tiny random model with this tokenizer."""
    base = os.path.join(scratch, name)
    tiny_model.write(base, vocab, files)
    run = os.path.join(scratch, name + "_run")
    cmd = [lathe, "train", "/dev/null", f"model.path={base}",
           f"data.train={repo}/tests/data/fixtures/gsm8k_train_head.jsonl", "data.format=gsm8k",
           "data.seq_len=256", f"data.cache_dir={scratch}/cache", "train.precision=fp32",
           "train.batch_size=1", "train.threads=2", "train.max_steps=1", "eval.metrics=[]",
           f"output.dir={run}"]
    if special_tokens:
        with open(os.path.join(scratch, "tokens.json"), "w") as f:
            json.dump({"tokens": ADDED}, f)
        cmd.append(f"model.special_tokens={scratch}/tokens.json")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"lathe train failed:\n{r.stderr}")
    return os.path.join(run, "final")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lathe")
    ap.add_argument("repo")
    ap.add_argument("--data", default=os.environ.get("LATHE_SHARED_DATA")
                    or os.path.join(REPO, "..", "shared", "data"))
    args = ap.parse_args()
    data, repo = os.path.abspath(args.data), os.path.abspath(args.repo)
    shared = os.path.isdir(os.path.join(data, "gsm8k")) and os.path.isdir(os.path.join(data, "tokenizers"))
    if shared:
        texts = [t for _, t in corpus_texts(data)]
    else:
        print(f"{data}: no shared data; the repository's texts and tokenizers only")
        texts = repo_texts(repo)
    texts += [t for _, t in fuzz_texts(3000, seed=20240521)]
    # The folders lathe writes are checked on a quarter of the texts: what they can get wrong
    # is in the files (pipeline, merges, added tokens, BOS/EOS), which every text exercises.
    sample = texts[::4]
    l2, l3 = os.path.join(data, "tokenizers", "llama2"), os.path.join(data, "tokenizers", "llama3")
    repo_l2 = os.path.join(repo, "tests", "data", "tokenizer", "llama2")
    stories = os.path.join(repo, "examples", "stories260K")
    bad = 0
    with tempfile.TemporaryDirectory() as scratch:
        cases = []
        if shared:
            cases += [("Llama 2 tokenizer.json", lambda: l2, "json", texts),
                      ("Llama 3 tokenizer.json", lambda: l3, "json", texts)]
        cases += [
            ("stories260K tokenizer.json (repository copy)", lambda: stories, "json", texts),
            ("Llama 2 tokenizer.model (repository copy)", lambda: repo_l2, "sentencepiece", texts),
            ("lathe final/ from the Llama 2 tokenizer.model", lambda: lathe_final(
                args.lathe, repo, scratch, "l2", 32000,
                [f"{repo_l2}/tokenizer.model", f"{repo_l2}/tokenizer_config.json"], False),
             "json", sample),
            ("lathe final/ from the Llama 2 tokenizer.model + 2 special tokens", lambda: lathe_final(
                args.lathe, repo, scratch, "l2s", 32000,
                [f"{repo_l2}/tokenizer.model", f"{repo_l2}/tokenizer_config.json"], True),
             "json", sample),
            ("lathe final/ from stories260K + 2 special tokens", lambda: lathe_final(
                args.lathe, repo, scratch, "s", 512,
                [f"{stories}/{n}" for n in ("tokenizer.json", "tokenizer_config.json")], True),
             "json", sample)]
        if shared:
            cases += [
                ("lathe final/ from the Llama 3 tokenizer.model (tiktoken) + 2 special tokens",
                 lambda: lathe_final(args.lathe, repo, scratch, "l3m", 128256,
                                     [f"{l3}/tokenizer.model", f"{l3}/tokenizer_config.json"], True),
                 "json", sample),
                ("lathe final/ from the Llama 3 tokenizer.json + 2 special tokens",
                 lambda: lathe_final(args.lathe, repo, scratch, "l3j", 128256,
                                     [f"{l3}/{n}" for n in ("tokenizer.json", "tokenizer_config.json",
                                                             "special_tokens_map.json")], True),
                 "json", sample)]
        for label, folder, kind, case_texts in cases:
            bad += check(args.lathe, label, folder(), kind, case_texts, scratch)
    if bad:
        print(f"FAILED: {bad} texts encode differently")
        return 1
    print(f"{len(cases)} tokenizers: every text encodes to the same ids in lathe and Hugging Face")
    return 0


if __name__ == "__main__":
    sys.exit(main())
