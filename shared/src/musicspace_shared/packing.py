"""Results of the rebuild worker, sent to the serving process in a form it loads in short steps.

A catalog index is mostly numpy arrays (copied in microseconds) and a few lists of 28k strings
and dicts keyed by track id. `pickle.loads` builds those one object at a time inside a single C
call that holds the interpreter lock: 20-40 ms on the demo catalog (m2's content space 38 ms),
so every rebuild froze the serving event loop for that long (the m2/m3 tail in bench_sync).

Here the worker's pickler replaces each long list of strings by a few joined blocks of UTF-8,
each long str->int dict by its keys and an int array, and each long list of datetimes (rows'
updated_at) by one int64 array; the serving side rebuilds them through `persistent_load`, a
Python call per block. The interpreter can switch threads between blocks, so the event loop
waits about one block (about 1 ms), and splitting joined text is also several times faster than
unpickling the strings one by one. The packer checks and joins a block at a time too, so packing
in a thread stops the others no longer than loading does. Short and mixed containers are pickled
as usual; the same list or dict referenced twice is still one object after loading.

At 1M tracks (bench/snapshot_pack.py on a generated catalog, session 24, three runs), the llm's
snapshot packs in a thread in 3.3-3.8 s with the event loop's 5 ms wake-ups at most 38-62 ms
late (p99 13-23 ms), and loads in 2.8-2.9 s, at most 133-168 ms late (p99 26-38 ms); before the
blocks above were checked a block at a time and datetimes packed, 12.5 s and 943 ms (p99 110)
to pack, 9.1 s and 887 ms (p99 772) to load. The longest waits left were not broken down: a
dict of 1M keys resizing as it fills is one step of 28 ms or more, the unpickler copying a big
array another.
"""

from __future__ import annotations

import io
import pickle
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

import numpy as np

T = TypeVar("T")
# What a packed file holds: kept in saved states' headers (musicspace_shared.saved_state), so a
# file packed by another version is skipped with its reason. 2: text blocks as UTF-8 bytes,
# datetimes as one array (session 24); 1: text blocks as str.
FORMAT = 2
MIN_PACKED = 2048  # shorter containers are not worth a block
BLOCK = 4096  # strings per joined block: one short step of the loader
# A list of strings with at most one distinct value in this many rows (genres, dates, sources)
# is packed as its distinct values and a code per row: loaded, the rows share their values'
# objects (at 1M tracks ~60 MB less for each such field than one string object a row).
FEW_DISTINCT = 8
_SEP, _NONE = "\x00", "\x01"  # separator, and the stand-in for None (never in catalog text)
_STR_KINDS = {str, type(None)}
# Blocks travel as UTF-8 bytes, decoded by the loader a block per step: the unpickler decodes
# str payloads in C, all the blocks of a list in one go (110 ms for the 1M titles), while bytes
# it only copies.
_UTF8, _KEEP_SURROGATES = "utf-8", "surrogatepass"
_TIME_KINDS = {datetime, type(None)}
_TZINFO = attrgetter("tzinfo")
_EPOCHS = {None: datetime(1970, 1, 1), UTC: datetime(1970, 1, 1, tzinfo=UTC)}
_MICROSECOND = timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min  # numpy's "not a time", for None
_UNSET = object()


def _str_blocks(items: list[Any]) -> list[bytes] | None:
    """The list as joined blocks, or None unless it holds only str (not a subclass) and None
    and no str holds the separator or the None stand-in. Checked and joined a block at a time,
    each block in C: one step per block, not item by item (1 s per million strings) nor one C
    call over the whole list (70 ms at 1M strings, the event loop stopped meanwhile)."""
    blocks = []
    for start in range(0, len(items), BLOCK):
        chunk = items[start : start + BLOCK]
        kinds = set(map(type, chunk))
        if not kinds <= _STR_KINDS:
            return None
        nones = chunk.count(None) if type(None) in kinds else 0
        if nones:
            chunk = [_NONE if s is None else s for s in chunk]
        block = _SEP.join(chunk)
        if block.count(_SEP) != len(chunk) - 1 or block.count(_NONE) != nones:
            return None
        blocks.append(block.encode(_UTF8, _KEEP_SURROGATES))
    return blocks


def _times(items: list[Any]) -> tuple[bool, np.ndarray] | None:
    """A list of datetimes (and None) as microseconds since 1970 (NaT for None), with whether
    they were UTC-aware; None unless every one is naive or every one UTC. Pickled one by one, 1M
    datetimes (the catalog rows' updated_at) took 2 s and stopped the other threads for 411 ms."""
    parts, zone = [], _UNSET
    for start in range(0, len(items), BLOCK):
        chunk = items[start : start + BLOCK]
        kinds = set(map(type, chunk))
        if not kinds <= _TIME_KINDS:
            return None
        zones = set(
            map(_TZINFO, [d for d in chunk if d is not None] if type(None) in kinds else chunk)
        )
        if zone is _UNSET and zones:
            zone = next(iter(zones))
        if zones - {zone} or zone not in _EPOCHS:
            return None
        epoch = _EPOCHS[zone]
        micros = (_NAT if d is None else (d - epoch) // _MICROSECOND for d in chunk)
        parts.append(np.fromiter(micros, np.int64, len(chunk)))
    return zone is UTC, np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _packable_index(mapping: dict[Any, Any]) -> bool:
    return all(type(k) is str and type(v) is int for k, v in mapping.items())


def _few_distinct(items: list[Any]) -> dict[Any, None] | None:
    """The distinct values in order, when the list holds only str and None with at most one
    distinct value in FEW_DISTINCT; a list whose sample of about 4k already has more is not
    hashed whole (titles, ids: 0.3-0.9 s per million strings)."""
    sample = items[:: max(len(items) // 4096, 1)]
    if not set(map(type, sample)) <= _STR_KINDS or len(set(sample)) * FEW_DISTINCT > len(sample):
        return None
    distinct: dict[Any, None] = {}
    for start in range(0, len(items), BLOCK):
        chunk = items[start : start + BLOCK]
        if not set(map(type, chunk)) <= _STR_KINDS:
            return None
        distinct.update(dict.fromkeys(chunk))
        if len(distinct) * FEW_DISTINCT > len(items):
            return None
    return distinct


class _Packer(pickle.Pickler):
    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._packed: dict[int, tuple[str, int]] = {}  # id of each packed object: kind, serial
        self._keep: list[Any] = []  # holds packed objects so their ids stay unique

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is list and len(obj) >= MIN_PACKED:
            return self._ref(obj, self._pack_list)
        if kind is dict and len(obj) >= MIN_PACKED:
            return self._ref(obj, self._pack_index)
        return None

    def _ref(self, obj: Any, pack: Any) -> tuple[Any, ...] | None:
        """The persistent id of `obj` (the first time, `pack(obj)`: kind and payload, or None
        to pickle it as usual), or a reference to the same object packed before."""
        seen = self._packed.get(id(obj))
        if seen is not None:
            return (*seen, None)
        packed = pack(obj)
        if packed is None:
            return None
        kind, payload = packed
        self._packed[id(obj)] = (kind, len(self._packed))
        self._keep.append(obj)
        return (kind, len(self._packed) - 1, payload)

    @staticmethod
    def _pack_list(obj: list[Any]) -> tuple[str, Any] | None:
        first = type(obj[0])
        if first is datetime or (first is type(None) and type(obj[-1]) is datetime):
            times = _times(obj)
            return None if times is None else ("times", times)
        return _Packer._pack_strs(obj)

    @staticmethod
    def _pack_strs(obj: list[Any]) -> tuple[str, Any] | None:
        distinct = _few_distinct(obj)
        if distinct is not None:  # genres, dates: one object a value
            labels = _str_blocks(list(distinct))
            if labels is None:
                return None
            values = {value: code for code, value in enumerate(distinct)}
            codes = np.fromiter((values[s] for s in obj), np.int32, len(obj))
            return "labels", (labels, codes)
        blocks = _str_blocks(obj)
        return None if blocks is None else ("strs", blocks)

    @staticmethod
    def _pack_index(obj: dict[Any, Any]) -> tuple[str, Any] | None:
        if not _packable_index(obj):
            return None
        keys = _str_blocks(list(obj))
        return None if keys is None else ("index", (keys, np.fromiter(obj.values(), np.int64)))


def _strings(blocks: list[bytes]) -> list[str | None]:
    out: list[str | None] = []
    for block in blocks:  # one block per step: the lock can change hands in between
        parts: list[str | None] = block.decode(_UTF8, _KEEP_SURROGATES).split(_SEP)
        if _NONE in parts:
            parts = [None if s == _NONE else s for s in parts]
        out.extend(parts)
    return out


def _labels(distinct: list[str | None], codes: np.ndarray) -> list[str | None]:
    """Each row's value, the rows of one value sharing one object."""
    out: list[str | None] = []
    for start in range(0, len(codes), BLOCK):
        out.extend([distinct[c] for c in codes[start : start + BLOCK].tolist()])
    return out


def _index(keys: list[str | None], values: np.ndarray) -> dict[str | None, int]:
    """The dict of keys to values, filled a block at a time (as _strings): built in one C call,
    a dict of 1M fresh keys (each hashed as it goes in) held the lock for 0.36 s."""
    if len(keys) != len(values):
        raise pickle.UnpicklingError("packed index: keys and values differ in length")
    out: dict[str | None, int] = {}
    for start in range(0, len(keys), BLOCK):
        out.update(
            zip(keys[start : start + BLOCK], values[start : start + BLOCK].tolist(), strict=False)
        )
    return out


def _datetimes(utc: bool, micros: np.ndarray) -> list[datetime | None]:
    out: list[datetime | None] = []
    for start in range(0, len(micros), BLOCK):
        chunk = micros[start : start + BLOCK]
        if utc:  # numpy makes naive datetimes: the epoch plus each one's timedelta
            since = chunk.view("timedelta64[us]").tolist()
            out.extend([None if t is None else _EPOCHS[UTC] + t for t in since])
        else:
            out.extend(chunk.view("datetime64[us]").tolist())
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
        elif kind == "times":
            value = _datetimes(*payload)
        elif kind == "index":
            keys, values = payload
            value = _index(_strings(keys), values)
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
