#!/usr/bin/python3
"""libbitnet vs upstream llama.cpp on dummy `bitnet` models, with a numpy emulation of
llama.cpp's numerics to tell graph differences from activation-quantization differences.

Three computations of the same logits (every prompt position) are compared:

  lib   libbitnet through the Python binding (kv f16, logits_all), per-token int8
        activations (docs/spec.md §4.1);
  llama upstream llama.cpp via the node driver of docs/spec.md §11.2:
        `node ref.mjs -m F --tokens ... --logits-all-out F -n 16`;
  numpy tests/reference/reference.py's forward pass (written from docs/spec.md, not from
        our C code) run twice:
          token: its own per-token int8 matmul (what libbitnet claims to compute);
          q8k:   the matmul replaced by llama.cpp's TQ x Q8_K product (docs/spec.md §4.2):
                 each 256-block of the activation row is quantized on its own,
                 max = the signed value of largest magnitude (first one on ties),
                 iscale = (float)(-127/max), q = min(127, round_half_even(iscale*x)),
                 d = 1/iscale; y = sum over blocks, in f32, of (float)(sum q*t) * (d*d_w).
        Everything else in reference.py already follows llama.cpp's roundings (docs/spec.md
        §4.3-4.6: f16 KV cache, Q and softmax output rounded to f16, f16 activation for the
        f16 output layer, RMSNorm sums in double, RoPE angles by repeated f32 products).

If numpy-q8k ~ llama and numpy-token ~ lib, the graphs are the same and the lib/llama
difference is entirely the activation quantization.

Ternary models amplify float-rounding differences: a 1-ulp difference that moves one
value across an int8 rounding boundary changes the next matmul's input by 1/127 of its
max, which flips more roundings downstream.  So even two correct implementations of the
same scheme agree exactly only up to the first flip and then at a "noise floor" (--floor
measures it: the same numpy scheme with every RMSNorm output perturbed by 2^-22).  F16
projection weights remove the int8 step on llama.cpp's side (activations are only rounded
to f16): there the emulation must match llama.cpp to ~1e-2 at every position, which checks
the graph (RoPE, norms, attention, output layer, f16 roundings) without that noise.

Usage:
  compare.py --harness /tmp/llref --bin BUILD/bin --lib BUILD --tmp DIR
             [--layers 2,6,24] [--types tq2_0,tq1_0,f16] [--n-prompt 32] [--n-gen 16] [--floor]
Exit 77 (skip) when node or the harness is missing; 1 when an F16 model's emulation
differs from llama.cpp by more than --f16-tol.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import reference as R  # noqa: E402

F32 = np.float32
SKIP = 77


# ---------------------------------------------------------------------------------
# Matmuls.  Integer dot products are computed with float64 BLAS: every partial sum is an
# integer below 2^53, so the result is exact (and much faster than numpy's int64 matmul).
# ---------------------------------------------------------------------------------
def _idot(q, w):
    """q [n, K] integers, w [out, K] in {-1,0,1} -> exact integer sums [n, out] (float64)."""
    return q.astype(np.float64) @ w.astype(np.float64).T


def bitlinear_token(x, w, scale):
    """Per-token int8 (docs/spec.md §4.1); identical to reference.bitlinear, only faster."""
    q, a = R.act_quant(x)
    if np.isscalar(scale) or np.ndim(scale) == 0:
        return (_idot(q, w).astype(F32) / a[:, None]) * F32(scale)
    n_tok, nb = x.shape[0], scale.shape[1]
    acc = np.zeros((n_tok, w.shape[0]), dtype=F32)
    for b in range(nb):
        dmb = _idot(q[:, 256 * b:256 * b + 256], w[:, 256 * b:256 * b + 256])
        acc = acc + dmb.astype(F32) * scale[:, b][None, :]
    return acc / a[:, None]


def q8k_quant(x):
    """Q8_K per 256-block (docs/spec.md §4.2): x [n, K] f32 -> q [n, nb, 256] int, d [n, nb] f32."""
    n, K = x.shape
    nb = K // 256
    xb = x.reshape(n, nb, 256).astype(F32)
    idx = np.argmax(np.abs(xb), axis=2)  # first index of the largest magnitude
    mx = np.take_along_axis(xb, idx[..., None], axis=2)[..., 0]
    zero = mx == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = (F32(-127.0) / np.where(zero, F32(1), mx)).astype(F32)
    p = (xb * iscale[..., None]).astype(F32)  # f32 product
    q = np.minimum(127, np.rint(p)).astype(np.int64)  # nearest_int: round half to even
    q[zero] = 0
    d = np.where(zero, F32(0), (F32(1.0) / iscale).astype(F32)).astype(F32)
    return q, d


def bitlinear_q8k(x, w, scale):
    """llama.cpp's TQ1_0/TQ2_0 x Q8_K product: sum_b (float)isum_b * (d_act_b * d_w_b) in f32."""
    q, d = q8k_quant(x)
    n, nb = d.shape
    out = w.shape[0]
    if np.isscalar(scale) or np.ndim(scale) == 0:
        dw = np.full((out, nb), F32(scale), dtype=F32)
    else:
        dw = scale.astype(F32)
    acc = np.zeros((n, out), dtype=F32)
    for b in range(nb):
        isum = _idot(q[:, b, :], w[:, 256 * b:256 * b + 256]).astype(F32)
        acc = acc + isum * (d[:, b][:, None] * dw[:, b][None, :]).astype(F32)
    return acc


def bitlinear_f16(x, w, scale):
    """llama.cpp's F16-weight matmul: activation rounded to f16, products summed in f32
    (computed here in double and rounded once).  Only for F16 projection files (one scale)."""
    assert np.isscalar(scale) or np.ndim(scale) == 0
    wf = (w.astype(np.float64) * float(scale))
    return (R.r16(x).astype(np.float64) @ wf.T).astype(F32)


_rmsnorm = R.rmsnorm


def numpy_logits(path, tokens, mode, perturb=0.0):
    """mode: token (per-token int8), q8k (llama.cpp TQ x Q8_K) or f16 (llama.cpp F16 weights).
    perturb: relative perturbation of every RMSNorm output (measures the sensitivity of the
    quantized network to float-rounding-sized differences)."""
    R.bitlinear = {"token": bitlinear_token, "q8k": bitlinear_q8k, "f16": bitlinear_f16}[mode]
    if perturb:
        R.rmsnorm = lambda x, w, eps: (_rmsnorm(x, w, eps) * F32(1.0 + perturb)).astype(F32)
    else:
        R.rmsnorm = _rmsnorm
    try:
        return R.forward(path, tokens, True)
    finally:
        R.rmsnorm = _rmsnorm


# ---------------------------------------------------------------------------------
# The two engines
# ---------------------------------------------------------------------------------
def lib_run(path, tokens, n_gen, threads):
    import bitnet
    with bitnet.Model(path) as m:
        s = m.session(ctx=len(tokens) + n_gen + 8, threads=threads, kv_type="f16", logits_all=True)
        s.eval(tokens)
        lg = np.stack([s.logits_numpy(i) for i in range(len(tokens))])
        gen = []
        cur = int(np.argmax(lg[-1]))
        for _ in range(n_gen):
            gen.append(cur)
            s.eval([cur])
            cur = int(np.argmax(s.logits_numpy(-1)))
        s.close()
    return lg, gen


def llama_run(harness, path, tokens, n_gen, threads, tmp):
    out = os.path.join(tmp, "llama_%d.f32" % os.getpid())
    cmd = ["node", os.path.join(harness, "ref.mjs"), "-m", path, "-t", str(threads), "--no-meta",
           "--tokens", ",".join(map(str, tokens)), "-n", str(n_gen), "--logits-all-out", out]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    gen = None
    for line in r.stdout.splitlines():
        if line.startswith("greedy "):
            gen = [int(t) for t in line.split(":", 1)[1].strip().split(",") if t]
    lg = np.fromfile(out, dtype=F32).reshape(len(tokens), -1)
    os.unlink(out)
    return lg, gen


TIGHT = 1e-2


def cmp(a, b):
    """max abs diff, mean abs diff, top-1 agreement, positions agreeing within TIGHT, n."""
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return (float(d.max()), float(d.mean()), int(np.sum(np.argmax(a, 1) == np.argmax(b, 1))),
            int(np.sum(d.max(axis=1) <= TIGHT)), a.shape[0])


def fmt(c):
    return "%.4f / %.4f / %2d / %2d" % c[:4] if c else "-"


COLS = [("lib~llama", "lib vs llama.cpp"),
        ("emul~llama", "numpy llama.cpp emulation (q8k for TQ, f16 for F16 weights) vs llama.cpp"),
        ("token~lib", "numpy per-token vs libbitnet"),
        ("emul~token", "numpy emulation vs numpy per-token (the activation-quantization effect)"),
        ("floor-tok", "numpy per-token vs itself with RMSNorm outputs perturbed by 2^-22 relative"),
        ("floor-q8k", "numpy emulation vs itself, same perturbation")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--harness", default="/tmp/llref")
    ap.add_argument("--bin", required=True, help="build dir's bin/ (bitnet-gen-dummy)")
    ap.add_argument("--lib", required=True, help="directory holding libbitnet.so")
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--layers", default="2,6,24")
    ap.add_argument("--types", default="tq2_0,tq1_0,f16", help="projection types (tq2_0, tq1_0, f16)")
    ap.add_argument("--size", default="0.7B")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-prompt", type=int, default=32)
    ap.add_argument("--n-gen", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the generated models")
    ap.add_argument("--no-numpy", action="store_true", help="only libbitnet vs llama.cpp")
    ap.add_argument("--floor", action="store_true", help="also measure the perturbation noise floor")
    ap.add_argument("--f16-tol", type=float, default=0.05,
                    help="fail (exit 1) when, on an F16-weight model, the numpy emulation and llama.cpp "
                         "differ by more than this (no int8 quantization there, so the graphs must agree "
                         "to float-rounding level; on TQ models they only agree to the noise floor)")
    args = ap.parse_args()

    if shutil.which("node") is None or not os.path.exists(os.path.join(args.harness, "ref.mjs")) or \
            not os.path.isdir(os.path.join(args.harness, "node_modules", "node-llama-cpp")):
        print("SKIP: node or the llama.cpp harness (%s/ref.mjs + node_modules) is missing" % args.harness)
        return SKIP
    os.environ["BITNET_LIBRARY_PATH"] = args.lib
    os.makedirs(args.tmp, exist_ok=True)

    rng = np.random.default_rng(4321)
    # BOS then random ids above the byte tokens of the SPM dummy vocabulary
    tokens = [1] + [int(t) for t in rng.integers(259, 32000, size=args.n_prompt - 1)]
    print("prompt ids:", ",".join(map(str, tokens)))
    print("each cell: max abs diff / mean abs diff / top-1 agreement / positions within %g (of %d)"
          % (TIGHT, len(tokens)))
    for k, v in COLS:
        print("  %-11s %s" % (k, v))
    hdr = "%-12s | " % "model" + " | ".join("%-27s" % k for k, _ in COLS) + " | greedy lib=llama"
    rows = []
    worst_emul = 0.0
    for L in [int(v) for v in args.layers.split(",")]:
        for typ in args.types.split(","):
            path = os.path.join(args.tmp, "llcmp_%s_%d_%s.gguf" % (args.size, L, typ))
            if not os.path.exists(path):
                subprocess.run([os.path.join(args.bin, "bitnet-gen-dummy"), "--size", args.size, "--arch", "bitnet",
                                "--type", typ, "--layers", str(L), "--seed", str(args.seed), "-q", "-o", path],
                               check=True)
            t0 = time.time()
            lib_lg, lib_gen = lib_run(path, tokens, args.n_gen, args.threads)
            ll_lg, ll_gen = llama_run(args.harness, path, tokens, args.n_gen, args.threads, args.tmp)
            t1 = time.time()
            c = {"lib~llama": cmp(lib_lg, ll_lg)}
            if not args.no_numpy:
                emode = "f16" if typ == "f16" else "q8k"
                np_tok = numpy_logits(path, tokens, "token")
                np_em = numpy_logits(path, tokens, emode)
                c["emul~llama"] = cmp(np_em, ll_lg)
                c["token~lib"] = cmp(np_tok, lib_lg)
                c["emul~token"] = cmp(np_em, np_tok)
                if typ == "f16":
                    worst_emul = max(worst_emul, c["emul~llama"][0])
                if args.floor:
                    c["floor-tok"] = cmp(numpy_logits(path, tokens, "token", 2.0 ** -22), np_tok)
                    c["floor-q8k"] = cmp(numpy_logits(path, tokens, emode, 2.0 ** -22), np_em)
            t2 = time.time()
            same = sum(a == b for a, b in zip(lib_gen, ll_gen))
            row = "%-12s | " % ("%dL %s" % (L, typ)) + " | ".join("%-27s" % fmt(c.get(k)) for k, _ in COLS) + \
                " | %d/%d" % (same, len(ll_gen))
            rows.append(row)
            if len(rows) == 1:
                print(hdr)
            print(row, flush=True)
            print("    lib   greedy:", ",".join(map(str, lib_gen)))
            print("    llama greedy:", ",".join(map(str, ll_gen)))
            if not args.no_numpy:
                pos = lambda a, b: " ".join("%.3f" % v for v in np.abs(a - b).max(axis=1))  # noqa: E731
                print("    per-position max diff emul~llama:", pos(np_em, ll_lg))
                print("    per-position max diff token~lib: ", pos(np_tok, lib_lg))
            print("    (engines %.1fs, numpy %.1fs)" % (t1 - t0, t2 - t1), flush=True)
            if not args.keep:
                os.unlink(path)
    print()
    print(hdr)
    for r in rows:
        print(r)
    if worst_emul > args.f16_tol:
        print("FAIL: on F16 weights the numpy emulation differs from llama.cpp by %.4g > %.4g: the graphs differ"
              % (worst_emul, args.f16_tol))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
