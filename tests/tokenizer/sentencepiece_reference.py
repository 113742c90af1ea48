#!/usr/bin/env python3
"""Reference token ids for the tokenizer tests, from independent implementations.

  llama2: Debian's python3-sentencepiece on the Llama 2 tokenizer.model (sp.encode: no BOS).
  llama3: a plain-Python tiktoken algorithm (the `regex` module for Meta's split pattern,
          then lowest-rank pair merging over the tiktoken ranks), when python3-regex is
          installed; otherwise the key is left out and the C++ test skips that part.

Texts: every text field of GSM8K (train+test: question, answer), PubMedQA ori_pqal.json
(QUESTION, CONTEXTS joined with "\\n", LONG_ANSWER) and SAMSum (validation+test csv:
dialogue, summary), in that order (corpus_texts(), also used by bench/tokenizer); then
--fuzz random strings built to stress the split rules (fuzz_texts()).

Output: JSON lines {"source": "gsm8k/train.jsonl:1:question", "text": ..., "llama2": [...],
"llama3": [...]}. The data folder is --data, else $LATHE_SHARED_DATA, else
<repo>/../shared/data; if it is missing, nothing is written and the script exits 0 (the
C++ test then skips with a message); likewise without python3-sentencepiece.

  /usr/bin/python3 tests/tokenizer/sentencepiece_reference.py --out build/tests/golden/sp_reference.jsonl
"""

import argparse
import base64
import csv
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_data_dir():
    return os.environ.get("LATHE_SHARED_DATA") or os.path.join(REPO, "..", "shared", "data")


def corpus_texts(data):
    """(source, text) for every text field, in a fixed order."""
    out = []
    for split in ("train", "test"):
        path = os.path.join(data, "gsm8k", split + ".jsonl")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                row = json.loads(line)
                for key in ("question", "answer"):
                    out.append((f"gsm8k/{split}.jsonl:{n}:{key}", row[key]))
    with open(os.path.join(data, "pubmedqa", "ori_pqal.json"), encoding="utf-8") as f:
        pqa = json.load(f)
    for pmid, row in pqa.items():
        out.append((f"pubmedqa:{pmid}:QUESTION", row["QUESTION"]))
        out.append((f"pubmedqa:{pmid}:CONTEXTS", "\n".join(row["CONTEXTS"])))
        out.append((f"pubmedqa:{pmid}:LONG_ANSWER", row["LONG_ANSWER"]))
    for split in ("validation", "test"):
        with open(os.path.join(data, "samsum", split + ".csv"), encoding="utf-8", newline="") as f:
            for n, row in enumerate(csv.DictReader(f), 1):
                for key in ("dialogue", "summary"):
                    out.append((f"samsum/{split}.csv:{n}:{key}", row[key]))
    return out


# Characters that stress the split rules: every kind of whitespace \s knows, newlines,
# letters of several scripts (with combining marks), digits and other numbers, punctuation,
# apostrophes with contraction letters in both cases (and U+017F, which (?i) folds to s),
# emoji with ZWJ, U+2028, and the SentencePiece space mark itself.
FUZZ_PALETTE = (
    [" "] * 12 + ["\n"] * 4 +
    ["\r", "\t", "\u00a0", "\u3000", "\u2009", "\u2028", "\u0085", "\u000b"] +
    list("aeiostrvmldSTRVMLDxyzQ") + list("éüßñçøЖждαβγ漢字かなᄀ가ก्ไ") + ["\u0301", "\u017f"] +
    list("0123456789") + list("½²٣") + ["'"] * 6 + list("\"!?.,;:-_()[]{}<>/\\@#$%^&*+=|~`") +
    ["\u2581", "😀", "👍🏽", "👩\u200d💻", "\u200d", "\ufe0f", "€", "…"])


def fuzz_texts(count, seed):
    """Random strings over FUZZ_PALETTE, with runs (repeated characters) mixed in."""
    import random
    rng = random.Random(seed)
    out = []
    for i in range(count):
        parts = []
        for _ in range(rng.randint(0, 40)):
            c = rng.choice(FUZZ_PALETTE)
            parts.append(c * (rng.randint(2, 6) if rng.random() < 0.15 else 1))
        out.append((f"fuzz:{i}", "".join(parts)))
    return out


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class TiktokenReference:
    """tiktoken's algorithm (encode_ordinary) written plainly: whole piece lookup first,
    else merge the adjacent pair whose concatenation has the lowest rank, leftmost first."""

    def __init__(self, path):
        import regex  # Debian python3-regex
        self.pattern = regex.compile(LLAMA3_PATTERN)
        self.ranks = {}
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    tok, rank = line.split()
                    self.ranks[base64.b64decode(tok)] = int(rank)
        self.cache = {}

    def _bpe(self, piece):
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = self.ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        return [self.ranks[p] for p in parts]

    def encode(self, text):
        ids = []
        for m in self.pattern.finditer(text):
            piece = m.group().encode("utf-8")
            got = self.cache.get(piece)
            if got is None:
                r = self.ranks.get(piece)
                got = [r] if r is not None else self._bpe(piece)
                self.cache[piece] = got
            ids.extend(got)
        return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output .jsonl")
    ap.add_argument("--data", default=default_data_dir(), help="the shared data folder")
    ap.add_argument("--fuzz", type=int, default=3000, help="random strings after the corpus")
    ap.add_argument("--limit", type=int, default=0, help="only the first N texts (0 = all)")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    llama2 = os.path.join(data, "tokenizers", "llama2", "tokenizer.model")
    llama3 = os.path.join(data, "tokenizers", "llama3", "tokenizer.model")
    if not os.path.exists(llama2) or not os.path.exists(os.path.join(data, "gsm8k")):
        print(f"sentencepiece_reference: {data} has no tokenizers/llama2 or datasets; "
              "nothing written (the C++ test will skip)")
        return 0
    try:
        import sentencepiece as spm  # Debian python3-sentencepiece
    except ImportError:
        print("sentencepiece_reference: python3-sentencepiece is not installed; nothing "
              "written (the C++ test will skip)")
        return 0
    sp = spm.SentencePieceProcessor(model_file=llama2)
    try:
        tk = TiktokenReference(llama3) if os.path.exists(llama3) else None
    except ImportError:
        print("sentencepiece_reference: python3-regex is not installed; no Llama 3 ids")
        tk = None
    texts = corpus_texts(data) + fuzz_texts(args.fuzz, seed=20240521)
    if args.limit:
        texts = texts[:args.limit]
    t0 = time.time()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for source, text in texts:
            row = {"source": source, "text": text, "llama2": sp.encode(text)}
            if tk is not None:
                row["llama3"] = tk.encode(text)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)
    print(f"sentencepiece_reference: {len(texts)} texts -> {args.out} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
