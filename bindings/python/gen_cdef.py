#!/usr/bin/env python3
"""Generate bitnet/_cdef.h (the declarations cffi needs) from include/bitnet.h.

cffi's cdef() accepts plain C declarations and integer #defines, not #if/#include or
function-like macros.  This script keeps every typedef, struct, enum and function
declaration of the public header, drops comments, preprocessor blocks and the
BITNET_API marker, and turns the integer flag macros into plain #defines.

    gen_cdef.py [HEADER] [OUT]      write OUT (default: bitnet/_cdef.h)
    gen_cdef.py --check HEADER OUT  exit 1 if OUT is not what HEADER generates
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_HEADER = os.path.join(HERE, "..", "..", "include", "bitnet.h")
DEFAULT_OUT = os.path.join(HERE, "bitnet", "_cdef.h")


def generate(header_text):
    text = re.sub(r"/\*.*?\*/", "", header_text, flags=re.S)
    text = re.sub(r"\\\n", " ", text)  # join continued preprocessor lines
    text = re.sub(r"//[^\n]*", "", text)
    out, defines, depth = [], [], 0
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("#"):
            m = re.match(r"#\s*define\s+(BITNET_[A-Z0-9_]+)\s+([0-9]+)u?\s*$", s)
            if m and not m.group(1).startswith("BITNET_VERSION_"):
                defines.append("#define %s %s" % (m.group(1), m.group(2)))
            # skip every other directive, and the bodies of #if blocks that only
            # exist for C++ (extern "C") or the export macro
            if re.match(r"#\s*if", s):
                depth += 1
            elif re.match(r"#\s*endif", s):
                depth -= 1
            continue
        if s in ('extern "C" {', "}") and "extern" in s or (s == "}" and depth > 0):
            continue
        out.append(line.replace("BITNET_API ", ""))
    body = "\n".join(out)
    body = re.sub(r"\n\s*\n+", "\n", body).strip() + "\n"
    head = "/* Generated from include/bitnet.h by bindings/python/gen_cdef.py: do not edit. */\n"
    return head + "\n".join(defines) + "\n" + body


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    header = args[0] if args else DEFAULT_HEADER
    out = args[1] if len(args) > 1 else DEFAULT_OUT
    with open(header, encoding="utf-8") as f:
        text = generate(f.read())
    if check:
        with open(out, encoding="utf-8") as f:
            if f.read() != text:
                sys.stderr.write("%s is stale: run bindings/python/gen_cdef.py\n" % out)
                return 1
        return 0
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
