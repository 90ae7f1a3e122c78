"""PyTorch model files (``.ckpt``, ``.pt``, ``.pth``, ``.bin``) read statically, never
unpickled: a pickle is a program for Python's pickle machine, and loading one from evidence
runs whatever it names (``os.system``, ``builtins.exec`` …). Here the opcodes are only
walked with :func:`pickletools.genops`, which decodes them without executing any.

What a walk gathers:

- every global the pickle would import (``GLOBAL``, ``INST``, and ``STACK_GLOBAL`` whose
  module and name are resolved from the string opcodes that pushed them, through the memo,
  the way picklescan and fickling do; a ``STACK_GLOBAL`` whose strings cannot be seen, and an
  ``EXT1/2/4`` extension code, count as unknown code);
- the globals outside :data:`SAFE_GLOBALS`, what ``torch.save`` writes for tensors and state
  dicts: those are the ``calls`` of a pickle that would run code when loaded;
- the strings that look like tensor names (``model.diffusion_model.out.0.weight``), from
  which :mod:`safeguard.toolchain.models` tells the kind and architecture. Tensor shapes are
  not rebuilt from a pickle (that would need the pickle machine's stack; names suffice for
  the architectures a pickle can be told by).

Two layouts: the zip ``torch.save`` writes since PyTorch 1.6 (``<name>/data.pkl`` plus the
raw storages; every ``*.pkl`` member is walked, at most :data:`MAX_PICKLES`), and the legacy
one (a magic-number pickle, protocol, system info, the object, the storage keys, then raw
storages), or any single pickle. Each walk stops at :data:`MAX_PICKLE_BYTES`.
"""

from __future__ import annotations

import io
import pickletools
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, cast

from safeguard.config import Limits
from safeguard.errors import ItemError, one_line, short_name, tidy

#: bytes of pickle walked in one file (a state dict of 10,000 tensors is about 1 MB)
MAX_PICKLE_BYTES = 64 * 1024 * 1024
#: ``*.pkl`` members of one zip walked
MAX_PICKLES = 16
#: calls listed on a description, and tensor names kept from a pickle
MAX_CALLS = 50
MAX_NAMES = 200_000
#: memo entries tracked to resolve STACK_GLOBAL; past this a memo lookup resolves nothing
MAX_MEMO = 1_000_000
#: the first object of a legacy ``torch.save`` file
TORCH_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGES = ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte",
             "Bool", "ComplexFloat", "ComplexDouble", "QUInt8", "QInt8", "QInt32", "QUInt4x2",
             "QUInt2x4", "Untyped")
_DTYPES = ("float16", "float32", "float64", "bfloat16", "half", "float", "double", "int8",
           "int16", "int32", "int64", "uint8", "bool", "long", "int", "short", "complex64",
           "complex128", "float8_e4m3fn", "float8_e5m2")

#: the globals a pickle may import and still be data: what ``torch.save`` writes for tensors,
#: parameters and state dicts, NumPy arrays and scalars, and the few classes A1111's
#: restricted unpickler also accepts (``ParameterDict``, the ``ModelCheckpoint`` callback
#: state the original CompVis checkpoints carry). Everything else would import and call code.
SAFE_GLOBALS: frozenset[str] = frozenset({
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_qtensor",
    "torch._tensor._rebuild_from_type_v2",
    "torch.Size", "torch.device", "torch.nn.modules.container.ParameterDict",
    *(f"torch.{kind}Storage" for kind in _STORAGES),
    *(f"torch.{dtype}" for dtype in _DTYPES),
    "numpy.core.multiarray._reconstruct", "numpy.core.multiarray.scalar",
    "numpy._core.multiarray._reconstruct", "numpy._core.multiarray.scalar",
    "numpy.dtype", "numpy.ndarray",
    "_codecs.encode",
    "builtins.set", "builtins.frozenset", "builtins.slice",
    "__builtin__.set", "__builtin__.frozenset", "__builtin__.slice",
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
})

_STRING_OPS = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
                         "SHORT_BINUNICODE", "BINUNICODE8"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_EXT_OPS = frozenset({"EXT1", "EXT2", "EXT4"})
# a tensor name: dotted words, as state dicts and diffusers key their tensors, or one word
# (an embedding's "string_to_param", "emb_params")
_TENSOR_NAME = re.compile(r"[A-Za-z_][\w\-]*(?:\.[\w\-]+)*")
_UNRESOLVED = "unresolved STACK_GLOBAL"


@dataclass
class PickleScan:
    """What the walks of one file's pickles found."""

    #: every global imported, as ``module.name``
    imports: set[str] = field(default_factory=set)
    #: the imports outside SAFE_GLOBALS, extension codes, and unresolved STACK_GLOBALs
    calls: set[str] = field(default_factory=set)
    #: strings that look like tensor names (dotted words, or one word), in the order met,
    #: unique
    names: dict[str, None] = field(default_factory=dict)
    #: integers pushed by LONG1/LONG4 (to know a legacy torch.save file by its magic)
    first_long: int | None = None


class _Capped(io.RawIOBase):
    """``stream`` read through a budget: past ``budget[0]`` bytes it raises ItemError, so a
    pickle that never ends is walked no further than the cap."""

    def __init__(self, stream: IO[bytes], budget: list[int], where: str) -> None:
        super().__init__()
        self._stream = stream
        self._budget = budget
        self._where = where
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _take(self, data: bytes) -> bytes:
        self._budget[0] -= len(data)
        self._pos += len(data)
        if self._budget[0] < 0:
            raise ItemError(tidy(f"pickle in {self._where} is longer than "
                                 f"{MAX_PICKLE_BYTES} bytes"))
        return data

    def read(self, size: int | None = -1) -> bytes:
        want = self._budget[0] + 1 if size is None or size < 0 else size
        parts: list[bytes] = []
        got = 0
        while got < want:
            chunk = self._stream.read(min(want - got, 1 << 20))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return self._take(b"".join(parts))

    def readline(self, size: int | None = -1) -> bytes:
        parts: list[bytes] = []
        limit = 1 << 20 if size is None or size < 0 else size
        while len(parts) < limit:
            byte = self._stream.read(1)
            if not byte:
                break
            parts.append(byte)
            if byte == b"\n":
                break
        return self._take(b"".join(parts))

    def tell(self) -> int:
        return self._pos


def walk(stream: IO[bytes], where: str, scan: PickleScan, budget: list[int]) -> bool:
    """Walk one pickle from ``stream``'s position to its STOP, adding to ``scan``. False when
    the stream is at its end before any opcode (no pickle there); ItemError
    "damaged pickle in <where>: …" for one that cannot be decoded."""
    capped = _Capped(stream, budget, where)
    memo: dict[int, str | None] = {}
    recent: list[str | None] = []   # what the last opcodes pushed (strings, or None)
    first = True
    overflow = False
    try:
        for opcode, arg, _pos in pickletools.genops(cast(IO[bytes], capped)):
            first = False
            name = opcode.name
            if name in _STRING_OPS:
                text = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                _push(recent, text)
                if (len(scan.names) < MAX_NAMES and len(text) <= 256
                        and _TENSOR_NAME.fullmatch(text)):
                    scan.names.setdefault(text, None)
            elif name == "MEMOIZE" or name in _PUT_OPS:
                index = len(memo) if name == "MEMOIZE" else int(cast(int, arg))
                if index in memo or len(memo) < MAX_MEMO:
                    memo[index] = recent[-1] if recent else None
                else:
                    overflow = True   # indices are no longer known: resolve nothing more
            elif name in _GET_OPS:
                _push(recent, None if overflow else memo.get(int(cast(int, arg))))
            elif name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                _imported(scan, f"{module}.{attr}")
                _push(recent, None)
            elif name == "STACK_GLOBAL":
                module_name = recent[-2:] if len(recent) >= 2 else []
                if len(module_name) == 2 and all(isinstance(x, str) for x in module_name):
                    _imported(scan, f"{module_name[0]}.{module_name[1]}")
                else:
                    scan.calls.add(_UNRESOLVED)
                _push(recent, None)
            elif name in _EXT_OPS:
                scan.calls.add(f"copyreg extension {arg}")
                _push(recent, None)
            elif name in ("LONG1", "LONG4"):
                if scan.first_long is None and isinstance(arg, int):
                    scan.first_long = arg
                _push(recent, None)
            elif name not in ("PROTO", "FRAME", "MARK", "STOP"):
                _push(recent, None)
    except ItemError:
        raise
    except (ValueError, EOFError, UnicodeError, OverflowError) as exc:
        if first and not capped.tell():
            return False
        raise ItemError(tidy(f"damaged pickle in {where}: {one_line(exc)}")) from exc
    return True


def _push(recent: list[str | None], value: str | None) -> None:
    recent.append(value)
    if len(recent) > 8:
        del recent[:-2]


def _imported(scan: PickleScan, qualified: str) -> None:
    scan.imports.add(qualified)
    if qualified not in SAFE_GLOBALS:
        scan.calls.add(qualified)


def data_pickle(names: list[str]) -> str | None:
    """The member ``torch.load`` unpickles in a zip: ``data.pkl`` one folder down (the
    folder is the archive's name, ``archive`` by default), or at the top."""
    for name in names:
        if name == "data.pkl" or (name.count("/") == 1 and name.endswith("/data.pkl")):
            return name
    return None


def scan_pytorch(stream: BinaryIO, size: int, limits: Limits) -> tuple[PickleScan, list[str]]:
    """The static walk of a PyTorch file (zip or legacy) and notes on its layout.
    ItemError for a damaged zip, one without ``data.pkl``, or a damaged pickle. ``size`` is
    not needed: the zip reader finds the end itself, a pickle ends at its STOP."""
    del size
    stream.seek(0)
    scan = PickleScan()
    budget = [MAX_PICKLE_BYTES]
    if stream.read(4) == b"PK\x03\x04":
        return scan, _scan_zip(stream, scan, budget, limits)
    stream.seek(0)
    if not walk(stream, "the file", scan, budget):
        raise ItemError("PyTorch file holds no pickle")
    if scan.first_long == TORCH_MAGIC:
        # protocol version, system info, the object itself, the storage keys
        for _ in range(4):
            if not walk(stream, "the file", scan, budget):
                raise ItemError("legacy PyTorch file ends before its storages")
        return scan, ["legacy torch.save layout"]
    return scan, ["a single pickle"]


def _scan_zip(stream: BinaryIO, scan: PickleScan, budget: list[int],
              limits: Limits) -> list[str]:
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
            if len(infos) > limits.max_archive_members:
                raise ItemError(f"PyTorch archive has {len(infos)} members, more than "
                                f"{limits.max_archive_members}")
            names = [info.filename for info in infos]
            main = data_pickle(names)
            if main is None:
                raise ItemError("PyTorch archive has no data.pkl")
            pickles = [main] + [n for n in names if n.endswith(".pkl") and n != main]
            notes = []
            if any(n.endswith(".py") or "/code/" in f"/{n}" for n in names):
                notes.append("TorchScript archive (holds code)")
            for member in pickles[:MAX_PICKLES]:
                info = archive.getinfo(member)
                if info.file_size > MAX_PICKLE_BYTES:
                    raise ItemError(tidy(f"{short_name(member)} is {info.file_size} bytes, "
                                         f"more than {MAX_PICKLE_BYTES}"))
                with archive.open(info) as pickled:
                    if not walk(pickled, short_name(member), scan, budget):
                        raise ItemError(tidy(f"damaged pickle in {short_name(member)}: "
                                             "it is empty"))
            if len(pickles) > MAX_PICKLES:
                notes.append(f"only the first {MAX_PICKLES} of {len(pickles)} pickles read")
            return notes
    except ItemError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            ValueError, NotImplementedError, RuntimeError) as exc:
        raise ItemError(tidy(f"damaged PyTorch archive: {one_line(exc)}")) from exc


def code_summary(scan: PickleScan) -> dict[str, Any]:
    """The ``code`` object of a description: whether loading would run code, and what."""
    return {"executes_code": bool(scan.calls), "calls": sorted(scan.calls)[:MAX_CALLS]}
