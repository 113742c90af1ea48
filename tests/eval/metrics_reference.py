#!/usr/bin/env python3
"""Reference values for the metric tests in tests/eval (rouge_test, bleu_test, porter check).

Nothing here is generated at test time: run this script, and paste what it prints into the
tests (the constants there came from it); it also rewrites tests/eval/porter_reference.tsv.

  /usr/bin/python3 tests/eval/metrics_reference.py            # prints C++ constants
  /usr/bin/python3 tests/eval/metrics_reference.py --porter-out tests/eval/porter_reference.tsv

Needs Debian's python3-nltk (scripts/setup.sh installs it). rouge_score and sacrebleu are not
installable here (no PyPI), so:

  Porter: nltk.stem.porter.PorterStemmer() itself (what rouge_score's use_stemmer runs), on every
      distinct token ([a-z0-9]+ after lowercasing, as rouge_score tokenizes) of the text fields of
      ../shared/data (GSM8K question/answer, PubMedQA QUESTION/CONTEXTS/LONG_ANSWER/MESHES,
      SAMSum dialogue/summary). Over ~1.5 MB the TSV would keep a fixed sample of 20,000 words.
  ROUGE: a plain-Python re-implementation of rouge_score 0.1.2 (rouge_scorer.py, tokenize.py,
      scoring.py) with nltk's stemmer, written apart from the C++ port.
  BLEU: nltk.translate.bleu_score.corpus_bleu on tokens from sacrebleu's 13a tokenizer (written
      here with Python's re, as sacrebleu does). Where the definitions agree, nltk equals
      sacrebleu: no smoothing with every n-gram precision > 0 ('none'), SmoothingFunction
      method3 ('exp'), method1 with epsilon 0.1 ('floor'), method2 ('add-k', k=1); and only
      when every hypothesis has at least 4 tokens (nltk counts a shorter one as 1 n-gram of
      each missing order, sacrebleu as 0), so the BLEU corpus keeps those pairs only.
"""

import argparse
import collections
import csv
import json
import math
import os
import random
import re
import sys

from nltk.stem import porter
from nltk.translate import bleu_score

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# (prediction, reference) pairs shared by the ROUGE and BLEU tests: casing, punctuation,
# numbers, words the stemmer changes, repeated tokens (clipping; LCS ties), several sentences
# on lines of their own (ROUGE-Lsum), blank lines, HTML entities, "-\n" and odd whitespace
# (13a), non-ASCII letters (U+0130 and U+212A lowercase to ASCII in Python).
PAIRS = [
    ("the cat sat on the mat", "the cat is on the mat"),
    ("The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog"),
    ("Hello, World!", "hello world"),
    ("the the the the the the the", "the cat is on the mat"),
    ("", "nothing was predicted here"),
    ("He paid $1,234.50 for 3 items on 2021-05-04.", "He paid 1,234.50 dollars for three items."),
    ("Running runners ran; they were running quickly.", "The runner runs quickly and ran far."),
    ("Studies studied the studying of happiness happily.", "A study of happy people studies happiness."),
    ("Amanda will call Larry.\nHannah needs Betty's number.",
     "Hannah needs Betty's number but Amanda doesn't have it.\nShe needs to contact Larry."),
    ("a b c d\ne f a b\nc d e f", "a b c d e f\nb c d a"),
    ("w1 w2 w3 w4 w5\nw1 w6 w2 w7 w3", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5"),
    ("one two\n\nthree four\n   \nfive", "one\ntwo three\nfour five six"),
    ("It's a dog-eat-dog world, isn't it?", "It is a dog eat dog world, is it not?"),
    ("Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day.",
     "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
     "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18"),
    ("Yes, mitochondria play a role in remodelling lace plant leaves.",
     "Results depicted mitochondrial dynamics in vivo as PCD progresses within the lace plant."),
    ("&quot;Quoted&quot; text &amp; more &lt;tags&gt; here",
     "\"Quoted\" text & more <tags> here"),
    ("A hyphen-\nated word and a <skipped> token.", "A hyphenated word and a token."),
    ("Numbers like 3.14, 2,000 and 10-20 matter.", "Numbers like 3.14 , 2,000 and 10 - 20 matter ."),
    ("CASE Matters In BLEU But Not In ROUGE", "case matters in bleu but not in rouge"),
    ("the cat the cat the cat on the mat", "the cat on the mat the cat"),
    ("Istanbul \u0130stanbul 5\u212a run and caf\u00e9 na\u00efve r\u00e9sum\u00e9",
     "istanbul i stanbul 5k run and cafe naive resume"),
    ("tabs\tand\u00a0non-breaking\u2009spaces   everywhere  ", "tabs and non-breaking spaces everywhere"),
    ("the generalization of relational operational conditional sensibility",
     "generalizations relate operate condition sensible"),
    ("x y z x y z x y z", "z y x z y x"),
    ("I told you: \"call me (maybe) later\" -- ok? [yes] {no} @home #tag 50% a+b=c",
     "I told you call me maybe later ok yes no at home tag 50 percent a plus b equals c"),
    ("Dr. Smith arrived at 5 p.m., U.S.A.", "Doctor Smith arrived at 5 pm in the USA."),
    ("first line\nsecond line\nthird line\nfourth line",
     "second line\nfirst line\nfourth line here\nthird"),
    ("cats cat cats cat", "cat cats"),
    ("He owes 1,000,000 dollars, i.e. 1e6.", "He owes 1000000 dollars , i.e. a million ."),
    ("Ponies caressed the flies; they were dying and lying.",
     "The pony caresses a fly, which dies and lies."),
]

# Extra references for a multi-reference BLEU corpus: pair index -> more references.
EXTRA_REFS = {
    0: ["there is a cat on the mat", "a cat sat on the mat"],
    1: ["The quick brown dog jumps on the log"],
    6: ["Runners ran quickly; they were running.", "They ran."],
    12: ["It is a dog-eat-dog world, isn't it?"],
    18: ["CASE matters in BLEU but not in ROUGE", ""],
}


# ----- rouge_score, re-implemented -----

def rouge_tokenize(text, stemmer):
    text = text.lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    tokens = re.split(r"\s+", text)
    if stemmer:
        tokens = [stemmer.stem(x) if len(x) > 3 else x for x in tokens]
    return [x for x in tokens if re.match(r"^[a-z0-9]+$", x)]


def f1(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def ngram_counts(tokens, n):
    return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(ref, pred, n):
    rc, pc = ngram_counts(ref, n), ngram_counts(pred, n)
    overlap = sum(min(c, pc[g]) for g, c in rc.items())
    p = overlap / max(sum(pc.values()), 1)
    r = overlap / max(sum(rc.values()), 1)
    return (p, r, f1(p, r))


def lcs_table(a, b):
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
    return t


def lcs_positions(ref, can):
    """Positions in ref of the LCS that rouge_score's _backtrack_norec reads out."""
    t = lcs_table(ref, can)
    i, j, out = len(ref), len(can), []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
        elif t[i][j - 1] > t[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return out[::-1]


def rouge_l(ref, pred):
    if not ref or not pred:
        return (0.0, 0.0, 0.0)
    lcs = lcs_table(ref, pred)[-1][-1]
    p, r = lcs / len(pred), lcs / len(ref)
    return (p, r, f1(p, r))


def rouge_lsum(ref_text, pred_text, stemmer):
    def sents(text):
        return [rouge_tokenize(s, stemmer) for s in text.split("\n") if len(s)]
    refs, preds = sents(ref_text), sents(pred_text)
    if not refs or not preds:
        return (0.0, 0.0, 0.0)
    m, n = sum(map(len, refs)), sum(map(len, preds))
    if not m or not n:
        return (0.0, 0.0, 0.0)
    cnt_r, cnt_c = collections.Counter(), collections.Counter()
    for s in refs:
        cnt_r.update(s)
    for s in preds:
        cnt_c.update(s)
    hits = 0
    for r in refs:
        union = set()
        for c in preds:
            union.update(lcs_positions(r, c))
        for t in (r[i] for i in sorted(union)):
            if cnt_c[t] > 0 and cnt_r[t] > 0:
                hits += 1
                cnt_c[t] -= 1
                cnt_r[t] -= 1
    p, r = hits / n, hits / m
    return (p, r, f1(p, r))


def rouge_all(pred, ref, stemmer):
    rt, pt = rouge_tokenize(ref, stemmer), rouge_tokenize(pred, stemmer)
    return [rouge_n(rt, pt, 1), rouge_n(rt, pt, 2), rouge_l(rt, pt), rouge_lsum(ref, pred, stemmer)]


# ----- sacrebleu 13a tokenizer, with Python's re as sacrebleu does -----

_13A = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def tokenize_13a(line):
    line = line.rstrip()  # sacrebleu's BLEU._preprocess_segment strips the right end first
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&")
        line = line.replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for rx, repl in _13A:
        line = rx.sub(repl, line)
    return " ".join(line.split())


def bleu_stats(hyps, refs_list):
    """Clipped counts, totals and lengths as sacrebleu sums them, from nltk's own helpers."""
    correct, total = [0] * 4, [0] * 4
    sys_len = ref_len = 0
    for hyp, refs in zip(hyps, refs_list):
        for n in range(1, 5):
            p = bleu_score.modified_precision(refs, hyp, n)
            correct[n - 1] += p.numerator
            total[n - 1] += p.denominator
        sys_len += len(hyp)
        ref_len += bleu_score.closest_ref_length(refs, len(hyp))
    return correct, total, sys_len, ref_len


def nltk_bleu(hyps, refs_list, smoothing):
    sf = bleu_score.SmoothingFunction(epsilon=0.1)
    fn = {"none": None, "exp": sf.method3, "floor": sf.method1, "add-k": sf.method2}[smoothing]
    return 100.0 * bleu_score.corpus_bleu(refs_list, hyps, smoothing_function=fn)


# ----- output -----

def cpp_str(s):
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append("\\%03o" % b)  # octal: at most 3 digits, unlike greedy \x escapes
    return '"' + "".join(out) + '"'


def g(x):
    return "%.17g" % x


def print_pairs():
    print("// Generated by tests/eval/metrics_reference.py (PAIRS): {prediction, reference}.")
    print("const std::vector<std::pair<std::string, std::string>> kPairs = {")
    for p, r in PAIRS:
        print(f"    {{{cpp_str(p)},\n     {cpp_str(r)}}},")
    print("};")


def print_rouge():
    print_pairs()
    print()
    stemmer = porter.PorterStemmer()
    for name, st in (("kRougeNoStem", None), ("kRougeStem", stemmer)):
        print(f"// rouge1, rouge2, rougeL, rougeLsum as {{precision, recall, fmeasure}}, "
              f"use_stemmer={'true' if st else 'false'}.")
        print(f"const double {name}[][4][3] = {{")
        means = [0.0] * 4
        for p, r in PAIRS:
            s = rouge_all(p, r, st)
            for k in range(4):
                means[k] += s[k][2] / len(PAIRS)
            print("    {" + ", ".join("{" + ", ".join(g(v) for v in t) + "}" for t in s) + "},")
        print("};")
        print(f"// Mean fmeasure over the pairs (HF evaluate's aggregate estimates this).")
        print(f"const double {name}Mean[4] = {{{', '.join(g(m) for m in means)}}};")
    print()


def print_bleu(with_pairs):
    if with_pairs:
        print_pairs()
        print()
    print("// 13a tokenization of each prediction and reference in kPairs, then extra references.")
    print("const std::vector<std::pair<std::string, std::string>> kTokenized13a = {")
    for p, r in PAIRS:
        print(f"    {{{cpp_str(tokenize_13a(p))},\n     {cpp_str(tokenize_13a(r))}}},")
    print("};")
    print("const std::map<int, std::vector<std::string>> kExtraRefs = {")
    for i, refs in EXTRA_REFS.items():
        print(f"    {{{i}, {{{', '.join(cpp_str(x) for x in refs)}}}}},")
    print("};")

    # The corpus: pairs whose hypothesis has >= 4 tokens (see the module docstring).
    keep = [i for i, (p, _) in enumerate(PAIRS) if len(tokenize_13a(p).split()) >= 4]
    print("// Pairs in the BLEU corpus (hypotheses of at least 4 tokens).")
    print(f"const std::vector<int> kBleuCorpus = {{{', '.join(map(str, keep))}}};")

    def refs_of(i, multi):
        refs = [PAIRS[i][1]] + (EXTRA_REFS.get(i, []) if multi else [])
        refs = [x for x in refs if x != ""]  # sacrebleu drops empty references
        return [tokenize_13a(x).split() for x in refs]

    print("// {score, p1..p4 (percent), bp, sys_len, ref_len, correct[4], total[4]} per setting.")
    print("struct BleuRef { const char* smooth; bool multi; double score, p[4], bp, sys_len, "
          "ref_len, correct[4], total[4]; };")
    print("const BleuRef kBleuCorpusRef[] = {")
    for multi in (False, True):
        hyps = [tokenize_13a(PAIRS[i][0]).split() for i in keep]
        refs = [refs_of(i, multi) for i in keep]
        correct, total, sys_len, ref_len = bleu_stats(hyps, refs)
        bp = 1.0 if sys_len >= ref_len else math.exp(1 - ref_len / sys_len)
        for smooth in ("none", "exp", "floor", "add-k"):
            if smooth == "none" and not all(correct):
                continue
            score = nltk_bleu(hyps, refs, smooth)
            c, t = list(correct), list(total)
            if smooth == "add-k":
                c = [c[0]] + [x + 1 for x in c[1:]]
                t = [t[0]] + [x + 1 for x in t[1:]]
            prec = []
            k = 1
            for n in range(4):
                if c[n] > 0:
                    prec.append(100.0 * c[n] / t[n])
                elif smooth == "exp":
                    k *= 2
                    prec.append(100.0 / (k * t[n]))
                elif smooth == "floor":
                    prec.append(100.0 * 0.1 / t[n])
                else:
                    prec.append(0.0)
            print(f'    {{"{smooth}", {"true" if multi else "false"}, {g(score)}, '
                  f'{{{", ".join(g(x) for x in prec)}}}, {g(bp)}, {sys_len}, {ref_len}, '
                  f'{{{", ".join(map(str, correct))}}}, {{{", ".join(map(str, total))}}}}},')
    print("};")

    # Each kept pair alone as a corpus of one: zero high-order precisions are common, so the
    # smoothing methods differ ('none' is left out: nltk's method0 gives ~1e-77, sacrebleu 0).
    print("// Sentence-level BLEU for each pair of kBleuCorpus, one reference: "
          "{exp (method3), floor (method1), add-k (method2)}.")
    print("const double kBleuSentence[][3] = {")
    for i in keep:
        hyp = [tokenize_13a(PAIRS[i][0]).split()]
        refs = [refs_of(i, False)]
        vals = [nltk_bleu(hyp, refs, m) for m in ("exp", "floor", "add-k")]
        print(f"    {{{', '.join(g(v) for v in vals)}}},  // pair {i}")
    print("};")


def corpus_texts(data):
    out = []
    for split in ("train", "test"):
        with open(os.path.join(data, "gsm8k", split + ".jsonl"), encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                out += [row["question"], row["answer"]]
    with open(os.path.join(data, "pubmedqa", "ori_pqal.json"), encoding="utf-8") as f:
        for row in json.load(f).values():
            out += [row["QUESTION"], "\n".join(row["CONTEXTS"]), row["LONG_ANSWER"]]
            out += row.get("MESHES", [])
    for split in ("validation", "test"):
        with open(os.path.join(data, "samsum", split + ".csv"), encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                out += [row["dialogue"], row["summary"]]
    return out


def write_porter(data, path):
    words = set()
    for text in corpus_texts(data):
        words.update(rouge_tokenize(text, None))
    words = sorted(words)
    stemmer = porter.PorterStemmer()
    lines = [f"{w}\t{stemmer.stem(w)}\n" for w in words]
    if sum(map(len, lines)) > 1_500_000:
        lines = sorted(random.Random(0).sample(lines, 20000))
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)
    print(f"// wrote {len(lines)} words of {len(words)} to {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("LATHE_SHARED_DATA")
                    or os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--porter-out", default=os.path.join(HERE, "porter_reference.tsv"),
                    help="where to write word<TAB>stem ('' to skip)")
    ap.add_argument("--section", choices=["all", "rouge", "bleu"], default="all")
    args = ap.parse_args()
    if args.section in ("all", "rouge"):
        print_rouge()
    if args.section in ("all", "bleu"):
        print_bleu(with_pairs=args.section == "bleu")
    if args.porter_out:
        if os.path.isdir(args.data):
            write_porter(args.data, args.porter_out)
        else:
            print(f"// no data at {args.data}; porter reference not written", file=sys.stderr)


if __name__ == "__main__":
    main()
