#!/usr/bin/python3
"""A bounded load test of an OpenAI-compatible server on this machine (loopback only):
first one client alone (batch-1 latency), then N clients sending streamed completions back
to back for S seconds. Standard library only, so any python3 runs it.

Usage: serve_load.py --url http://127.0.0.1:PORT --model NAME [--pid SERVER_PID]
                     [--clients 32] [--seconds 60] [--prompt-words 48] [--max-tokens 64]

Prints a table and, last, one JSON line: requests, errors by status, completion tokens/s,
requests/s, latency and time-to-first-token p50/p99 (s), the batch-1 latency and tokens/s,
and the server's peak RSS (VmHWM of --pid) in MiB. With --pid it also samples the server's
RSS once a second under load, and reports it a quarter of the way in and at the end: a
server whose memory is flat gains nothing between the two.
"""
import argparse
import http.client
import json
import random
import statistics
import threading
import time
import urllib.parse

WORDS = ("the a little girl boy dog cat park ball tree sun day happy big red went saw played "
         "with her his and to in on was were they she he it said one time once upon").split()


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def one_request(host, port, model, prompt, max_tokens, key):
    """A streamed completion; returns (status, latency s, ttft s, completion tokens)."""
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0, "stream": True, "ignore_eos": True,
                       "stream_options": {"include_usage": True}})
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=600)
    try:
        conn.request("POST", "/v1/completions", body, headers)
        r = conn.getresponse()
        if r.status != 200:
            r.read()
            return r.status, time.perf_counter() - t0, None, 0
        ttft, tokens, chunks = None, 0, 0
        for raw in r:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                chunks += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
        # Without a usage chunk (servers that stream one token per chunk), the chunks.
        return 200, time.perf_counter() - t0, ttft, tokens or chunks
    except OSError as e:
        return f"error: {type(e).__name__}", time.perf_counter() - t0, None, 0
    finally:
        conn.close()


def status_mib(pid, field):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib(pid):
    return status_mib(pid, "VmHWM")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--api-key", default="")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--prompt-words", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    assert u.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
    rng = random.Random(1)

    def prompt():
        return " ".join(rng.choice(WORDS) for _ in range(a.prompt_words))

    # Batch-1: one client alone (after one warm-up request).
    one_request(u.hostname, u.port, a.model, prompt(), a.max_tokens, a.api_key)
    alone = [one_request(u.hostname, u.port, a.model, prompt(), a.max_tokens, a.api_key)
             for _ in range(5)]
    b1_latency = statistics.median(r[1] for r in alone)
    b1_rate = statistics.median(r[3] / r[1] for r in alone if r[1] > 0)

    results, lock = [], threading.Lock()
    deadline = time.perf_counter() + a.seconds

    def client(seed):
        local = random.Random(seed)
        while time.perf_counter() < deadline:
            p = " ".join(local.choice(WORDS) for _ in range(a.prompt_words))
            r = one_request(u.hostname, u.port, a.model, p, a.max_tokens, a.api_key)
            with lock:
                results.append(r)
            if r[0] != 200:
                time.sleep(0.5)  # a refused request (429) waits before the next

    rss = []  # (seconds into the load, MiB)

    def sample_rss():
        while time.perf_counter() < deadline:
            rss.append((time.perf_counter() - t0, status_mib(a.pid, "VmRSS")))
            time.sleep(1.0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    if a.pid:
        threads.append(threading.Thread(target=sample_rss))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    # A quarter of the way in every client has run requests, so the memory a server keeps
    # for its batch is in place; what it gains after that is growth under load.
    rss = [(t, m) for t, m in rss if m is not None]
    quarter = next((m for t, m in rss if t >= a.seconds / 4), None)
    rss_end = rss[-1][1] if rss else None

    ok = [r for r in results if r[0] == 200]
    errors = {}
    for r in results:
        if r[0] != 200:
            errors[str(r[0])] = errors.get(str(r[0]), 0) + 1
    tokens = sum(r[3] for r in ok)
    out = {
        "label": a.label, "clients": a.clients, "seconds": round(wall, 1),
        "prompt_words": a.prompt_words, "max_tokens": a.max_tokens,
        "requests": len(results), "ok": len(ok), "errors": errors,
        "tokens_per_s": round(tokens / wall, 1), "requests_per_s": round(len(ok) / wall, 2),
        "latency_p50_s": percentile([r[1] for r in ok], 50),
        "latency_p99_s": percentile([r[1] for r in ok], 99),
        "ttft_p50_s": percentile([r[2] for r in ok if r[2] is not None], 50),
        "ttft_p99_s": percentile([r[2] for r in ok if r[2] is not None], 99),
        "batch1_latency_s": round(b1_latency, 3), "batch1_tokens_per_s": round(b1_rate, 1),
        "peak_rss_mib": peak_rss_mib(a.pid) if a.pid else None,
        "rss_quarter_mib": quarter, "rss_end_mib": rss_end,
        "rss_growth_mib": round(rss_end - quarter, 1) if quarter and rss_end else None,
    }
    for k in ("latency_p50_s", "latency_p99_s", "ttft_p50_s", "ttft_p99_s"):
        if out[k] is not None:
            out[k] = round(out[k], 3)
    print(f"{a.label}: {a.clients} clients x {wall:.0f} s: {len(ok)} requests ok, errors {errors}; "
          f"{out['tokens_per_s']} tok/s, latency p50 {out['latency_p50_s']} s p99 "
          f"{out['latency_p99_s']} s, TTFT p50 {out['ttft_p50_s']} s p99 {out['ttft_p99_s']} s; "
          f"batch-1 {out['batch1_latency_s']} s ({out['batch1_tokens_per_s']} tok/s); "
          f"peak RSS {out['peak_rss_mib']} MiB, RSS {out['rss_quarter_mib']} MiB a quarter in "
          f"and {out['rss_end_mib']} MiB at the end", flush=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
