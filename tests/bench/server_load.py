#!/usr/bin/python3
"""Load an OpenAI-compatible server with N concurrent streaming clients and print
throughput and latency percentiles (docs/performance.md, "Serving many users").

    server_load.py --url http://127.0.0.1:8080 [--clients 1,2,4,8,16] [--requests 3]
                   [--max-tokens 128] [--prompt-tokens 32] [--json]

Each client sends --requests streaming /v1/completions requests one after another
(greedy, a distinct prompt of about --prompt-tokens words each, max_tokens fixed,
ignore_eos so every request generates exactly max_tokens tokens).  Reported per
concurrency level: aggregate generated tokens/s (all tokens / wall time from the first
request sent to the last one finished), time to first token and inter-token gaps
(p50 / p90 / p99 over all requests), and the per-client rate.  Works against
bitnet-server and llama.cpp's llama-server alike (both speak the same protocol).
Talks to the given URL only; bounded by --requests and --timeout.
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def one_request(url, key, prompt, max_tokens, timeout):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True, "ignore_eos": True,
            "stream_options": {"include_usage": True}}
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body=json.dumps(body), headers=h)
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError("HTTP %d: %s" % (r.status, r.read()[:200]))
    stamps, usage, buf = [], None, b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if not ev.startswith(b"data: "):
                continue
            data = ev[6:]
            if data == b"[DONE]":
                continue
            j = json.loads(data)
            if j.get("usage"):
                usage = j["usage"]
            ch = j.get("choices") or []
            if ch and (ch[0].get("text") or ch[0].get("delta", {}).get("content")):
                stamps.append(time.perf_counter())
    c.close()
    n = usage["completion_tokens"] if usage else len(stamps)
    return t0, stamps, n, time.perf_counter()


def run_level(args, n_clients):
    results, errors, lock = [], [], threading.Lock()

    def client(ci):
        for k in range(args.requests):
            words = " ".join("w%d_%d_%d" % (ci, k, i) for i in range(args.prompt_tokens // 3 + 1))
            try:
                res = one_request(args.url, args.api_key, words, args.max_tokens, args.timeout)
                with lock:
                    results.append(res)
            except Exception as e:  # counted, reported
                with lock:
                    errors.append(repr(e))

    th = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    t0 = time.perf_counter()
    for t in th:
        t.start()
    for t in th:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(r[2] for r in results)
    ttft = [r[1][0] - r[0] for r in results if r[1]]
    gaps = [b - a for r in results for a, b in zip(r[1], r[1][1:])]
    per_client = [r[2] / (r[3] - r[0]) for r in results if r[3] > r[0]]
    return {"clients": n_clients, "requests": len(results), "errors": len(errors), "tokens": tokens, "wall_s": wall,
            "aggregate_tps": tokens / wall if wall > 0 else 0, "per_client_tps": statistics.median(per_client) if per_client else 0,
            "ttft_p50_ms": 1e3 * pct(ttft, 50), "ttft_p90_ms": 1e3 * pct(ttft, 90), "ttft_p99_ms": 1e3 * pct(ttft, 99),
            "itl_p50_ms": 1e3 * pct(gaps, 50), "itl_p90_ms": 1e3 * pct(gaps, 90), "itl_p99_ms": 1e3 * pct(gaps, 99),
            "first_error": errors[0] if errors else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--clients", default="1,2,4,8,16")
    ap.add_argument("--requests", type=int, default=3, help="requests per client, one after another")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--warmup", type=int, default=1, help="untimed requests first")
    ap.add_argument("--json", action="store_true", help="one JSON object per level")
    args = ap.parse_args()
    for _ in range(args.warmup):
        one_request(args.url, args.api_key, "warm up", 8, args.timeout)
    if not args.json:
        print("| clients | agg t/s | per client t/s | TTFT p50 / p90 / p99 ms | ITL p50 / p90 / p99 ms | errors |")
        print("|--------:|--------:|---------------:|------------------------:|-----------------------:|-------:|")
    for n in [int(x) for x in args.clients.split(",")]:
        r = run_level(args, n)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            print("| %7d | %7.1f | %14.1f | %7.0f / %5.0f / %5.0f | %6.1f / %5.1f / %5.1f | %6d |" % (
                n, r["aggregate_tps"], r["per_client_tps"], r["ttft_p50_ms"], r["ttft_p90_ms"], r["ttft_p99_ms"],
                r["itl_p50_ms"], r["itl_p90_ms"], r["itl_p99_ms"], r["errors"]), flush=True)


if __name__ == "__main__":
    main()
