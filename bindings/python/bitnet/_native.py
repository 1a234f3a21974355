"""The C side of the binding: loading libbitnet, the constants of include/bitnet.h as
enums (read from the declarations cffi was given, never copied), errors, and the
ownership of C handles."""
from __future__ import annotations

import enum
import glob
import os
from typing import Any, Callable, Iterator, Optional, Set, Tuple

from cffi import FFI

_HERE = os.path.dirname(os.path.abspath(__file__))
ffi = FFI()
with open(os.path.join(_HERE, "_cdef.h"), encoding="utf-8") as _f:
    ffi.cdef(_f.read())


def _candidates() -> Iterator[str]:
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


def _load() -> Tuple[Any, str]:
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


def _enum(name: str, ctype: str, prefix: str, doc: str) -> Any:
    """An IntEnum with the members of the C enum `ctype`, named without `prefix`."""
    members = sorted(((k[len(prefix):], v) for k, v in ffi.typeof(ctype).relements.items()), key=lambda kv: kv[1])
    e = enum.IntEnum(name, members, module="bitnet")  # type: ignore[misc]
    e.__doc__ = doc
    return e


Status = _enum("Status", "bitnet_status", "BITNET_",
               "bitnet_status codes of include/bitnet.h: Status.OK, Status.E_IO, ...")
ISA = _enum("ISA", "bitnet_isa", "BITNET_ISA_",
            "Kernel variants (bitnet_isa): ISA.AUTO, ISA.SCALAR, ISA.AVX2, ISA.AVX512, ISA.NEON")
StopReason = _enum("StopReason", "bitnet_stop_reason", "BITNET_STOP_",
                   "Why generation ended (bitnet_stop_reason): NONE, MAX_TOKENS, EOG, STRING, CALLBACK "
                   "(stopped by the consumer), CONTEXT")


def _isa_from(value: Any) -> int:
    if isinstance(value, str):
        for member in ISA:
            p = lib.bitnet_isa_name(member)
            if p != ffi.NULL and ffi.string(p).decode() == value.lower():
                return int(member)
        raise ValueError("unknown ISA %r (one of: %s)" % (value, ", ".join(
            ffi.string(lib.bitnet_isa_name(m)).decode() for m in ISA)))
    return int(ISA(value))


class BitnetError(Exception):
    """A libbitnet call failed: .status is the Status code, .message the library's
    detailed message (naming the key, tensor or argument at fault)."""

    def __init__(self, status: int, message: Optional[str]):
        try:
            self.status = Status(status)
        except ValueError:
            self.status = status  # a code this binding does not know
        self.message = message or ""
        head = _str(lib.bitnet_strerror(status)) or "error"
        super().__init__("%s: %s" % (head, message) if message else head)


class ContextFullError(BitnetError):
    """The session's context window has no room left (Status.E_CONTEXT_FULL)."""


class ClosedError(ValueError):
    """An object was used after it (or the object it belongs to) was closed."""


def _str(p: Any, n: Optional[int] = None) -> Optional[str]:
    if p == ffi.NULL:
        return None
    if n is None:
        return ffi.string(p).decode("utf-8", "replace")
    return bytes(ffi.buffer(p, n)).decode("utf-8", "replace")


def _check(status: int) -> None:
    """Raise for a failed call.  The message comes from the thread's channel
    (bitnet_last_error): by the library's error rule it always belongs to this call."""
    if status == 0:
        return
    msg = _str(lib.bitnet_last_error())
    cls = ContextFullError if status == Status.E_CONTEXT_FULL else BitnetError
    raise cls(status, msg)


def _cstr(value: Any, what: str) -> bytes:
    """UTF-8 bytes for a NUL-terminated C string; a NUL inside would silently cut the
    string short in C, so it is refused."""
    b = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if b"\0" in b:
        raise ValueError("%s contains a NUL character" % what)
    return b


def _path(path: Any) -> bytes:
    b = os.fsencode(path)
    if b"\0" in b:
        raise ValueError("path contains a NUL byte: %r" % (path,))
    return b


def _fill_buffer(call: Callable[[Any, int, Any], int], ctype: str, initial: int = 256) -> Tuple[Any, int]:
    """Call a (buf, cap, &n) function, growing the buffer when it is too small."""
    cap = max(initial, 1)
    n = ffi.new("size_t *")
    while True:
        buf = ffi.new("%s[]" % ctype, cap)
        st = call(buf, cap, n)
        if st == Status.E_BUFFER_TOO_SMALL and n[0] > cap:
            cap = n[0]
            continue
        _check(st)
        return buf, n[0]


def _params(ctype: str, init: Any) -> Any:
    p = ffi.new(ctype + " *")
    init(p, ffi.sizeof(ctype))
    return p


class _Handle:
    """One C handle and the handles that depend on it (a model's sessions, decoders and
    metadata view; a session's generators).

    A handle is freed once, and never before its children: close() (an explicit close)
    closes the children first, so using them afterwards raises ClosedError; drop() (the
    Python object went away) frees the handle as soon as it has no children left, so the
    garbage collector may finalize objects in any order."""

    __slots__ = ("ptr", "_free", "parent", "children", "dropped", "what", "why")

    def __init__(self, ptr: Any, free: Optional[Callable[[Any], None]], parent: Optional["_Handle"], what: str):
        self.ptr = ptr
        self._free = free
        self.parent = parent
        self.children: Set["_Handle"] = set()
        self.dropped = False
        self.what = what
        self.why = ""
        if parent is not None:
            parent.get()
            parent.children.add(self)

    def get(self) -> Any:
        if self.ptr is None:
            raise ClosedError("%s is closed%s" % (self.what, self.why))
        return self.ptr

    @property
    def alive(self) -> bool:
        return self.ptr is not None

    def close(self, why: str = "") -> None:
        for c in list(self.children):
            c.close(" (its %s was closed)" % self.what)
        if self.ptr is not None:
            self.why = why
        self._release()

    def drop(self) -> None:
        self.dropped = True
        if not self.children:
            self._release()

    def _release(self) -> None:
        if self.ptr is None:
            return
        ptr, self.ptr = self.ptr, None
        if self._free is not None:
            self._free(ptr)
        p = self.parent
        if p is not None:
            p.children.discard(self)
            if p.dropped and not p.children:
                p._release()
