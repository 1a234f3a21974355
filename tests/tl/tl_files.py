#!/usr/bin/env python3
"""bitnet.cpp's TL1 / TL2 files, written here from the layout its tools define, and
libbitnet reading them exactly.

The packer below is an independent numpy implementation of the layout, written from
reading these bitnet.cpp (microsoft/BitNet) sources:
  - utils/convert-hf-to-gguf-bitnet.py, preprocess_weights_tl1 / process_tl1 and
    preprocess_weights_tl2 / preprocess_three_weights_tl2 / preprocess_two_weights_tl2:
    the index of a weight pair (3*w0 + w1 + 4) or triple (|9*w0 + 3*w1 + w2| plus a sign
    bit), the tiling by (BM, BK, bm) and the byte order; transform_to_tl1/2: the scale
    (max |w|);
  - setup_env.py: the (BM, BK, bm) it passes to utils/codegen_tl1.py / codegen_tl2.py
    for each model, which write include/kernel_config.ini that the converter reads;
  - codegen_tl1.py / codegen_tl2.py, gen_transform_code: where the kernels read the
    scale (byte n/4 for TL1, the TL2 size formula rounded up to 32 for TL2);
  - the gguf-py of its llama.cpp fork (gguf_writer.py): TL tensors get an extent of
    their padded size + 32 bytes, and the "_scale" tensor written after each is left out
    of the tensor table, so its 4 bytes land in that tail;
  - general.file_type = the TL type id (the converter writes its ftype there).
The layout is expressed here as reshapes of the index matrix (one axis per tiling
level), not as the C loader's digit formulas (lib/model_tl.c), so the two can catch
each other's mistakes.

Check: a model of each supported shape is written in I2_S (bn_ref_driver write), its
projections re-packed as TL1 and as TL2 with the same ternary values and scales, and
libbitnet's logits for the TL files must equal those of the I2_S file bit for bit.
Refusals: a shape without a bitnet.cpp kernel configuration, an out-of-range index, and
type 39 in a file that is not a bitnet.cpp TL2 file (MXFP4).

  tl_files.py --driver bn_ref_driver --tmp DIR [--full]   (--full adds the Llama3-8B shape)
"""
import argparse
import os
import struct
import subprocess
import sys

import numpy as np

I2_S, TL1, TL2 = 36, 38, 39
# (rows M, columns K) -> (BM, BK, bm): what bitnet.cpp's setup_env.py generates
TL1_CFG = {(1536, 4096): (256, 128, 32), (1536, 1536): (128, 64, 64), (4096, 1536): (256, 128, 32),
           (3200, 8640): (160, 64, 32), (3200, 3200): (320, 128, 64), (8640, 3200): (320, 64, 32),
           (14336, 4096): (256, 128, 32), (4096, 14336): (128, 64, 64), (1024, 4096): (256, 128, 32),
           (4096, 4096): (128, 64, 64)}
TL2_CFG = {(1536, 4096): (256, 96, 32), (1536, 1536): (128, 192, 32), (4096, 1536): (256, 96, 32),
           (3200, 8640): (160, 96, 32), (3200, 3200): (320, 96, 32), (8640, 3200): (320, 96, 32),
           (14336, 4096): (256, 96, 32), (4096, 14336): (128, 96, 32), (1024, 4096): (256, 96, 32),
           (4096, 4096): (128, 96, 32)}


# ---- the packer ------------------------------------------------------------------------

def tile(idx, BM, BY, bm, per, inner):
    """Reorder an index matrix idx[M, K/per] (one index per group of `per` weights) into
    bitnet.cpp's tile order: M-tiles of BM rows, then K-blocks of BY columns, then row
    blocks of bm, then column blocks of `inner` indices... returned as the array of
    shape (M/BM, K/BY, BM/bm, BY/(per*inner), bm, inner): rows inside a bm block vary
    slower than the `inner` indices of one row, which become one byte's nibbles
    (inner = 2) or one sign word's bits."""
    M, G = idx.shape
    gb = BY // per  # indices per K-block
    a = idx.reshape(M // BM, BM // bm, bm, G // gb, gb // inner, inner)
    # axes: tileM, blockm, rowInBlock, blockK, groupInK, inner
    return a.transpose(0, 3, 1, 4, 2, 5)


def nibbles(hi, lo):
    return (hi.astype(np.uint8) << 4 | lo.astype(np.uint8)).astype(np.uint8)


def pack_tl1(w, BM, BK, bm):
    """w[M, K] in {-1, 0, 1} -> TL1 bytes (M*K/4)."""
    M, K = w.shape
    idx = 3 * w[:, 0::2] + w[:, 1::2] + 4                 # pair index per (row, pair)
    by = 256 // bm                                        # weights of a row per bm block
    t = tile(idx, BM, BK, bm, 2, by // 2)                 # (.., BY/by, bm, by/2)
    # inside a (bm rows x by/2 pairs) block: rows in groups of 16; per group, the pairs
    # two at a time, each pair of pairs giving 16 bytes (one per row: high = even pair)
    s = t.shape
    t = t.reshape(s[0], s[1], s[2], s[3], bm // 16, 16, by // 4, 2)
    t = t.transpose(0, 1, 2, 3, 4, 6, 5, 7)               # .., r16, j4, r, (hi, lo)
    return nibbles(t[..., 0], t[..., 1]).reshape(-1)


def swap_middle(blocks):
    """32-byte blocks of 8-byte groups 0 1 2 3 are stored as 0 2 1 3."""
    b = blocks.reshape(-1, 4, 8)
    return b[:, [0, 2, 1, 3], :].reshape(-1)


def pack_tl2(w, BM, BK, bm):
    """w[M, K] in {-1, 0, 1} -> TL2 bytes (three-part indices, sign bits, two-part
    indices), padded to bitnet.cpp's size formula."""
    assert bm == 32
    M, K = w.shape
    K3 = K - K % BK
    w3, w2 = w[:, :K3], w[:, K3:]
    t = 9 * w3[:, 0::3] + 3 * w3[:, 1::3] + w3[:, 2::3]   # -13..13 per triple
    mag, neg = np.abs(t), (t < 0).astype(np.uint16)
    a = tile(mag, BM, BK, 32, 3, 2)                       # (.., BY/6, 32 rows, 2 triples)
    three = swap_middle(nibbles(a[..., 0], a[..., 1]).reshape(-1))
    # signs: per (tile, K-block, 32-row block, 8 triples): 8 x 32 bits = 16 u16 words,
    # bit 15 - i of word c for the i-th bit of a (triple, row) sequence where the row
    # runs fastest within 16-row halves: i = 2*triple + row // 16, c = row % 16
    sg = tile(neg, BM, BK, 32, 3, 8)                      # (.., BY/24, 32 rows, 8 triples)
    s = sg.shape
    sg = sg.transpose(0, 1, 2, 3, 5, 4).reshape(s[0], s[1], s[2], s[3], 16, 16)  # (.., i, c)
    words = np.zeros(sg.shape[:4] + (16,), dtype=np.uint16)
    for i in range(16):
        words |= sg[..., i, :] << (15 - i)
    signs = words.astype("<u2").view(np.uint8).reshape(-1)
    parts = [three, signs]
    if K3 < K:
        idx = 3 * w2[:, 0::2] + w2[:, 1::2] + 4
        b = tile(idx, BM, 32, 32, 2, 2)                   # K-blocks of 32, 4 columns per byte block
        parts.append(swap_middle(nibbles(b[..., 0], b[..., 1]).reshape(-1)))
    data = np.concatenate(parts)
    size = (K - 256) * M // 3 * 5 // 8 + 256 * M // 2 * 4 // 8
    assert data.size <= size
    return np.concatenate([data, np.zeros(size - data.size, dtype=np.uint8)])


# ---- GGUF rewriting ----------------------------------------------------------------------

def read_gguf(path):
    raw = open(path, "rb").read()
    magic, ver, nt, nkv = struct.unpack_from("<IIQQ", raw, 0)
    assert magic == 0x46554747
    off = 24

    def skip_val(t, o):
        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        if t == 8:
            (n,) = struct.unpack_from("<Q", raw, o)
            return o + 8 + n
        if t == 9:
            et, n = struct.unpack_from("<IQ", raw, o)
            o += 12
            for _ in range(n):
                o = skip_val(et, o)
            return o
        return o + sizes[t]

    kv_start = off
    for _ in range(nkv):
        (n,) = struct.unpack_from("<Q", raw, off)
        off += 8 + n
        (t,) = struct.unpack_from("<I", raw, off)
        off = skip_val(t, off + 4)
    kv_bytes = raw[kv_start:off]
    infos = []
    for _ in range(nt):
        (n,) = struct.unpack_from("<Q", raw, off)
        name = raw[off + 8:off + 8 + n].decode()
        off += 8 + n
        (nd,) = struct.unpack_from("<I", raw, off)
        ne = list(struct.unpack_from("<%dQ" % nd, raw, off + 4))
        typ, toff = struct.unpack_from("<IQ", raw, off + 4 + 8 * nd)
        off += 4 + 8 * nd + 12
        infos.append([name, ne, typ, toff])
    data0 = (off + 31) // 32 * 32
    ends = sorted(i[3] for i in infos) + [len(raw) - data0]
    out = []
    for name, ne, typ, toff in infos:
        nxt = min(e for e in ends if e > toff)
        out.append((name, ne, typ, raw[data0 + toff:data0 + nxt]))
    return nkv, kv_bytes, out


def i2s_decode(ne, raw):
    n = ne[0] * ne[1]
    codes = np.frombuffer(raw[:n // 4], dtype=np.uint8).reshape(-1, 32)
    vals = np.stack([(codes >> (6 - 2 * g)) & 3 for g in range(4)], axis=1).reshape(-1)[:n]
    return (vals.astype(np.int8) - 1).reshape(ne[1], ne[0]), raw[n // 4:n // 4 + 4]


def write_tl(src, dst, tl, file_type=None, corrupt=None):
    """Rewrite an I2_S model's projections as TL1 / TL2 (gguf-py's layout: padded data,
    then a 32-byte tail whose first 4 bytes are the f32 scale)."""
    nkv, kv_bytes, tensors = read_gguf(src)
    cfg = TL1_CFG if tl == TL1 else TL2_CFG
    ft = tl if file_type is None else file_type
    key = b"general.file_type"
    kv = kv_bytes + struct.pack("<Q", len(key)) + key + struct.pack("<II", 4, ft)
    blobs, infos, off = [], b"", 0
    for name, ne, typ, raw in tensors:
        if typ == I2_S and (ne[1], ne[0]) in cfg:
            w, scale = i2s_decode(ne, raw)
            BM, BK, bm = cfg[(ne[1], ne[0])]
            body = (pack_tl1 if tl == TL1 else pack_tl2)(w, BM, BK, bm).tobytes()
            if corrupt == name:
                body = b"\xff" + body[1:]
            pad = (-len(body)) % 32
            blob, typ = body + b"\0" * pad + scale + b"\0" * 28, tl
        else:
            blob = raw
        blob += b"\0" * ((-len(blob)) % 32)
        infos += struct.pack("<Q", len(name)) + name.encode() + struct.pack("<I", len(ne))
        infos += struct.pack("<%dQ" % len(ne), *ne) + struct.pack("<IQ", typ, off)
        blobs.append(blob)
        off += len(blob)
    head = struct.pack("<IIQQ", 0x46554747, 3, len(tensors), nkv + 1) + kv + infos
    head += b"\0" * ((-len(head)) % 32)
    with open(dst, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


# ---- the test ------------------------------------------------------------------------------

def logits(driver, path, out, tokens):
    r = subprocess.run([driver, "logits", path, "f32", "2", out] + [str(t) for t in tokens],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr
    return np.fromfile(out, dtype=np.float32), r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--full", action="store_true", help="also the Llama3-8B shape (slow)")
    args = ap.parse_args()
    shapes = [("bitnet_b1_58-large", "bitnet", 1536, 4096, 16, 16), ("bitnet_b1_58-3B", "bitnet", 3200, 8640, 32, 32)]
    if args.full:
        shapes.append(("Llama3-8B-1.58", "llama", 4096, 14336, 32, 8))
    tokens = [1, 300, 280, 261, 299, 270]
    failed = 0
    pid = os.getpid()
    for k, (label, arch, E, FF, NH, NKV) in enumerate(shapes):
        base = os.path.join(args.tmp, "tl_%d_%d" % (pid, k))
        subprocess.run([args.driver, "write", arch, "i2_s", str(7 + k), base + ".i2s.gguf", str(E), str(FF), str(NH),
                        str(NKV), "1", "320"], check=True)
        ref, err = logits(args.driver, base + ".i2s.gguf", base + ".ref", tokens)
        assert ref is not None, err
        for tl, tn in ((TL1, "TL1"), (TL2, "TL2")):
            write_tl(base + ".i2s.gguf", base + ".tl.gguf", tl)
            got, err = logits(args.driver, base + ".tl.gguf", base + ".got", tokens)
            ok = got is not None and got.shape == ref.shape and np.array_equal(got, ref)
            print("%-20s %s: %s" % (label, tn, "logits identical to the I2_S file" if ok else "FAILED " + err.strip()))
            failed += not ok
            if ok and ("weight_type=" in err or True):
                ok2 = (" %s " % tn) in err
                if not ok2:
                    print("  expected the model description to name %s: %s" % (tn, err.strip()))
                    failed += 1
        if k == 0:  # refusals, on the first shape
            cases = [
                ("an out-of-range index", dict(tl=TL1, corrupt="blk.0.ffn_up.weight"), "out of range"),
                ("type 39 outside a TL2 file", dict(tl=TL2, file_type=38), "MXFP4"),
            ]
            for what, kw, says in cases:
                write_tl(base + ".i2s.gguf", base + ".bad.gguf", **kw)
                got, err = logits(args.driver, base + ".bad.gguf", base + ".got", tokens)
                ok = got is None and says in err
                print("%-20s refuses %s: %s" % (label, what, "ok" if ok else "FAILED: " + err.strip()))
                failed += not ok
        for f in (".i2s.gguf", ".tl.gguf", ".bad.gguf", ".ref", ".got"):
            if os.path.exists(base + f):
                os.unlink(base + f)
    # a shape bitnet.cpp has no kernel configuration for: refused with the way out
    base = os.path.join(args.tmp, "tl_%d_small" % pid)
    subprocess.run([args.driver, "write", "bitnet", "i2_s", "3", base + ".i2s.gguf", "256", "512", "4", "4", "1", "300"],
                   check=True)
    nkv, kv_bytes, tensors = read_gguf(base + ".i2s.gguf")
    global TL1_CFG
    saved = dict(TL1_CFG)
    TL1_CFG[(256, 256)] = (128, 64, 64)  # pack it anyway, with some tiling
    write_tl(base + ".i2s.gguf", base + ".tl.gguf", TL1)
    TL1_CFG = saved
    got, err = logits(args.driver, base + ".tl.gguf", base + ".got", tokens[:3])
    ok = got is None and "convert the Hugging Face checkpoint" in err and "256 x 256" in err
    print("%-20s refuses a shape without a bitnet.cpp configuration: %s" % ("256 x 256", "ok" if ok else "FAILED: " + err))
    failed += not ok
    for f in (".i2s.gguf", ".tl.gguf", ".got"):
        if os.path.exists(base + f):
            os.unlink(base + f)
    print("FAILED" if failed else "all TL checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
