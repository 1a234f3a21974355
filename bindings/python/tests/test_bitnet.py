"""Tests of the Python binding (run by ctest through tests/python/; needs the built
library (BITNET_LIBRARY_PATH) and programs (BITNET_BIN_DIR))."""
import gc
import os
import subprocess
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import bitnet  # noqa: E402

BIN = os.environ.get("BITNET_BIN_DIR", "")
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


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


def test_version_and_features():
    assert bitnet.version() == "0.1.0"
    assert isinstance(bitnet.cpu_features(), list)
    assert os.path.exists(bitnet.library_path) or bitnet.library_path.startswith("libbitnet")


def test_cdef_matches_header():
    gen = os.path.join(HERE, "..", "gen_cdef.py")
    r = subprocess.run([sys.executable, gen, "--check", os.path.join(ROOT, "include", "bitnet.h"),
                        os.path.join(HERE, "..", "bitnet", "_cdef.h")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_exported_function_is_declared_to_cffi():
    if not os.path.isabs(bitnet.library_path):
        pytest.skip("library from the system path")
    nm = subprocess.run(["nm", "-D", "--defined-only", bitnet.library_path], capture_output=True, text=True,
                        check=True).stdout
    exported = {line.split()[-1].split("@")[0] for line in nm.splitlines() if " T " in line}
    missing = [f for f in exported if not hasattr(bitnet.lib, f)]
    assert exported and not missing, missing


def test_missing_library_error_names_paths(tmp_path):
    env = dict(os.environ, BITNET_LIBRARY_PATH=str(tmp_path / "nope"), PYTHONPATH=os.path.join(HERE, ".."))
    r = subprocess.run([sys.executable, "-c", "import bitnet"], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert "BITNET_LIBRARY_PATH" in r.stderr and str(tmp_path / "nope") in r.stderr


def test_errors_become_exceptions(tmp_path):
    with pytest.raises(bitnet.BitnetError) as e:
        bitnet.Model(str(tmp_path / "missing.gguf"))
    assert e.value.status == bitnet.Status.E_IO
    assert "missing.gguf" in e.value.message
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
    with pytest.raises(bitnet.BitnetError) as e:
        bitnet.GGUF(str(bad))
    assert e.value.status == bitnet.Status.E_FORMAT


def test_gguf_metadata(model_path):
    with bitnet.GGUF(model_path) as g:
        assert g.version in (2, 3)
        meta = g.metadata
        arch = meta["general.architecture"]
        assert meta[arch + ".block_count"] == 2
        names = [t["name"] for t in g.tensors]
        assert "token_embd.weight" in names and "blk.1.ffn_down.weight" in names


def test_model_info_and_tokenizer(model):
    assert model.n_vocab > 256 and model.n_layer == 2
    assert model.metadata["general.architecture"] == model.gguf.metadata["general.architecture"]
    text = "Hello, world! Ünïcödé 한국어 🙂"
    ids = model.tokenize(text, add_bos=False)
    assert ids and all(0 <= t < model.n_vocab for t in ids)
    assert model.detokenize(ids) == text
    with_bos = model.tokenize(text)
    if model.bos >= 0:
        assert with_bos[0] == model.bos


def test_generation_matches_cli(model, model_path):
    cli = tool("bitnet-cli")
    prompt = "Once upon a time"
    s = model.session(ctx=256, threads=1)
    py_text = s.generate(prompt, max_tokens=16, temperature=0, stream=False)
    r = subprocess.run([cli, "-m", model_path, "-p", prompt, "-n", "16", "--temp", "0", "-t", "1", "-c", "256"],
                       capture_output=True, check=True)
    assert r.stdout.decode("utf-8", "replace").endswith(py_text)
    # seeded sampling is reproducible too
    s2 = model.session(ctx=256, threads=1)
    a = s2.generate_tokens(prompt, max_tokens=12, temperature=0.9, seed=123)
    s2.reset()
    b = s2.generate_tokens(prompt, max_tokens=12, temperature=0.9, seed=123)
    assert a == b and len(a) > 0


def test_streaming_equals_non_streaming(model):
    s = model.session(ctx=256)
    whole = s.generate("abc", max_tokens=12, temperature=0, stream=False)
    s.reset()
    pieces = list(s.generate("abc", max_tokens=12, temperature=0))
    assert "".join(pieces) == whole


def test_abandoned_stream_stops(model):
    s = model.session(ctx=256)
    it = s.generate("abc", max_tokens=64, temperature=0, ignore_eog=True)
    first = next(it)
    it.close()
    assert isinstance(first, str)
    n = s.n_past
    assert n < len(model.tokenize("abc")) + 64  # it stopped early
    s.eval([model.bos if model.bos >= 0 else 1])  # the session is still usable
    assert s.n_past == n + 1


def test_callback_exception_stops_cleanly(model):
    s = model.session(ctx=256)
    calls = []

    def boom(tok, text):
        calls.append(tok)
        raise KeyError("stop here")

    with pytest.raises(KeyError):
        s._run_generate(model.tokenize("abc"), boom, 32, None, True, {"temperature": 0})
    assert len(calls) == 1
    s.eval([1])


def test_logits_numpy_no_copy(model):
    np = pytest.importorskip("numpy")
    s = model.session(ctx=64)
    s.eval(model.tokenize("hello"))
    view = s.logits_numpy(copy=False)
    assert view.shape == (model.n_vocab,) and view.dtype == np.float32
    assert not view.flags.owndata and np.isfinite(view).all()
    greedy = s.sample(temperature=0)
    assert greedy == int(np.argmax(view))


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


def _rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_no_memory_growth(model_path):
    def cycle():
        with bitnet.Model(model_path) as m:
            with m.session(ctx=64) as s:
                s.eval(m.tokenize("leak check"))
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
    try:
        out = s.chat([{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0)
    except bitnet.BitnetError as e:  # a dummy model may carry no chat template
        assert e.status == bitnet.Status.E_UNSUPPORTED
        return
    assert isinstance(out, str)


def test_pip_install_and_import(tmp_path):
    """The documented install: pip with --no-build-isolation (Debian's setuptools), then
    import from the installed copy."""
    pytest.importorskip("pip")
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
                        "--no-index", "--target", str(target), os.path.join(HERE, "..")],
                       capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "bitnet" / "_cdef.h").exists()
    env = dict(os.environ, PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-c", "import bitnet, sys; sys.stdout.write(bitnet.__file__ + ' ' + "
                        "bitnet.version())"], env=env, capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    path, ver = r.stdout.split()
    assert path.startswith(str(target)) and ver == "0.1.0"


def test_python_examples(model_path):
    ex = os.path.join(ROOT, "examples", "python")
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, ".."))
    r = subprocess.run([sys.executable, os.path.join(ex, "generate.py"), "-m", model_path, "-p", "Hi", "-n", "8",
                        "--temp", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Hi")
    r = subprocess.run([sys.executable, os.path.join(ex, "chat.py"), "-m", model_path, "-n", "4", "--temp", "0"],
                       env=env, input="hello\n/reset\nagain\n/quit\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "(conversation reset)" in r.stdout
