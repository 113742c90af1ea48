"""`lathe serve` driven by OpenAI's official Python client (the pin in tests/requirements.txt)
on stories260K: completions, chat, streaming, logprobs, errors, limits and a SIGTERM drain.

Usage: .venv/bin/python tests/serve/openai_client.py LATHE SOURCE_DIR

Checks, each against an independent answer:
  - greedy completions equal `lathe generate`'s text; batched concurrently they equal
    the same requests sent one at a time;
  - streamed text equals non-streamed text (greedy, and seeded sampling with n=2);
  - echo + logprobs: the prompt's log-probabilities equal a log-softmax of the PyTorch
    reference Llama (tests/reference/llama_ref.py) within 1e-4, the first one null;
  - a LoRA adapter picked by `model` equals `lathe generate --adapter`;
  - bad fields get 400 naming the field, a missing or wrong key 401, an oversized body 413,
    too many at once 429 with Retry-After; garbage never takes the server down;
  - SIGTERM lets a running stream finish, then the server exits 0.
Prints one line per check and "N passed, M failed".
"""
import concurrent.futures as cf
import json
import random
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import openai

LATHE, SRC = sys.argv[1], sys.argv[2]
MODEL = os.path.join(SRC, "examples", "stories260K")
# The adapters' shape, as tests/reference/llama_ref.py's LoRA case.
LORA = {"r": 4, "lora_alpha": 8.0,
        "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}

KEY = "test-key-123"
M = "stories260K"  # the served model's id: its folder's name
results = []


def check(name):
    def wrap(f):
        try:
            f()
            results.append((name, None))
            print(f"PASS {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - each check reports its own failure
            results.append((name, e))
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        return f
    return wrap


class Server:
    """A `lathe serve` process on a free port; its stderr goes to a log file."""

    def __init__(self, *args):
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen([LATHE, "serve", "--model", MODEL, "--port", "0",
                                      "--threads", "1", *args],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 120
        self.url = None
        while time.time() < deadline and self.proc.poll() is None:
            text = open(self.log.name).read()
            m = re.search(r"listening on (http://[0-9.:]+)", text)
            if m and "ready at" in text:
                self.url = m.group(1)
                break
            time.sleep(0.05)
        if not self.url:
            raise RuntimeError("lathe serve did not start:\n" + open(self.log.name).read())

    def client(self, key=KEY):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=300)

    def raw(self, path, body=None, key=KEY, method=None, headers=None):
        """(status, headers, parsed JSON or text) of a plain HTTP request."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, hdrs, text = r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            status, hdrs, text = e.code, dict(e.headers), e.read().decode()
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        return self.proc.returncode


def generate_cli(prompt, n, adapter=None):
    """`lathe generate`'s greedy completion text (stdout is the prompt, then the text)."""
    cmd = [LATHE, "generate", "--model", MODEL, "--prompt", prompt, "--max-new-tokens", str(n),
           "--temperature", "0", "--threads", "1"]
    if adapter:
        cmd += ["--adapter", adapter]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert out.startswith(prompt) and out.endswith("\n"), out
    return out[len(prompt):-1]


def error_of(call):
    """(status, error object) of a call that must fail."""
    try:
        call()
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        return e.status_code, body.get("error", body)
    raise AssertionError("the request succeeded")


PROMPTS = ["Once upon a time", "The little dog", "Lily wanted to", "One day, Tom went"]

srv = Server("--api-key", KEY, "--max-batch", "4", "--max-queue", "2", "--max-body", "65536")
client = srv.client()


@check("health, models, tokenize and detokenize")
def _():
    status, _, body = srv.raw("/health", key=None)
    assert status == 200 and body == {"status": "ok"}, (status, body)
    ids = [m.id for m in client.models.list().data]
    assert ids == ["stories260K"], ids
    status, _, tok = srv.raw("/tokenize", {"prompt": "Once upon a time", "add_special_tokens": False})
    assert status == 200 and tok["count"] == len(tok["tokens"]) > 0, tok
    status, _, text = srv.raw("/detokenize", {"tokens": tok["tokens"]})
    assert text["prompt"] == "Once upon a time", text
    status, _, info = srv.raw("/tokenizer_info")
    assert info["eos_token"] == "</s>" and info["bos_token"] == "<s>", info


@check("greedy completions equal lathe generate")
def _():
    for p in PROMPTS:
        r = client.completions.create(model="stories260K", prompt=p, max_tokens=40, temperature=0)
        want = generate_cli(p, 40)
        assert r.choices[0].text == want, (p, r.choices[0].text, want)
        assert r.usage.completion_tokens <= 40 and r.usage.prompt_tokens > 0


@check("greedy output does not depend on batching")
def _():
    # 6 at once: the server's 4 slots and 2 queue places.
    prompts = PROMPTS + ["Once", "The sun was"]
    one_by_one = [client.completions.create(model=M, prompt=p, max_tokens=60, temperature=0).choices[0].text
                  for p in prompts]
    with cf.ThreadPoolExecutor(len(prompts)) as ex:
        together = list(ex.map(lambda p: client.completions.create(
            model=M, prompt=p, max_tokens=60, temperature=0).choices[0].text, prompts))
    assert together == one_by_one, (together, one_by_one)
    # One request with several prompts is batched as well.
    r = client.completions.create(model=M, prompt=PROMPTS, max_tokens=60, temperature=0)
    assert [c.text for c in sorted(r.choices, key=lambda c: c.index)] == one_by_one[:len(PROMPTS)]


def streamed(**kw):
    chunks = list(client.completions.create(model=M, stream=True, **kw))
    texts, reasons = {}, {}
    for c in chunks:
        for ch in c.choices:
            texts[ch.index] = texts.get(ch.index, "") + ch.text
            if ch.finish_reason:
                assert ch.index not in reasons, f"choice {ch.index} finished twice"
                reasons[ch.index] = ch.finish_reason
    return texts, reasons, chunks


@check("streamed text equals non-streamed text")
def _():
    for kw in [dict(prompt="Once upon a time", max_tokens=50, temperature=0),
               dict(prompt="The little dog", max_tokens=50, temperature=0.9, top_p=0.95, seed=7, n=2),
               dict(prompt="Lily", max_tokens=50, temperature=0, stop=[" the", "."])]:
        whole = client.completions.create(model=M, **kw)
        texts, reasons, _ = streamed(**kw)
        for c in whole.choices:
            assert texts[c.index] == c.text, (kw, texts[c.index], c.text)
            assert reasons[c.index] == c.finish_reason, (reasons, c.finish_reason)
    # A stop string ends the text before it.
    r = client.completions.create(model=M, prompt="Lily", max_tokens=50, temperature=0, stop=["."])
    full = client.completions.create(model=M, prompt="Lily", max_tokens=50, temperature=0).choices[0].text
    assert r.choices[0].finish_reason == "stop" and full.startswith(r.choices[0].text + "."), \
        (r.choices[0].text, full)
    # stream_options.include_usage: a last chunk with the usage and no choices.
    _, _, chunks = streamed(prompt="Once", max_tokens=5, temperature=0,
                            stream_options={"include_usage": True})
    assert chunks[-1].usage.completion_tokens == 5 and not chunks[-1].choices


@check("seeded sampling is reproducible")
def _():
    kw = dict(prompt="Once upon a time", max_tokens=30, temperature=1.0, seed=42, n=3)
    a = [c.text for c in client.completions.create(model=M, **kw).choices]
    b = [c.text for c in client.completions.create(model=M, **kw).choices]
    assert a == b and len(set(a)) > 1, a


REFERENCE = """
import json, sys
import torch
import torch.nn.functional as F
sys.path.insert(0, sys.argv[1] + "/tests/reference")
from llama_ref import Llama, load_safetensors
model_dir, ids = sys.argv[2], json.loads(sys.argv[3])
model = Llama(json.load(open(model_dir + "/config.json")))
model.load_state_dict(load_safetensors(model_dir + "/model.safetensors"))
model = model.double().eval()
with torch.no_grad():
    lp = F.log_softmax(model(torch.tensor([ids]))[0], dim=-1)
print(json.dumps([float(lp[t - 1, ids[t]]) for t in range(1, len(ids))]))
"""


def reference_logprobs(ids):
    """log P(ids[t] | ids[:t]) for t >= 1 from the PyTorch reference Llama, in float64, run
    by Debian's python3 and torch, as the other references of the suite are."""
    out = subprocess.run(["/usr/bin/python3", "-c", REFERENCE, SRC, MODEL, json.dumps(ids)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@check("echo + logprobs: prompt log-probabilities equal the PyTorch reference")
def _():
    _, _, tok = srv.raw("/tokenize", {"prompt": "Lily and Ben went to the park. They played"})
    ids = tok["tokens"]
    want = reference_logprobs(ids)
    # As lm-eval's local-completions asks: token ids, echo, max_tokens 0 (and 1), logprobs.
    for max_tokens in (0, 1):
        r = client.completions.create(model=M, prompt=ids, max_tokens=max_tokens, echo=True, logprobs=1,
                                      temperature=0)
        lp = r.choices[0].logprobs
        assert len(lp.tokens) == len(ids) + max_tokens, (len(lp.tokens), len(ids))
        assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
        worst = max(abs(a - b) for a, b in zip(lp.token_logprobs[1:len(ids)], want))
        assert worst < 1e-4, worst
        for t in range(1, len(ids) + max_tokens):
            assert lp.token_logprobs[t] <= max(lp.top_logprobs[t].values()) + 1e-6
        assert r.choices[0].text.startswith("Lily and Ben went to the park. They played")
        assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)


@check("chat completions, streamed and with logprobs")
def _():
    msgs = [{"role": "user", "content": "Tell me a story about a cat."}]
    r = client.chat.completions.create(model="stories260K", messages=msgs, max_tokens=30,
                                       temperature=0, logprobs=True, top_logprobs=2)
    c = r.choices[0]
    assert c.message.role == "assistant" and c.message.content, c
    assert len(c.logprobs.content) == r.usage.completion_tokens
    assert all(len(e.top_logprobs) == 2 for e in c.logprobs.content)
    text, role, reason = "", None, None
    for chunk in client.chat.completions.create(model=M, messages=msgs, max_tokens=30, temperature=0,
                                                stream=True):
        d = chunk.choices[0].delta
        role = role or d.role
        text += d.content or ""
        reason = chunk.choices[0].finish_reason or reason
    assert role == "assistant" and text == c.message.content and reason == c.finish_reason, \
        (text, c.message.content)


@check("bad fields get 400 naming the field")
def _():
    cases = [
        (dict(prompt="x", max_tokens=-1), "max_tokens"),
        (dict(prompt="x", temperature=-1), "temperature"),
        (dict(prompt="x", top_p=1.5), "top_p"),
        (dict(prompt="x", n=0), "n"),
        (dict(prompt="x", logprobs=99), "logprobs"),
        (dict(prompt=[1, 10**6]), "prompt"),
        (dict(prompt="x", stop=[1, 2]), "stop"),
        (dict(prompt="x", suffix="y"), "suffix"),
        (dict(prompt="x", extra_body={"frobnicate": True}), "frobnicate"),
        (dict(prompt="x" * 3000, max_tokens=1), "prompt"),  # longer than the 512-token context
    ]
    for kw, param in cases:
        status, err = error_of(lambda: client.completions.create(model="stories260K", **kw))
        assert status == 400 and err["param"] == param, (kw, status, err)
        assert err["type"] == "invalid_request_error" and err["message"], err
    status, err = error_of(lambda: client.chat.completions.create(
        model=M, messages=[{"role": "robot", "content": "x"}]))
    assert status == 400 and err["param"] == "messages[0].role", err
    status, err = error_of(lambda: client.completions.create(model="gpt-9", prompt="x"))
    assert status == 404 and err["param"] == "model" and err["code"] == "model_not_found", err


@check("a missing or wrong API key gets 401; /health stays open")
def _():
    status, err = error_of(lambda: srv.client("wrong").completions.create(model=M, prompt="x", max_tokens=1))
    assert status == 401 and err["code"] == "invalid_api_key", err
    status, _, body = srv.raw("/v1/models", key=None)
    assert status == 401 and body["error"]["code"] == "invalid_api_key", body
    assert srv.raw("/health", key=None)[0] == 200


@check("an oversized body gets 413")
def _():
    status, _, body = srv.raw("/v1/completions", {"prompt": "x" * 70000, "max_tokens": 1})
    assert status == 413 and body["error"]["code"] == "request_too_large", (status, body)


@check("too many at once: 429 with Retry-After, the rest answered")
def _():
    # 4 slots + 2 queued = 6 sequences; 12 long requests at once overflow it.
    def one(_):
        try:
            r = client.with_options(max_retries=0).completions.with_raw_response.create(
                model=M, prompt="Once", max_tokens=200, temperature=0, extra_body={"ignore_eos": True})
            return 200, r.parse().usage.completion_tokens, None
        except openai.RateLimitError as e:
            return 429, 0, e.response.headers.get("retry-after")
    with cf.ThreadPoolExecutor(12) as ex:
        outcomes = list(ex.map(one, range(12)))
    codes = [o[0] for o in outcomes]
    assert codes.count(429) >= 1 and codes.count(200) >= 6, codes
    assert all(o[1] == 200 for o in outcomes if o[0] == 200), outcomes
    assert all(o[2] == "1" for o in outcomes if o[0] == 429), outcomes


@check("garbage never takes the server down")
def _():
    bodies = [b"", b"not json", b"[1,2]", b'{"prompt": ', b'{"prompt": "\xff\xfe"}', b"[" * 60000,
              b'{"prompt": "x", "max_tokens": 1e400}', b'{"prompt": [[[[1]]]]}',
              b'{"prompt": "x", "n": 18446744073709551616}', b'{"prompt": null}',
              json.dumps({"prompt": [[]] * 5}).encode(), b'{"messages": [{"role": "user"}]}']
    for path in ["/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"]:
        for b in bodies:
            status, _, body = srv.raw(path, b)
            assert status in (400, 413), (path, b[:40], status, body)
            assert isinstance(body, dict) and body["error"]["message"], body
    # Raw bytes that are not HTTP at all.
    with socket.create_connection(srv.url.replace("http://", "").split(":")) as s:
        s.sendall(b"\x00\x01GARBAGE\r\n\r\n")
        s.settimeout(10)
        try:
            s.recv(1000)
        except OSError:
            pass
    status, _, body = srv.raw("/v1/nothing")
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert srv.raw("/health")[0] == 200 and srv.proc.poll() is None


@check("/metrics is Prometheus text with requests, tokens, queue and latency")
def _():
    status, _, text = srv.raw("/metrics")
    assert status == 200, status
    for name in ["lathe_requests_total{endpoint=\"/v1/completions\",status=\"200\"}",
                 "lathe_generation_tokens_total", "lathe_sequences_waiting",
                 "lathe_request_duration_seconds_bucket", "lathe_time_to_first_token_seconds_count",
                 "lathe_requests_total{endpoint=\"/v1/completions\",status=\"429\"}"]:
        assert name in text, name
    for line in text.splitlines():
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? [-+0-9.e]+$", line), line


def write_safetensors(path, tensors):
    """F32 safetensors of {name: (shape, values)}, written by hand (the format is a JSON
    header and raw little-endian data)."""
    header, blobs, offset = {}, [], 0
    for name, (shape, values) in tensors.items():
        data = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_adapter(folder, seed):
    """A PEFT adapter with random A and B, written in Python, independently of lathe."""
    gen = random.Random(seed)
    cfg = json.load(open(os.path.join(MODEL, "config.json")))
    C, I = cfg["hidden_size"], cfg["intermediate_size"]
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    shapes = {"q_proj": (H * D, C), "k_proj": (KV * D, C), "v_proj": (KV * D, C),
              "o_proj": (C, H * D), "gate_proj": (I, C), "up_proj": (I, C), "down_proj": (C, I)}
    tensors = {}
    for i in range(cfg["num_hidden_layers"]):
        for proj in LORA["targets"]:
            parent = "mlp" if proj in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            out, inp = shapes[proj]
            p = f"base_model.model.model.layers.{i}.{parent}.{proj}"
            tensors[p + ".lora_A.weight"] = ((LORA["r"], inp), [gen.gauss(0, 0.3) for _ in range(LORA["r"] * inp)])
            tensors[p + ".lora_B.weight"] = ((out, LORA["r"]), [gen.gauss(0, 0.3) for _ in range(out * LORA["r"])])
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "adapter_model.safetensors"), tensors)
    json.dump({"peft_type": "LORA", "r": LORA["r"], "lora_alpha": LORA["lora_alpha"],
               "lora_dropout": 0.0, "target_modules": LORA["targets"], "bias": "none"},
              open(os.path.join(folder, "adapter_config.json"), "w"))
    return folder


@check("LoRA adapters chosen by model equal lathe generate --adapter, in one batch")
def _():
    tmp = tempfile.mkdtemp()
    a1, a2 = write_adapter(tmp + "/a1", 1), write_adapter(tmp + "/a2", 2)
    lora = Server("--lora", f"one={a1}", "--lora", f"two={a2}")
    try:
        c = lora.client()
        assert [m.id for m in c.models.list().data] == ["stories260K", "one", "two"]
        jobs = [(name, p) for p in PROMPTS[:2] for name in ("stories260K", "one", "two")]
        with cf.ThreadPoolExecutor(len(jobs)) as ex:
            got = list(ex.map(lambda j: c.completions.create(
                model=j[0], prompt=j[1], max_tokens=25, temperature=0).choices[0].text, jobs))
        for (name, p), text in zip(jobs, got):
            want = generate_cli(p, 25, {"one": a1, "two": a2}.get(name))
            assert text == want, (name, p, text, want)
        assert got[0] != got[1]
    finally:
        assert lora.stop() == 0


@check("SIGTERM drains a running stream, then exits 0")
def _():
    s = Server()
    c = s.client()
    got = {}

    def run():
        n = 0
        for chunk in c.completions.create(model=M, prompt="Once", max_tokens=300, temperature=0,
                                          stream=True, extra_body={"ignore_eos": True}):
            n += len(chunk.choices)
            got["reason"] = chunk.choices[0].finish_reason or got.get("reason")
        got["usage"] = c.completions.create  # reached the end of the stream
    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    status, _, body = s.raw("/health", key=None) if s.proc.poll() is None else (503, {}, {})
    assert status == 503, (status, body)
    t.join(timeout=120)
    assert got.get("reason") == "length" and "usage" in got, got
    assert s.proc.wait(timeout=60) == 0, open(s.log.name).read()


assert srv.stop() == 0, open(srv.log.name).read()
failed = sum(1 for _, e in results if e)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
