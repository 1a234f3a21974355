"""Hostile inputs for bitnet-convert (issue 12, items 1, 2, 6, 7).

Every case starts from a small valid BitNet 2B-4T style checkpoint (hfmodels.make_model),
breaks one thing, runs bitnet-convert with a timeout and requires: no signal, no hang, a
non-zero exit status, no output file left behind, and a message on stderr that names what
is wrong (a regular expression per case).  One unbroken conversion must succeed, so the
test cannot pass by refusing everything.

usage: test_convert_hostile.py --convert BIN --work DIR
"""
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfmodels  # noqa: E402

FAILS = []


def edit_json(d, name, fn):
    p = os.path.join(d, name)
    o = json.load(open(p))
    fn(o)
    json.dump(o, open(p, "w"))


def run_convert(conv, d, out, timeout=60):
    t0 = time.time()
    try:
        r = subprocess.run([conv, d, "-o", out, "--force", "-q"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", time.time() - t0
    return r.returncode, r.stderr, time.time() - t0


def case(args, base, label, mutate, pattern, max_seconds=20):
    d = os.path.join(args.work, re.sub(r"[^A-Za-z0-9]+", "_", label))
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base, d)
    mutate(d)
    out = os.path.join(d, "out.gguf")
    rc, err, secs = run_convert(args.convert, d, out, timeout=max(60, max_seconds * 3))
    ok = True
    why = ""
    if rc is None:
        ok, why = False, "hangs (timeout)"
    elif rc < 0:
        ok, why = False, "killed by signal %d" % -rc
    elif rc == 0:
        ok, why = False, "exit status 0 (accepted)"
    elif not re.search(pattern, err):
        ok, why = False, "message does not match %r" % pattern
    elif os.path.exists(out):
        ok, why = False, "left an output file"
    elif secs > max_seconds:
        ok, why = False, "took %.1f s" % secs
    print("%-4s %-48s %s" % ("ok" if ok else "FAIL", label, why or err.strip().splitlines()[-1][:110]))
    if not ok:
        print("     stderr: " + err.strip()[:400].replace("\n", "\n     "))
        FAILS.append(label)


def st_header(path, header_json):
    raw = header_json.encode()
    open(path, "wb").write(struct.pack("<Q", len(raw)) + raw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convert", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    base = os.path.join(args.work, "base")
    shutil.rmtree(base, ignore_errors=True)
    hfmodels.make_model(base, "2b4t-bf16", n_layer=1, n_embd=128, n_ff=256, n_head=4, n_head_kv=2)

    # the unbroken checkpoint converts
    out = os.path.join(args.work, "base.gguf")
    rc, err, _ = run_convert(args.convert, base, out)
    if rc != 0 or not os.path.exists(out):
        print("FAIL the valid checkpoint does not convert: rc=%s\n%s" % (rc, err))
        sys.exit(1)
    print("ok   valid checkpoint converts")

    # ---- item 1: JSON null (and other wrong types) where a string is expected
    case(args, base, "config architectures [null]",
         lambda d: edit_json(d, "config.json", lambda o: o.update(architectures=[None])),
         r"config\.json.*architectures\[0\].*string")
    case(args, base, "config architectures [7]",
         lambda d: edit_json(d, "config.json", lambda o: o.update(architectures=[7])),
         r"config\.json.*architectures\[0\].*string")
    case(args, base, "tokenizer model.type null",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["model"].update(type=None)),
         r"tokenizer\.json.*model\.type.*string")
    case(args, base, "tokenizer pre_tokenizer type null",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["pre_tokenizer"]["pretokenizers"][0].update(type=None)),
         r"tokenizer\.json.*pre_tokenizer.*type.*string")
    case(args, base, "tokenizer Regex null",
         lambda d: edit_json(d, "tokenizer.json",
                             lambda o: o["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex=None)),
         r"tokenizer\.json.*Regex.*string")
    case(args, base, "tokenizer pre_tokenizer type 5",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["pre_tokenizer"].update(type=5)),
         r"tokenizer\.json.*pre_tokenizer.*type.*string")

    def merge_null(o):
        o["model"]["merges"] = [m.split(" ") for m in o["model"]["merges"]]
        o["model"]["merges"][3] = [o["model"]["merges"][3][0], None]
    case(args, base, "tokenizer merge [a, null]", lambda d: edit_json(d, "tokenizer.json", merge_null),
         r"tokenizer\.json.*model\.merges\[3\]\[1\].*string")
    case(args, base, "tokenizer merges null entry",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["model"]["merges"].__setitem__(2, None)),
         r"tokenizer\.json.*model\.merges\[2\]")
    case(args, base, "tokenizer added_tokens special 1",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["added_tokens"][0].update(special="yes")),
         r"tokenizer\.json.*added_tokens\[0\]\.special")
    case(args, base, "tokenizer_config chat_template name null",
         lambda d: edit_json(d, "tokenizer_config.json", lambda o: o.update(
             chat_template=[{"name": None, "template": "x"}, {"name": "default", "template": "y"}])),
         r"tokenizer_config\.json.*chat_template\[0\]\.name.*string")
    case(args, base, "tokenizer_config chat_template template null",
         lambda d: edit_json(d, "tokenizer_config.json", lambda o: o.update(
             chat_template=[{"name": "default", "template": None}])),
         r"tokenizer_config\.json.*chat_template\[0\]\.template.*string")
    case(args, base, "tokenizer_config chat_template 5",
         lambda d: edit_json(d, "tokenizer_config.json", lambda o: o.update(chat_template=5)),
         r"tokenizer_config\.json.*chat_template")
    case(args, base, "tokenizer_config bos_token 5",
         lambda d: edit_json(d, "tokenizer_config.json", lambda o: o.update(bos_token=5)),
         r"tokenizer_config\.json.*bos_token")
    case(args, base, "tokenizer_config bos_token unknown text",
         lambda d: edit_json(d, "tokenizer_config.json", lambda o: o.update(bos_token="<no such token>")),
         r"tokenizer_config\.json.*bos_token.*<no such token>")
    case(args, base, "index weight_map file null",
         lambda d: (os.rename(os.path.join(d, "model.safetensors"), os.path.join(d, "a.safetensors")),
                    json.dump({"weight_map": {"model.norm.weight": None}},
                              open(os.path.join(d, "model.safetensors.index.json"), "w"))),
         r"index\.json.*weight_map.*model\.norm\.weight")

    # ---- item 2: absurd token ids are refused quickly, before allocating for them
    for big in (2147483647, 1 << 26, 1 << 40, -5):
        case(args, base, "tokenizer vocab id %d" % big,
             lambda d, big=big: edit_json(d, "tokenizer.json", lambda o: o["model"]["vocab"].update(zzz=big)),
             r"tokenizer\.json.*'zzz'.*%d" % big, max_seconds=5)
    case(args, base, "tokenizer added_tokens id 2^31-1",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["added_tokens"][0].update(id=2147483647)),
         r"tokenizer\.json.*added_tokens\[0\].*2147483647", max_seconds=5)

    # ---- item 6: stalls
    def fifo_shard(d):
        os.rename(os.path.join(d, "model.safetensors"), os.path.join(d, "a.safetensors"))
        os.mkfifo(os.path.join(d, "b.safetensors"))
        hdr = hfmodels.read_safetensors(os.path.join(d, "a.safetensors"))
        names = list(hdr.keys()) if isinstance(hdr, dict) else []
        wm = {n: "a.safetensors" for n in names}
        wm["extra.weight"] = "b.safetensors"
        json.dump({"weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
    case(args, base, "index names a FIFO", fifo_shard, r"b\.safetensors.*not a regular file", max_seconds=5)
    case(args, base, "model.safetensors is a directory",
         lambda d: (os.remove(os.path.join(d, "model.safetensors")), os.mkdir(os.path.join(d, "model.safetensors"))),
         r"model\.safetensors", max_seconds=5)

    def many_entries(d):
        # 65536 tensors (1 element each) in a header: must be parsed in well under a second
        # per 64k entries (it was quadratic: 22.7 s); the checkpoint is then refused for
        # its unknown tensors, which is the message we expect.
        n = 65536
        hdr = {"t%06d" % i: {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(n)}
        raw = json.dumps(hdr).encode()
        open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(raw)) + raw + b"\0" * n)
    case(args, base, "safetensors header with 64k entries", many_entries, r"missing from the checkpoint", max_seconds=6)

    def huge_header(d):
        # a header length past the limit is refused before anything is allocated for it
        p = os.path.join(d, "model.safetensors")
        with open(p, "r+b") as f:
            f.write(struct.pack("<Q", 100 << 20))
            f.truncate(101 << 20)
    case(args, base, "safetensors header length 100 MiB", huge_header, r"model\.safetensors.*header", max_seconds=5)

    # ---- item 7: values the converter must refuse rather than write
    for v in (-1, 0, 1 << 32, 1 << 40, "4096", 1.5):
        case(args, base, "max_position_embeddings %r" % (v,),
             lambda d, v=v: edit_json(d, "config.json", lambda o: o.update(max_position_embeddings=v)),
             r"config\.json.*max_position_embeddings")
    case(args, base, "merge naming an unknown token",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["model"]["merges"].__setitem__(0, "Qx Zy")),
         r"tokenizer\.json.*model\.merges\[0\].*Qx")
    case(args, base, "merge whose result is not a token",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["model"]["merges"].append("a a")),
         r"tokenizer\.json.*model\.merges\[\d+\].*aa")
    case(args, base, "empty vocabulary",
         lambda d: edit_json(d, "tokenizer.json", lambda o: (o["model"].update(vocab={}, merges=[]),
                                                             o.update(added_tokens=[]))),
         r"tokenizer\.json.*(empty|model\.vocab)")
    case(args, base, "vocabulary of added tokens only",
         lambda d: edit_json(d, "tokenizer.json", lambda o: o["model"].update(vocab={}, merges=[])),
         r"tokenizer\.json.*model\.vocab.*empty")
    case(args, base, "invalid tokenizer_config.json",
         lambda d: open(os.path.join(d, "tokenizer_config.json"), "w").write("{\"chat_template\": \"x\","),
         r"tokenizer_config\.json.*invalid JSON")
    case(args, base, "invalid config.json",
         lambda d: open(os.path.join(d, "config.json"), "w").write("[1, 2"),
         r"config\.json.*invalid JSON")
    case(args, base, "tokenizer_config.json not an object",
         lambda d: open(os.path.join(d, "tokenizer_config.json"), "w").write("[1, 2]"),
         r"tokenizer_config\.json.*not a JSON object")

    if FAILS:
        print("%d case(s) failed: %s" % (len(FAILS), ", ".join(FAILS)))
        sys.exit(1)
    print("all hostile conversions refused cleanly")


if __name__ == "__main__":
    main()
