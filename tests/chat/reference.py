#!/usr/bin/python3
"""Compare libbitnet's Jinja renderer with python3-jinja2 on real chat templates.

    reference.py BN_CHATREF WORK_DIR

The templates (tests/chat/templates/*.jinja, listed with their sources in
tests/chat/templates.json) are rendered for every conversation of
tests/chat/conversations.json, with add_generation_prompt true and false, twice:

  - by jinja2, set up the way Hugging Face transformers renders chat templates (a
    sandboxed environment with trim_blocks, lstrip_blocks and the loop-control
    extension, transformers' own tojson filter, raise_exception and strftime_now, the
    {% generation %} tag), written here from transformers' documented behaviour;
  - by bn_chatref (libbitnet, tests/chat/bn_chatref.c).

A case passes when
  - jinja2 renders: libbitnet renders the same bytes, or -- only for templates the
    manifest marks "unsupported" -- refuses with BITNET_E_UNSUPPORTED;
  - the template calls raise_exception: libbitnet fails with BITNET_E_INVALID_ARG and
    the template's message;
  - jinja2 fails otherwise: libbitnet fails too.
Exit 0: every case passes; 1: a mismatch; 77: python3-jinja2 is missing (ctest SKIP),
unless BITNET_REQUIRE_REFERENCE=1.
"""
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = 1721995200  # 2024-07-26 12:00 UTC: what strftime_now() returns on both sides
E_INVALID_ARG, E_UNSUPPORTED = -1, -5


def skip(why):
    print("reference.py: SKIP: " + why, file=sys.stderr)
    sys.exit(1 if os.environ.get("BITNET_REQUIRE_REFERENCE") == "1" else 77)


try:
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    skip("python3-jinja2 is not installed (apt-get install python3-jinja2)")


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    pass


def raise_exception(message):
    raise RaisedByTemplate(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces jinja2's tojson (which escapes HTML characters) by json.dumps
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.datetime.fromtimestamp(NOW).strftime(fmt)


class Generation(jinja2.ext.Extension):
    """transformers' {% generation %} ... {% endgeneration %}: renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def field(b):
    return str(len(b)).encode() + b"\n" + b + b"\n"


def read_fields(data):
    out, i = [], 0
    while i < len(data):
        j = data.index(b"\n", i)
        n = int(data[i:j])
        out.append(data[j + 1:j + 1 + n])
        i = j + 1 + n + 1
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    driver, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    manifest = json.load(open(os.path.join(HERE, "templates.json"), encoding="utf-8"))
    convs = json.load(open(os.path.join(HERE, "conversations.json"), encoding="utf-8"))
    env = make_env()
    cases, blob = [], bytearray()
    for t in manifest:
        text = open(os.path.join(HERE, "templates", t["file"]), encoding="utf-8", newline="").read()
        try:
            tmpl = env.from_string(text)
            compile_error = None
        except Exception as e:  # a template jinja2 cannot even parse
            tmpl, compile_error = None, e
        for conv in convs:
            for agp in (True, False):
                if compile_error is not None:
                    expect = ("error", repr(compile_error))
                else:
                    try:
                        expect = ("ok", tmpl.render(messages=[dict(m) for m in conv["messages"]], tools=None, documents=None,
                                                    add_generation_prompt=agp, bos_token=t["bos_token"],
                                                    eos_token=t["eos_token"]))
                    except RaisedByTemplate as e:
                        expect = ("raise", str(e))
                    except Exception as e:
                        expect = ("error", "%s: %s" % (type(e).__name__, e))
                cases.append((t, conv["name"], agp, expect))
                blob += field(text.encode())
                blob += field(t["bos_token"].encode()) + field(t["eos_token"].encode())
                blob += field(b"1" if agp else b"0") + field(str(len(conv["messages"])).encode())
                for m in conv["messages"]:
                    blob += field(m["role"].encode()) + field(m["content"].encode())
    cases_path, out_path = os.path.join(work, "cases.bin"), os.path.join(work, "ours.bin")
    open(cases_path, "wb").write(bytes(blob))
    r = subprocess.run([driver, cases_path, out_path, str(NOW)])
    if r.returncode != 0:
        print("reference.py: bn_chatref failed (exit %d)" % r.returncode, file=sys.stderr)
        return 1
    got = read_fields(open(out_path, "rb").read())
    if len(got) != 3 * len(cases):
        print("reference.py: bn_chatref wrote %d fields for %d cases" % (len(got), len(cases)), file=sys.stderr)
        return 1
    fails, stats = [], {"same": 0, "both refuse": 0, "raise": 0, "unsupported": 0}
    per_template = {}
    for k, (t, cname, agp, expect) in enumerate(cases):
        status, text, mask = int(got[3 * k]), got[3 * k + 1], got[3 * k + 2]
        where = "%s | %s | add_generation_prompt=%s" % (t["file"], cname, agp)
        kind = expect[0]
        pt = per_template.setdefault(t["file"], {"ok": 0, "unsupported": 0, "cases": 0})
        pt["cases"] += 1
        if kind == "ok":
            want = expect[1].encode("utf-8", "surrogatepass")
            if status == 0 and text == want:
                stats["same"] += 1
                pt["ok"] += 1
                if len(mask) != len(text) or set(mask) - {ord("0"), ord("1")}:
                    fails.append(where + ": malformed content mask")
            elif status == E_UNSUPPORTED and t.get("unsupported"):
                stats["unsupported"] += 1
                pt["unsupported"] += 1
            elif status == 0:
                fails.append(where + ":\n   jinja2:   %r\n   libbitnet: %r" % (want[:600], text[:600]))
            else:
                fails.append(where + ": jinja2 renders, libbitnet fails (%d): %s" % (status, text.decode(errors="replace")))
        elif kind == "raise":
            if status == E_INVALID_ARG and expect[1].encode() in text:
                stats["raise"] += 1
                pt["ok"] += 1
            else:
                fails.append(where + ": the template raises %r; libbitnet: %d %r" % (expect[1], status, text[:300]))
        else:
            if status != 0:
                stats["both refuse"] += 1
                pt["ok"] += 1
            else:
                fails.append(where + ": jinja2 fails (%s) but libbitnet renders %r" % (expect[1][:200], text[:300]))
    for t in manifest:
        pt = per_template[t["file"]]
        if t.get("unsupported") and pt["unsupported"] == 0:
            fails.append("%s: marked unsupported in templates.json but rendered every case: drop the mark" % t["file"])
    shown = {}
    for f in fails:  # at most two per template
        key = f.split(" | ")[0]
        shown[key] = shown.get(key, 0) + 1
        if shown[key] <= 2:
            print("MISMATCH " + f)
    for key, n in shown.items():
        if n > 2:
            print("MISMATCH %s: %d more" % (key, n - 2))
    print("reference.py: %d templates x %d conversations x 2 = %d cases: %d identical, %d raise_exception "
          "identical, %d refused by both, %d unsupported (marked), %d mismatches"
          % (len(manifest), len(convs), len(cases), stats["same"], stats["raise"], stats["both refuse"],
             stats["unsupported"], len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
