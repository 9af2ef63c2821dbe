"""Results of the rebuild worker, sent to the serving process in a form it loads in short steps.

A catalog index is mostly numpy arrays (copied in microseconds) and a few lists of 28k strings
and dicts keyed by track id. `pickle.loads` builds those one object at a time inside a single C
call that holds the interpreter lock: 20-40 ms on the demo catalog (m2's content space 38 ms),
so every rebuild froze the serving event loop for that long (the m2/m3 tail in bench_sync).

Here the worker's pickler replaces each long list of strings by a few joined text blocks and
each long str->int dict by its keys and an int array; the serving side rebuilds them through
`persistent_load`, a Python call per block. The interpreter can switch threads between blocks,
so the event loop waits at most one block (about 1 ms), and splitting joined text is also
several times faster than unpickling the strings one by one. Short and mixed containers are
pickled as usual; the same list or dict referenced twice is still one object after loading.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

import numpy as np

T = TypeVar("T")
MIN_PACKED = 2048  # shorter containers are not worth a block
BLOCK = 4096  # strings per joined block: one short step of the loader
# A list of strings with at most one distinct value in this many rows (genres, dates, sources)
# is packed as its distinct values and a code per row: loaded, the rows share their values'
# objects (at 1M tracks ~60 MB less for each such field than one string object a row).
FEW_DISTINCT = 8
_SEP, _NONE = "\x00", "\x01"  # separator, and the stand-in for None (never in catalog text)


def _packable_strs(items: list[Any]) -> bool:
    """Only str (not a subclass) and None, no str holding the separator or the None stand-in:
    checked in C (type by type, then one join), not item by item (1 s per million strings)."""
    kinds = set(map(type, items))
    if not kinds <= {str, type(None)}:
        return False
    strs = [s for s in items if s is not None] if type(None) in kinds else items
    joined = _SEP.join(strs)
    return joined.count(_SEP) == max(len(strs) - 1, 0) and _NONE not in joined


def _packable_index(mapping: dict[Any, Any]) -> bool:
    return all(type(k) is str and type(v) is int for k, v in mapping.items())


def _few_distinct(items: list[Any]) -> dict[Any, None] | None:
    """The distinct values in order, when there are at most one in FEW_DISTINCT; a list
    whose sample of about 4k already has more is not hashed whole (titles, ids: 0.3-0.9 s
    per million strings)."""
    sample = items[:: max(len(items) // 4096, 1)]
    if len(set(sample)) * FEW_DISTINCT > len(sample):
        return None
    distinct = dict.fromkeys(items)
    return distinct if len(distinct) * FEW_DISTINCT <= len(items) else None


def _blocks(items: list[str | None]) -> list[str]:
    if None in items:
        items = [_NONE if s is None else s for s in items]
    return [_SEP.join(items[start : start + BLOCK]) for start in range(0, len(items), BLOCK)]  # type: ignore[arg-type]


class _Packer(pickle.Pickler):
    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._ids: dict[int, int] = {}
        self._keep: list[Any] = []  # holds packed objects so their ids stay unique

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is list and len(obj) >= MIN_PACKED and _packable_strs(obj):
            distinct = _few_distinct(obj)
            if distinct is not None:  # genres, dates: one object a value
                values = {value: code for code, value in enumerate(distinct)}
                return self._ref(
                    obj,
                    "labels",
                    lambda: (_blocks(list(distinct)), np.array([values[s] for s in obj], np.int32)),
                )
            return self._ref(obj, "strs", lambda: _blocks(obj))
        if kind is dict and len(obj) >= MIN_PACKED and _packable_index(obj):
            return self._ref(
                obj, "index", lambda: (_blocks(list(obj)), np.fromiter(obj.values(), np.int64))
            )
        return None

    def _ref(self, obj: Any, kind: str, payload: Any) -> tuple[Any, ...]:
        serial = self._ids.get(id(obj))
        if serial is not None:
            return (kind, serial, None)
        serial = self._ids[id(obj)] = len(self._ids)
        self._keep.append(obj)
        return (kind, serial, payload())


def _strings(blocks: list[str]) -> list[str | None]:
    out: list[str | None] = []
    for block in blocks:  # one block per step: the lock can change hands in between
        parts: list[str | None] = list(block.split(_SEP))
        if _NONE in parts:
            parts = [None if s == _NONE else s for s in parts]
        out.extend(parts)
    return out


def _labels(distinct: list[str | None], codes: np.ndarray) -> list[str | None]:
    """Each row's value, the rows of one value sharing one object."""
    out: list[str | None] = []
    for start in range(0, len(codes), BLOCK):  # short steps, as _strings
        out.extend([distinct[c] for c in codes[start : start + BLOCK].tolist()])
    return out


class _Unpacker(pickle.Unpickler):
    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self._loaded: dict[int, Any] = {}

    def persistent_load(self, pid: Any) -> Any:
        kind, serial, payload = pid
        if payload is None:
            return self._loaded[serial]
        if kind == "strs":
            value: Any = _strings(payload)
        elif kind == "labels":
            distinct, codes = payload
            value = _labels(_strings(distinct), codes)
        elif kind == "index":
            keys, values = payload
            value = dict(zip(_strings(keys), values.tolist(), strict=True))
        else:
            raise pickle.UnpicklingError(f"unknown packed kind {kind!r}")
        self._loaded[serial] = value
        return value


def pack(obj: Any) -> bytes:
    buffer = io.BytesIO()
    pack_into(obj, buffer)
    return buffer.getvalue()


class Packed(Generic[T]):
    """An object packed once, where it was built, and then only moved as bytes: a rebuild
    worker's result that it also keeps on the volume (musicspace_shared.offload sends it as
    is, musicspace_shared.saved_state writes it as is; m3's 1M-track snapshot took 4 s to
    pack, once for each)."""

    def __init__(self, obj: T) -> None:
        self.data = pack(obj)


def unpack(data: bytes) -> Any:
    return unpack_from(io.BytesIO(data))


def pack_into(obj: Any, file: BinaryIO) -> None:
    """`pack` written to an open binary file (a snapshot kept on a volume)."""
    _Packer(file).dump(obj)


def unpack_from(file: BinaryIO) -> Any:
    """`unpack` read from an open binary file, from its current position."""
    return _Unpacker(file).load()


class PackedFile:
    """One object kept packed in a file between uses, not on the heap: a rebuild worker's last
    build, needed only when the next rebuild comes. The file is named by the caller, so a
    fresh worker can read what the one before it kept (musicspace_shared.offload's fresh
    worker per run); the page cache may hold it, but the kernel can drop that."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __bool__(self) -> bool:
        return self.path.is_file()

    def put(self, obj: Any) -> None:
        """Keep `obj` (packed into a new file, then put in place of what was kept)."""
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            with partial.open("wb") as file:
                pack_into(obj, file)
            partial.replace(self.path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def get(self) -> Any:
        """What was kept (a fresh copy on every call), or None."""
        try:
            file = self.path.open("rb")
        except FileNotFoundError:
            return None
        with file:
            return unpack_from(file)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
