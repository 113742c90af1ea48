#!/usr/bin/env python3
"""Pre-tokenize jsonl text into lathe training rows ({"input_ids": [...], "labels": [...]}).

Standalone, Python 3 standard library only.  It implements the SentencePiece-BPE tokenizer
used by Llama 2 and the tinyllamas models (e.g. stories260K), read from either
  * a Hugging Face tokenizer.json (model.type "BPE", byte_fallback), or
  * a llama2.c tokenizer .bin (tokenizer.bin / tok512.bin).

Encoding (same as sentencepiece / llama2.c / HF `tokenizers` for these vocabularies):
  1. normalize: if the text is not empty, prepend "\u2581"; replace every " " with "\u2581";
  2. split into Unicode characters; a character that is not a vocab piece becomes its UTF-8
     bytes as <0xNN> byte-fallback tokens (or <unk> when the vocab has no byte pieces);
  3. repeatedly merge the adjacent pair with the best priority, leftmost first on ties:
     the lowest rank in tokenizer.json's "merges" list, or, if the file has no merges (and for
     llama2.c .bin files), the highest score of the merged piece, as llama2.c's encode() does
     (for a tokenizer.json without scores the vocab id is the score order: lower id = better);
  4. prepend BOS (unless --no-bos) and append EOS with --eos.
Text is taken literally: "<s>" inside the text is not turned into a special token.

Row text comes from one of
  --field NAME                 the string field NAME
  --template T                 T.format(**row), e.g. "Question: {question}\\nAnswer: {answer}"
  --prompt-template P --response-template R
                               text = P.format(**row) + R.format(**row); the prompt is encoded on
                               its own (with BOS), the response is encoded without the "\u2581"
                               prefix and appended, and "labels" is -100 over BOS + prompt tokens.
In templates the escapes \\n, \\t and \\\\ are understood, so the shell needs no $'...'.

Example:
  python3 tools/pretokenize.py --tokenizer examples/stories260K/tokenizer.json \\
      --input train.jsonl --output out.jsonl \\
      --prompt-template "Question: {question}\\nAnswer:" --response-template " {answer}" \\
      --eos --max-len 256 --verify
"""

import argparse
import heapq
import json
import os
import struct
import sys

SPACE = "\u2581"  # sentencepiece's visible space


class Tokenizer:
    """SentencePiece-BPE encoder/decoder over a vocab {piece: id}."""

    def __init__(self, vocab, merges=None, scores=None, bos_id=None, eos_id=None,
                 unk_id=None, special_ids=(), add_bos=True, add_eos=False):
        self.vocab = vocab
        self.pieces = [None] * (max(vocab.values()) + 1)
        for p, i in vocab.items():
            self.pieces[i] = p
        self.bos_id, self.eos_id, self.unk_id = bos_id, eos_id, unk_id
        self.special_ids = set(i for i in special_ids if i is not None)
        self.add_bos, self.add_eos = add_bos, add_eos
        # byte pieces <0xNN>
        self.byte_ids = {}
        for b in range(256):
            i = vocab.get("<0x%02X>" % b)
            if i is not None:
                self.byte_ids[b] = i
        self.byte_of_id = {i: b for b, i in self.byte_ids.items()}
        # Pieces that can be produced by encoding text (not specials, not byte pieces).
        self.normal = {p: i for p, i in vocab.items()
                       if i not in self.special_ids and i not in self.byte_of_id}
        if merges is not None:
            self.mode = "merges"
            self.rank = {}
            for r, m in enumerate(merges):
                a, b = m.split(" ", 1) if isinstance(m, str) else m
                if (a, b) not in self.rank and (a + b) in vocab:
                    self.rank[(a, b)] = r
        else:
            self.mode = "scores"
            if scores is None:  # SentencePiece orders pieces by score: lower id = higher score
                scores = {i: -float(i) for i in vocab.values()}
            self.score = scores

    # --- encoding -------------------------------------------------------------------------
    def _priority(self, a, b):
        """Smaller is better; None if a+b is not a merge."""
        if self.mode == "merges":
            return self.rank.get((a, b))
        i = self.normal.get(a + b)
        return None if i is None else -self.score[i]

    def encode_text(self, text, add_prefix=True):
        """Token ids for `text` without BOS/EOS. add_prefix: apply the dummy "\u2581" prefix."""
        if not text:
            return []
        s = (SPACE + text if add_prefix else text).replace(" ", SPACE)
        syms = []  # symbol strings; None = byte/unk token that never merges
        ids = []
        for ch in s:
            i = self.normal.get(ch)
            if i is not None:
                syms.append(ch)
                ids.append(i)
            elif self.byte_ids:
                for b in ch.encode("utf-8"):
                    syms.append(None)
                    ids.append(self.byte_ids[b])
            else:
                if ids and ids[-1] == self.unk_id and syms[-1] is None:
                    continue  # fuse consecutive <unk>
                syms.append(None)
                ids.append(self.unk_id)
        n = len(syms)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []

        def push(i):
            j = nxt[i]
            if j < n and syms[i] is not None and syms[j] is not None:
                p = self._priority(syms[i], syms[j])
                if p is not None:
                    heapq.heappush(heap, (p, i, syms[i], syms[j]))

        for i in range(n - 1):
            push(i)
        while heap:
            p, i, a, b = heapq.heappop(heap)
            if not alive[i] or syms[i] != a:
                continue
            j = nxt[i]
            if j >= n or syms[j] != b:
                continue
            # merge j into i
            syms[i] = a + b
            ids[i] = self.vocab[a + b]
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i])
            push(i)
        return [ids[k] for k in range(n) if alive[k]]

    def encode(self, text, bos=None, eos=None):
        bos = self.add_bos if bos is None else bos
        eos = self.add_eos if eos is None else eos
        out = ([self.bos_id] if bos else []) + self.encode_text(text)
        return out + ([self.eos_id] if eos else [])

    # --- decoding -------------------------------------------------------------------------
    def decode_bytes(self, ids, strip_prefix=True):
        """Bytes of the text behind `ids`: pieces with \u2581 -> " ", <0xNN> -> byte, specials
        skipped, and one leading space removed (the dummy prefix) when strip_prefix."""
        out = bytearray()
        for i in ids:
            if i in self.special_ids:
                continue
            b = self.byte_of_id.get(i)
            if b is not None:
                out.append(b)
            else:
                out += self.pieces[i].replace(SPACE, " ").encode("utf-8")
        if strip_prefix and out[:1] == b" ":
            del out[0]
        return bytes(out)

    def decode(self, ids, strip_prefix=True):
        return self.decode_bytes(ids, strip_prefix).decode("utf-8", errors="replace")


# --- loading ------------------------------------------------------------------------------
def _token_content(t):
    if isinstance(t, dict):
        return t.get("content")
    return t


def load_tokenizer_json(path):
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj.get("model", {})
    if model.get("type", "BPE") != "BPE":
        sys.exit("%s: model.type %r is not supported (need BPE)" % (path, model.get("type")))
    raw_vocab = model["vocab"]
    scores = None
    if isinstance(raw_vocab, list):  # [[piece, score], ...]
        vocab = {p: i for i, (p, _) in enumerate(raw_vocab)}
        scores = {i: float(s) for i, (_, s) in enumerate(raw_vocab)}
    else:
        vocab = dict(raw_vocab)
    merges = model.get("merges") or None
    added = {t["content"]: t["id"] for t in tj.get("added_tokens", [])}
    special = [t["id"] for t in tj.get("added_tokens", []) if t.get("special")]
    for c, i in added.items():
        vocab.setdefault(c, i)

    # tokenizer_config.json next to tokenizer.json (HF convention), if present
    cfg = {}
    cfg_path = os.path.join(os.path.dirname(os.path.abspath(path)), "tokenizer_config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    bos_tok = _token_content(cfg.get("bos_token")) or "<s>"
    eos_tok = _token_content(cfg.get("eos_token")) or "</s>"
    unk_tok = _token_content(cfg.get("unk_token")) or model.get("unk_token") or "<unk>"
    lookup = lambda t: added.get(t, vocab.get(t))
    return Tokenizer(vocab, merges=merges, scores=scores,
                     bos_id=lookup(bos_tok), eos_id=lookup(eos_tok), unk_id=lookup(unk_tok),
                     special_ids=special or [lookup(bos_tok), lookup(eos_tok), lookup(unk_tok)],
                     add_bos=cfg.get("add_bos_token", True),
                     add_eos=cfg.get("add_eos_token", False))


def load_llama2c_bin(path):
    """llama2.c tokenizer: int32 max_len, then per id: float32 score, int32 len, bytes.
    Spaces are stored as " " (not \u2581); ids 0/1/2 are <unk>, BOS, EOS."""
    with open(path, "rb") as f:
        data = f.read()
    off = 4
    vocab, scores = {}, {}
    i = 0
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        piece = data[off:off + n].decode("utf-8")
        off += n
        if i == 0:
            piece = "<unk>"
        elif i == 1:
            piece = "<s>"
        elif i == 2:
            piece = "</s>"
        else:
            piece = piece.replace(" ", SPACE)
        vocab.setdefault(piece, i)
        scores[i] = score
        i += 1
    return Tokenizer(vocab, merges=None, scores=scores, bos_id=1, eos_id=2, unk_id=0,
                     special_ids=[0, 1, 2])


def load_tokenizer(path):
    if path.endswith(".json"):
        return load_tokenizer_json(path)
    return load_llama2c_bin(path)


# --- rows ---------------------------------------------------------------------------------
def unescape(t):
    if t is None:
        return None
    out, k = [], 0
    while k < len(t):
        c = t[k]
        if c == "\\" and k + 1 < len(t) and t[k + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[t[k + 1]])
            k += 2
        else:
            out.append(c)
            k += 1
    return "".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", required=True,
                    help="tokenizer.json (tokenizer_config.json next to it is read too) or llama2.c .bin")
    ap.add_argument("--input", required=True, help="input jsonl")
    ap.add_argument("--output", required=True, help="output jsonl ('-' for stdout)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--field", help="take the text from this string field")
    src.add_argument("--template", help="text = TEMPLATE.format(**row)")
    src.add_argument("--prompt-template", help="prompt part (labels -100); needs --response-template")
    ap.add_argument("--response-template", help="response part, appended to the prompt")
    ap.add_argument("--no-bos", action="store_true", help="do not prepend BOS")
    ap.add_argument("--eos", action="store_true", help="append EOS")
    ap.add_argument("--max-len", type=int, default=0, help="truncate rows to this many tokens (0 = no limit)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N input rows (0 = all)")
    ap.add_argument("--verify", action="store_true",
                    help="decode every row and check it reproduces the text (a prefix of it if truncated)")
    a = ap.parse_args(argv)
    if (a.prompt_template is None) != (a.response_template is None):
        ap.error("--prompt-template and --response-template go together")

    tok = load_tokenizer(a.tokenizer)
    tmpl, ptmpl, rtmpl = unescape(a.template), unescape(a.prompt_template), unescape(a.response_template)
    bos = [] if a.no_bos else [tok.bos_id]
    eos = [tok.eos_id] if a.eos else []

    out = sys.stdout if a.output == "-" else open(a.output, "w", encoding="utf-8")
    n_rows = n_tok = n_trunc = n_empty_labels = n_bad = 0
    with open(a.input, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if a.limit and n_rows >= a.limit:
                break
            if not line.strip():
                continue
            row = json.loads(line)
            labels = None
            if ptmpl is not None:
                prompt, response = ptmpl.format(**row), rtmpl.format(**row)
                text = prompt + response
                p_ids = bos + tok.encode_text(prompt)
                r_ids = tok.encode_text(response, add_prefix=not prompt) + eos
                ids = p_ids + r_ids
                labels = [-100] * len(p_ids) + r_ids
            else:
                text = row[a.field] if a.field is not None else tmpl.format(**row)
                ids = bos + tok.encode_text(text) + eos
            full = ids
            if a.max_len and len(ids) > a.max_len:
                ids = ids[:a.max_len]
                labels = labels[:a.max_len] if labels is not None else None
                n_trunc += 1
            if a.verify:
                want = text.encode("utf-8")
                got_full = tok.decode_bytes(full)
                got = tok.decode_bytes(ids)
                if got_full != want or not want.startswith(got):
                    n_bad += 1
                    print("line %d: decode mismatch:\n  text:    %r\n  decoded: %r"
                          % (line_no, text, got_full.decode("utf-8", "replace")), file=sys.stderr)
            if labels is not None and all(x == -100 for x in labels):
                n_empty_labels += 1
            rec = {"input_ids": ids}
            if labels is not None:
                rec["labels"] = labels
            out.write(json.dumps(rec, separators=(",", ":")) + "\n")
            n_rows += 1
            n_tok += len(ids)
    if out is not sys.stdout:
        out.close()
    msg = "%d rows, %d tokens (%.1f per row), %d truncated to %d" % (
        n_rows, n_tok, n_tok / max(n_rows, 1), n_trunc, a.max_len)
    if ptmpl is not None:
        msg += ", %d with no response tokens left" % n_empty_labels
    if a.verify:
        msg += "; decode check: %d/%d rows OK" % (n_rows - n_bad, n_rows)
    print(msg, file=sys.stderr)
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
