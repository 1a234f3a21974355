#!/usr/bin/python3
"""Independent numpy reference for the BitNet embedding models (qwen3 / gemma3).

Written from the public sources named in docs/spec.md §5.5 (bitnet.cpp's
docs/bitnet-embeddings-i2s-guide.md and utils/convert-bitnet-embedding-to-gguf.py, the
qwen3 / gemma3 graphs of bitnet.cpp's llama.cpp, Hugging Face transformers'
modeling_qwen3.py / modeling_gemma3.py, llama-embedding's pooling and normalisation),
not from libbitnet's C code:

  1. "Hugging Face" parameters of a small model of each architecture: float master
     weights for every projection, RMSNorm weights as the checkpoints hold them (Qwen3
     and BitLinear norms multiply by w, Gemma3's own norms by 1 + w);
  2. a GGUF in the layout bitnet.cpp's embedding converter writes: its tensor names
     and keys, the projections ternarized by its absmean rule and packed as I2_S (scale
     appended), everything else F16, Gemma3's own norms stored as w + 1 and the
     per-projection BitLinear norms as w, pooling_type 3 (last), the Qwen3 vocabulary
     with add_eos_token, Gemma3's as SentencePiece without a space prefix;
  3. the forward pass from the HF parameters (not from the file) with bitnet.cpp's
     arithmetic (tests/reference/reference.py: per-token int8 activations, RMSNorm sums
     in double, RoPE angles by repeated f32 products, f16 KV cache => q and softmax
     output rounded to f16, f16 output layer => activation rounded to f16) and
     ggml's f16-table GELU; then last-token pooling and L2 normalisation.

libbitnet (bn_embed_driver) must give the same logits of every position, the same
hidden states and the same pooled embedding, for KV f16/f32, 1/2 threads and inputs cut
into chunks.  Then every graph detail is broken once in the reference (the norm +1
convention both ways, the embedding scale, QK-norm, post-norms, the activation, the
per-projection input norms, the query scale, pooling, the sliding window): each mutant
must be told apart from libbitnet's output, which shows the comparison can fail.
"""
import argparse
import math
import os
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from reference import act_quant, bitlinear, f32exp, r16, rmsnorm, rope  # noqa: E402  (the spec's numerics)

F32 = np.float32

# ---------------------------------------------------------------------------------
# GGUF writer (docs/spec.md §1): v3, alignment 32
# ---------------------------------------------------------------------------------
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
GGML_F16, GGML_I2_S = 1, 36


def _s(b):
    b = b.encode("utf-8") if isinstance(b, str) else b
    return struct.pack("<Q", len(b)) + b


def _val(t, v):
    if t == T_U32:
        return struct.pack("<I", v)
    if t == T_I32:
        return struct.pack("<i", v)
    if t == T_F32:
        return struct.pack("<f", v)
    if t == T_BOOL:
        return struct.pack("<B", 1 if v else 0)
    if t == T_STR:
        return _s(v)
    et, items = v
    return struct.pack("<IQ", et, len(items)) + b"".join(_val(et, x) for x in items)


def write_gguf(path, kvs, tensors):
    """kvs: [(key, type, value)]; tensors: [(name, ne list, ggml type, raw bytes)]."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for k, t, v in kvs:
        out += _s(k) + struct.pack("<I", t) + _val(t, v)
    off = 0
    offs = []
    for name, ne, t, raw in tensors:
        offs.append(off)
        out += _s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", t, off)
        off = (off + len(raw) + 31) // 32 * 32
    out += b"\0" * ((32 - len(out) % 32) % 32)
    for (name, ne, t, raw), o in zip(tensors, offs):
        out += raw + b"\0" * ((32 - len(raw) % 32) % 32)
    with open(path, "wb") as f:
        f.write(out)


# ---------------------------------------------------------------------------------
# bitnet.cpp's embedding converter (utils/convert-bitnet-embedding-to-gguf.py), the parts
# that decide the file: ternarization, I2_S packing, the norm offsets, the names
# ---------------------------------------------------------------------------------
def ternarize(w):
    """absmean: scale = mean|w| (>= 1e-5), q = clamp(round(w / scale), -1, 1)."""
    m = max(float(np.mean(np.abs(w.astype(F32)))), 1e-5)
    q = np.clip(np.round(w.astype(F32) * (1.0 / m)), -1, 1).astype(np.int8)
    return q, F32(m)


def pack_i2s(q, scale):
    """Codes 0/1/2 for -1/0/+1 in blocks of 128: element 32g + p of a block in byte p,
    bits 6 - 2g; then a 32-byte tail with the f32 scale first."""
    codes = (q.reshape(-1).astype(np.int16) + 1).astype(np.uint8)
    n = codes.size
    assert n % 128 == 0
    c = codes.reshape(-1, 4, 32)
    packed = (c[:, 0] << 6) | (c[:, 1] << 4) | (c[:, 2] << 2) | c[:, 3]
    tail = np.zeros(32, dtype=np.uint8)
    tail[:4] = np.frombuffer(np.float32(scale).tobytes(), dtype=np.uint8)
    return packed.astype(np.uint8).tobytes() + tail.tobytes()


def f16_bytes(a):
    return np.asarray(a, dtype=np.float16).tobytes()


# ---------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------
PROJ = ("q", "k", "v", "o", "gate", "up", "down")
GGUF_PROJ = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "gate": "ffn_gate", "up": "ffn_up",
             "down": "ffn_down"}


def f16_near(rng, center, spread, n):
    """Random values exactly representable in f16 (so a +1 offset is exact too)."""
    return (center + spread * rng.standard_normal(n)).astype(np.float16).astype(F32)


def make_model(cfg, seed):
    rng = np.random.default_rng(seed)
    E, hd, H, KV, FF, L, V = (cfg[k] for k in ("E", "hd", "H", "KV", "FF", "L", "V"))
    gemma = cfg["arch"] == "gemma3"
    P = {"emb": (0.5 * rng.standard_normal((V, E))).astype(np.float16).astype(F32), "layers": []}

    def own_norm(n):  # the model's own RMSNorm weights as the checkpoint stores them
        if gemma:  # Gemma3RMSNorm: y = x_normed * (1 + w), w near 0
            return f16_near(rng, 1.0, 0.15, n) - F32(1.0)
        return f16_near(rng, 1.0, 0.15, n)

    P["out_norm"] = own_norm(E)
    shapes = {"q": (H * hd, E), "k": (KV * hd, E), "v": (KV * hd, E), "o": (E, H * hd), "gate": (FF, E),
              "up": (FF, E), "down": (E, FF)}
    for _ in range(L):
        Lp = {"attn_norm": own_norm(E), "ffn_norm": own_norm(E), "q_norm": own_norm(hd), "k_norm": own_norm(hd)}
        if gemma:
            Lp["post_attn"] = own_norm(E)
            Lp["post_ffw"] = own_norm(E)
        for p in PROJ:
            w = (0.02 * rng.standard_normal(shapes[p])).astype(F32)
            Lp["W_" + p] = ternarize(w)  # (int8 [out, in], f32 scale)
            if cfg["norm_in"]:  # BitLinear's own RMSNorm (weight near 1, used as is)
                Lp["in_" + p] = f16_near(rng, 1.0, 0.2, shapes[p][1])
        P["layers"].append(Lp)
    return P


def vocab_qwen(V):
    """A byte-level BPE vocabulary: the 256 byte symbols, merged pieces, padding, and
    <|endoftext|> (EOS, control) last."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_sym = {b: chr(c) for b, c in zip(bs, cs)}
    toks = [byte_sym[b] for b in range(256)]
    merges = ["z z", "Ġ Ġ", "q q"]
    toks += ["zz", "ĠĠ", "qq"]
    while len(toks) < V - 1:
        toks.append("[PAD%d]" % len(toks))
    toks.append("<|endoftext|>")
    types = [1] * (V - 1) + [3]
    for i in range(259, V - 1):
        types[i] = 5  # unused
    return toks, types, merges, byte_sym


def vocab_gemma(V):
    """A SentencePiece-style vocabulary: <pad> <eos> <bos> <unk>, byte tokens, letters."""
    toks = ["<pad>", "<eos>", "<bos>", "<unk>"] + ["<0x%02X>" % b for b in range(256)]
    types = [3, 3, 3, 2] + [6] * 256
    for c in "abcdefghijklmnopqrstuvwxyz▁":
        toks.append(c)
        types.append(1)
    while len(toks) < V:
        toks.append("[PAD%d]" % len(toks))
        types.append(5)
    scores = [0.0] * V
    return toks, types, scores


def write_model(cfg, P, path):
    arch = cfg["arch"]
    gemma = arch == "gemma3"
    E, hd, H, KV, FF, L, V = (cfg[k] for k in ("E", "hd", "H", "KV", "FF", "L", "V"))
    a = arch + "."
    kvs = [("general.architecture", T_STR, arch), ("general.name", T_STR, "bitnet-embedding-test"),
           (a + "block_count", T_U32, L), (a + "context_length", T_U32, 32768), (a + "embedding_length", T_U32, E),
           (a + "feed_forward_length", T_U32, FF), (a + "attention.head_count", T_U32, H),
           (a + "attention.head_count_kv", T_U32, KV), (a + "vocab_size", T_U32, V),
           (a + "rope.dimension_count", T_U32, hd), (a + "attention.key_length", T_U32, hd),
           (a + "attention.value_length", T_U32, hd), (a + "rope.freq_base", T_F32, cfg["theta"]),
           (a + "attention.layer_norm_rms_epsilon", T_F32, cfg["eps"]), ("general.file_type", T_U32, 40),
           (a + "pooling_type", T_U32, 3)]
    if cfg.get("swa"):  # (bitnet.cpp's converter writes none of these: upstream-style files)
        kvs += [(a + "attention.sliding_window", T_U32, cfg["swa"]),
                (a + "attention.sliding_window_pattern", T_U32, cfg["swa_period"]),
                (a + "rope.freq_base_swa", T_F32, cfg["theta_swa"])]
    if cfg.get("softcap"):
        kvs.append((a + "final_logit_softcapping", T_F32, cfg["softcap"]))
    if gemma:
        toks, types, scores = vocab_gemma(V)
        kvs += [("tokenizer.ggml.model", T_STR, "llama"), ("tokenizer.ggml.pre", T_STR, "default"),
                ("tokenizer.ggml.tokens", T_ARR, (T_STR, toks)), ("tokenizer.ggml.scores", T_ARR, (T_F32, scores)),
                ("tokenizer.ggml.token_type", T_ARR, (T_I32, types)), ("tokenizer.ggml.add_space_prefix", T_BOOL, False),
                ("tokenizer.ggml.bos_token_id", T_U32, 2), ("tokenizer.ggml.eos_token_id", T_U32, 1),
                ("tokenizer.ggml.unknown_token_id", T_U32, 3), ("tokenizer.ggml.padding_token_id", T_U32, 0),
                ("tokenizer.ggml.add_bos_token", T_BOOL, True), ("tokenizer.ggml.add_eos_token", T_BOOL, False)]
    else:
        toks, types, merges, _ = vocab_qwen(V)
        kvs += [("tokenizer.ggml.model", T_STR, "gpt2"), ("tokenizer.ggml.pre", T_STR, "qwen2"),
                ("tokenizer.ggml.tokens", T_ARR, (T_STR, toks)), ("tokenizer.ggml.token_type", T_ARR, (T_I32, types)),
                ("tokenizer.ggml.merges", T_ARR, (T_STR, merges)), ("tokenizer.ggml.eos_token_id", T_U32, V - 1),
                ("tokenizer.ggml.padding_token_id", T_U32, V - 1), ("tokenizer.ggml.add_eos_token", T_BOOL, True)]

    def stored_norm(w):  # the converter: Gemma3's own norms get w + 1, everything else as is
        return w + F32(1.0) if gemma else w

    T = [("token_embd.weight", [E, V], GGML_F16, f16_bytes(P["emb"])),
         ("output_norm.weight", [E], GGML_F16, f16_bytes(stored_norm(P["out_norm"])))]
    for i, Lp in enumerate(P["layers"]):
        b = "blk.%d." % i
        T.append((b + "attn_norm.weight", [E], GGML_F16, f16_bytes(stored_norm(Lp["attn_norm"]))))
        T.append((b + "attn_q_norm.weight", [hd], GGML_F16, f16_bytes(stored_norm(Lp["q_norm"]))))
        T.append((b + "attn_k_norm.weight", [hd], GGML_F16, f16_bytes(stored_norm(Lp["k_norm"]))))
        T.append((b + "ffn_norm.weight", [E], GGML_F16, f16_bytes(stored_norm(Lp["ffn_norm"]))))
        if gemma:
            T.append((b + "post_attention_norm.weight", [E], GGML_F16, f16_bytes(stored_norm(Lp["post_attn"]))))
            T.append((b + "post_ffw_norm.weight", [E], GGML_F16, f16_bytes(stored_norm(Lp["post_ffw"]))))
        for p in PROJ:
            q, s = Lp["W_" + p]
            T.append((b + GGUF_PROJ[p] + ".weight", [q.shape[1], q.shape[0]], GGML_I2_S, pack_i2s(q, s)))
            if cfg["norm_in"]:
                T.append((b + GGUF_PROJ[p] + "_norm_in.weight", [q.shape[1]], GGML_F16, f16_bytes(Lp["in_" + p])))
    write_gguf(path, kvs, T)


# ---------------------------------------------------------------------------------
# The reference forward pass (see the module docstring), with switches that break one
# graph detail each (MUTANTS)
# ---------------------------------------------------------------------------------
def gelu_ggml(x):
    """ggml's CPU GELU: 0 for x <= -10, x for x >= 10, else f16(gelu_tanh(f16(x)))."""
    v = r16(x)
    g = F32(0.5) * v * (F32(1.0) + np.tanh(F32(0.7978845608028654) * v * (F32(1.0) + F32(0.044715) * v * v)))
    return np.where(x <= F32(-10.0), F32(0.0), np.where(x >= F32(10.0), x, r16(g))).astype(F32)


def gelu_exact(x):  # (mutant: the tanh formula without ggml's f16 table)
    x = x.astype(np.float64)
    return (0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))).astype(F32)


def attention(q, k, v, n_head, n_kv, hd, kq_scale, kv_f16, window):
    n = q.shape[0]
    if kv_f16:
        k, v = r16(k), r16(v)
    att = np.zeros((n, n_head * hd), dtype=F32)
    grp = n_head // n_kv
    for t in range(n):
        p0 = max(0, t - window + 1) if window else 0
        for h in range(n_head):
            kvh = h // grp
            qv = q[t, h * hd:(h + 1) * hd]
            if kv_f16:
                qv = r16(qv)
            kk = k[p0:t + 1, kvh * hd:(kvh + 1) * hd]
            vv = v[p0:t + 1, kvh * hd:(kvh + 1) * hd]
            s = np.sum((kk * qv[None, :]).astype(np.float64), axis=1).astype(F32) * F32(kq_scale)
            e = f32exp(s - np.max(s))
            p = e * F32(1.0 / np.sum(e.astype(np.float64)))
            if kv_f16:
                p = r16(p)
            att[t, h * hd:(h + 1) * hd] = np.sum((vv * p[:, None]).astype(np.float64), axis=0).astype(F32)
    return att


MUTANTS = ["gemma_norm_without_plus_one", "gemma_norm_plus_one_twice", "norm_in_plus_one", "no_norm_in",
           "no_embd_scale", "no_qk_norm", "no_post_norms", "silu_for_gelu", "gelu_for_silu", "exact_gelu",
           "double_query_scale", "mean_pooling", "no_swa", "swa_base_for_all", "no_softcap"]


def forward(cfg, P, tokens, kv_f16, mutant=None):
    arch = cfg["arch"]
    gemma = arch == "gemma3"
    E, hd, H, KV, L = (cfg[k] for k in ("E", "hd", "H", "KV", "L"))
    eps = cfg["eps"]

    def own(w):  # the effective multiplier of one of the model's own norms (HF semantics)
        if not gemma:
            return w
        if mutant == "gemma_norm_without_plus_one":
            return w
        if mutant == "gemma_norm_plus_one_twice":
            return w + F32(2.0)
        return w + F32(1.0)

    def bitlin_in(x, Lp, p):  # BitLinear's input norm, then the W1.58A8 product
        if cfg["norm_in"] and mutant != "no_norm_in":
            w = Lp["in_" + p] + (F32(1.0) if mutant == "norm_in_plus_one" else F32(0.0))
            x = rmsnorm(x, w, eps)
        return bitlinear(x, *Lp["W_" + p])

    n = len(tokens)
    h = P["emb"][np.array(tokens)].astype(F32)
    if gemma and mutant != "no_embd_scale":  # Gemma3: embeddings * sqrt(hidden_size)
        h = h * np.sqrt(F32(E))
    if gemma:  # q scaled by query_pre_attn_scalar^-0.5 = 1/sqrt(head_dim) here (256)
        q_scale, kq_scale = F32(1.0) / np.sqrt(F32(hd)), F32(1.0)
        if mutant == "double_query_scale":
            kq_scale = F32(1.0) / np.sqrt(F32(hd))
    else:
        q_scale, kq_scale = F32(1.0), F32(1.0) / np.sqrt(F32(hd))
    for l, Lp in enumerate(P["layers"]):
        swa = bool(cfg.get("swa")) and (l % cfg["swa_period"] < cfg["swa_period"] - 1)
        base = cfg["theta_swa"] if swa or mutant == "swa_base_for_all" and cfg.get("swa") else cfg["theta"]
        window = cfg["swa"] if swa and mutant != "no_swa" else 0
        x = rmsnorm(h, own(Lp["attn_norm"]), eps)
        q = bitlin_in(x, Lp, "q")
        k = bitlin_in(x, Lp, "k")
        v = bitlin_in(x, Lp, "v")
        q = q.reshape(n, H, hd)
        k = k.reshape(n, KV, hd)
        if mutant != "no_qk_norm":  # q_norm / k_norm: RMSNorm over head_dim, per head
            q = rmsnorm(q, own(Lp["q_norm"]), eps)
            k = rmsnorm(k, own(Lp["k_norm"]), eps)
        q = np.stack([rope(q[t], t, hd, base, True) for t in range(n)]).reshape(n, H * hd)
        k = np.stack([rope(k[t], t, hd, base, True) for t in range(n)]).reshape(n, KV * hd)
        q = q * q_scale
        a = attention(q, k, v, H, KV, hd, kq_scale, kv_f16, window)
        o = bitlin_in(a, Lp, "o")
        if gemma and mutant != "no_post_norms":
            o = rmsnorm(o, own(Lp["post_attn"]), eps)
        h = h + o
        x = rmsnorm(h, own(Lp["ffn_norm"]), eps)
        g = bitlin_in(x, Lp, "gate")
        u = bitlin_in(x, Lp, "up")
        use_gelu = gemma != ((mutant == "silu_for_gelu" and gemma) or (mutant == "gelu_for_silu" and not gemma))
        if use_gelu:
            f = (gelu_exact(g) if mutant == "exact_gelu" else gelu_ggml(g)) * u
        else:
            f = (g / (F32(1.0) + f32exp(-g))) * u
        d = bitlin_in(f, Lp, "down")
        if gemma and mutant != "no_post_norms":
            d = rmsnorm(d, own(Lp["post_ffw"]), eps)
        h = h + d
    out = rmsnorm(h, own(P["out_norm"]), eps)
    logits = (r16(out).astype(np.float64) @ P["emb"].astype(np.float64).T).astype(F32)
    if cfg.get("softcap") and mutant != "no_softcap":
        c = F32(cfg["softcap"])
        logits = (np.tanh(logits * (F32(1.0) / c)) * c).astype(F32)
    pooled = np.mean(out.astype(np.float64), axis=0).astype(F32) if mutant == "mean_pooling" else out[-1]
    norm = math.sqrt(float(np.sum((pooled * pooled).astype(np.float64))))
    return logits, out, pooled, (pooled * F32(1.0 / norm)).astype(F32)


# ---------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------
BASE = {"eps": 1e-6}
CASES = [
    # the 0.6B embedding model's shape family: Qwen3, head_dim 128 != E / H = 64
    dict(BASE, name="qwen3-bitnet-embedding", arch="qwen3", E=256, hd=128, H=4, KV=2, FF=384, L=2, V=300,
         theta=1000000.0, norm_in=True),
    dict(BASE, name="qwen3", arch="qwen3", E=256, hd=128, H=4, KV=2, FF=384, L=2, V=300, theta=1000000.0,
         norm_in=False),
    # the 270M embedding model's: Gemma3, head_dim 256 != E / H = 128, one KV head
    dict(BASE, name="gemma3-bitnet-embedding", arch="gemma3", E=256, hd=256, H=2, KV=1, FF=512, L=2, V=300,
         theta=10000.0, norm_in=True),
    dict(BASE, name="gemma3", arch="gemma3", E=256, hd=256, H=2, KV=1, FF=512, L=2, V=300, theta=10000.0,
         norm_in=False),
    # upstream-style Gemma3 keys: sliding-window layers (2 of every 3), their own RoPE
    # base, logit soft-capping
    dict(BASE, name="gemma3-swa", arch="gemma3", E=256, hd=256, H=2, KV=1, FF=512, L=3, V=300, theta=1000000.0,
         norm_in=True, swa=5, swa_period=3, theta_swa=10000.0, softcap=30.0),
]


def compare(got_logits, got_hidden, got_pooled, ref, tight, loose):
    ref_logits, ref_hidden, _, ref_pooled = ref
    diff = np.abs(got_logits.astype(np.float64) - ref_logits)
    mag = max(1.0, float(np.abs(ref_logits).max()))
    tight_frac = float(np.mean(diff.max(axis=1) <= tight * mag))
    top1 = float(np.mean(np.argmax(got_logits, axis=1) == np.argmax(ref_logits, axis=1)))
    hmag = max(1.0, float(np.abs(ref_hidden).max()))
    hdiff = float(np.abs(got_hidden.astype(np.float64) - ref_hidden).max()) / hmag
    pdiff = float(np.abs(got_pooled.astype(np.float64) - ref_pooled).max())
    cos = float(np.dot(got_pooled.astype(np.float64), ref_pooled) /
                (np.linalg.norm(got_pooled) * np.linalg.norm(ref_pooled)))
    ok = (float(diff.max()) <= loose * mag and tight_frac >= 0.8 and top1 >= 0.9 and hdiff <= loose and
          pdiff <= 5e-3 and cos >= 0.9999)
    return ok, "max|logit| %6.2f diff %.2g tight %3.0f%% top-1 %3.0f%% | hidden %.2g | pooled diff %.2g cos %.7f" % (
        mag, float(diff.max()), 100 * tight_frac, 100 * top1, hdiff, pdiff, cos)


def run_driver(driver, path, out, kv, threads, n_batch, tokens, V, E):
    subprocess.run([driver, "run", path, out, kv, str(threads), str(n_batch)] + [str(t) for t in tokens], check=True,
                   stderr=subprocess.DEVNULL)
    raw = np.fromfile(out, dtype=F32)
    n = len(tokens)
    logits = raw[:n * V].reshape(n, V)
    hidden = raw[n * V:n * V + n * E].reshape(n, E)
    pooled, pooled_eval, raw_pooled = raw[n * V + n * E:].reshape(3, E)
    os.unlink(out)
    return logits, hidden, pooled, pooled_eval, raw_pooled


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--tight", type=float, default=1e-4)
    ap.add_argument("--loose", type=float, default=1e-2)
    args = ap.parse_args()
    rng = np.random.default_rng(2026)
    failed = 0
    for ci, cfg in enumerate(CASES):
        path = os.path.join(args.tmp, "embd_%d_%d.gguf" % (os.getpid(), ci))
        out = path + ".out"
        P = make_model(cfg, 50 + ci)
        write_model(cfg, P, path)
        V, E = cfg["V"], cfg["E"]
        tokens = [int(t) for t in rng.integers(0, 259, size=14)]
        if cfg["arch"] == "qwen3":
            tokens.append(V - 1)  # the appended EOS the model pools
        refs = {kv: forward(cfg, P, tokens, kv == "f16") for kv in ("f32", "f16")}
        first = None
        for kv in ("f32", "f16"):
            for threads, n_batch in ((1, 512), (2, 512), (2, 5)):
                got = run_driver(args.driver, path, out, kv, threads, n_batch, tokens, V, E)
                ok, msg = compare(got[0], got[1], got[2], refs[kv], args.tight, args.loose)
                # bitnet_session_pool of the eval = bitnet_session_embed; raw pooled = the
                # last hidden state (libbitnet's own consistency: exact)
                same = np.array_equal(got[2], got[3]) and np.array_equal(got[4], got[1][-1])
                print("%-24s kv=%s t=%d batch=%-3d: %s%s  %s" % (cfg["name"], kv, threads, n_batch, msg,
                                                                "" if same else "  (pool/embed/raw differ)",
                                                                "ok" if ok and same else "FAIL"))
                failed += not (ok and same)
                if first is None:
                    first = got
        # the text path: BOS/EOS as the vocabulary says (qwen3: EOS appended; gemma3: BOS
        # first), one token per letter in these vocabularies
        text = "helloworld"
        if cfg["arch"] == "qwen3":
            _, _, _, byte_sym = vocab_qwen(V)
            want = [vocab_qwen(V)[0].index(byte_sym[b]) for b in text.encode()] + [V - 1]
        else:
            toks = vocab_gemma(V)[0]
            want = [2] + [toks.index(c) for c in text]
        subprocess.run([args.driver, "text", path, out, text], check=True, stderr=subprocess.DEVNULL)
        raw = np.fromfile(out, dtype=np.int32, count=1)
        emb = np.fromfile(out, dtype=F32, offset=4)
        os.unlink(out)
        ref_text = forward(cfg, P, want, True)[3]
        ok = int(raw[0]) == len(want) and float(np.abs(emb - ref_text).max()) <= 5e-3
        print("%-24s text %r: %d tokens (want %d), pooled diff %.2g  %s" % (
            cfg["name"], text, int(raw[0]), len(want), float(np.abs(emb - ref_text).max()), "ok" if ok else "FAIL"))
        failed += not ok
        # every broken detail that applies to this model must be told apart
        for mu in MUTANTS:
            ref = forward(cfg, P, tokens, False, mu)
            if all(np.array_equal(a, b) for a, b in zip(ref, refs["f32"])):
                continue  # the detail does not occur in this model
            ok, msg = compare(first[0], first[1], first[2], ref, args.tight, args.loose)
            print("%-24s   mutant %-28s %s  %s" % (cfg["name"], mu, msg, "caught" if not ok else "NOT CAUGHT"))
            failed += ok
        os.unlink(path)
    print("%d failing" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
