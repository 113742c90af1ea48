"""llama.cpp itself on `lathe export --gguf` files (run by tests/io/llama_cpp.sh).

Usage: llama_cpp_check.py LATHE SRC_DIR LLAMA_CPP_BIN WORK_DIR

1. llama-quantize --pure on lathe's f32 export gives the same tensors, byte for byte, as
   lathe's own q8_0, q4_0 and q4_k exports: stories260K (whose rows of 64 and 172 values
   take the fallbacks) and a random Llama with the Llama 2 tokenizer (rows of 256 and 512:
   real q4_K blocks).
2. llama-server loads stories260K's exports and generates 100 tokens greedily from BOS (the
   prompt of examples/stories260K/expected_greedy_ids.json): f32 and f16 must equal
   `lathe generate --temperature 0` token for token; q8_0, q4_0 and q4_k are reported.
3. llama-server's /tokenize equals `lathe tokenize` on stories260K's f16 export (and on the
   Llama 3 tokenizer model's, where the shared data has that tokenizer).
4. llama.cpp's convert_hf_to_gguf.py, from the same source, writes the same files as
   `lathe export` (f32 and q8_0; stories260K's token scores differ by design).
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import gguf

LATHE, SRC, BIN, WORK = sys.argv[1:5]
SHARED = os.environ.get("LATHE_SHARED_DATA") or os.path.join(SRC, "..", "shared", "data")
STORIES = os.path.join(SRC, "examples", "stories260K")
TEXTS = ["Once upon a time, there was a little girl named Lily.",
         "She said, \"I can't find it!\" and ran  to   the park.\nThe end.",
         "Tom has 3 apples and buys 4 more. How many? 7"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r


def export(model, out, type_):
    run([LATHE, "export", "--model", model, "--gguf", out, "--type", type_])


def same_tensors(a, b):
    ra, rb = gguf.GGUFReader(a), gguf.GGUFReader(b)
    ta = {t.name: t for t in ra.tensors}
    tb = {t.name: t for t in rb.tensors}
    diff = []
    for name in sorted(set(ta) | set(tb)):
        x, y = ta.get(name), tb.get(name)
        if x is None or y is None:
            diff.append(f"{name} only in one file")
        elif x.tensor_type != y.tensor_type:
            diff.append(f"{name}: {x.tensor_type.name} vs {y.tensor_type.name}")
        elif not np.array_equal(np.asarray(x.data).view(np.uint8), np.asarray(y.data).view(np.uint8)):
            diff.append(f"{name} ({x.tensor_type.name}): bytes differ")
    types = sorted({t.tensor_type.name for t in ra.tensors})
    return diff, types


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, gguf_path):
        self.port = free_port()
        self.log = open(gguf_path + ".server.log", "w")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "llama-server"), "-m", gguf_path, "--host", "127.0.0.1",
             "--port", str(self.port), "-t", "2", "-c", "512", "-np", "1", "--no-warmup"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"FAILED: llama-server exited on {gguf_path}:\n" + open(self.log.name).read()[-3000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if time.time() > deadline:
                self.close()
                sys.exit(f"FAILED: llama-server on {gguf_path} not ready in 180 s")
            time.sleep(0.3)

    def post(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read())

    def greedy(self, prompt, n):
        # temperature 0 keeps only the largest logit; top_k 1 says the same to every sampler.
        j = self.post("/completion", {"prompt": prompt, "n_predict": n, "temperature": 0, "top_k": 1,
                                      "return_tokens": True, "cache_prompt": False})
        return j["tokens"]

    def tokenize(self, text):
        return self.post("/tokenize", {"content": text, "add_special": False})["tokens"]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def lathe_ids(model, text):
    out = run([LATHE, "tokenize", "--model", model, "--no-special", text]).stdout.splitlines()
    return [int(line.split()[0]) for line in out[1:] if line.strip() and line.split()[0].isdigit()]


def kv_fields(path):
    r = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}


def converter_check(llama2):
    """4. llama.cpp's own convert_hf_to_gguf.py (from the same source) on the same folders:
    lathe's file must be the converter's byte for byte, except stories260K's token scores
    (docs/export.md: the converter writes -1000 for a tokenizer.json vocabulary)."""
    convert = os.path.join(BIN, "..", "src", "convert_hf_to_gguf.py")
    try:
        import transformers  # noqa: F401  (the converter reads tokenizers through it)
    except ImportError:
        print("note: no transformers in .venv; the comparison with convert_hf_to_gguf.py is skipped")
        return
    models = [("stories260K", STORIES, ("f32", "q8_0")), ("llama2-tok", llama2, ("f32", "q8_0"))]
    llama3 = os.path.join(WORK, "llama3-tok")
    if os.path.exists(llama3):
        models.append(("llama3-tok", llama3, ("f32",)))
    for label, model, types in models:
        for type_ in types:
            ours = os.path.join(WORK, f"{label}-{type_}.gguf")
            if not os.path.exists(ours):
                export(model, ours, type_)
            theirs = os.path.join(WORK, f"{label}-{type_}.converter.gguf")
            run([sys.executable, os.path.join(SRC, "tests", "io", "convert_hf_to_gguf_shim.py"), convert, model,
                 "--outtype", type_, "--outfile", theirs])
            if open(ours, "rb").read() == open(theirs, "rb").read():
                print(f"convert_hf_to_gguf.py {label:12} {type_:5}: byte-identical file")
                continue
            a, b = kv_fields(ours), kv_fields(theirs)
            differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            tdiff, _ = same_tensors(ours, theirs)
            allowed = ["tokenizer.ggml.scores"] if label == "stories260K" else []
            check(differ == allowed and not tdiff,
                  f"{label} {type_}: vs convert_hf_to_gguf.py: keys {differ}, tensors {tdiff[:5]}")
            print(f"convert_hf_to_gguf.py {label:12} {type_:5}: identical but for {differ or 'the layout'}"
                  f"{'; tensors differ' if tdiff else ''}")


def main():
    os.makedirs(WORK, exist_ok=True)
    llama2 = os.path.join(WORK, "llama2-tok")
    run([sys.executable, os.path.join(SRC, "tests", "io", "make_tiny_llama.py"), llama2, "--tokenizer",
         os.path.join(SRC, "tests", "data", "tokenizer", "llama2"), "--hidden", "256",
         "--intermediate", "512"])

    # 1. llama-quantize --pure against lathe's quantizers.
    for label, model in (("stories260K", STORIES), ("llama2-tok", llama2)):
        f32 = os.path.join(WORK, f"{label}-f32.gguf")
        export(model, f32, "f32")
        for ours, theirs in (("q8_0", "Q8_0"), ("q4_0", "Q4_0"), ("q4_k", "Q4_K")):
            mine = os.path.join(WORK, f"{label}-{ours}.gguf")
            ref = os.path.join(WORK, f"{label}-{ours}.llama-quantize.gguf")
            export(model, mine, ours)
            run([os.path.join(BIN, "llama-quantize"), "--pure", f32, ref, theirs, "2"])
            diff, types = same_tensors(mine, ref)
            check(not diff, f"{label} {ours}: lathe vs llama-quantize --pure: {diff[:5]}")
            print(f"{label:12} {ours:5} tensors ({', '.join(types)}) byte-identical to llama-quantize --pure: "
                  f"{'yes' if not diff else 'NO'}")

    # 2. Greedy generation from BOS.
    gen = os.path.join(WORK, "lathe_greedy.jsonl")
    run([LATHE, "generate", "--model", STORIES, "--max-new-tokens", "100", "--temperature", "0",
         "--threads", "2", "--output", gen])
    want = json.loads(open(gen).readline())["tokens"]
    expected = json.load(open(os.path.join(STORIES, "expected_greedy_ids.json")))["generated_ids"][:100]
    check(want == expected, "lathe generate differs from expected_greedy_ids.json")
    for type_ in ("f32", "f16", "q8_0", "q4_0", "q4_k"):
        path = os.path.join(WORK, f"stories260K-{type_}.gguf")
        if not os.path.exists(path):
            export(STORIES, path, type_)
        server = Server(path)
        try:
            got = server.greedy([1], 100)
            if type_ == "f16":
                texts_ok = [(t, server.tokenize(t), lathe_ids(STORIES, t)) for t in TEXTS]
        finally:
            server.close()
        same = sum(a == b for a, b in zip(got, want))
        prefix = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        print(f"llama-server stories260K {type_:5}: {same}/{len(want)} greedy tokens equal lathe generate's "
              f"(first {prefix} identical)")
        if type_ in ("f32", "f16"):
            check(got == want, f"stories260K {type_}: llama.cpp's greedy tokens differ from lathe's")

    # 3. Tokenization.
    for text, theirs, ours in texts_ok:
        check(theirs == ours, f"stories260K /tokenize {text!r}: llama.cpp {theirs} vs lathe {ours}")
    print(f"llama-server /tokenize equals lathe tokenize on stories260K: {sum(a == b for _, a, b in texts_ok)}/{len(texts_ok)} texts")
    llama3_tok = os.path.join(SHARED, "tokenizers", "llama3")
    if os.path.exists(os.path.join(llama3_tok, "tokenizer.json")):
        llama3 = os.path.join(WORK, "llama3-tok")
        run([sys.executable, os.path.join(SRC, "tests", "io", "make_tiny_llama.py"), llama3, "--tokenizer",
             llama3_tok, "--hidden", "64", "--intermediate", "128", "--heads", "2", "--kv-heads", "1",
             "--llama3-rope", "--untied"])
        path = os.path.join(WORK, "llama3-tok-f16.gguf")
        export(llama3, path, "f16")
        server = Server(path)
        try:
            pairs = [(t, server.tokenize(t), lathe_ids(llama3, t)) for t in TEXTS + ["Việt Nam 12345 <|eot_id|>"]]
            n = len(server.greedy([128000], 8))
        finally:
            server.close()
        for text, theirs, ours in pairs:
            check(theirs == ours, f"llama3 /tokenize {text!r}: llama.cpp {theirs} vs lathe {ours}")
        print(f"llama-server /tokenize equals lathe tokenize on the Llama 3 tokenizer model: "
              f"{sum(a == b for _, a, b in pairs)}/{len(pairs)} texts; it generated {n} tokens")
    else:
        print(f"note: no Llama 3 tokenizer at {llama3_tok} (set LATHE_SHARED_DATA); its check is skipped")
    converter_check(llama2)
    print(f"{len(failures)} failed" if failures else "all llama.cpp checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
