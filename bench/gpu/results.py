#!/usr/bin/env python3
"""The GPU check's results file and summary table (scripts/gpu_check.sh).

  results.py record FILE NAME STATUS [--rc N] [--stdout F] [--stderr F] [--note TEXT]
      appends {"check", "status", "rc", "note", "result"} to FILE (JSON lines); result is
      the last JSON object line of F (a bench's output), if any. STATUS "ran": ok when
      rc is 0 and there is a result, else fail (noting stderr's last line).
  results.py gtest FILE JSON_REPORT [--rc N]
      one line per group of CUDA tests (kernels, attention, model, matmul, other) from
      gtest's --gtest_output=json report: passed, failed, skipped.
  results.py summary FILE
      the table: each acceptance check, its numbers, the threshold, PASS/FAIL/NOT RUN.

Standard library only: it runs wherever python3 does.
"""
import json
import sys

GROUPS = [("CudaKernels", "kernels"), ("CudaAttention", "attention"), ("CudaModel", "model"),
          ("CudaStories260K", "model"), ("CudaTrainCli", "model"), ("CudaBackend", "matmul")]


def last_json(path):
    try:
        with open(path, errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip().startswith("{")]
    except OSError:
        return None
    for ln in reversed(lines):
        try:
            return json.loads(ln)
        except ValueError:
            continue
    return None


def attention_rates(path, shape):
    """bench_cuda_kernels' attention_fwd_<shape> and attention_bwd_<shape> lines."""
    got = {}
    try:
        with open(path, errors="replace") as f:
            for ln in f:
                try:
                    j = json.loads(ln)
                except ValueError:
                    continue
                for d in ("fwd", "bwd"):
                    if j.get("name") == f"attention_{d}_{shape}":
                        got[d + "_tflops"], got[d + "_ms"] = j["tflops"], j["ms"]
    except OSError:
        return None
    return got if len(got) == 4 else None


def last_line(path):
    """The last non-empty line of a log, cut to 160 characters: why a step failed."""
    try:
        with open(path, errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:160] if lines else ""


def append(path, row):
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def opt(argv, name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def record(argv):
    path, name, status = argv[0], argv[1], argv[2]
    rc = opt(argv, "--rc")
    out = opt(argv, "--stdout")
    result = last_json(out) if out else None
    if name == "lathe_attention" and out:
        result = attention_rates(out, opt(argv, "--shape", "1x4096_h32_kv8_d128"))
    if status == "ran":
        status = "ok" if rc == "0" and result is not None else "fail"
    note = opt(argv, "--note", "")
    if rc == "124":
        note = (note + " " if note else "") + "timed out"
    elif status == "fail" and opt(argv, "--stderr"):
        note = (note + ": " if note else "") + last_line(opt(argv, "--stderr"))
    append(path, {"check": name, "status": status, "rc": None if rc is None else int(rc),
                  "note": note, "result": result})


def gtest(argv):
    path, report = argv[0], argv[1]
    rc = opt(argv, "--rc")
    try:
        with open(report) as f:
            suites = json.load(f).get("testsuites", [])
    except (OSError, ValueError):
        append(path, {"check": "cuda_tests", "status": "fail", "rc": rc and int(rc),
                      "note": "no gtest report (crashed or timed out)", "result": None})
        return
    counts = {}
    for s in suites:
        group = "other"
        for prefix, g in GROUPS:
            if s["name"].split("/")[-1].startswith(prefix):
                group = g
        c = counts.setdefault(group, {"passed": 0, "failed": 0, "skipped": 0, "failures": []})
        for t in s.get("testsuite", []):
            name = s["name"] + "." + t["name"]
            if t.get("failures"):
                c["failed"] += 1
                c["failures"].append(name)
            elif t.get("result") == "SKIPPED" or t.get("status") == "NOTRUN":
                c["skipped"] += 1
            else:
                c["passed"] += 1
    for group, c in counts.items():
        status = "fail" if c["failed"] else ("skip" if c["passed"] == 0 else "ok")
        append(path, {"check": "cuda_tests_" + group, "status": status, "rc": rc and int(rc),
                      "note": "", "result": c})
    if rc not in (None, "0") and not any(c["failed"] for c in counts.values()):
        append(path, {"check": "cuda_tests", "status": "fail", "rc": int(rc),
                      "note": "exit code " + rc + (" (timed out)" if rc == "124" else ""),
                      "result": None})


def load(path):
    rows = {}
    try:
        with open(path) as f:
            for ln in f:
                try:
                    r = json.loads(ln)
                except ValueError:
                    continue
                rows[r["check"]] = r
    except OSError:
        pass
    return rows


def fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def summary(argv):
    rows = load(argv[0])
    table = []

    def res(name):
        r = rows.get(name)
        return r["result"] if r and r["status"] == "ok" and r["result"] else None

    def why(*names):
        notes = []
        for n in names:
            r = rows.get(n)
            if r is None:
                notes.append(n + " missing")
            elif r["status"] != "ok":
                notes.append(f"{n}: {r['status']} {r.get('note') or ''}".strip())
        return "; ".join(notes)

    def add(check, numbers, threshold, verdict):
        table.append((check, numbers, threshold, verdict))

    def verdict(ok):
        return "PASS" if ok else "FAIL"

    def missing(lathe_name):
        # lathe ran and failed (crash, timeout, no JSON): FAIL; else a peer or the GPU
        # was missing and nothing could be compared: NOT RUN.
        r = rows.get(lathe_name)
        return "FAIL" if r and r["status"] == "fail" else "NOT RUN"

    r = rows.get("nvidia-smi")
    add("GPU", (r or {}).get("note") or "-", "-",
        "ok" if r and r["status"] == "ok" else "NOT RUN")
    for name in sorted(n for n in rows if n.startswith("cuda_tests")):
        r = rows[name]
        c = r["result"] or {}
        nums = (f"{c.get('passed', 0)} passed, {c.get('failed', 0)} failed, "
                f"{c.get('skipped', 0)} skipped") if c else (r.get("note") or "")
        if c.get("failures"):
            nums += " (" + ", ".join(c["failures"][:4]) + ")"
        v = {"ok": "PASS", "fail": "FAIL", "skip": "SKIP"}.get(r["status"], "NOT RUN")
        add(name.replace("_", " "), nums, "all pass", v)
    if not any(n.startswith("cuda_tests") for n in rows):
        add("cuda tests", "-", "all pass", "NOT RUN")

    p = res("lathe_peak")
    add("lathe matmul peak (cuBLASLt)",
        f"fp32 {fmt(p and p.get('matmul_peak_gflops', 0) / 1e3)} TFLOP/s, "
        f"bf16 {fmt(p and p.get('matmul_peak_gflops_bf16', 0) / 1e3)} TFLOP/s" if p
        else why("lathe_peak"), "-", "ok" if p else missing("lathe_peak"))

    def pair(label, lathe_name, hf_name, min_speedup, mfu_min=None, mem_max=None):
        a, b = res(lathe_name), res(hf_name)
        if a is None or b is None:
            add(label, why(lathe_name, hf_name), f"tokens/s >= {min_speedup}x HF",
                missing(lathe_name))
            return
        sp = a["tokens_per_s"] / b["tokens_per_s"]
        add(label + ": tokens/s",
            f"lathe {a['tokens_per_s']:.0f}, HF {b['tokens_per_s']:.0f} ({sp:.2f}x)",
            f">= {min_speedup}x HF", verdict(sp >= min_speedup))
        if mfu_min is not None:
            m = a.get("mfu_datasheet")
            add(label + ": MFU of 989",
                f"lathe {fmt(m and 100 * m, '.1f')}%, HF {fmt(100 * b['mfu_datasheet'], '.1f')}%"
                f" (lathe vs measured peak {fmt(100 * a['mfu'], '.1f')}%)",
                f">= {100 * mfu_min:.0f}%", verdict(m is not None and m >= mfu_min))
        if mem_max is not None:
            ma, mb = a.get("peak_gpu_memory_mb"), b["peak_gpu_memory_mb"]
            add(label + ": peak memory",
                f"lathe {fmt(ma, '.0f')} MiB, HF {mb:.0f} MiB "
                f"({fmt(ma and ma / mb, '.2f')}x)",
                f"<= {mem_max}x HF", verdict(ma is not None and ma <= mem_max * mb))

    pair("1B full fine-tune", "lathe_1b_full", "hf_1b_full", 1.5, mfu_min=0.45, mem_max=0.7)
    pair("1B LoRA r=16", "lathe_1b_lora", "hf_1b_lora", 2.0)
    q = res("lathe_1b_qlora")
    add("1B QLoRA r=16 (lathe only)",
        f"{q['tokens_per_s']:.0f} tokens/s, {fmt(q.get('peak_gpu_memory_mb'), '.0f')} MiB"
        if q else why("lathe_1b_qlora"), "measured", "ok" if q else missing("lathe_1b_qlora"))
    a, b = res("lathe_8b_lora"), res("hf_8b_lora")
    if a and b:
        add("8B LoRA r=16, checkpointing",
            f"lathe {a['tokens_per_s']:.0f} tok/s {fmt(a.get('peak_gpu_memory_mb'), '.0f')} MiB; "
            f"HF {b['tokens_per_s']:.0f} tok/s {b['peak_gpu_memory_mb']:.0f} MiB "
            f"({a['tokens_per_s'] / b['tokens_per_s']:.2f}x)", ">= 2x HF+PEFT",
            verdict(a["tokens_per_s"] >= 2 * b["tokens_per_s"]))
    else:
        add("8B LoRA r=16, checkpointing", why("lathe_8b_lora", "hf_8b_lora"), ">= 2x HF+PEFT",
            missing("lathe_8b_lora"))
    k, s = res("lathe_attention"), res("sdpa_attention")
    for d in ("fwd", "bwd"):
        lt = k and k.get(d + "_tflops")
        if lt is None or s is None:
            add(f"attention {d} 1x4096 h32 kv8 d128", why("lathe_attention", "sdpa_attention"),
                ">= 0.9x SDPA", missing("lathe_attention"))
            continue
        st = s[d + "_tflops"]
        add(f"attention {d} 1x4096 h32 kv8 d128",
            f"lathe {lt:.1f} TFLOP/s (fp32), SDPA flash {st:.1f} (bf16, {s['gqa']}) "
            f"({lt / st:.2f}x)", ">= 0.9x SDPA", verdict(lt >= 0.9 * st))

    w = [max(len(r[i]) for r in table + [("check", "numbers", "threshold", "result")])
         for i in range(4)]
    w[1] = min(w[1], 90)
    line = f"{{:<{w[0]}}}  {{:<{w[3]}}}  {{:<{w[2]}}}  {{}}"
    print(line.format("check", "result", "threshold", "numbers"))
    for c, n, t, v in table:
        print(line.format(c, v, t, n))
    return 1 if any(r[3] == "FAIL" for r in table) else 0


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        record(argv)
    elif cmd == "gtest":
        gtest(argv)
    elif cmd == "summary":
        sys.exit(summary(argv))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
