"""Tests of the Python binding (run by ctest through tests/python/; needs the built
library (BITNET_LIBRARY_PATH) and programs (BITNET_BIN_DIR))."""
import gc
import os
import re
import signal
import subprocess
import sys
import threading
import time
import typing

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, PKG)
import bitnet  # noqa: E402

BIN = os.environ.get("BITNET_BIN_DIR", "")
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
HEADER = os.path.join(ROOT, "include", "bitnet.h")


def tool(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        pytest.skip("%s not built (set BITNET_BIN_DIR)" % name)
    return path


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("models") / "tiny.gguf")
    subprocess.run([tool("bitnet-gen-dummy"), "--size", "125M", "--layers", "2", "--type", "i2_s", "--seed", "7",
                    "-o", out], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def model(model_path):
    with bitnet.Model(model_path) as m:
        yield m


def header_enum(name):
    """{member: value} of a C enum, parsed from include/bitnet.h (independently of cffi)."""
    with open(HEADER, encoding="utf-8") as f:
        text = f.read()
    body = re.search(r"typedef enum %s \{(.*?)\} %s;" % (name, name), text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return {k: int(v) for k, v in re.findall(r"(BITNET_\w+)\s*=\s*(-?\d+)", body)}


# ---- the package ----------------------------------------------------------------------------


def test_version_and_features():
    assert bitnet.version() == "0.1.0"
    with open(HEADER, encoding="utf-8") as f:
        header_version = re.search(r'#define BITNET_VERSION_STRING "([^"]+)"', f.read()).group(1)
    with open(os.path.join(PKG, "pyproject.toml"), encoding="utf-8") as f:
        project_version = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
    assert bitnet.__version__ == project_version == header_version
    assert isinstance(bitnet.cpu_features(), list)
    assert os.path.exists(bitnet.library_path) or bitnet.library_path.startswith("libbitnet")


def test_namespace_is_clean():
    public = {n for n in dir(bitnet) if not n.startswith("_")}
    assert public == set(bitnet.__all__), public ^ set(bitnet.__all__)
    assert "ContextFullError" in bitnet.__all__ and issubclass(bitnet.ContextFullError, bitnet.BitnetError)
    for n in bitnet.__all__:
        assert getattr(bitnet, n) is not None


def test_constants_come_from_the_header():
    for enum_cls, cname, prefix in ((bitnet.Status, "bitnet_status", "BITNET_"),
                                    (bitnet.ISA, "bitnet_isa", "BITNET_ISA_"),
                                    (bitnet.StopReason, "bitnet_stop_reason", "BITNET_STOP_")):
        want = {k[len(prefix):]: v for k, v in header_enum(cname).items()}
        assert {m.name: m.value for m in enum_cls} == want
    assert bitnet.Status.E_CONTEXT_FULL == -9 and bitnet.StopReason.EOG.name == "EOG"
    # the binding does not spell the values out itself
    for name in ("_native.py", "_core.py", "__init__.py"):
        with open(os.path.join(PKG, "bitnet", name), encoding="utf-8") as f:
            src = f.read()
        assert "E_CONTEXT_FULL = " not in src and "AVX512 = " not in src


def test_typed():
    assert os.path.exists(os.path.join(PKG, "bitnet", "py.typed"))
    for fn in (bitnet.Session.generate, bitnet.Session.generate_text, bitnet.Session.chat, bitnet.Model.tokenize,
               bitnet.Session.create_completion, bitnet.Session.embed, bitnet.Llama.__init__):
        hints = typing.get_type_hints(fn)  # resolvable annotations
        assert "return" in hints, fn
    assert typing.get_type_hints(bitnet.Session.generate)["return"] == typing.Iterator[str]
    assert typing.get_type_hints(bitnet.Session.generate_text)["return"] is str


def test_cdef_matches_header():
    gen = os.path.join(PKG, "gen_cdef.py")
    r = subprocess.run([sys.executable, gen, "--check", HEADER, os.path.join(PKG, "bitnet", "_cdef.h")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_exported_function_is_declared_to_cffi():
    if not os.path.isabs(bitnet.library_path):
        pytest.skip("library from the system path")
    nm = subprocess.run(["nm", "-D", "--defined-only", bitnet.library_path], capture_output=True, text=True,
                        check=True).stdout
    exported = {line.split()[-1].split("@")[0] for line in nm.splitlines() if " T " in line}
    lib = bitnet._native.lib
    missing = [f for f in exported if not hasattr(lib, f)]
    assert exported and not missing, missing


def test_missing_library_error_names_paths(tmp_path):
    env = dict(os.environ, BITNET_LIBRARY_PATH=str(tmp_path / "nope"), PYTHONPATH=PKG)
    r = subprocess.run([sys.executable, "-c", "import bitnet"], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert "BITNET_LIBRARY_PATH" in r.stderr and str(tmp_path / "nope") in r.stderr


# ---- errors ---------------------------------------------------------------------------------


def test_errors_become_exceptions(tmp_path):
    with pytest.raises(bitnet.BitnetError) as e:
        bitnet.Model(str(tmp_path / "missing.gguf"))
    assert e.value.status == bitnet.Status.E_IO and isinstance(e.value.status, bitnet.Status)
    assert "missing.gguf" in e.value.message
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
    with pytest.raises(bitnet.BitnetError) as e:
        bitnet.GGUF(str(bad))
    assert e.value.status == bitnet.Status.E_FORMAT


def test_error_message_is_the_calls_own(model, tmp_path):
    """After an unrelated failure, a failing call raises with its own message (12.9)."""
    s = model.session(ctx=64)
    with pytest.raises(bitnet.BitnetError):
        s.truncate(999)  # an earlier failure on the session ...
    with pytest.raises(bitnet.BitnetError):
        bitnet.Model(str(tmp_path / "unrelated.gguf"))  # ... and on the thread
    with pytest.raises(bitnet.BitnetError) as e:
        s.logits()
    assert "bitnet_session_logits" in e.value.message and "unrelated" not in e.value.message
    with pytest.raises(bitnet.BitnetError) as e:
        s.embeddings(3)
    assert "bitnet_session_embeddings" in e.value.message


def test_nul_is_refused(model_path, model, tmp_path):
    for bad in (model_path + "\0.txt", b"x\0y"):
        with pytest.raises(ValueError, match="NUL"):
            bitnet.Model(bad)
        with pytest.raises(ValueError, match="NUL"):
            bitnet.GGUF(bad)
    with pytest.raises(ValueError, match="NUL"):
        model.apply_chat_template([{"role": "user", "content": "a\0b"}], template="chatml")
    s = model.session(ctx=64)
    with pytest.raises(ValueError, match="NUL"):
        s.generate_text("hi", max_tokens=2, stop=["a\0"])


# ---- lifetimes (12.4) -----------------------------------------------------------------------


def test_children_fail_cleanly_after_close(model_path):
    m = bitnet.Model(model_path)
    g = m.gguf
    s = m.session(ctx=64)
    d = m.decoder()
    it = s.generate("abc", max_tokens=50, temperature=0, ignore_eog=True)
    next(it)
    m.close()
    for f in (lambda: g.metadata, lambda: g.tensors, lambda: g.version, lambda: s.n_past, lambda: s.eval([1]),
              lambda: d.push(5), lambda: m.n_vocab, lambda: m.session(), lambda: m.gguf, lambda: next(it)):
        with pytest.raises(bitnet.ClosedError):
            f()
    with pytest.raises(bitnet.ClosedError, match="model was closed"):
        s.logits()
    m.close()  # twice is fine
    s.close()


def test_session_close_ends_generation(model):
    s = model.session(ctx=64)
    it = s.generate("abc", max_tokens=50, temperature=0, ignore_eog=True)
    next(it)
    s.close()
    with pytest.raises(bitnet.ClosedError):
        next(it)


def test_children_keep_the_model_alive(model_path):
    s = bitnet.Model(model_path).session(ctx=64)  # the Model object is not kept by the caller
    g = bitnet.Model(model_path).gguf
    gc.collect()
    assert s.generate_tokens("abc", max_tokens=3, temperature=0)
    assert g.metadata["general.architecture"]
    d = bitnet.Model(model_path).decoder()
    gc.collect()
    assert isinstance(d.push(300), str)


def test_garbage_collection_in_any_order(model_path):
    """Objects dropped together in reference cycles are finalized in an order Python
    chooses; the C handles are freed children first regardless (the ASan run checks)."""
    for _ in range(5):
        m = bitnet.Model(model_path)
        s = m.session(ctx=64)
        it = s.generate("x", max_tokens=8, temperature=0)
        next(it)
        junk = [m, s, it, m.gguf, m.decoder()]
        junk.append(junk)  # a cycle through everything
        m.cycle = junk
        s.cycle = junk
        del m, s, it, junk
        gc.collect()


# ---- generation -----------------------------------------------------------------------------


def test_generation_matches_cli(model, model_path):
    cli = tool("bitnet-cli")
    prompt = "Once upon a time"
    s = model.session(ctx=256, threads=1)
    py_text = s.generate_text(prompt, max_tokens=16, temperature=0)
    assert s.last_stop_reason is bitnet.StopReason.MAX_TOKENS
    assert s.last_generation.completion_tokens == 16
    r = subprocess.run([cli, "-m", model_path, "-p", prompt, "-n", "16", "--temp", "0", "-t", "1", "-c", "256"],
                       capture_output=True, check=True)
    assert r.stdout.decode("utf-8", "replace").endswith(py_text)
    # seeded sampling is reproducible too
    s2 = model.session(ctx=256, threads=1)
    a = s2.generate_tokens(prompt, max_tokens=12, temperature=0.9, seed=123)
    b = s2.generate_tokens(prompt, max_tokens=12, temperature=0.9, seed=123)
    assert a == b and len(a) == 12


def test_generate_has_one_return_type(model):
    s = model.session(ctx=256)
    it = s.generate("abc", max_tokens=4, temperature=0)
    assert isinstance(it, typing.Iterator) and not isinstance(it, str)
    assert isinstance(s.generate_text("abc", max_tokens=4, temperature=0), str)
    with pytest.raises(TypeError):
        s.generate("abc", max_tokens=4, stream=False)  # the old flag is gone


def test_streaming_equals_text_and_tokens(model):
    s = model.session(ctx=256)
    whole = s.generate_text("abc", max_tokens=12, temperature=0)
    pieces = list(s.generate("abc", max_tokens=12, temperature=0))
    toks = s.generate_tokens("abc", max_tokens=12, temperature=0)
    assert "".join(pieces) == whole
    assert len(toks) == 12
    assert model.detokenize(toks) == whole or model.detokenize(toks).lstrip() == whole.lstrip()


def test_prompt_reuses_the_cache(model):
    s = model.session(ctx=256)
    prompt = model.tokenize("the same prompt twice")
    a = s.generate_tokens(prompt, max_tokens=6, temperature=0)
    assert s.last_generation.cached_tokens == 0 and s.n_past == len(prompt) + 6
    b = s.generate_tokens(prompt, max_tokens=6, temperature=0)
    assert a == b
    assert s.last_generation.cached_tokens == len(prompt) - 1  # only the last token again
    # continuing (no prompt) evaluates nothing of the context
    s.generate_tokens(None, max_tokens=2, temperature=0)
    assert s.last_generation.prompt_tokens == 0 and s.n_past == len(prompt) + 6 + 2
    # a long prompt in several batches gives what one evaluation gives
    long_prompt = [model.bos] + [300 + (i * 7) % 500 for i in range(150)]
    s_small = model.session(ctx=256, batch=32)
    s_big = model.session(ctx=256, batch=256)
    assert s_small.eval_prompt(long_prompt) == len(long_prompt)
    assert s_small.eval_prompt(long_prompt) == 0
    assert s_small.generate_tokens(long_prompt, max_tokens=5, temperature=0) == \
        s_big.generate_tokens(long_prompt, max_tokens=5, temperature=0)
    assert s_small.common_prefix(long_prompt + [5]) == len(long_prompt)


def test_chat_turn_cost_stays_flat(model):
    """Each chat turn re-sends the whole conversation; only its new part is evaluated,
    so turn 10 evaluates about what turn 1 did (the measured counterpart of the C test)."""
    s = model.session(ctx=2048)
    history = []
    evaluated, prompt_sizes, secs = [], [], []
    for turn in range(10):
        history.append({"role": "user", "content": "question number %d, please answer briefly" % turn})
        t0 = time.perf_counter()
        reply = s.chat(history, max_tokens=8, temperature=0, template="chatml")
        secs.append(time.perf_counter() - t0)
        info = s.last_generation
        evaluated.append(info.prompt_tokens - info.cached_tokens)
        prompt_sizes.append(info.prompt_tokens)
        history.append({"role": "assistant", "content": reply})
    print("chat turns: prompt tokens", prompt_sizes, "evaluated", evaluated,
          "ms", ["%.1f" % (1e3 * x) for x in secs])
    assert prompt_sizes[9] > 5 * prompt_sizes[0]
    assert evaluated[9] <= evaluated[0] + 16  # the new turn plus a re-tokenized reply
    assert max(evaluated[1:]) < 3 * evaluated[0]


def test_abandoned_stream_stops(model):
    s = model.session(ctx=256)
    prompt = model.tokenize("abc")
    it = s.generate(prompt, max_tokens=64, temperature=0, ignore_eog=True)
    first = next(it)
    second = next(it)
    it.close()
    assert isinstance(first, str) and isinstance(second, str)
    assert s.last_stop_reason is bitnet.StopReason.CALLBACK
    assert s.n_past == len(prompt) + 2  # every token seen is in the context
    s.eval([model.bos if model.bos >= 0 else 1])  # the session is still usable
    assert s.n_past == len(prompt) + 3


def test_consumer_exception_stops_cleanly(model):
    s = model.session(ctx=256)
    seen = []
    with pytest.raises(KeyError):
        for piece in s.generate("abc", max_tokens=32, temperature=0, ignore_eog=True):
            seen.append(piece)
            raise KeyError("stop here")
    assert len(seen) == 1
    assert s.last_stop_reason is bitnet.StopReason.CALLBACK
    s.eval([1])


def test_stop_strings(model):
    s = model.session(ctx=256)
    ref = s.generate_text("abc", max_tokens=20, temperature=0, ignore_eog=True)
    cut = ref[3:6]
    out = s.generate_text("abc", max_tokens=20, temperature=0, ignore_eog=True, stop=["\x01never", cut])
    assert s.last_stop_reason is bitnet.StopReason.STRING
    assert out == ref[:ref.index(cut)]
    assert s.generate_text("abc", max_tokens=20, temperature=0, ignore_eog=True, stop=cut) == out


def test_logits_are_copies(model):
    np = pytest.importorskip("numpy")
    s = model.session(ctx=64)
    s.eval(model.tokenize("hello"))
    a = s.logits_numpy()
    raw = s.logits()
    assert a.shape == (model.n_vocab,) and a.dtype == np.float32 and a.flags.owndata
    assert np.isfinite(a).all() and np.array_equal(a, np.frombuffer(raw, dtype=np.float32))
    greedy = s.sample(temperature=0)
    assert greedy == int(np.argmax(a))
    s.eval([greedy])
    s.close()
    assert np.isfinite(a).all() and len(raw) == model.n_vocab  # still valid: copies


def test_state_roundtrip(model):
    s = model.session(ctx=128)
    s.eval(model.tokenize("state test"))
    blob = s.save_state()
    before = bytes(s.logits())
    a = s.generate_tokens(None, max_tokens=6, temperature=0)
    s.load_state(blob)
    assert bytes(s.logits()) == before
    b = s.generate_tokens(None, max_tokens=6, temperature=0)
    assert a == b
    with pytest.raises(bitnet.BitnetError):
        s.load_state(blob[: len(blob) // 2])


def test_context_full(model):
    s = model.session(ctx=8)
    with pytest.raises(bitnet.ContextFullError):
        s.eval(list(range(300, 310)))
    assert s.n_past == 0
    with pytest.raises(bitnet.ContextFullError):
        s.generate_text(list(range(300, 310)), max_tokens=2)
    s.generate_tokens([1, 300, 301], max_tokens=-1, temperature=0, ignore_eog=True)
    assert s.last_stop_reason is bitnet.StopReason.CONTEXT and s.n_past == 8


def test_threads_separate_sessions(model):
    prompt = model.tokenize("parallel sessions")
    ref = model.session(ctx=128).generate_tokens(prompt, max_tokens=10, temperature=0)
    results = [None] * 4

    def run(i):
        with model.session(ctx=128, threads=1) as s:
            results[i] = s.generate_tokens(prompt, max_tokens=10, temperature=0)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(r == ref for r in results)


def test_decoder(model):
    d = model.decoder()
    toks = model.tokenize("Ünïcödé 🙂 text", add_bos=False)
    text = "".join(d.push(t) for t in toks) + d.flush()
    assert text.strip() == "Ünïcödé 🙂 text"


def _rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_no_memory_growth(model_path):
    def cycle():
        with bitnet.Model(model_path) as m:
            with m.session(ctx=64) as s:
                s.eval(m.tokenize("leak check"))
                list(s.generate(None, max_tokens=3))
    for _ in range(3):
        cycle()
    gc.collect()
    base = _rss_kb()
    for _ in range(30):
        cycle()
    gc.collect()
    grown = _rss_kb() - base
    assert grown < 8 * 1024, "RSS grew by %d KiB over 30 load/session cycles" % grown


def test_chat(model):
    s = model.session(ctx=512)
    out = s.chat([{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0, template="chatml")
    assert isinstance(out, str)
    assert "".join(s.chat_stream([{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0,
                                 template="chatml")) == out
    assert s.last_generation.cached_tokens == s.last_generation.prompt_tokens - 1


# ---- Ctrl-C (12.5) --------------------------------------------------------------------------

CHILD = r"""
import os, sys, time
sys.path.insert(0, {pkg!r})
import bitnet
m = bitnet.Model({model!r})
s = m.session(ctx=2048, threads=1)
msgs = [{{"role": "user", "content": "hello"}}]
calls = {{
    "generate": lambda: [p for p in s.generate("Once", max_tokens=-1, temperature=0, ignore_eog=True)],
    "generate_text": lambda: s.generate_text("Once", max_tokens=-1, temperature=0, ignore_eog=True),
    "generate_tokens": lambda: s.generate_tokens("Once", max_tokens=-1, temperature=0, ignore_eog=True),
    "chat": lambda: s.chat(msgs, max_tokens=-1, temperature=0, ignore_eog=True, template="chatml"),
    "chat_stream": lambda: list(s.chat_stream(msgs, max_tokens=-1, temperature=0, ignore_eog=True,
                                              template="chatml")),
    "create_completion": lambda: s.create_completion("Once", max_tokens=-1, temperature=1.5, seed=3),
    "create_completion_stream": lambda: list(s.create_completion("Once", max_tokens=-1, temperature=1.5,
                                                                 seed=3, stream=True)),
    "create_chat_completion": lambda: s.create_chat_completion(msgs, temperature=1.5, seed=3, template="chatml"),
}}
print("READY", flush=True)
try:
    calls[sys.argv[1]]()
    print("FINISHED n_past=%d" % s.n_past, flush=True)
except KeyboardInterrupt:
    t = time.monotonic()
    n = s.n_past
    print("INTERRUPTED n_past=%d t=%.6f" % (n, t), flush=True)
    s.eval([1])  # the session is usable ...
    assert s.n_past == n + 1
    more = s.generate_tokens(None, max_tokens=3, temperature=0, ignore_eog=True)  # ... for generation too
    assert len(more) == 3
    print("USABLE", flush=True)
"""


@pytest.mark.parametrize("path", ["generate", "generate_text", "generate_tokens", "chat", "chat_stream",
                                  "create_completion", "create_completion_stream", "create_chat_completion"])
def test_ctrl_c_stops_generation(model_path, path, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(pkg=PKG, model=model_path))
    p = subprocess.Popen([sys.executable, str(script), path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "READY"
        time.sleep(0.4)  # generation is running (2048 tokens take seconds)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert "FINISHED" not in out, "generation ended before the signal: " + out
    m = re.search(r"INTERRUPTED n_past=(\d+) t=([\d.]+)", out)
    assert m, "no KeyboardInterrupt in the child: stdout %r stderr %r" % (out, err)
    assert int(m.group(1)) < 2048
    # n_past < 2048 above is what tells "stopped" from "ran to the end"; the time bound only
    # catches a stop that waits for something slow (it is generous: sanitizers, busy machines)
    assert float(m.group(2)) - sent < 10.0, "took %.2f s to stop" % (float(m.group(2)) - sent)
    assert "USABLE" in out, err
    assert "Exception ignored" not in err, err
    assert p.returncode == 0, err


# ---- the llama-cpp-python / OpenAI shapes --------------------------------------------------


def test_create_completion(model, model_path):
    s = model.session(ctx=256)
    ref = s.generate_text("The sky", max_tokens=8, temperature=0, ignore_eog=True)
    r = s.create_completion("The sky", max_tokens=8, temperature=0)
    assert set(r) == {"id", "object", "created", "model", "choices", "usage"}
    assert r["object"] == "text_completion" and r["id"].startswith("cmpl-") and isinstance(r["created"], int)
    assert r["model"] == model_path
    (c,) = r["choices"]
    assert c["index"] == 0 and c["logprobs"] is None
    if c["finish_reason"] == "length":
        assert c["text"] == ref
    assert r["usage"]["prompt_tokens"] == len(model.tokenize("The sky", special=True))
    assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]
    chunks = list(s.create_completion("The sky", max_tokens=8, temperature=0, stream=True))
    assert all(ch["object"] == "text_completion" and ch["id"] == chunks[0]["id"] for ch in chunks)
    assert "".join(ch["choices"][0]["text"] for ch in chunks) == c["text"]
    assert [ch["choices"][0]["finish_reason"] for ch in chunks][-1] == c["finish_reason"]
    assert all(ch["choices"][0]["finish_reason"] is None for ch in chunks[:-1])
    echo = s.create_completion("The sky", max_tokens=8, temperature=0, echo=True)
    assert echo["choices"][0]["text"] == "The sky" + c["text"]
    with pytest.raises(NotImplementedError):
        s.create_completion("x", logprobs=3)


def test_create_chat_completion(model):
    s = model.session(ctx=512)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    ref = s.chat(msgs, max_tokens=6, temperature=0, template="chatml")
    r = s.create_chat_completion(msgs, max_tokens=6, temperature=0, template="chatml")
    assert r["object"] == "chat.completion" and r["id"].startswith("chatcmpl-")
    (c,) = r["choices"]
    assert c["message"] == {"role": "assistant", "content": ref}
    assert c["finish_reason"] in ("stop", "length")
    assert r["usage"]["completion_tokens"] <= 6
    chunks = list(s.create_chat_completion(msgs, max_tokens=6, temperature=0, template="chatml", stream=True))
    assert all(ch["object"] == "chat.completion.chunk" for ch in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] == c["finish_reason"]
    assert "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks) == ref


def test_llama_facade(model_path):
    with bitnet.Llama(model_path=model_path, n_ctx=256, n_gpu_layers=0, verbose=False) as llm:
        assert llm.n_ctx() == 256
        ids = llm.tokenize(b"Hello world")
        assert llm.detokenize(ids).strip() == b"Hello world"
        r = llm("Hello", max_tokens=4, temperature=0)
        assert r["model"] == model_path and r["object"] == "text_completion"
        ref = llm.session.generate_text("Hello", max_tokens=4, temperature=0, ignore_eog=True)
        if r["choices"][0]["finish_reason"] == "length":
            assert r["choices"][0]["text"] == ref
        chat = llm.create_chat_completion([{"role": "user", "content": "Hi"}], max_tokens=4, template="chatml")
        assert chat["choices"][0]["message"]["role"] == "assistant"
    with pytest.raises(TypeError):
        bitnet.Llama(model_path, no_such_option=1)


def test_embed(model_path, model):
    np = pytest.importorskip("numpy")
    with bitnet.Llama(model_path, n_ctx=128, embedding=True) as llm:
        v = llm.embed("a short text")
        assert len(v) == model.n_embd and abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
        # mean pooling: the average of the per-token hidden states, normalized
        toks = model.tokenize("a short text")
        s = model.session(ctx=128, embeddings=True)
        s.eval(toks)
        mean = np.mean([s.embeddings(i) for i in range(len(toks))], axis=0)
        assert np.allclose(v, mean / np.linalg.norm(mean), atol=1e-5)
        both = llm.embed(["a short text", "another one"])
        assert len(both) == 2 and np.allclose(both[0], v, atol=1e-6)
        last = llm.embed("a short text", pooling="last", normalize=False)
        assert np.allclose(last, s.embeddings(-1), atol=1e-6)
        e = llm.create_embedding(["x", "y"])
        assert e["object"] == "list" and [d["index"] for d in e["data"]] == [0, 1]
        assert e["data"][0]["object"] == "embedding" and e["usage"]["prompt_tokens"] > 0
    # the library pools: mean needs no embeddings=True session, the model's pooling is the
    # default (this model names none: mean)
    plain = model.session(ctx=64)
    assert np.allclose(plain.embed("a short text"), v, atol=1e-6)
    assert np.allclose(plain.embed("a short text", pooling="mean"), v, atol=1e-6)
    assert len(plain.embed("x", pooling="last")) == model.n_embd
    with pytest.raises(ValueError, match="pooling"):
        plain.embed("x", pooling="none")


# ---- packaging ------------------------------------------------------------------------------


def test_pip_install_and_import(tmp_path):
    """The documented install: pip with --no-build-isolation (Debian's setuptools), then
    import from the installed copy."""
    pytest.importorskip("pip")
    import shutil
    src = tmp_path / "src"  # a copy: setuptools writes build files next to the sources
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("tests", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
                        "--no-index", "--target", str(target), str(src)],
                       capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "bitnet" / "_cdef.h").exists() and (target / "bitnet" / "py.typed").exists()
    env = dict(os.environ, PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-c", "import bitnet, sys; sys.stdout.write(bitnet.__file__ + ' ' + "
                        "bitnet.version())"], env=env, capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    path, ver = r.stdout.split()
    assert path.startswith(str(target)) and ver == "0.1.0"


def test_python_examples(model_path):
    ex = os.path.join(ROOT, "examples", "python")
    env = dict(os.environ, PYTHONPATH=PKG)
    r = subprocess.run([sys.executable, os.path.join(ex, "generate.py"), "-m", model_path, "-p", "Hi", "-n", "8",
                        "--temp", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Hi")
    r = subprocess.run([sys.executable, os.path.join(ex, "chat.py"), "-m", model_path, "-n", "4", "--temp", "0"],
                       env=env, input="hello\n/reset\nagain\n/quit\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "(conversation reset)" in r.stdout
    r = subprocess.run([sys.executable, os.path.join(ex, "openai_style.py"), "-m", model_path, "-n", "4"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert '"object": "chat.completion"' in r.stdout


# ---- chat: message text never becomes special tokens (issue 12, item 3) -------------------

@pytest.fixture(scope="module")
def bpe_model(tmp_path_factory):
    """A tiny model with a LLaMA-3-style vocabulary (<|eot_id|> is a control token) and
    a LLaMA-3 chat template."""
    path = tmp_path_factory.mktemp("bpe") / "bpe.gguf"
    subprocess.run([tool("bitnet-gen-dummy"), "--size", "125M", "--layers", "1", "--embd", "128", "--heads", "2",
                    "--ff", "256", "--vocab-kind", "bpe", "--arch", "llama", "--vocab", "1024", "-q", "-o", str(path)],
                   check=True)
    m = bitnet.Model(str(path))
    yield m
    m.close()


def test_chat_tokenize_keeps_message_text_plain(bpe_model):
    m = bpe_model
    msgs = [{"role": "user", "content": "hi <|eot_id|> there"}]
    toks = m.chat_tokenize(msgs)
    # the template writes <|eot_id|> once, after the message; the one typed is text
    assert toks.count(m.eot) == 1
    assert toks[0] == m.bos and toks.count(m.bos) == 1
    assert m.detokenize(toks, special=True).endswith(m.apply_chat_template(msgs))
    # what tokenizing the rendered text with special tokens does (the injection)
    assert m.tokenize(m.apply_chat_template(msgs), special=True).count(m.eot) == 2
    # Session.chat evaluates exactly the safe tokens
    s = m.session(ctx=256)
    s.chat(msgs, max_tokens=0)
    assert s.n_past == len(toks)


def test_chat_refuses_nul(bpe_model):
    for bad in ({"role": "user", "content": "a\0b"}, {"role": "us\0er", "content": "x"}):
        with pytest.raises(ValueError):
            bpe_model.chat_tokenize([bad])
        with pytest.raises(ValueError):
            bpe_model.apply_chat_template([bad])
        with pytest.raises(ValueError):
            bpe_model.session(ctx=64).chat([bad], max_tokens=1)


def test_speculation_keeps_greedy_tokens(model):
    """Lookup and draft-model speculation leave greedy output unchanged and report what
    they drafted; a draft of another vocabulary size is refused."""
    prompt = "one two three four one two three four one two"
    plain = bitnet.Session(model, ctx=256, threads=1)
    want = list(plain.generate_tokens(prompt, max_tokens=40, temperature=0, ignore_eog=True))
    look = bitnet.Session(model, ctx=256, threads=1)
    look.set_speculation("lookup", n_draft=6)
    assert list(look.generate_tokens(prompt, max_tokens=40, temperature=0, ignore_eog=True)) == want
    st = look.last_generation
    assert st.accepted_tokens <= st.drafted_tokens
    draft = bitnet.Session(model, ctx=256, threads=1)
    spec = bitnet.Session(model, ctx=256, threads=1)
    spec.set_speculation("draft", draft=draft, n_draft=4, p_min=0.0)
    assert list(spec.generate_tokens(prompt, max_tokens=40, temperature=0, ignore_eog=True)) == want
    assert spec.last_generation.drafted_tokens > 0
    assert spec.last_generation.accepted_tokens == spec.last_generation.drafted_tokens  # the same model
    with pytest.raises(ValueError):
        spec.set_speculation("draft")
    with pytest.raises(ValueError):
        spec.set_speculation("other")
    spec.set_speculation(None)
    assert list(spec.generate_tokens(prompt, max_tokens=40, temperature=0, ignore_eog=True)) == want
