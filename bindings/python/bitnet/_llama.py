"""Llama: the constructor and methods llama-cpp-python users know, over one Model and
one Session."""
from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Union

from ._core import Model, Session

# llama-cpp-python options that have no meaning on a CPU-only library: accepted, ignored.
_IGNORED = ("n_gpu_layers", "main_gpu", "split_mode", "tensor_split", "offload_kqv", "flash_attn", "use_mlock",
            "vocab_only", "numa", "logits_all", "last_n_tokens_size", "chat_format", "type_k", "type_v")


class Llama:
    """Llama(model_path, n_ctx=512, n_threads=None, n_batch=512, seed=None, embedding=False)

    A model and one session, with llama-cpp-python's method names: create_completion
    (also as __call__), create_chat_completion, embed, create_embedding, tokenize and
    detokenize (bytes), n_ctx().  .model and .session are the underlying objects."""

    def __init__(self, model_path: Union[str, "os.PathLike[str]"], *, n_ctx: int = 512,
                 n_threads: Optional[int] = None, n_batch: int = 512, seed: Optional[int] = None,
                 embedding: bool = False, use_mmap: bool = True, verbose: bool = True, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(_IGNORED)
        if unknown:
            raise TypeError("Llama: unknown option(s): %s" % ", ".join(sorted(unknown)))
        self.model_path = str(model_path)
        self.model = Model(model_path, use_mmap=use_mmap)
        try:
            self.session: Session = self.model.session(ctx=n_ctx, threads=n_threads or 0, batch=n_batch,
                                                       embeddings=embedding,
                                                       seed=None if seed is None or seed < 0 else seed)
        except BaseException:
            self.model.close()
            raise

    def close(self) -> None:
        self.model.close()

    def __enter__(self) -> "Llama":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def n_ctx(self) -> int:
        return self.session.n_ctx

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> List[int]:
        return self.model.tokenize(text, add_bos=add_bos, special=special)

    def detokenize(self, tokens: Sequence[int], special: bool = False) -> bytes:
        return self.model.detokenize_bytes(tokens, special=special)

    def reset(self) -> None:
        self.session.reset()

    def create_completion(self, prompt: Any, **kw: Any) -> Any:
        """Session.create_completion (the model name defaults to model_path)."""
        kw.setdefault("model", self.model_path)
        return self.session.create_completion(prompt, **kw)

    __call__ = create_completion

    def create_chat_completion(self, messages: Any, **kw: Any) -> Any:
        """Session.create_chat_completion."""
        kw.setdefault("model", self.model_path)
        return self.session.create_chat_completion(messages, **kw)

    def embed(self, input: Any, **kw: Any) -> Any:
        """Session.embed (the model's pooling)."""
        return self.session.embed(input, **kw)

    def create_embedding(self, input: Any, **kw: Any) -> Any:
        """Session.create_embedding."""
        kw.setdefault("model", self.model_path)
        return self.session.create_embedding(input, **kw)
