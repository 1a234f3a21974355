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

The checkpoint carries Falcon3's chat template (tests/chat/templates, from
optimum-intel's verbatim copy of tiiuae/Falcon3-7B-Instruct's): the converted file must
hold it byte for byte, and libbitnet's Jinja renderer must render the model's own
template as jinja2 does with transformers' settings (tests/chat/reference.py), and
bitnet_chat_tokenize must give BOS + the reference BPE of the text.

  falcon_convert.py --convert BIN --probe BIN --chat BIN --work DIR
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

FALCON3_TEMPLATE = os.path.join(HERE, "..", "chat", "templates", "tiiuae-Falcon3-7B-Instruct.jinja")
CONVERSATIONS = [
    [("user", "Hello there")],
    [("system", "You are terse."), ("user", "What is 2+2?")],
    [("system", "Be kind."), ("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "Name a colour")],
    [("user", "One"), ("assistant", "Two")],
]


def jinja_env():
    try:
        import jinja2  # noqa: F401
    except ImportError:
        return None
    sys.path.insert(0, os.path.join(HERE, "..", "chat"))
    import reference  # noqa: E402  (transformers' jinja2 settings)
    return reference.make_env()


def ref_chat_ids(text, tok, specials):
    """BOS, then the text cut at special-token texts (the template's own: the contents
    here hold none), each piece byte-level BPE'd by the converter tests' reference."""
    ids, i = [tok["bos"]], 0
    while i < len(text):
        hit = min(((text.find(s, i), s) for s in specials if text.find(s, i) >= 0), default=None)
        j = hit[0] if hit else len(text)
        if j > i:
            ids += hfmodels.bpe_encode(text[i:j], tok["vocab"], tok["merges"])
        if hit:
            ids.append(specials[hit[1]])
            j += len(hit[1])
        i = j
    return ids


def check_chat(args, out, label, template, tok, specials):
    kv = tc.gguf_kv(out)
    tc.check(kv.get("tokenizer.chat_template") == template, "%s: the chat template is copied byte for byte" % label)
    env = jinja_env()
    if env is None:
        print("note: python3-jinja2 missing: the chat rendering is not compared")
        return
    tmpl = env.from_string(template)
    for conv in CONVERSATIONS:
        for gen in (True, False):
            want = tmpl.render(messages=[{"role": r, "content": c} for r, c in conv], add_generation_prompt=gen,
                               bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", tools=None)
            argv = [args.chat, out, "1" if gen else "0"] + [x for m in conv for x in m]
            r = tc.run(argv)
            got, _, ids = r.stdout.rpartition("\n--ids:")
            what = "%s: chat %r gen=%d" % (label, [m[0] for m in conv], gen)
            tc.check(r.returncode == 0 and got == want, "%s renders as jinja2 (%r vs %r)" % (what, got, want))
            want_ids = ref_chat_ids(want, tok, specials)
            tc.check([int(x) for x in ids.split()] == want_ids, "%s: bitnet_chat_tokenize = BOS + BPE" % what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convert", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--chat", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    d = os.path.join(args.work, "falcon3-1.58bit")
    # Falcon3-1B-Instruct-1.58bit: 8 heads / 4 KV heads of 256; here 2 / 1 of 256
    _, tok = hfmodels.make_model(d, kind="llama", seed=25, n_layer=2, n_embd=512, n_ff=1024, n_head=2, n_head_kv=1)
    template = open(FALCON3_TEMPLATE, encoding="utf-8").read()
    tcfg_path = os.path.join(d, "tokenizer_config.json")
    tcfg = json.load(open(tcfg_path, encoding="utf-8"))
    tcfg["chat_template"] = template
    json.dump(tcfg, open(tcfg_path, "w"), ensure_ascii=False)
    specials = {v["content"]: int(k) for k, v in tcfg["added_tokens_decoder"].items()}
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
        check_chat(args, out, label, template, tok, specials)
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
