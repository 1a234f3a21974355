"""The llama-cpp-python / OpenAI shapes on top of a Session: create_completion,
create_chat_completion (dicts, or iterators of streaming chunks), embed and
create_embedding."""
from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ._native import StopReason, _check, _params, ffi, lib
from ._types import Message, Prompt, Stop

if TYPE_CHECKING:  # pragma: no cover
    from ._core import GenerationStats

Completion = Dict[str, Any]

_FINISH = {StopReason.EOG: "stop", StopReason.STRING: "stop", StopReason.MAX_TOKENS: "length",
           StopReason.CONTEXT: "length"}


def _finish_reason(info: Optional["GenerationStats"]) -> Optional[str]:
    return _FINISH.get(info.stop_reason) if info is not None and info.stop_reason is not None else None


def _usage(info: Optional["GenerationStats"]) -> Dict[str, int]:
    p = info.prompt_tokens if info else 0
    c = info.completion_tokens if info else 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _unsupported(**kw: Any) -> None:
    for name, value in kw.items():
        if value is not None:
            raise NotImplementedError("%s is not supported by libbitnet" % name)


# pooling names -> bitnet_pooling (None: the model's <arch>.pooling_type, mean without one)
_POOLING = {None: -1, "model": -1, "mean": 1, "cls": 2, "last": 3}


def _max(max_tokens: Optional[int]) -> Optional[int]:
    """llama-cpp-python: None or <= 0 means until end of generation / a full context."""
    return None if max_tokens is None or max_tokens <= 0 else max_tokens


class CompletionMixin:
    """Methods shaped like llama-cpp-python's Llama (mixed into Session)."""

    def create_completion(self, prompt: Prompt, suffix: Optional[str] = None, max_tokens: Optional[int] = 16,
                          temperature: float = 0.8, top_p: float = 0.95, min_p: float = 0.05, echo: bool = False,
                          stop: Stop = None, frequency_penalty: float = 0.0, presence_penalty: float = 0.0,
                          repeat_penalty: float = 1.0, top_k: int = 40, stream: bool = False,
                          seed: Optional[int] = None, logprobs: Optional[int] = None,
                          model: Optional[str] = None) -> Union[Completion, Iterator[Completion]]:
        """Complete a prompt (str or token ids), OpenAI "text_completion" shaped:
        {"id", "object", "created", "model", "choices": [{"text", "index", "logprobs",
        "finish_reason"}], "usage": {...}}; with stream=True an iterator of chunks of that
        shape, the last one with "finish_reason" ("stop" or "length")."""
        _unsupported(suffix=suffix, logprobs=logprobs)
        tokens = self._prompt_tokens(prompt, True)  # type: ignore[attr-defined]
        if not tokens:
            raise ValueError("create_completion: the prompt is empty")
        sampler = dict(temperature=temperature, top_p=top_p, min_p=min_p, top_k=top_k, repeat_penalty=repeat_penalty,
                       frequency_penalty=frequency_penalty, presence_penalty=presence_penalty, seed=seed)
        head = {"id": "cmpl-" + uuid.uuid4().hex, "object": "text_completion", "created": int(time.time()),
                "model": model if model is not None else str(self.model.path)}  # type: ignore[attr-defined]
        echo_text = ""
        if echo:
            echo_text = prompt if isinstance(prompt, str) else self.model.detokenize(tokens)  # type: ignore
        steps = self._run(tokens, _max(max_tokens), stop, False, sampler)  # type: ignore[attr-defined]

        def choice(text: str, finish: Optional[str]) -> Completion:
            return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

        if stream:
            def chunks() -> Iterator[Completion]:
                with contextlib.closing(steps):
                    if echo_text:
                        yield dict(head, choices=[choice(echo_text, None)])
                    for _, text in steps:
                        if text:
                            yield dict(head, choices=[choice(text, None)])
                    yield dict(head, choices=[choice("", _finish_reason(self.last_generation))])  # type: ignore
            return chunks()
        with contextlib.closing(steps):
            text = "".join(t for _, t in steps)
        info = self.last_generation  # type: ignore[attr-defined]
        return dict(head, choices=[choice(echo_text + text, _finish_reason(info))], usage=_usage(info))

    def create_chat_completion(self, messages: Sequence[Message], temperature: float = 0.2, top_p: float = 0.95,
                               top_k: int = 40, min_p: float = 0.05, stream: bool = False, stop: Stop = None,
                               seed: Optional[int] = None, max_tokens: Optional[int] = None,
                               presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                               repeat_penalty: float = 1.0, model: Optional[str] = None,
                               template: Optional[str] = None, tools: Optional[Any] = None,
                               response_format: Optional[Any] = None) -> Union[Completion, Iterator[Completion]]:
        """Reply to a conversation with the chat template, OpenAI "chat.completion"
        shaped: {"id", "object", "created", "model", "choices": [{"index", "message":
        {"role": "assistant", "content"}, "logprobs", "finish_reason"}], "usage"}; with
        stream=True an iterator of "chat.completion.chunk" dicts carrying "delta"s (the
        role first, then content pieces, then an empty delta with "finish_reason").
        Only what the session does not hold of the conversation yet is evaluated."""
        _unsupported(tools=tools, response_format=response_format)
        tokens = self._chat_tokens(messages, template)  # type: ignore[attr-defined]
        sampler = dict(temperature=temperature, top_p=top_p, min_p=min_p, top_k=top_k, repeat_penalty=repeat_penalty,
                       frequency_penalty=frequency_penalty, presence_penalty=presence_penalty, seed=seed)
        created = int(time.time())
        ident = "chatcmpl-" + uuid.uuid4().hex
        name = model if model is not None else str(self.model.path)  # type: ignore[attr-defined]
        steps = self._run(tokens, _max(max_tokens), stop, False, sampler)  # type: ignore[attr-defined]
        if stream:
            def chunk(delta: Dict[str, str], finish: Optional[str]) -> Completion:
                return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": name,
                        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

            def chunks() -> Iterator[Completion]:
                with contextlib.closing(steps):
                    yield chunk({"role": "assistant"}, None)
                    for _, text in steps:
                        if text:
                            yield chunk({"content": text}, None)
                    yield chunk({}, _finish_reason(self.last_generation))  # type: ignore[attr-defined]
            return chunks()
        with contextlib.closing(steps):
            text = "".join(t for _, t in steps)
        info = self.last_generation  # type: ignore[attr-defined]
        return {"id": ident, "object": "chat.completion", "created": created, "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                             "finish_reason": _finish_reason(info)}],
                "usage": _usage(info)}

    def _embed_one(self, text: str, normalize: Union[bool, int], truncate: bool,
                   pooling: Optional[str]) -> Tuple[List[float], int]:
        m = self.model  # type: ignore[attr-defined]
        # as llama-embedding: BOS (and EOS when the model's vocabulary asks for it: the Qwen3
        # embedding model pools that EOS), special-token texts recognised
        toks = m.tokenize(text, add_bos=True, special=True)
        n_ctx = self.n_ctx  # type: ignore[attr-defined]
        if len(toks) > n_ctx:
            if not truncate:
                raise ValueError("embed: %d tokens do not fit in the context of %d" % (len(toks), n_ctx))
            toks = toks[:n_ctx]
        if not toks:
            raise ValueError("embed: the input is empty")
        p = _params("bitnet_embed_params", lib.bitnet_embed_default_params)
        p.pooling = _POOLING[pooling]
        p.normalize = (2 if normalize else -1) if isinstance(normalize, bool) else int(normalize)
        out = ffi.new("float[]", m.n_embd)
        _check(lib.bitnet_session_embed(self._handle(), ffi.new("bitnet_token[]", toks), len(toks), p,  # type: ignore[attr-defined]
                                        out, m.n_embd))
        return list(out), len(toks)

    def embed(self, input: Union[str, Sequence[str]], normalize: Union[bool, int] = True, truncate: bool = True,
              return_count: bool = False, pooling: Optional[str] = None) -> Any:
        """Sentence embedding of a text (list of floats), or of each text of a list (list of
        lists), computed by the library as llama-embedding does: the final hidden states
        (after the output norm) pooled as the model says (pooling=None: its
        <arch>.pooling_type, mean when it has none; or "mean", "cls", "last") and
        normalised (True: L2; False: not at all; an int: llama-embedding's
        --embd-normalize).  return_count=True also returns the token count.  Uses (and
        replaces) the session's context."""
        if pooling not in _POOLING:
            raise ValueError("pooling must be None, 'model', 'mean', 'cls' or 'last', not %r" % (pooling,))
        single = isinstance(input, str)
        texts: List[str] = [input] if isinstance(input, str) else list(input)
        out, total = [], 0
        for t in texts:
            vec, n = self._embed_one(t, normalize, truncate, pooling)
            out.append(vec)
            total += n
        result = out[0] if single else out
        return (result, total) if return_count else result

    def create_embedding(self, input: Union[str, Sequence[str]], model: Optional[str] = None,
                         pooling: Optional[str] = None) -> Completion:
        """OpenAI "embedding" list: {"object": "list", "data": [{"object": "embedding",
        "embedding", "index"}], "model", "usage"}."""
        texts = [input] if isinstance(input, str) else list(input)
        vecs, total = self.embed(texts, return_count=True, pooling=pooling)
        return {"object": "list",
                "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vecs)],
                "model": model if model is not None else str(self.model.path),  # type: ignore[attr-defined]
                "usage": {"prompt_tokens": total, "total_tokens": total}}
