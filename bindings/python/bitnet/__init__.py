"""Python binding of libbitnet: run 1.58-bit (ternary) language models on CPUs.

A thin layer over the C API (cffi, ABI mode): every computation happens in
libbitnet; this module turns handles into objects, status codes into exceptions and
buffers into Python values.

    import bitnet
    with bitnet.Model("model.gguf") as model:
        s = model.session(ctx=2048, threads=2)
        for piece in s.generate("Once upon a time", max_tokens=32, temperature=0):
            print(piece, end="", flush=True)

The shared library is found through, in order: the environment variable
BITNET_LIBRARY_PATH (a directory or the .so itself), the package's own directory, a
build tree next to the source tree (build/, build-*/), and the system's library path.
"""
import glob
import os
import queue
import threading

from cffi import FFI

__all__ = [
    "BitnetError", "Model", "Session", "GGUF", "version", "cpu_features", "library_path",
    "ISA", "Status",
]

_HERE = os.path.dirname(os.path.abspath(__file__))
ffi = FFI()
with open(os.path.join(_HERE, "_cdef.h"), encoding="utf-8") as _f:
    ffi.cdef(_f.read())


def _candidates():
    env = os.environ.get("BITNET_LIBRARY_PATH")
    if env:
        if os.path.isdir(env):
            yield os.path.join(env, "libbitnet.so")
            yield os.path.join(env, "libbitnet.so.0")
        else:
            yield env
        return
    yield os.path.join(_HERE, "libbitnet.so.0")
    yield os.path.join(_HERE, "libbitnet.so")
    root = os.path.abspath(os.path.join(_HERE, "..", "..", ".."))
    for d in sorted(glob.glob(os.path.join(root, "build*"))):
        yield os.path.join(d, "libbitnet.so.0")
    yield "libbitnet.so.0"  # the dynamic loader's search path (installed library)


def _load():
    tried = []
    for path in _candidates():
        if os.path.isabs(path) and not os.path.exists(path):
            tried.append(path + " (missing)")
            continue
        try:
            return ffi.dlopen(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("libbitnet shared library not found; set BITNET_LIBRARY_PATH to the build "
                      "directory or the .so. Tried:\n  " + "\n  ".join(tried))


lib, library_path = _load()


class Status:
    OK = 0
    E_INVALID_ARG = -1
    E_NOMEM = -2
    E_IO = -3
    E_FORMAT = -4
    E_UNSUPPORTED = -5
    E_NOT_FOUND = -6
    E_TYPE = -7
    E_BUFFER_TOO_SMALL = -8
    E_CONTEXT_FULL = -9
    E_CANCELLED = -10
    E_INVALID_UTF8 = -11
    E_INTERNAL = -12


class ISA:
    AUTO, SCALAR, AVX2, AVX512, NEON = 0, 1, 2, 3, 4
    by_name = {"auto": 0, "scalar": 1, "avx2": 2, "avx512": 3, "neon": 4}


class BitnetError(Exception):
    """A libbitnet call failed: .status is the bitnet_status code, .message the
    library's detailed message."""

    def __init__(self, status, message):
        self.status = status
        self.message = message
        super().__init__("%s: %s" % (_str(lib.bitnet_strerror(status)), message) if message
                         else _str(lib.bitnet_strerror(status)))


class ContextFullError(BitnetError):
    pass


def _str(p, n=None):
    if p == ffi.NULL:
        return None
    if n is None:
        return ffi.string(p).decode("utf-8", "replace")
    return bytes(ffi.buffer(p, n)).decode("utf-8", "replace")


def _check(status, session=None):
    if status == 0:
        return
    msg = _str(lib.bitnet_session_last_error(session)) if session is not None else None
    if not msg:
        msg = _str(lib.bitnet_last_error())
    cls = ContextFullError if status == Status.E_CONTEXT_FULL else BitnetError
    raise cls(status, msg)


def _fill_buffer(call, ctype, initial=256):
    """Call a (buf, cap, &n) function, growing the buffer once if it is too small."""
    cap = initial
    n = ffi.new("size_t *")
    while True:
        buf = ffi.new("%s[]" % ctype, max(cap, 1))
        st = call(buf, cap, n)
        if st == Status.E_BUFFER_TOO_SMALL and n[0] > cap:
            cap = n[0]
            continue
        _check(st)
        return buf, n[0]


def version():
    """The linked library's version, e.g. "0.1.0"."""
    return _str(lib.bitnet_version())


def cpu_features():
    """The CPU features libbitnet found (list of names)."""
    return _str(lib.bitnet_cpu_features()).split()


def _params(ctype, init):
    p = ffi.new(ctype + " *")
    init(p, ffi.sizeof(ctype))
    return p


# --------------------------------------------------------------------------------------
# GGUF inspection


class GGUF:
    """A GGUF file opened for inspection: .version, .metadata (dict), .tensors (list)."""

    def __init__(self, path=None, _handle=None, _owner=None):
        if _handle is not None:
            self._g, self._owned, self._owner = _handle, False, _owner
        else:
            out = ffi.new("bitnet_gguf **")
            _check(lib.bitnet_gguf_open(os.fsencode(path), out))
            self._g, self._owned, self._owner = out[0], True, None
        self._meta = None

    def close(self):
        # (getattr: __del__ also runs when __init__ failed before setting anything)
        if getattr(self, "_owned", False) and getattr(self, "_g", None) is not None:
            lib.bitnet_gguf_close(self._g)
        self._g = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def version(self):
        return lib.bitnet_gguf_version(self._g)

    def _value(self, v):
        """Python value of the bitnet_gguf_value that pointer v points to."""
        t = v.type
        if t == lib.BITNET_GGUF_STRING:
            p = ffi.new("const char **")
            n = ffi.new("uint64_t *")
            _check(lib.bitnet_gguf_value_str(self._g, v, p, n))
            return bytes(ffi.buffer(p[0], n[0])).decode("utf-8", "surrogateescape")
        if t == lib.BITNET_GGUF_ARRAY:
            out = []
            e = ffi.new("bitnet_gguf_value *")
            for j in range(v.count):
                _check(lib.bitnet_gguf_array_get(self._g, v, j, e))
                out.append(self._value(e))
            return out
        if t == lib.BITNET_GGUF_BOOL:
            b = ffi.new("int *")
            _check(lib.bitnet_gguf_value_bool(self._g, v, b))
            return bool(b[0])
        if t in (lib.BITNET_GGUF_FLOAT32, lib.BITNET_GGUF_FLOAT64):
            d = ffi.new("double *")
            _check(lib.bitnet_gguf_value_float(self._g, v, d))
            return d[0]
        if t == lib.BITNET_GGUF_UINT64:
            u = ffi.new("uint64_t *")
            _check(lib.bitnet_gguf_value_uint(self._g, v, u))
            return u[0]
        i = ffi.new("int64_t *")
        _check(lib.bitnet_gguf_value_int(self._g, v, i))
        return i[0]

    @property
    def metadata(self):
        """All metadata as a dict (arrays as lists; built once)."""
        if self._meta is None:
            meta = {}
            key = ffi.new("const char **")
            v = ffi.new("bitnet_gguf_value *")
            for i in range(lib.bitnet_gguf_n_kv(self._g)):
                _check(lib.bitnet_gguf_kv(self._g, i, key, v))
                meta[_str(key[0])] = self._value(v)
            self._meta = meta
        return self._meta

    @property
    def tensors(self):
        """List of dicts: name, type, shape (ne[0] first), offset, size."""
        g = self._g
        out = []
        for i in range(lib.bitnet_gguf_n_tensors(g)):
            nd = lib.bitnet_gguf_tensor_n_dims(g, i)
            t = lib.bitnet_gguf_tensor_type(g, i)
            out.append({
                "name": _str(lib.bitnet_gguf_tensor_name(g, i)),
                "type": _str(lib.bitnet_type_name(t)) or str(int(t)),
                "shape": [lib.bitnet_gguf_tensor_dim(g, i, d) for d in range(nd)],
                "offset": lib.bitnet_gguf_tensor_offset(g, i),
                "size": lib.bitnet_gguf_tensor_size(g, i),
            })
        return out


# --------------------------------------------------------------------------------------
# Models


class Model:
    """A loaded model, shared by any number of sessions (thread-safe, read-only).

    Model(path, vocab_only=False, isa=None, arch=None, pretokenizer=None, use_mmap=True)
    """

    def __init__(self, path, vocab_only=False, isa=None, arch=None, pretokenizer=None, use_mmap=True):
        p = _params("bitnet_model_params", lib.bitnet_model_default_params)
        p.vocab_only = 1 if vocab_only else 0
        p.use_mmap = 1 if use_mmap else 0
        if isa is not None:
            p.isa = ISA.by_name[isa] if isinstance(isa, str) else int(isa)
        keep = []
        if arch is not None:
            keep.append(ffi.new("char[]", arch.encode()))
            p.arch = keep[-1]
        if pretokenizer is not None:
            keep.append(ffi.new("char[]", pretokenizer.encode()))
            p.pretokenizer = keep[-1]
        out = ffi.new("bitnet_model **")
        _check(lib.bitnet_model_load(os.fsencode(path), p, out))
        self._m = out[0]
        self.path = path
        self._gguf = None
        self._sessions = []

    def close(self):
        """Free the model.  Sessions created from it must not be used afterwards."""
        if getattr(self, "_m", None) is not None:
            for ref in self._sessions:
                s = ref()
                if s is not None:
                    s.close()
            lib.bitnet_model_free(self._m)
            self._m = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _handle(self):
        if self._m is None:
            raise ValueError("model is closed")
        return self._m

    # ---- information
    @property
    def arch(self):
        return _str(lib.bitnet_model_arch(self._handle()))

    @property
    def description(self):
        return _str(lib.bitnet_model_desc(self._handle()))

    def _info(self, what):
        return lib.bitnet_model_get_info(self._handle(), what)

    n_vocab = property(lambda self: self._info(lib.BITNET_INFO_N_VOCAB))
    n_ctx_train = property(lambda self: self._info(lib.BITNET_INFO_N_CTX_TRAIN))
    n_embd = property(lambda self: self._info(lib.BITNET_INFO_N_EMBD))
    n_layer = property(lambda self: self._info(lib.BITNET_INFO_N_LAYER))
    n_params = property(lambda self: self._info(lib.BITNET_INFO_N_PARAMS))

    @property
    def isa(self):
        return _str(lib.bitnet_isa_name(self._info(lib.BITNET_INFO_ISA)))

    @property
    def gguf(self):
        if self._gguf is None:
            self._gguf = GGUF(_handle=lib.bitnet_model_gguf(self._handle()), _owner=self)
        return self._gguf

    @property
    def metadata(self):
        """The file's metadata as a dict."""
        return self.gguf.metadata

    # ---- tokenizer
    bos = property(lambda self: lib.bitnet_token_bos(self._handle()))
    eos = property(lambda self: lib.bitnet_token_eos(self._handle()))
    eot = property(lambda self: lib.bitnet_token_eot(self._handle()))

    def is_eog(self, token):
        return bool(lib.bitnet_token_is_eog(self._handle(), token))

    def token_text(self, token):
        p = lib.bitnet_token_text(self._handle(), token)
        if p == ffi.NULL:
            raise BitnetError(Status.E_INVALID_ARG, "token id %d out of range" % token)
        return ffi.string(p).decode("utf-8", "surrogateescape")

    def tokenize(self, text, add_bos=True, special=False):
        """Token ids of text (str or UTF-8 bytes)."""
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
        flags = (lib.BITNET_TOKENIZE_ADD_BOS if add_bos else 0) | \
                (lib.BITNET_TOKENIZE_PARSE_SPECIAL if special else 0)
        m = self._handle()
        buf, n = _fill_buffer(lambda b, cap, n: lib.bitnet_tokenize(m, data, len(data), flags, b, cap, n),
                              "bitnet_token", len(data) + 8)
        return list(buf[0:n])

    def detokenize_bytes(self, tokens, special=False):
        toks = ffi.new("bitnet_token[]", list(tokens)) if tokens else ffi.NULL
        flags = lib.BITNET_DETOK_RENDER_SPECIAL if special else 0
        m = self._handle()
        buf, n = _fill_buffer(lambda b, cap, n: lib.bitnet_detokenize(m, toks, len(tokens), flags, b, cap, n),
                              "char", 16 * len(tokens) + 16)
        return bytes(ffi.buffer(buf, n))

    def detokenize(self, tokens, special=False):
        """Text of a token list (invalid UTF-8 replaced by U+FFFD)."""
        return self.detokenize_bytes(tokens, special).decode("utf-8", "replace")

    def apply_chat_template(self, messages, add_generation_prompt=True, template=None):
        """Render [{"role":..., "content":...}, ...] with the model's chat template."""
        n = len(messages)
        msgs = ffi.new("bitnet_chat_message[]", max(n, 1))
        keep = []
        for i, msg in enumerate(messages):
            r = ffi.new("char[]", msg["role"].encode("utf-8"))
            c = ffi.new("char[]", msg["content"].encode("utf-8"))
            keep += [r, c]
            msgs[i].role, msgs[i].content = r, c
        t = ffi.new("char[]", template.encode()) if template else ffi.NULL
        m = self._handle()
        buf, size = _fill_buffer(lambda b, cap, nn: lib.bitnet_chat_apply(m, t, msgs, n, 1 if add_generation_prompt
                                                                          else 0, b, cap, nn), "char", 1024)
        return bytes(ffi.buffer(buf, size)).decode("utf-8", "replace")

    # ---- sessions
    def session(self, ctx=0, threads=0, batch=512, kv_type="f16", logits_all=False, embeddings=False, seed=None):
        """A new Session (its own KV cache and RNG) on this model."""
        import weakref
        s = Session(self, ctx=ctx, threads=threads, batch=batch, kv_type=kv_type, logits_all=logits_all,
                    embeddings=embeddings, seed=seed)
        self._sessions = [r for r in self._sessions if r() is not None] + [weakref.ref(s)]
        return s


# --------------------------------------------------------------------------------------
# Sessions


_SAMPLER_KEYS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n",
                 "frequency_penalty", "presence_penalty")


def _sampler(kw):
    p = _params("bitnet_sampler_params", lib.bitnet_sampler_default_params)
    for k in _SAMPLER_KEYS:
        if kw.get(k) is not None:
            setattr(p, k, kw[k])
    return p


class _Cancelled(Exception):
    pass


class Session:
    """One token stream over a model: KV cache, position, logits, sampler RNG.
    Use from one thread at a time (different sessions may run in parallel)."""

    def __init__(self, model, ctx=0, threads=0, batch=512, kv_type="f16", logits_all=False, embeddings=False,
                 seed=None):
        p = _params("bitnet_session_params", lib.bitnet_session_default_params)
        p.n_ctx, p.n_threads, p.n_batch = ctx, threads, batch
        p.kv_type = {"f16": lib.BITNET_KV_F16, "f32": lib.BITNET_KV_F32}[kv_type]
        p.logits_all = 1 if logits_all else 0
        p.embeddings = 1 if embeddings else 0
        if seed is not None:
            p.seed = seed
        out = ffi.new("bitnet_session **")
        _check(lib.bitnet_session_create(model._handle(), p, out))
        self._s = out[0]
        self.model = model

    def close(self):
        if getattr(self, "_s", None) is not None:
            lib.bitnet_session_free(self._s)
            self._s = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _handle(self):
        if self._s is None:
            raise ValueError("session is closed")
        return self._s

    def _check(self, st):
        _check(st, self._s)

    n_ctx = property(lambda self: lib.bitnet_session_n_ctx(self._handle()))
    n_past = property(lambda self: lib.bitnet_session_n_past(self._handle()))

    def reset(self):
        lib.bitnet_session_reset(self._handle())

    def truncate(self, n_keep):
        self._check(lib.bitnet_session_truncate(self._handle(), n_keep))

    def set_seed(self, seed):
        lib.bitnet_session_set_seed(self._handle(), seed)

    def eval(self, tokens):
        """Evaluate token ids at the current position."""
        toks = ffi.new("bitnet_token[]", list(tokens))
        self._check(lib.bitnet_session_eval(self._handle(), toks, len(toks)))

    def logits(self, i=-1):
        """Logits of token i of the last eval as a read-only buffer of float32 (valid until
        the next eval); numpy.frombuffer(..., dtype=numpy.float32) wraps it without a copy."""
        p = ffi.new("const float **")
        self._check(lib.bitnet_session_logits(self._handle(), i, p))
        return ffi.buffer(p[0], 4 * self.model.n_vocab)

    def logits_numpy(self, i=-1, copy=True):
        import numpy
        a = numpy.frombuffer(self.logits(i), dtype=numpy.float32)
        return a.copy() if copy else a

    def embeddings(self, i=-1):
        """Final hidden state (after the output norm) of token i, as a list of floats."""
        p = ffi.new("const float **")
        self._check(lib.bitnet_session_embeddings(self._handle(), i, p))
        return list(ffi.unpack(p[0], self.model.n_embd))

    def sample(self, **sampler):
        out = ffi.new("bitnet_token *")
        self._check(lib.bitnet_session_sample(self._handle(), _sampler(sampler), out))
        return out[0]

    def save_state(self):
        s = self._handle()
        buf, n = _fill_buffer(lambda b, cap, nn: lib.bitnet_session_state_save(s, b, cap, nn), "char", 1 << 16)
        return bytes(ffi.buffer(buf, n))

    def load_state(self, blob):
        self._check(lib.bitnet_session_state_load(self._handle(), blob, len(blob)))

    # ---- generation
    def _prompt_tokens(self, prompt, add_bos):
        if prompt is None:
            return []
        if isinstance(prompt, (str, bytes)):
            return self.model.tokenize(prompt, add_bos=add_bos and self.n_past == 0, special=True)
        return list(prompt)

    def _run_generate(self, tokens, on_piece, max_tokens, stop, ignore_eog, sampler):
        """Run bitnet_session_generate; on_piece(token, text) returns True to stop."""
        sampler = dict(sampler)
        seed = sampler.pop("seed", None)
        unknown = set(sampler) - set(_SAMPLER_KEYS)
        if unknown:
            raise TypeError("unknown sampler option(s): %s" % ", ".join(sorted(unknown)))
        if seed is not None:
            self.set_seed(seed)
        sp = _sampler(sampler)
        gp = _params("bitnet_generate_params", lib.bitnet_generate_default_params)
        gp.max_tokens = max_tokens
        gp.ignore_eog = 1 if ignore_eog else 0
        keep = [ffi.new("char[]", s.encode("utf-8")) for s in (stop or [])]
        if keep:
            arr = ffi.new("const char *[]", keep)
            gp.stop, gp.n_stop = arr, len(keep)
        error = []

        @ffi.callback("int(void *, bitnet_token, const char *, size_t)")
        def cb(user, tok, text, n):
            try:
                return 1 if on_piece(tok, bytes(ffi.buffer(text, n)) if n else b"") else 0
            except BaseException as e:  # stop cleanly, re-raise after the C call returns
                error.append(e)
                return 1

        gp.callback = cb
        toks = ffi.new("bitnet_token[]", tokens) if tokens else ffi.NULL
        n_out = ffi.new("size_t *")
        reason = ffi.new("bitnet_stop_reason *")
        st = lib.bitnet_session_generate(self._handle(), toks, len(tokens), sp, gp, ffi.NULL, 0, n_out, reason)
        if error:
            raise error[0]
        self._check(st)
        self.last_stop_reason = int(reason[0])
        return n_out[0]

    def generate(self, prompt=None, max_tokens=128, stop=None, ignore_eog=False, add_bos=True, stream=True,
                 **sampler):
        """Generate from a prompt (str, bytes or token ids; None continues the session).

        stream=True (default): an iterator of text pieces, produced while the C library
        generates (it pauses until each piece is consumed; closing the iterator stops
        generation).  stream=False: the whole text as one str.
        Sampler options: temperature (0 = greedy), top_k, top_p, min_p, repeat_penalty,
        repeat_last_n, frequency_penalty, presence_penalty; seed re-seeds the session's RNG."""
        tokens = self._prompt_tokens(prompt, add_bos)
        if not stream:
            parts = []
            self._run_generate(tokens, lambda t, b: parts.append(b), max_tokens, stop, ignore_eog, sampler)
            return b"".join(parts).decode("utf-8", "replace")
        return self._stream(tokens, max_tokens, stop, ignore_eog, sampler)

    def _stream(self, tokens, max_tokens, stop, ignore_eog, sampler):
        # The C call runs in a worker thread; each piece is handed over through a
        # one-slot queue and the worker waits until the consumer asks for the next one,
        # so nothing runs ahead and abandoning the iterator stops the C loop.
        pieces = queue.Queue(maxsize=1)
        go = threading.Semaphore(0)
        state = {"stop": False}
        done = object()

        def on_piece(tok, b):
            pieces.put(("piece", b))
            go.acquire()
            return state["stop"]

        def worker():
            try:
                self._run_generate(tokens, on_piece, max_tokens, stop, ignore_eog, sampler)
                pieces.put(("end", done))
            except BaseException as e:
                pieces.put(("error", e))

        t = threading.Thread(target=worker, daemon=True)
        t.start()
        try:
            while True:
                kind, val = pieces.get()
                if kind == "end":
                    break
                if kind == "error":
                    raise val
                try:
                    text = val.decode("utf-8", "replace")
                    if text:
                        yield text
                finally:
                    go.release()
        finally:
            state["stop"] = True
            go.release()
            while t.is_alive():
                try:
                    pieces.get(timeout=0.05)
                    go.release()
                except queue.Empty:
                    pass
            t.join()

    def generate_tokens(self, prompt=None, max_tokens=128, stop=None, ignore_eog=False, add_bos=True, **sampler):
        """Generate and return the list of generated token ids."""
        tokens = self._prompt_tokens(prompt, add_bos)
        out = []
        self._run_generate(tokens, lambda t, b: out.append(t), max_tokens, stop, ignore_eog, sampler)
        return out

    def chat(self, messages, max_tokens=256, stream=False, **kw):
        """Reply to a conversation ([{"role", "content"}, ...]) using the model's chat
        template.  The session is reset and the whole conversation evaluated."""
        text = self.model.apply_chat_template(messages, add_generation_prompt=True)
        self.reset()
        return self.generate(text, max_tokens=max_tokens, stream=stream, **kw)
