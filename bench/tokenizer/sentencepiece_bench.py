#!/usr/bin/env python3
"""The peer for bench/tokenizer/tokenizer_bench.cpp: Debian's python3-sentencepiece (the
SentencePiece C++ library behind a thin binding) encoding the same texts with the Llama 2
tokenizer.model, one call per text, single thread.

  /usr/bin/python3 bench/tokenizer/sentencepiece_bench.py [--data ../shared/data] [--passes 5]

The binding adds a few microseconds per call (str -> UTF-8, the id list back); the script
also times an empty loop over the texts and reports encode time with and without it.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "tokenizer"))
from sentencepiece_reference import corpus_texts, default_data_dir  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    import sentencepiece as spm
    model = os.path.join(args.data, "tokenizers", "llama2", "tokenizer.model")
    t0 = time.perf_counter()
    sp = spm.SentencePieceProcessor(model_file=model)
    load = time.perf_counter() - t0
    texts = [t for _, t in corpus_texts(args.data)]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    # Binding overhead floor: the same loop calling a trivial function.
    t0 = time.perf_counter()
    for t in texts:
        len(t)
    loop = time.perf_counter() - t0
    best = float("inf")
    tokens = 0
    for p in range(args.passes + 1):
        t0 = time.perf_counter()
        tokens = 0
        for t in texts:
            tokens += len(sp.encode(t))
        dt = time.perf_counter() - t0
        if p > 0:
            best = min(best, dt)
    best_dec = float("inf")
    ids = [sp.encode(t) for t in texts]
    for p in range(args.passes + 1):
        t0 = time.perf_counter()
        for v in ids:
            sp.decode(v)
        dt = time.perf_counter() - t0
        if p > 0:
            best_dec = min(best_dec, dt)
    print(f"corpus: {len(texts)} texts, {nbytes} bytes; sentencepiece {spm.__version__}, "
          f"{args.passes} timed passes after one warm-up, best pass")
    print(f"{'tokenizer':24} {'load s':>8} {'tokens':>10} {'encode MB/s':>12} {'Mtokens/s':>12} "
          f"{'decode MB/s':>12}")
    print(f"{'sentencepiece llama2':24} {load:8.3f} {tokens:10d} {nbytes / best / 1e6:12.2f} "
          f"{tokens / best / 1e6:12.3f} {nbytes / best_dec / 1e6:12.1f}")
    print(f"(loop overhead {loop * 1e3:.1f} ms of {best * 1e3:.0f} ms per pass)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
