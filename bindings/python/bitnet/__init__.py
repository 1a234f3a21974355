"""Python binding of libbitnet: run 1.58-bit (ternary) language models on CPUs.

A thin layer over the C API (cffi, ABI mode): every computation happens in
libbitnet; this package turns handles into objects, status codes into exceptions and
buffers into Python values.

    import bitnet
    with bitnet.Model("model.gguf") as model:
        s = model.session(ctx=2048, threads=2)
        for piece in s.generate("Once upon a time", max_tokens=32, temperature=0):
            print(piece, end="", flush=True)

llama-cpp-python's shape is there too: bitnet.Llama(model_path=...).create_completion(...),
Session.create_chat_completion(...), Session.embed(...).

The shared library is found through, in order: the environment variable
BITNET_LIBRARY_PATH (a directory or the .so itself), the package's own directory, a
build tree next to the source tree (build/, build-*/), and the system's library path.
"""
from typing import List as _List

from ._core import GGUF, Decoder, GenerationStats, Model, Session
from ._llama import Llama
from ._native import ISA, BitnetError, ClosedError, ContextFullError, Status, StopReason
from ._native import lib as _lib
from ._native import library_path
from ._native import _str

__version__ = "0.1.0"  # this binding's version (the library's: version())

__all__ = [
    "BitnetError", "ClosedError", "ContextFullError", "Decoder", "GGUF", "GenerationStats", "ISA", "Llama",
    "Model", "Session", "Status", "StopReason", "cpu_features", "library_path", "version",
]


def version() -> str:
    """The linked library's version, e.g. "0.1.0"."""
    return _str(_lib.bitnet_version()) or ""


def cpu_features() -> _List[str]:
    """The CPU features libbitnet found (list of names)."""
    return (_str(_lib.bitnet_cpu_features()) or "").split()
