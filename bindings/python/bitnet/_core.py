"""Models, sessions and generation: Python objects over libbitnet's handles."""
from __future__ import annotations

import array
import codecs
import contextlib
import dataclasses
import os
from typing import Any, Dict, Generator, Iterator, List, Optional, Sequence, Tuple, Union

from ._compat import CompletionMixin
from ._native import (BitnetError, Status, StopReason, _check, _cstr, _fill_buffer, _Handle, _isa_from, _params,
                      _path, _str, ffi, lib)
from ._types import Message, Prompt, Stop

__all__ = ["GGUF", "Model", "Session", "Decoder", "GenerationStats"]


# --------------------------------------------------------------------------------------
# GGUF inspection


class GGUF:
    """A GGUF file opened for inspection: .version, .metadata (dict), .tensors (list).

    GGUF(path) opens a file; Model.gguf is a view of a loaded model's file, valid while
    the model is open (afterwards every access raises ClosedError)."""

    def __init__(self, path: Union[str, bytes, "os.PathLike[str]"]) -> None:
        out = ffi.new("bitnet_gguf **")
        _check(lib.bitnet_gguf_open(_path(path), out))
        self._h = _Handle(out[0], lib.bitnet_gguf_close, None, "GGUF file")
        self._meta: Optional[Dict[str, Any]] = None
        self._model: Optional[Model] = None  # a view keeps its model object alive

    @classmethod
    def _view(cls, model: "Model") -> "GGUF":
        self = cls.__new__(cls)
        self._h = _Handle(lib.bitnet_model_gguf(model._handle()), None, model._h, "GGUF view of the model")
        self._meta = None
        self._model = model
        return self

    def close(self) -> None:
        """Close the file (a model's view: stop using it; the model keeps its file)."""
        if getattr(self, "_h", None) is not None:
            self._h.close()

    def __enter__(self) -> "GGUF":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        h = getattr(self, "_h", None)  # (absent when __init__ failed)
        if h is not None:
            h.drop()

    @property
    def version(self) -> int:
        return int(lib.bitnet_gguf_version(self._h.get()))

    def _value(self, g: Any, v: Any) -> Any:
        """Python value of the bitnet_gguf_value that pointer v points to."""
        t = v.type
        if t == lib.BITNET_GGUF_STRING:
            p = ffi.new("const char **")
            n = ffi.new("uint64_t *")
            _check(lib.bitnet_gguf_value_str(g, v, p, n))
            return bytes(ffi.buffer(p[0], n[0])).decode("utf-8", "surrogateescape")
        if t == lib.BITNET_GGUF_ARRAY:
            out = []
            e = ffi.new("bitnet_gguf_value *")
            for j in range(v.count):
                _check(lib.bitnet_gguf_array_get(g, v, j, e))
                out.append(self._value(g, e))
            return out
        if t == lib.BITNET_GGUF_BOOL:
            b = ffi.new("int *")
            _check(lib.bitnet_gguf_value_bool(g, v, b))
            return bool(b[0])
        if t in (lib.BITNET_GGUF_FLOAT32, lib.BITNET_GGUF_FLOAT64):
            d = ffi.new("double *")
            _check(lib.bitnet_gguf_value_float(g, v, d))
            return d[0]
        if t == lib.BITNET_GGUF_UINT64:
            u = ffi.new("uint64_t *")
            _check(lib.bitnet_gguf_value_uint(g, v, u))
            return u[0]
        i = ffi.new("int64_t *")
        _check(lib.bitnet_gguf_value_int(g, v, i))
        return i[0]

    @property
    def metadata(self) -> Dict[str, Any]:
        """All metadata as a dict (arrays as lists; built once)."""
        g = self._h.get()
        if self._meta is None:
            meta = {}
            key = ffi.new("const char **")
            v = ffi.new("bitnet_gguf_value *")
            for i in range(lib.bitnet_gguf_n_kv(g)):
                _check(lib.bitnet_gguf_kv(g, i, key, v))
                meta[_str(key[0]) or ""] = self._value(g, v)
            self._meta = meta
        return self._meta

    @property
    def tensors(self) -> List[Dict[str, Any]]:
        """List of dicts: name, type, shape (ne[0] first), offset, size."""
        g = self._h.get()
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

    close() frees it and closes everything made from it (sessions, decoders, the
    .gguf view): using those afterwards raises ClosedError.  Without close(), the model
    lives as long as anything made from it."""

    def __init__(self, path: Union[str, bytes, "os.PathLike[str]"], vocab_only: bool = False,
                 isa: Union[str, int, None] = None, arch: Optional[str] = None, pretokenizer: Optional[str] = None,
                 use_mmap: bool = True) -> None:
        p = _params("bitnet_model_params", lib.bitnet_model_default_params)
        p.vocab_only = 1 if vocab_only else 0
        p.use_mmap = 1 if use_mmap else 0
        if isa is not None:
            p.isa = _isa_from(isa)
        keep = []
        if arch is not None:
            keep.append(ffi.new("char[]", _cstr(arch, "arch")))
            p.arch = keep[-1]
        if pretokenizer is not None:
            keep.append(ffi.new("char[]", _cstr(pretokenizer, "pretokenizer")))
            p.pretokenizer = keep[-1]
        out = ffi.new("bitnet_model **")
        _check(lib.bitnet_model_load(_path(path), p, out))
        self._h = _Handle(out[0], lib.bitnet_model_free, None, "model")
        self.path = path
        self._gguf: Optional[GGUF] = None

    def close(self) -> None:
        """Free the model now; its sessions, decoders and .gguf view are closed with it."""
        if getattr(self, "_h", None) is not None:
            self._h.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None:
            h.drop()

    def _handle(self) -> Any:
        return self._h.get()

    # ---- information
    @property
    def arch(self) -> str:
        return _str(lib.bitnet_model_arch(self._handle())) or ""

    @property
    def description(self) -> str:
        return _str(lib.bitnet_model_desc(self._handle())) or ""

    def _info(self, what: int) -> int:
        return int(lib.bitnet_model_get_info(self._handle(), what))

    @property
    def n_vocab(self) -> int:
        return self._info(lib.BITNET_INFO_N_VOCAB)

    @property
    def n_ctx_train(self) -> int:
        return self._info(lib.BITNET_INFO_N_CTX_TRAIN)

    @property
    def n_embd(self) -> int:
        return self._info(lib.BITNET_INFO_N_EMBD)

    @property
    def n_layer(self) -> int:
        return self._info(lib.BITNET_INFO_N_LAYER)

    @property
    def n_params(self) -> int:
        return self._info(lib.BITNET_INFO_N_PARAMS)

    @property
    def isa(self) -> str:
        return _str(lib.bitnet_isa_name(self._info(lib.BITNET_INFO_ISA))) or ""

    @property
    def gguf(self) -> GGUF:
        """The file's metadata and tensor table (a view, valid while the model is open)."""
        if self._gguf is None or not self._gguf._h.alive:
            self._gguf = GGUF._view(self)
        return self._gguf

    @property
    def metadata(self) -> Dict[str, Any]:
        """The file's metadata as a dict."""
        return self.gguf.metadata

    # ---- tokenizer
    @property
    def bos(self) -> int:
        return int(lib.bitnet_token_bos(self._handle()))

    @property
    def eos(self) -> int:
        return int(lib.bitnet_token_eos(self._handle()))

    @property
    def eot(self) -> int:
        return int(lib.bitnet_token_eot(self._handle()))

    def is_eog(self, token: int) -> bool:
        return bool(lib.bitnet_token_is_eog(self._handle(), token))

    def token_text(self, token: int) -> str:
        p = lib.bitnet_token_text(self._handle(), token)
        if p == ffi.NULL:
            raise BitnetError(Status.E_INVALID_ARG, "token id %d out of range" % token)
        return ffi.string(p).decode("utf-8", "surrogateescape")

    def tokenize(self, text: Union[str, bytes], add_bos: bool = True, special: bool = False) -> List[int]:
        """Token ids of text (str or UTF-8 bytes)."""
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
        flags = (lib.BITNET_TOKENIZE_ADD_BOS if add_bos else 0) | \
                (lib.BITNET_TOKENIZE_PARSE_SPECIAL if special else 0)
        m = self._handle()
        buf, n = _fill_buffer(lambda b, cap, n: lib.bitnet_tokenize(m, data, len(data), flags, b, cap, n),
                              "bitnet_token", len(data) + 8)
        return list(buf[0:n])

    def detokenize_bytes(self, tokens: Sequence[int], special: bool = False) -> bytes:
        toks = ffi.new("bitnet_token[]", list(tokens)) if tokens else ffi.NULL
        flags = lib.BITNET_DETOK_RENDER_SPECIAL if special else 0
        m = self._handle()
        buf, n = _fill_buffer(lambda b, cap, n: lib.bitnet_detokenize(m, toks, len(tokens), flags, b, cap, n),
                              "char", 16 * len(tokens) + 16)
        return bytes(ffi.buffer(buf, n))

    def detokenize(self, tokens: Sequence[int], special: bool = False) -> str:
        """Text of a token list (invalid UTF-8 replaced by U+FFFD)."""
        return self.detokenize_bytes(tokens, special).decode("utf-8", "replace")

    def decoder(self, special: bool = False) -> "Decoder":
        """A streaming detokenizer: push tokens one at a time, get complete UTF-8 text."""
        return Decoder(self, special)

    @staticmethod
    def _chat_messages(messages: Sequence[Message]) -> Tuple[Any, int, List[Any]]:
        """messages as a bitnet_chat_message array, its length and the buffers it uses."""
        n = len(messages)
        msgs = ffi.new("bitnet_chat_message[]", max(n, 1))
        keep = [msgs]
        for i, msg in enumerate(messages):
            r = ffi.new("char[]", _cstr(msg["role"], "message %d's role" % i))
            c = ffi.new("char[]", _cstr(msg["content"], "message %d's content" % i))
            keep += [r, c]
            msgs[i].role, msgs[i].content = r, c
        return msgs, n, keep

    def apply_chat_template(self, messages: Sequence[Message], add_generation_prompt: bool = True,
                            template: Optional[str] = None) -> str:
        """Render [{"role":..., "content":...}, ...] with the model's chat template (or
        `template`: a template name such as "llama3" or a template text).  To feed a
        model use chat_tokenize: tokenizing this text with special=True turns special-token
        text inside the messages into control tokens."""
        msgs, n, _keep = self._chat_messages(messages)
        t = ffi.new("char[]", _cstr(template, "template")) if template else ffi.NULL
        m = self._handle()
        buf, size = _fill_buffer(lambda b, cap, nn: lib.bitnet_chat_apply(m, t, msgs, n, 1 if add_generation_prompt
                                                                          else 0, b, cap, nn), "char", 1024)
        return bytes(ffi.buffer(buf, size)).decode("utf-8", "replace")

    def chat_tokenize(self, messages: Sequence[Message], add_generation_prompt: bool = True,
                      template: Optional[str] = None, add_bos: bool = True) -> List[int]:
        """Token ids of a conversation rendered with the chat template.  Text from the
        messages is never read as special tokens ("<|eot_id|>" typed by a user stays text);
        only the template's own markup is (bitnet_chat_tokenize, docs/chat.md)."""
        msgs, n, _keep = self._chat_messages(messages)
        t = ffi.new("char[]", _cstr(template, "template")) if template else ffi.NULL
        p = _params("bitnet_chat_params", lib.bitnet_chat_default_params)
        p.tmpl = t
        p.add_generation_prompt = 1 if add_generation_prompt else 0
        p.flags = lib.BITNET_TOKENIZE_ADD_BOS if add_bos else 0
        m = self._handle()
        buf, count = _fill_buffer(lambda b, cap, nn: lib.bitnet_chat_tokenize(m, msgs, n, p, b, cap, nn),
                                  "bitnet_token", 256)
        return list(buf[0:count])

    # ---- sessions
    def session(self, ctx: int = 0, threads: int = 0, batch: int = 512, kv_type: str = "f16",
                logits_all: bool = False, embeddings: bool = False, seed: Optional[int] = None) -> "Session":
        """A new Session (its own KV cache and RNG) on this model."""
        return Session(self, ctx=ctx, threads=threads, batch=batch, kv_type=kv_type, logits_all=logits_all,
                       embeddings=embeddings, seed=seed)


class Decoder:
    """Streaming detokenizer (bitnet_decoder): push() returns the text that became
    complete, holding back bytes of a character split across tokens; flush() returns
    what is held back (an incomplete character as U+FFFD) and starts over."""

    def __init__(self, model: Model, special: bool = False) -> None:
        out = ffi.new("bitnet_decoder **")
        _check(lib.bitnet_decoder_create(model._handle(), lib.BITNET_DETOK_RENDER_SPECIAL if special else 0, out))
        self._h = _Handle(out[0], lib.bitnet_decoder_free, model._h, "decoder")
        self.model = model

    def close(self) -> None:
        self._h.close()

    def __del__(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None:
            h.drop()

    def push(self, token: int) -> str:
        d = self._h.get()
        buf, n = _fill_buffer(lambda b, cap, nn: lib.bitnet_decoder_push(d, token, b, cap, nn), "char", 64)
        return bytes(ffi.buffer(buf, n)).decode("utf-8", "replace")

    def flush(self) -> str:
        d = self._h.get()
        buf, n = _fill_buffer(lambda b, cap, nn: lib.bitnet_decoder_flush(d, b, cap, nn), "char", 16)
        return bytes(ffi.buffer(buf, n)).decode("utf-8", "replace")


# --------------------------------------------------------------------------------------
# Sessions


_SAMPLER_KEYS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n",
                 "frequency_penalty", "presence_penalty")


@dataclasses.dataclass
class GenerationStats:
    """What the last generation on a session did (Session.last_generation)."""
    stop_reason: Optional[StopReason] = None  # None while it runs
    prompt_tokens: int = 0                    # tokens of the prompt given (0: continued the context)
    cached_tokens: int = 0                    # of those, already in the KV cache: not evaluated again
    completion_tokens: int = 0                # tokens generated
    drafted_tokens: int = 0                   # speculation: tokens drafted and verified
    accepted_tokens: int = 0                  # of those, accepted


class Session(CompletionMixin):
    """One token stream over a model: KV cache, position, logits, sampler RNG.
    Use from one thread at a time (different sessions may run in parallel).

    Generation is pull-style over libbitnet's step-wise generator: no threads; Ctrl-C
    (KeyboardInterrupt) stops it within one token and leaves the session usable, and
    closing or abandoning an iterator stops it too."""

    def __init__(self, model: Model, ctx: int = 0, threads: int = 0, batch: int = 512, kv_type: str = "f16",
                 logits_all: bool = False, embeddings: bool = False, seed: Optional[int] = None) -> None:
        p = _params("bitnet_session_params", lib.bitnet_session_default_params)
        p.n_ctx, p.n_threads, p.n_batch = ctx, threads, batch
        kinds = {"f16": lib.BITNET_KV_F16, "f32": lib.BITNET_KV_F32}
        if kv_type not in kinds:
            raise ValueError("kv_type must be 'f16' or 'f32', not %r" % (kv_type,))
        p.kv_type = kinds[kv_type]
        p.logits_all = 1 if logits_all else 0
        p.embeddings = 1 if embeddings else 0
        if seed is not None:
            p.seed = seed
        out = ffi.new("bitnet_session **")
        _check(lib.bitnet_session_create(model._handle(), p, out))
        self._h = _Handle(out[0], lib.bitnet_session_free, model._h, "session")
        self.model = model
        self._batch = max(1, min(batch or 512, lib.bitnet_session_n_ctx(out[0])))
        self._embeddings = bool(embeddings)
        self.last_generation: Optional[GenerationStats] = None

    def close(self) -> None:
        """Free the session now (a generation running on it is closed too)."""
        if getattr(self, "_h", None) is not None:
            self._h.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None:
            h.drop()

    def _handle(self) -> Any:
        return self._h.get()

    @property
    def n_ctx(self) -> int:
        return int(lib.bitnet_session_n_ctx(self._handle()))

    @property
    def n_past(self) -> int:
        """Tokens in the context."""
        return int(lib.bitnet_session_n_past(self._handle()))

    @property
    def last_stop_reason(self) -> Optional[StopReason]:
        """Why the last generation ended (None if none ran)."""
        return self.last_generation.stop_reason if self.last_generation else None

    def reset(self) -> None:
        lib.bitnet_session_reset(self._handle())

    def truncate(self, n_keep: int) -> None:
        _check(lib.bitnet_session_truncate(self._handle(), n_keep))

    def set_seed(self, seed: int) -> None:
        lib.bitnet_session_set_seed(self._handle(), seed)

    def set_speculation(self, mode: Optional[str] = "lookup", *, draft: Optional["Session"] = None,
                        n_draft: int = 8, n_draft_min: int = 0, ngram_min: int = 1, ngram_max: int = 4,
                        p_min: float = 0.5) -> None:
        """Speculative decoding for the generations that follow (experimental):
        mode "lookup" (draft from n-grams of the context), "draft" (a session of a smaller
        model with the same vocabulary drafts; it must stay open while used) or None (off).
        The output is the same as without (greedy: token for token; sampling: the same
        distribution).  Session.last_generation reports drafted / accepted tokens."""
        p = _params("bitnet_spec_params", lib.bitnet_spec_default_params)
        modes = {None: lib.BITNET_SPEC_NONE, "lookup": lib.BITNET_SPEC_LOOKUP, "draft": lib.BITNET_SPEC_DRAFT}
        if mode not in modes:
            raise ValueError("mode must be 'lookup', 'draft' or None, not %r" % (mode,))
        if (mode == "draft") != (draft is not None):
            raise ValueError("a draft session goes with mode 'draft' (and only with it)")
        p.mode = modes[mode]
        p.n_draft_max, p.n_draft_min, p.ngram_min, p.ngram_max, p.p_min = n_draft, n_draft_min, ngram_min, \
            ngram_max, p_min
        if draft is not None:
            p.draft = draft._handle()
        _check(lib.bitnet_session_set_speculation(self._handle(), p))
        self._draft = draft  # keep it alive while this session drafts with it

    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate token ids at the current position (appending to the context)."""
        toks = ffi.new("bitnet_token[]", list(tokens))
        _check(lib.bitnet_session_eval(self._handle(), toks, len(toks)))

    def common_prefix(self, tokens: Sequence[int]) -> int:
        """How many leading tokens of `tokens` the context already holds."""
        toks = ffi.new("bitnet_token[]", list(tokens))
        return int(lib.bitnet_session_common_prefix(self._handle(), toks, len(toks)))

    def eval_prompt(self, tokens: Sequence[int]) -> int:
        """Make the context exactly `tokens`, reusing the common prefix already evaluated;
        returns how many tokens were evaluated.  Long prompts are evaluated one batch at a
        time, so Ctrl-C interrupts between batches (the context then holds a prefix)."""
        toks = ffi.new("bitnet_token[]", list(tokens))
        n = len(toks)
        done = self._eval_prompt_prefix(toks, n)
        ne = ffi.new("size_t *")
        _check(lib.bitnet_session_eval_prompt(self._handle(), toks, n, ne))
        return done + ne[0]

    def _eval_prompt_prefix(self, toks: Any, n: int) -> int:
        """Evaluate all but the last batch of toks[0..n) (reusing the context's prefix),
        one batch per call; returns the number of tokens evaluated."""
        s = self._handle()
        k = lib.bitnet_session_common_prefix(s, toks, n) + self._batch
        done = 0
        ne = ffi.new("size_t *")
        while k < n:
            _check(lib.bitnet_session_eval_prompt(s, toks, k, ne))
            done += ne[0]
            k += self._batch
        return done

    def logits(self, i: int = -1) -> "array.array[float]":
        """Logits of token i of the last eval (a copy, array of float32)."""
        p = ffi.new("const float **")
        _check(lib.bitnet_session_logits(self._handle(), i, p))
        a = array.array("f")
        a.frombytes(ffi.buffer(p[0], 4 * self.model.n_vocab))
        return a

    def logits_numpy(self, i: int = -1) -> Any:
        """The same as a numpy.float32 array (a copy: it stays valid after the next eval)."""
        import numpy
        p = ffi.new("const float **")
        _check(lib.bitnet_session_logits(self._handle(), i, p))
        return numpy.frombuffer(ffi.buffer(p[0], 4 * self.model.n_vocab), dtype=numpy.float32).copy()

    def embeddings(self, i: int = -1) -> List[float]:
        """Final hidden state (after the output norm) of token i, as a list of floats."""
        p = ffi.new("const float **")
        _check(lib.bitnet_session_embeddings(self._handle(), i, p))
        return list(ffi.unpack(p[0], self.model.n_embd))

    def sample(self, **sampler: Any) -> int:
        out = ffi.new("bitnet_token *")
        _check(lib.bitnet_session_sample(self._handle(), self._sampler(sampler), out))
        return int(out[0])

    def save_state(self) -> bytes:
        s = self._handle()
        buf, n = _fill_buffer(lambda b, cap, nn: lib.bitnet_session_state_save(s, b, cap, nn), "char", 1 << 16)
        return bytes(ffi.buffer(buf, n))

    def load_state(self, blob: bytes) -> None:
        _check(lib.bitnet_session_state_load(self._handle(), blob, len(blob)))

    # ---- generation
    @staticmethod
    def _check_sampler(kw: Dict[str, Any]) -> None:
        unknown = set(kw) - set(_SAMPLER_KEYS) - {"seed"}
        if unknown:
            raise TypeError("unknown option(s): %s" % ", ".join(sorted(unknown)))

    def _sampler(self, kw: Dict[str, Any]) -> Any:
        self._check_sampler(kw)
        kw = dict(kw)
        seed = kw.pop("seed", None)
        if seed is not None:
            self.set_seed(seed)
        p = _params("bitnet_sampler_params", lib.bitnet_sampler_default_params)
        for k in _SAMPLER_KEYS:
            if kw.get(k) is not None:
                setattr(p, k, kw[k])
        return p

    def _prompt_tokens(self, prompt: Prompt, add_bos: bool) -> List[int]:
        if prompt is None:
            return []
        if isinstance(prompt, (str, bytes)):
            return self.model.tokenize(prompt, add_bos=add_bos, special=True)
        return [int(t) for t in prompt]

    def _chat_tokens(self, messages: Sequence[Message], template: Optional[str]) -> List[int]:
        """The conversation rendered with the chat template, as tokens: message text is
        never read as special tokens (Model.chat_tokenize)."""
        return self.model.chat_tokenize(messages, add_generation_prompt=True, template=template)

    def _run(self, tokens: List[int], max_tokens: Optional[int], stop: Stop,
             ignore_eog: bool, sampler: Dict[str, Any]) -> Generator[Tuple[int, str], None, None]:
        """The generator loop: yields (token, text) per step -- token -1 for the text that
        comes with the end.  Sets self.last_generation."""
        sp = self._sampler(sampler)
        gp = _params("bitnet_generate_params", lib.bitnet_generate_default_params)
        gp.max_tokens = -1 if max_tokens is None or max_tokens < 0 else max_tokens
        gp.ignore_eog = 1 if ignore_eog else 0
        if isinstance(stop, str):
            stop = [stop]
        keep = [ffi.new("char[]", _cstr(x, "stop string")) for x in (stop or [])]
        if keep:
            arr = ffi.new("const char *[]", keep)
            gp.stop, gp.n_stop = arr, len(keep)
        info = GenerationStats(prompt_tokens=len(tokens))
        self.last_generation = info
        s = self._handle()
        toks = ffi.new("bitnet_token[]", tokens) if tokens else ffi.NULL
        pre = self._eval_prompt_prefix(toks, len(tokens)) if tokens else 0  # Ctrl-C between batches
        out = ffi.new("bitnet_generator **")
        _check(lib.bitnet_generator_create(s, sp, gp, toks, len(tokens), out))
        g = _Handle(out[0], lib.bitnet_generator_free, self._h, "generator")
        step = ffi.new("bitnet_generator_step *")
        utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        ended = False
        try:
            while True:
                _check(lib.bitnet_generator_next(g.get(), step))
                tok, reason = int(step.token), int(step.reason)
                text = utf8.decode(ffi.buffer(step.text, step.len)[:]) if step.len else ""
                if tok >= 0:
                    info.completion_tokens += 1
                if reason != 0:
                    ended = True
                    info.stop_reason = StopReason(reason)
                    text += utf8.decode(b"", final=True)
                    if text:
                        yield -1, text
                    return
                yield tok, text
        finally:
            if g.alive:
                if not ended:
                    # stopped early (closed, an exception, Ctrl-C): the next call brings
                    # the last token returned into the context, then the generator ends
                    lib.bitnet_generator_stop(g.ptr)
                    lib.bitnet_generator_next(g.ptr, step)
                    info.stop_reason = StopReason.CALLBACK
                st = ffi.new("bitnet_generator_stats *")
                lib.bitnet_generator_get_stats(g.ptr, st, ffi.sizeof("bitnet_generator_stats"))
                info.cached_tokens = max(0, int(st.n_prompt_cached) - pre)
                info.drafted_tokens = int(st.n_drafted)
                info.accepted_tokens = int(st.n_accepted)
                g.close()

    def generate(self, prompt: Prompt = None, *, max_tokens: Optional[int] = 128, stop: Stop = None,
                 ignore_eog: bool = False, add_bos: bool = True, **sampler: Any) -> Iterator[str]:
        """Generate text, as an iterator of pieces (closing it stops generation).

        prompt: str or bytes (tokenized with special tokens, BOS added if add_bos) or
        token ids: the whole context to continue from -- what the session already holds
        of it is reused, the rest is evaluated.  None continues the session's context.
        max_tokens: None or < 0 = until end of generation or a full context.
        stop: strings that end generation (never part of the text).
        Sampler options: temperature (0 = greedy), top_k, top_p, min_p, repeat_penalty,
        repeat_last_n, frequency_penalty, presence_penalty; seed re-seeds the RNG.
        Arguments are checked (and the prompt tokenized) now; generation runs while the
        iterator is consumed."""
        self._check_sampler(sampler)
        tokens = self._prompt_tokens(prompt, add_bos)
        return self._pieces(self._run(tokens, max_tokens, stop, ignore_eog, sampler))

    @staticmethod
    def _pieces(steps: Generator[Tuple[int, str], None, None]) -> Iterator[str]:
        with contextlib.closing(steps):
            for _, text in steps:
                if text:
                    yield text

    def generate_text(self, prompt: Prompt = None, *, max_tokens: Optional[int] = 128,
                      stop: Stop = None, ignore_eog: bool = False,
                      add_bos: bool = True, **sampler: Any) -> str:
        """generate(), joined into one str."""
        return "".join(self.generate(prompt, max_tokens=max_tokens, stop=stop, ignore_eog=ignore_eog,
                                     add_bos=add_bos, **sampler))

    def generate_tokens(self, prompt: Prompt = None, *, max_tokens: Optional[int] = 128,
                        stop: Stop = None, ignore_eog: bool = False,
                        add_bos: bool = True, **sampler: Any) -> List[int]:
        """generate(), returning the generated token ids."""
        self._check_sampler(sampler)
        tokens = self._prompt_tokens(prompt, add_bos)
        with contextlib.closing(self._run(tokens, max_tokens, stop, ignore_eog, sampler)) as steps:
            return [t for t, _ in steps if t >= 0]

    def chat_stream(self, messages: Sequence[Message], *, max_tokens: Optional[int] = 256,
                    template: Optional[str] = None, **kw: Any) -> Iterator[str]:
        """Reply to a conversation ([{"role", "content"}, ...]) with the model's chat
        template (or `template`), as an iterator of pieces.  The whole conversation is
        given each time; only what the session does not hold yet is evaluated."""
        return self.generate(self._chat_tokens(messages, template), max_tokens=max_tokens, **kw)

    def chat(self, messages: Sequence[Message], *, max_tokens: Optional[int] = 256, template: Optional[str] = None,
             **kw: Any) -> str:
        """chat_stream(), joined into one str."""
        return "".join(self.chat_stream(messages, max_tokens=max_tokens, template=template, **kw))
