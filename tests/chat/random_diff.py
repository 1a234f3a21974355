#!/usr/bin/python3
"""Differential test of libbitnet's Jinja renderer against python3-jinja2 on random templates.

    random_diff.py BN_CHATREF WORK_DIR [COUNT [SEED]]

Generates COUNT (default 1500) random templates from a grammar of the constructs chat
templates use (expressions with every operator, filters, tests, methods, subscripts
and slices; if / for / set / set blocks / namespaces / macros / loop controls;
whitespace control and comments), renders each for a few conversations with jinja2
(set up as in reference.py) and with libbitnet (bn_chatref), and compares them with
the rules of reference.py: same text, or both refuse; libbitnet may refuse with
BITNET_E_UNSUPPORTED where jinja2 renders (counted and listed, never a wrong text).
Exit 0: no mismatch; 1: a mismatch; 77: python3-jinja2 is missing.
"""
import collections
import warnings
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402  (skips with 77 when jinja2 is missing)

ATOMS = ["0", "1", "-2", "3", "7", "2.5", "0.1", "1e20", "-0.0", "'a'", "'Hello World'", "''", "' x y '",
         "\"q'uote\"", "'\\n'", "'tab\\there'", "'é'", "'caf\\u00e9'", "'a,b,,c'", "'<|eot_id|>'", "none", "true",
         "false", "[1, 2, 3]", "['b', 'a', 'B']", "[]", "[[1, 2], [3, 4]]", "{'k': 1, 'j': 'v'}", "{}",
         "{'role': 'user', 'content': 'hi'}", "(1, 'x')", "()", "messages", "messages[0]", "messages[-1]",
         "messages[0].content", "messages[0]['role']", "bos_token", "eos_token", "add_generation_prompt",
         "nothing_here", "range(3)", "range(1, 7, 2)", "dict(a=1, b='x')", "tools"]
LOOP_ATOMS = ["m", "m.content", "m['role']", "m.role", "loop.index", "loop.index0", "loop.first", "loop.last",
              "loop.length", "loop.revindex", "loop.revindex0", "loop.previtem", "loop.nextitem",
              "loop.cycle('odd', 'even')"]
BINOPS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"]
FILTERS = ["trim", "upper", "lower", "capitalize", "title", "length", "count", "tojson", "tojson(indent=2)",
           "tojson(sort_keys=true)", "tojson(separators=(',', ':'))", "replace('a', 'X')", "replace('', '-')",
           "replace('l', 'L', 1)", "default('dflt')", "default('d', true)", "d", "join", "join(', ')",
           "join('|', attribute='role')", "first", "last", "string", "items", "list", "int", "int(5)", "float",
           "abs", "indent", "indent(2, true)", "indent('> ', blank=true)", "selectattr('role', 'equalto', 'user')",
           "rejectattr('role', 'equalto', 'user')", "selectattr('content')", "map(attribute='role')",
           "map('upper')", "map(attribute='x', default='?')", "select('odd')", "reject('none')", "select",
           "unique", "reverse", "dictsort", "dictsort(by='value')", "wordcount", "trim('x ')", "sum", "min",
           "max", "batch(2)", "safe", "round"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable",
         "sequence", "boolean", "true", "false", "odd", "even", "divisibleby(3)", "divisibleby 2", "eq 1",
         "equalto('a')", "== 'user'", "ne(2)", "lt 3", "gt(1)", ">= 0", "in [1, 2]", "in 'abc'", "sameas none",
         "lower", "upper", "callable"]
METHODS = ["strip()", "strip('x')", "lstrip()", "rstrip('\\n')", "split()", "split(',')", "split(',', 1)",
           "rsplit(',', 1)", "startswith('a')", "endswith(('x', 'd'))", "upper()", "lower()", "title()",
           "capitalize()", "replace('a', 'b')", "find('l')", "count('l')", "get('k')", "get('role', 'none')",
           "items()", "keys()", "values()", "isdigit()", "join(['1', '2'])", "splitlines()", "removeprefix('He')",
           "index(2)", "append(1)", "zfill(3)"]
SUBSCRIPTS = ["[0]", "[-1]", "[1]", "[1:]", "[:-1]", "[::-1]", "[::2]", "[1:3]", "['k']", "['role']",
              ".content", ".role", ".k", "[5]", "[-9:9]"]
WS = ["", " ", "\n", "  \n  ", "\t"]


# typed pools: half of the templates build expressions that mostly evaluate, so that
# the comparison covers rendering as much as error paths
STR_ATOMS = ["'a'", "'Hello World'", "''", "' x y '", "'a,b,,c'", "'é'", "bos_token", "eos_token",
             "messages[0].content", "messages[-1]['content']", "messages[0].role", "'<|eot_id|>'", "'tab\\there'"]
STR_FILTERS = ["trim", "upper", "lower", "capitalize", "title", "replace('a', 'X')", "replace('l', 'L', 1)",
               "default('d')", "string", "indent(2)", "tojson", "reverse", "trim('x ')", "first", "last"]
STR_METHODS = ["strip()", "lstrip()", "rstrip('\\n')", "upper()", "lower()", "title()", "capitalize()",
               "replace('a', 'b')", "removeprefix('He')", "split(',')|join('+')", "split()|length|string"]
NUM_ATOMS = ["0", "1", "-2", "3", "7", "2.5", "0.1", "1e3", "messages|length", "loop.index if loop is defined else 4",
             "'12'|int", "'3.5'|float", "[1, 2, 3]|sum", "[4, 2]|max", "'abc'|length"]
NUM_OPS = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">="]


class Gen:
    def __init__(self, rnd):
        self.r = rnd
        self.typed = False

    def texpr(self, depth, kind):
        """an expression of type kind ('str' or 'num') that usually evaluates"""
        r = self.r.random()
        if kind == "str":
            if depth <= 0 or r < 0.3:
                return self.pick(STR_ATOMS)
            if r < 0.5:
                return "(%s ~ %s)" % (self.texpr(depth - 1, "str"), self.texpr(depth - 1, self.pick(["str", "num"])))
            if r < 0.65:
                return "(%s + %s)" % (self.texpr(depth - 1, "str"), self.texpr(depth - 1, "str"))
            if r < 0.8:
                return "(%s)|%s" % (self.texpr(depth - 1, "str"), self.pick(STR_FILTERS))
            if r < 0.9:
                return "(%s).%s" % (self.texpr(depth - 1, "str"), self.pick(STR_METHODS))
            return "(%s if %s else %s)" % (self.texpr(depth - 1, "str"), self.texpr(depth - 1, "num"),
                                           self.texpr(depth - 1, "str"))
        if depth <= 0 or r < 0.35:
            return self.pick(NUM_ATOMS)
        if r < 0.8:
            return "(%s %s %s)" % (self.texpr(depth - 1, "num"), self.pick(NUM_OPS), self.texpr(depth - 1, "num"))
        if r < 0.9:
            return "(%s)|%s" % (self.texpr(depth - 1, "num"), self.pick(["abs", "int", "float", "string|length"]))
        return "(%s)|length" % self.texpr(depth - 1, "str")

    def pick(self, xs):
        return self.r.choice(xs)

    def atom(self, scope):
        pool = ATOMS + (LOOP_ATOMS if "loop" in scope else []) + [v for v in scope if v != "loop"]
        return self.pick(pool)

    def expr(self, depth, scope):
        if self.typed:
            return self.texpr(depth + 1, self.pick(["str", "num"]))
        r = self.r.random()
        if depth <= 0 or r < 0.25:
            return self.atom(scope)
        if r < 0.45:
            return "%s %s %s" % (self.expr(depth - 1, scope), self.pick(BINOPS), self.expr(depth - 1, scope))
        if r < 0.6:
            return "%s|%s" % (self.wrap(depth - 1, scope), self.pick(FILTERS))
        if r < 0.68:
            return "%s is %s%s" % (self.wrap(depth - 1, scope), self.pick(["", "not "]), self.pick(TESTS))
        if r < 0.76:
            return self.wrap(depth - 1, scope) + self.pick(SUBSCRIPTS)
        if r < 0.84:
            return "%s.%s" % (self.wrap(depth - 1, scope), self.pick(METHODS))
        if r < 0.9:
            return "%s if %s else %s" % (self.expr(depth - 1, scope), self.expr(depth - 1, scope),
                                         self.expr(depth - 1, scope))
        if r < 0.95:
            return self.pick(["not ", "-"]) + self.wrap(depth - 1, scope)
        return "[%s, %s]" % (self.expr(depth - 1, scope), self.expr(depth - 1, scope))

    def wrap(self, depth, scope):
        e = self.expr(depth, scope)
        return "(" + e + ")" if self.r.random() < 0.5 else e

    def tag(self, body):
        lo, ro = self.pick(["", "", "-", "+"]), self.pick(["", "", "-", "+"])
        return "{%" + lo + " " + body + " " + ro + "%}"

    def out(self, e):
        return "{{" + self.pick(["", "", "-"]) + " " + e + " " + self.pick(["", "", "-"]) + "}}"

    def text(self):
        return self.pick(WS) + self.pick(["", "x", "A:", "<|im_start|>", "word", "{", "}", "%", "#"]) + self.pick(WS)

    def body(self, depth, scope, loop=False):
        parts = []
        for _ in range(self.r.randint(1, 4)):
            r = self.r.random()
            parts.append(self.text())
            if depth <= 0 or r < 0.35:
                parts.append(self.out(self.expr(2, scope)))
            elif r < 0.5:
                cond = self.expr(2, scope)
                s = self.tag("if " + cond) + self.body(depth - 1, scope, loop)
                if self.r.random() < 0.4:
                    s += self.tag("elif " + self.expr(2, scope)) + self.body(depth - 1, scope, loop)
                if self.r.random() < 0.5:
                    s += self.tag("else") + self.body(depth - 1, scope, loop)
                parts.append(s + self.tag("endif"))
            elif r < 0.65:
                it = self.pick(["messages", "range(4)", "[1, 'a', none]", "'abc'", "{'a': 1, 'b': 2}",
                                "messages|selectattr('role', 'equalto', 'user')", "messages[1:]", "nothing",
                                "messages|reverse", "{'a': 1}|items"])
                target = "m" if "items" not in it else "m, n"
                head = "for %s in %s" % (target, it)
                if self.r.random() < 0.3:
                    head += " if " + self.pick(["m", "m != 'b'", "loop is undefined", "m.role == 'user'"])
                s = self.tag(head) + self.body(depth - 1, scope + ["m", "loop"], True)
                if self.r.random() < 0.3:
                    s += self.tag("else") + self.body(depth - 1, scope, loop)
                parts.append(s + self.tag("endfor"))
            elif r < 0.75:
                name = self.pick(["v", "w", "m"])
                parts.append(self.tag("set %s = %s" % (name, self.expr(2, scope))))
                scope = scope + [name]
            elif r < 0.8:
                parts.append(self.tag("set ns = namespace(v=%s, n=0)" % self.expr(1, scope)))
                parts.append(self.tag("set ns.n = ns.n + 1"))
                parts.append(self.out("ns.v ~ ns.n"))
            elif r < 0.85:
                f = self.pick(["", " | trim", " | upper", " | replace('x', 'y')"])
                parts.append(self.tag("set blk" + f) + self.body(depth - 1, scope, loop) + self.tag("endset"))
                parts.append(self.out("blk|length ~ ':' ~ blk"))
            elif r < 0.9:
                parts.append(self.tag("macro mac(a, b='B')") + self.text() + self.out("a ~ b") +
                             self.body(depth - 1, ["a", "b"]) + self.tag("endmacro"))
                parts.append(self.out(self.pick(["mac(1)", "mac('x', b=2)", "mac()", "mac(1, 2)|length",
                                                 "mac(b=3)"])))
            elif r < 0.94 and loop:
                parts.append(self.tag("if %s" % self.expr(1, scope)) + self.tag(self.pick(["break", "continue"])) +
                             self.tag("endif"))
            elif r < 0.97:
                parts.append("{#" + self.pick(["", "-"]) + " comment " + self.pick(["", "-"]) + "#}")
            else:
                parts.append("{% raw %}{{ not evaluated }}{% endraw %}")
        parts.append(self.text())
        return "".join(parts)


CONVS = [  # noqa: E231
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello, World"},
     {"role": "assistant", "content": " Hi! "}, {"role": "user", "content": "a,b"}],
    [{"role": "user", "content": "x"}],
]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    driver, work = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1234
    os.makedirs(work, exist_ok=True)
    warnings.filterwarnings("ignore")
    g = Gen(random.Random(seed))
    env = ref.make_env()
    cases, blob = [], bytearray()
    for i in range(count):
        g.typed = i % 2 == 1
        text = g.body(3, [])
        try:
            tmpl, cerr = env.from_string(text), None
        except Exception as e:
            tmpl, cerr = None, e
        for conv0 in CONVS:
            conv = [dict(m) for m in conv0]  # a template may not change them, but be sure
            agp = g.r.random() < 0.5
            if cerr is not None:
                expect = ("error", repr(cerr))
            else:
                try:
                    expect = ("ok", tmpl.render(messages=conv, tools=None, documents=None, add_generation_prompt=agp,
                                                bos_token="<s>", eos_token="</s>"))
                except ref.RaisedByTemplate as e:
                    expect = ("raise", str(e))
                except Exception as e:
                    expect = ("error", "%s: %s" % (type(e).__name__, e))
            cases.append((text, expect))
            blob += ref.field(text.encode()) + ref.field(b"<s>") + ref.field(b"</s>")
            blob += ref.field(b"1" if agp else b"0") + ref.field(str(len(conv0)).encode())
            for msg in conv0:
                blob += ref.field(msg["role"].encode()) + ref.field(msg["content"].encode())
    cp, op = os.path.join(work, "random_cases.bin"), os.path.join(work, "random_ours.bin")
    open(cp, "wb").write(bytes(blob))
    if subprocess.run([driver, cp, op, str(ref.NOW)]).returncode != 0:
        print("random_diff.py: bn_chatref failed", file=sys.stderr)
        return 1
    got = ref.read_fields(open(op, "rb").read())
    fails, unsupported, stats = [], collections.Counter(), collections.Counter()
    for k, (text, expect) in enumerate(cases):
        status, out = int(got[3 * k]), got[3 * k + 1]
        if expect[0] == "ok":
            want = expect[1].encode("utf-8", "surrogatepass")
            if status == 0 and out == want:
                stats["same"] += 1
            elif status == ref.E_UNSUPPORTED:
                msg = out.decode(errors="replace")
                unsupported[msg.split(": ", 1)[-1][:70]] += 1
                stats["unsupported"] += 1
            else:
                at = next((i for i in range(min(len(want), len(out))) if want[i] != out[i]), min(len(want), len(out)))
                fails.append("template %r\n   jinja2:    %r\n   libbitnet: %d %r\n   first difference at byte %d: "
                             "jinja2 %r, libbitnet %r" % (text, want[:300], status, out[:300], at,
                                                          want[max(0, at - 40):at + 40], out[max(0, at - 40):at + 40]))
        elif expect[0] == "raise":
            stats["raise"] += 1
        else:
            if status == 0:
                fails.append("template %r\n   jinja2 fails: %s\n   libbitnet renders: %r" % (text, expect[1][:200], out[:200]))
            else:
                stats["both refuse"] += 1
    for f in fails[:15]:
        print("MISMATCH " + f)
    with open(os.path.join(work, "mismatches.txt"), "w", encoding="utf-8") as fh:
        for f in fails:
            fh.write(f + "\n\n")
    print("random_diff.py: %d templates, %d cases: %d identical, %d refused by both, %d unsupported, %d mismatches"
          % (count, len(cases), stats["same"], stats["both refuse"], stats["unsupported"], len(fails)))
    for msg, n in unsupported.most_common(12):
        print("   unsupported %4d x %s" % (n, msg))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
