#!/usr/bin/python3
"""Falcon3-*-1.58bit layouts through bitnet-convert and libbitnet, against the numpy
reference of tests/convert/hfmodels.py (written from docs/spec.md, not from the C code).

The checkpoint is tests/convert/hfmodels.py's packed LlamaForCausalLM (uint8 weights,
four rows per byte, bf16 weight_scale that BitLinear divides by, untied lm_head) with the
configuration keys of the Falcon3 1.58-bit releases (docs/spec.md §5.4): rope_theta
1000042, rms_norm_eps 1e-6, an explicit head_dim of 256 (hidden / heads here too), GQA,
8192 positions; its tokenizer.json is converted with --pre falcon3, the name bitnet.cpp's
converter writes for Falcon3.  The converted file must say what the model is (llama,
the RoPE base, eps, the head size, falcon3), libbitnet must run it as llama with
LLaMA-3's split rules and BOS, and its logits and greedy tokens must match the
reference.  (Only the sizes are small; the real tokenizer.json's pre_tokenizer could not
be read, see docs/spec.md §10.)

  falcon_convert.py --convert BIN --probe BIN --work DIR
"""
import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "convert"))
import hfmodels  # noqa: E402
import test_convert as tc  # noqa: E402  (convert / compare / gguf_kv / check)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convert", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    d = os.path.join(args.work, "falcon3-1.58bit")
    # Falcon3-1B-Instruct-1.58bit: 8 heads / 4 KV heads of 256; here 2 / 1 of 256
    hfmodels.make_model(d, kind="llama", seed=25, n_layer=2, n_embd=512, n_ff=1024, n_head=2, n_head_kv=1)
    cfg_path = os.path.join(d, "config.json")
    cfg = json.load(open(cfg_path))
    cfg.update({"rope_theta": 1000042.0, "rms_norm_eps": 1e-06, "head_dim": 256, "max_position_embeddings": 8192})
    json.dump(cfg, open(cfg_path, "w"), indent=2)
    prompt = [5, 17, 100, 3, 250, 42, 7, 300]
    for wt in ("i2_s",):  # (what bitnet.cpp writes; TQ conversions of the llama layout: tests/convert)
        label = "falcon3-1.58bit/%s" % wt
        out = os.path.join(args.work, "falcon3-%s.gguf" % wt)
        r = tc.convert(args, d, out, "--type", wt, "--pre", "falcon3", "-q")
        tc.check(r.returncode == 0 and os.path.exists(out), "%s: converts (%s)" % (label, r.stderr.strip()[-300:]))
        if r.returncode != 0:
            continue
        kv = tc.gguf_kv(out)
        want = {"general.architecture": "llama", "llama.rope.freq_base": 1000042.0,
                "llama.attention.layer_norm_rms_epsilon": 1e-06, "llama.rope.dimension_count": 256,
                "tokenizer.ggml.pre": "falcon3"}
        for k, v in want.items():
            got = kv.get(k)
            ok = got == v if not isinstance(v, float) else got is not None and abs(got - v) <= 1e-6 * abs(v)
            tc.check(ok, "%s: %s = %r (got %r)" % (label, k, v, got))
        _, tens, _ = tc.gguf_kv(out, with_tensors=True)
        tc.check("output.weight" in tens, "%s: the untied lm_head is written as output.weight" % label)
        info = tc.run([args.probe, out, "info"]).stdout
        tc.check("arch=llama " in info, "%s: libbitnet runs it as llama (%s)" % (label, info.strip()))
        ref = hfmodels.Reference(d, wt, "f16")
        tc.compare(args, ref, out, prompt, 6, 1e-3, label)
    if tc.FAILS:
        print("%d failing:" % len(tc.FAILS))
        for f in tc.FAILS:
            print("  " + f)
        return 1
    print("all falcon checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
