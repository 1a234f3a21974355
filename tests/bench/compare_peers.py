#!/usr/bin/python3
"""Side-by-side speed of libbitnet and the peer engines found on this machine (docs/performance.md,
"Side by side with other engines").

    compare_peers.py bench  [--size 0.7B] [--threads 1,2] [-p 128] [-n 64] [-r 5] [--rounds 1] [--isa NAME]
    compare_peers.py server [--size 0.7B] [--threads 2] [--clients 1,2,4,8] [--streams 1,2,4,8,16]

bench: makes the model files each engine needs from one shape (bitnet-gen-dummy, seed 1: I2_S and
TQ2_0; an IQ2_BN_R4 copy of the I2_S file made by ik_llama.cpp's own llama-quantize), then runs, in
turn and with the same thread count, libbitnet's bitnet-bench and every peer whose binary is given:

    LLAMA_BENCH      upstream llama.cpp llama-bench            -> the TQ2_0 file (arch `bitnet` only)
    BITNETCPP_BENCH  bitnet.cpp (microsoft/BitNet) llama-bench -> the I2_S file
    IKLLAMA_BENCH    ik_llama.cpp llama-bench                  -> the IQ2_BN_R4 copy (never I2_S: it loads
                     I2_S files but skips their matmuls); IKLLAMA_QUANTIZE (default: llama-quantize next
                     to IKLLAMA_BENCH) makes the copy
    BITNETC_BIN      bitnet.c (artalis-io) CLI                 -> the I2_S file

(or the flags --llama-bench, --bitnetcpp-bench, --ikllama-bench, --ikllama-quantize, --bitnetc).
Each engine measures pp N (one batch of N prompt tokens) and tg N (N single-token decodes) with -r
repetitions after a warm-up; the per-engine figure is the median of the repetitions (llama-bench:
median of its samples_ts), and with --rounds K the whole sequence runs K times in turn and the
median over rounds is reported.  Printed: the absolute table and the ratio table libbitnet / peer
(libbitnet on the same file when the peer reads it, else libbitnet I2_S) against the speed targets.

server: bitnet-server against llama.cpp's llama-server (LLAMA_SERVER or --llama-server; continuous
batching, -np slots) on the same TQ2_0 file with the same threads, both driven by
tests/bench/server_load.py with 1,2,4,8,... concurrent greedy streaming clients, then bitnet-bench
--streams on the same file (the batched decoding the server is built on, without HTTP).

Only binaries given explicitly are run; nothing is downloaded.  Model files go to --work.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# speed targets of the project's issues: (pp ratio, tg ratio), None = no target
TARGETS = {
    "ikllama": (1.5, 1.3),
    "bitnetcpp": (3.0, 1.5),
    "llamacpp": (None, 2.0),
    "bitnetc": (None, None),
}
PEER_NAMES = {
    "libbitnet": "libbitnet",
    "llamacpp": "llama.cpp (upstream)",
    "bitnetcpp": "bitnet.cpp",
    "ikllama": "ik_llama.cpp",
    "bitnetc": "bitnet.c",
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=3600, check=True):
    log("+ " + " ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    if p.returncode != 0 and not check:
        log("%s exited with %d; using the output it printed" % (cmd[0], p.returncode))
    elif p.returncode != 0:
        log(p.stdout[-3000:])
        log(p.stderr[-3000:])
        raise RuntimeError("%s exited with %d" % (cmd[0], p.returncode))
    return p.stdout, p.stderr


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ints(s):
    return [int(x) for x in s.split(",") if x.strip()]


# ---- model files ----------------------------------------------------------------------------------

def model_path(args, typ):
    tag = args.size + ("-" + args.arch if args.arch else "")
    return os.path.join(args.work, "%s-%s.gguf" % (tag, typ))


def make_dummy(args, typ):
    out = model_path(args, typ)
    if not os.path.exists(out):
        cmd = [os.path.join(args.bin_dir, "bitnet-gen-dummy"), "--size", args.size, "--type", typ,
               "--seed", str(args.seed), "-q", "-o", out + ".tmp"]
        if args.arch:
            cmd[3:3] = ["--arch", args.arch]
        run(cmd)
        os.rename(out + ".tmp", out)
    return out


def make_iq2_bn_r4(args, quantize):
    src = make_dummy(args, "i2_s")
    out = model_path(args, "iq2_bn_r4")
    if not os.path.exists(out):
        run([quantize, "--allow-requantize", "--token-embedding-type", "f16", "--output-tensor-type", "f16",
             src, out + ".tmp", "iq2_bn_r4", str(os.cpu_count() or 1)])
        os.rename(out + ".tmp", out)
    return out


# ---- engines --------------------------------------------------------------------------------------

def bench_libbitnet(args, model, t, pp, tg):
    cmd = [os.path.join(args.bin_dir, "bitnet-bench"), "-m", model, "-p", str(pp), "-n", str(tg),
           "-t", str(t), "-r", str(args.reps), "-o", "json"]
    if args.isa:
        cmd += ["--isa", args.isa]
    out, _ = run(cmd)
    res = {"pp": None, "tg": None}
    for line in out.splitlines():
        if line.startswith("{"):
            j = json.loads(line)
            if "streams" not in j and j.get("test") in res:
                res[j["test"]] = j["tps_median"]
    return res


def bench_llama_bench(args, binary, model, t, pp, tg, extra):
    cmd = [binary, "-m", model, "-t", str(t), "-p", str(pp), "-n", str(tg), "-r", str(args.reps),
           "-o", "json"] + extra
    out, _ = run(cmd)
    data = json.loads(out[out.index("["):])
    res = {"pp": None, "tg": None}
    for r in data:
        n_p, n_g = int(r.get("n_prompt", 0)), int(r.get("n_gen", 0))
        v = median(r["samples_ts"]) if r.get("samples_ts") else r.get("avg_ts")
        if n_p > 0 and n_g == 0:
            res["pp"] = v
        elif n_g > 0 and n_p == 0:
            res["tg"] = v
    return res


def bench_bitnetc(args, binary, model, t, pp, tg, extra):
    """bitnet.c has no llama-bench; its CLI's benchmark mode (--benchmark-runs) logs one
    'Benchmark sample | run=k tokens=T tok/s=S prompt_ms=P' line per run on one loaded model.
    pp: PP fixed prompt token ids, one token generated; rate = PP / prompt_ms.
    tg: a one-token prompt and TG+1 generated tokens = TG decode forwards (its tok/s counts the
    token sampled from the prompt's logits too, so the rate is re-derived from the time)."""
    env = dict(os.environ, BN_DISABLE_LOOP_ABORT="1")  # a random model's greedy text repeats
    common = ["-t", str(t), "--temp", "0", "--repeat-penalty", "1.0", "--maxseq", str(pp + tg + 8),
              "--benchmark-runs", str(args.reps), "--benchmark-warmup-runs", "1"] + extra
    res = {"pp": None, "tg": None}
    if pp > 0:
        ids = ",".join(str(100 + (i * 7919) % 29000) for i in range(pp))
        out, err = run([binary, model, "--prompt-token-ids", ids, "-n", "1"] + common, env=env)
        ms = [float(m.group(1)) for m in re.finditer(r"Benchmark sample \|.*?prompt_ms=([0-9.]+)", out + err)]
        if len(ms) != args.reps or min(ms) <= 0:
            raise RuntimeError("bitnet.c pp: expected %d samples, got %r" % (args.reps, ms))
        res["pp"] = median([pp * 1000.0 / x for x in ms])
    if tg > 0:
        out, err = run([binary, model, "--prompt-token-ids", "100", "-n", str(tg + 1)] + common, env=env)
        rates = []
        for m in re.finditer(r"Benchmark sample \|.*?tokens=(-?[0-9]+) tok/s=([0-9.]+)", out + err):
            tokens, tps = int(m.group(1)), float(m.group(2))
            if tokens <= 1 or tps <= 0:
                raise RuntimeError("bitnet.c tg: bad sample %r" % (m.group(0),))
            forwards = tokens - 1 if tokens == tg + 1 else tokens
            rates.append(forwards * tps / tokens)
        if len(rates) != args.reps:
            raise RuntimeError("bitnet.c tg: expected %d samples, got %d" % (args.reps, len(rates)))
        res["tg"] = median(rates)
    return res


def peer_binaries(args):
    """(key, file type, callable(model, t, pp, tg)) for every engine to run, libbitnet first."""
    fa = ["-fa", str(args.peer_fa)]
    eng = [("libbitnet", "i2_s", lambda m, t, p, g: bench_libbitnet(args, m, t, p, g)),
           ("libbitnet", "tq2_0", lambda m, t, p, g: bench_libbitnet(args, m, t, p, g))]
    if args.llama_bench:
        extra = fa + os.environ.get("LLAMA_BENCH_ARGS", "").split()
        eng.append(("llamacpp", "tq2_0", lambda m, t, p, g: bench_llama_bench(args, args.llama_bench, m, t, p, g, extra)))
    if args.bitnetcpp_bench:
        extra = fa + os.environ.get("BITNETCPP_BENCH_ARGS", "").split()
        eng.append(("bitnetcpp", "i2_s",
                    lambda m, t, p, g: bench_llama_bench(args, args.bitnetcpp_bench, m, t, p, g, extra)))
    if args.ikllama_bench:
        extra = fa + os.environ.get("IKLLAMA_BENCH_ARGS", "").split()
        eng.append(("ikllama", "iq2_bn_r4",
                    lambda m, t, p, g: bench_llama_bench(args, args.ikllama_bench, m, t, p, g, extra)))
    if args.bitnetc:
        extra = os.environ.get("BITNETC_ARGS", "").split()
        eng.append(("bitnetc", "i2_s", lambda m, t, p, g: bench_bitnetc(args, args.bitnetc, m, t, p, g, extra)))
    return eng


def fmt(v, ratio=False):
    if v is None:
        return "—"
    return ("%.2fx" % v) if ratio else ("%.1f" % v if v >= 10 else "%.2f" % v)


def cmd_bench(args):
    threads = ints(args.threads)
    engines = peer_binaries(args)
    if args.size.upper().startswith("2B") and args.llama_bench and not args.arch:
        log("note: upstream llama.cpp has no bitnet-b1.58 architecture; skipping it for the 2B shape")
        engines = [e for e in engines if e[0] != "llamacpp"]
    files = {}
    for key, typ, _ in engines:
        if typ not in files:
            files[typ] = make_iq2_bn_r4(args, args.ikllama_quantize) if typ == "iq2_bn_r4" else make_dummy(args, typ)
    # results[(key, typ)][(kind, t)] = [value per round]
    results = {(k, ty): {} for k, ty, _ in engines}
    for rnd in range(args.rounds):
        for t in threads:
            for key, typ, fn in engines:
                try:
                    r = fn(files[typ], t, args.n_prompt, args.n_gen)
                except Exception as e:  # one failing peer must not lose the others' figures
                    log("%s %s t=%d failed: %s" % (key, typ, t, e))
                    r = {"pp": None, "tg": None}
                for kind in ("pp", "tg"):
                    results[(key, typ)].setdefault((kind, t), []).append(r[kind])
                log("round %d t=%d %s %s: pp %s tg %s" % (rnd + 1, t, key, typ, fmt(r["pp"]), fmt(r["tg"])))
    med = {e: {c: median(v) for c, v in cells.items()} for e, cells in results.items()}
    cols = [("pp", t) for t in threads] + [("tg", t) for t in threads]
    head = " | ".join("%s%d t=%d" % (k, args.n_prompt if k == "pp" else args.n_gen, t) for k, t in cols)
    print("\n### %s shape, tokens/s (median of %d reps%s)\n" % (
        args.size, args.reps, ", median over %d rounds" % args.rounds if args.rounds > 1 else ""))
    print("| engine | file | " + head + " |")
    print("|---|---|" + "---:|" * len(cols))
    for key, typ, _ in engines:
        print("| %s | %s | %s |" % (PEER_NAMES[key], typ.upper(), " | ".join(fmt(med[(key, typ)][c]) for c in cols)))
    print("\n### Ratios libbitnet / peer (same threads; libbitnet on the peer's file, else I2_S)\n")
    print("| libbitnet / peer | " + head + " | target pp / tg |")
    print("|---|" + "---:|" * len(cols) + "---|")
    summary = []
    for key, typ, _ in engines:
        if key == "libbitnet":
            continue
        ours = ("libbitnet", typ) if ("libbitnet", typ) in med else ("libbitnet", "i2_s")
        tp, tt = TARGETS.get(key, (None, None))
        cells = []
        for c in cols:
            a, b = med[ours].get(c), med[(key, typ)].get(c)
            r = a / b if a and b else None
            target = tp if c[0] == "pp" else tt
            mark = "" if r is None or target is None else (" ✓" if r >= target else " ✗")
            cells.append(fmt(r, True) + mark)
            summary.append({"peer": key, "peer_file": typ, "libbitnet_file": ours[1], "kind": c[0], "threads": c[1],
                            "libbitnet_tps": a, "peer_tps": b, "ratio": r, "target": target})
        tgt = "%s / %s" % ("%.1fx" % tp if tp else "—", "%.1fx" % tt if tt else "—")
        print("| %s / %s %s | %s | %s |" % (ours[1].upper(), PEER_NAMES[key], typ.upper(), " | ".join(cells), tgt))
    print("\n✓ / ✗: target met / missed.  CPU: %s" % cpu_model())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "threads": threads, "n_prompt": args.n_prompt, "n_gen": args.n_gen,
                       "reps": args.reps, "rounds": args.rounds, "files": files,
                       "raw": [{"engine": k, "file": ty, "cells": {"%s_t%d" % c: v for c, v in results[(k, ty)].items()}}
                               for k, ty, _ in engines],
                       "ratios": summary, "cpu": cpu_model()}, f, indent=1)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


# ---- servers --------------------------------------------------------------------------------------

def wait_health(url, proc, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d before it was ready" % proc.returncode)
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.5)
    raise RuntimeError("server not ready after %d s" % timeout)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load_server(args, cmd, port, logname):
    url = "http://127.0.0.1:%d" % port
    logf = open(os.path.join(args.work, logname), "w")
    log("+ " + " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    try:
        wait_health(url, proc)
        out, _ = run([sys.executable, os.path.join(HERE, "server_load.py"), "--url", url, "--clients", args.clients,
                      "--requests", str(args.requests), "--max-tokens", str(args.max_tokens),
                      "--prompt-tokens", str(args.prompt_tokens), "--json"])
    finally:
        stop(proc)
        logf.close()
    return {r["clients"]: r for r in (json.loads(l) for l in out.splitlines() if l.startswith("{"))}


def cmd_server(args):
    model = make_dummy(args, "tq2_0")
    t = args.threads
    res = {}
    # bitnet-bench --streams: the batched decode without HTTP (tg N alone is the single-stream rate)
    out, _ = run([os.path.join(args.bin_dir, "bitnet-bench"), "-m", model, "-p", "0", "-n", str(args.max_tokens),
                  "-t", t, "-r", str(args.reps), "--streams", args.streams, "-o", "json"], check=False)
    streams = {}
    for line in out.splitlines():
        if line.startswith("{"):
            j = json.loads(line)
            streams[j.get("streams", 0)] = j["tps_median"]
    res["bitnet-server"] = load_server(args, [os.path.join(args.bin_dir, "bitnet-server"), "-m", model, "-np",
                                              str(args.np), "-c", str(args.ctx), "-t", t, "--port", str(args.port)],
                                       args.port, "bitnet-server.log")
    if args.llama_server:
        extra = os.environ.get("LLAMA_SERVER_ARGS", "").split()
        try:
            res["llama-server"] = load_server(args, [args.llama_server, "-m", model, "-np", str(args.np), "-cb",
                                                     "-c", str(args.ctx * args.np), "-t", t, "-tb", t,
                                                     "--host", "127.0.0.1", "--port", str(args.port + 1)] + extra,
                                              args.port + 1, "llama-server.log")
        except Exception as e:  # keep bitnet-server's figures
            log("llama-server failed: %s (log: %s)" % (e, os.path.join(args.work, "llama-server.log")))
    levels = ints(args.clients)
    print("\n### Servers, %s shape TQ2_0, %s threads, -np %d, %d requests/client x %d tokens (greedy, streaming)\n"
          % (args.size, t, args.np, args.requests, args.max_tokens))
    print("| server | clients | agg t/s | per client t/s | TTFT p50 / p90 / p99 ms | ITL p50 / p90 / p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, lv in res.items():
        for n in levels:
            r = lv.get(n)
            if r:
                print("| %s | %d | %.1f | %.1f | %.0f / %.0f / %.0f | %.1f / %.1f / %.1f | %d |" % (
                    name, n, r["aggregate_tps"], r["per_client_tps"], r["ttft_p50_ms"], r["ttft_p90_ms"],
                    r["ttft_p99_ms"], r["itl_p50_ms"], r["itl_p90_ms"], r["itl_p99_ms"], r["errors"]))
    print("\n### bitnet-bench --streams (tg%d, same file and threads)\n" % args.max_tokens)
    print("| streams | aggregate t/s | per stream t/s | per stream / single |")
    print("|---:|---:|---:|---:|")
    single = streams.get(1) or streams.get(0)
    for s in sorted(k for k in streams if k):
        print("| %d | %.1f | %.1f | %s |" % (s, streams[s], streams[s] / s,
                                            "%.0f%%" % (100 * streams[s] / s / single) if single else "—"))
    print("\n### Targets\n")
    print("| target | figure | result |")
    print("|---|---|---|")

    def row(name, val, goal):
        print("| %s | %s | %s |" % (name, "—" if val is None else "%.2fx" % val if goal >= 1 else "%.0f%%" % (100 * val),
                                    "—" if val is None else ("met" if val >= goal else "missed")))
    s1, s8, s16 = single, streams.get(8), streams.get(16)
    row("8 streams >= 4x single", s8 / s1 if s1 and s8 else None, 4.0)
    row("16 streams: each >= 25% of single", s16 / 16 / s1 if s1 and s16 else None, 0.25)
    b8 = res["bitnet-server"].get(8)
    row("server @8 clients >= 90% of 8-stream aggregate", b8["aggregate_tps"] / s8 if b8 and s8 else None, 0.9)
    l8 = res.get("llama-server", {}).get(8)
    row("server @8 >= 2x llama-server @8", b8["aggregate_tps"] / l8["aggregate_tps"] if b8 and l8 else None, 2.0)
    for n in levels:
        b, l = res["bitnet-server"].get(n), res.get("llama-server", {}).get(n)
        if b and l:
            print("| (bitnet-server / llama-server @%d clients) | %.2fx | |" % (n, b["aggregate_tps"] / l["aggregate_tps"]))
    print("\nCPU: %s" % cpu_model())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "threads": t, "streams": streams, "servers": res, "cpu": cpu_model()}, f,
                      indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", nargs="?", default="bench", choices=["bench", "server"])
    ap.add_argument("--size", default="0.7B", help="bitnet-gen-dummy --size preset (0.7B, 2B, ...)")
    ap.add_argument("--arch", default=None, help="bitnet-gen-dummy --arch (default: the preset's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bin-dir", default=os.environ.get("BITNET_BIN_DIR", os.path.join(REPO, "build", "bin")),
                    help="libbitnet's built programs (bitnet-bench, bitnet-gen-dummy, bitnet-server)")
    ap.add_argument("--work", default=os.environ.get("BITNET_COMPARE_DIR", "/tmp/bitnet-compare"),
                    help="where the model files and server logs go")
    ap.add_argument("--threads", default=None, help="bench: list (1,2); server: one count (2)")
    ap.add_argument("--isa", default=None,
                    help="bench: libbitnet's kernel variant (bitnet-bench --isa), e.g. avx512 on an AMX CPU to "
                         "measure the path of AVX-512 CPUs without AMX")
    ap.add_argument("-p", "--n-prompt", type=int, default=128)
    ap.add_argument("-n", "--n-gen", type=int, default=64)
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1, help="bench: run the whole sequence K times in turn")
    ap.add_argument("--peer-fa", type=int, default=0, help="llama-bench -fa for every peer (0)")
    ap.add_argument("--llama-bench", default=os.environ.get("LLAMA_BENCH"))
    ap.add_argument("--bitnetcpp-bench", default=os.environ.get("BITNETCPP_BENCH"))
    ap.add_argument("--ikllama-bench", default=os.environ.get("IKLLAMA_BENCH"))
    ap.add_argument("--ikllama-quantize", default=os.environ.get("IKLLAMA_QUANTIZE"))
    ap.add_argument("--bitnetc", default=os.environ.get("BITNETC_BIN"))
    ap.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER"))
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--streams", default="1,2,4,8,16")
    ap.add_argument("--np", type=int, default=8, help="server slots (both servers)")
    ap.add_argument("--ctx", type=int, default=512, help="context per slot")
    ap.add_argument("--requests", type=int, default=2, help="server: requests per client")
    ap.add_argument("--max-tokens", type=int, default=64, help="server: tokens per request (and --streams tg N)")
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--port", type=int, default=18480, help="bitnet-server's port; llama-server gets the next")
    ap.add_argument("--json", default=None, help="also write the raw figures to this file")
    args = ap.parse_args()
    if args.ikllama_bench and not args.ikllama_quantize:
        args.ikllama_quantize = os.path.join(os.path.dirname(args.ikllama_bench), "llama-quantize")
    for k in ("llama_bench", "bitnetcpp_bench", "ikllama_bench", "ikllama_quantize", "bitnetc", "llama_server"):
        v = getattr(args, k)
        if v and not (os.path.isfile(v) and os.access(v, os.X_OK)):
            ap.error("--%s: not an executable: %s" % (k.replace("_", "-"), v))
    os.makedirs(args.work, exist_ok=True)
    if args.mode == "bench":
        args.threads = args.threads or "1,2"
        cmd_bench(args)
    else:
        args.threads = args.threads or "2"
        if not args.threads.isdigit():
            ap.error("server mode takes one thread count")
        cmd_server(args)


if __name__ == "__main__":
    main()
