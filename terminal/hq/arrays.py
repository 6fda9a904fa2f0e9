"""Lists sent to PostgreSQL as binary arrays, dumped in one pass.

An ingest batch sends its rows as arrays, one a column (:mod:`terminal.hq.buffered`), and its
reads and locks name their members, sales and keys as arrays (:mod:`terminal.hq.kept`). psycopg
dumps a Python list by looking at every element for its type (and, for ints, the largest),
making a dumper for it on each statement's new cursor, and then appending each element's length
and bytes in a Python loop: py-spy of one collector (session 11) found psycopg's array module in
16% of its ledger thread's busy samples, the largest single part of its CPU. The statements
already name each array's type (``%b::text[]``), so :func:`array` dumps the list here, with the
element type given, as PostgreSQL's binary array format (one dimension, lower bound 1), and hands
psycopg the bytes through a dumper registered for :class:`BinaryArray` (psycopg's public
adapter seam: ``adapters.register_dumper``). A list of another type, or one whose elements do not
fit the type given, goes as the list it is, dumped by psycopg as before.

The bytes are what psycopg's own binary dump of the same list sends once cast, so the server
reads the same values (``tests/hq/test_arrays.py`` compares them on a real server).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any, ClassVar

from psycopg import adapt, pq

_HEAD = struct.Struct("!iiIii")  # dimensions, has nulls, element oid, length, lower bound
_EMPTY = struct.Struct("!iiI")  # no dimension: an empty array
_LENGTH = struct.Struct("!i").pack
_NULL = b"\xff\xff\xff\xff"


class BinaryArray:
    """A list dumped as a PostgreSQL array of ``oid`` (binary format)."""

    __slots__ = ("data",)
    oid: ClassVar[int] = 0

    def __init__(self, data: bytes) -> None:
        self.data = data


class _Fixed:
    """Elements of a fixed size (ints, booleans): each a length word and its bytes."""

    def __init__(self, code: str, size: int, kind: type) -> None:
        self.pair = struct.Struct(f"!i{code}").pack
        self.size, self.kind = size, kind

    def __call__(self, values: Sequence[Any]) -> tuple[bytes, bool]:
        types = set(map(type, values))
        if types == {self.kind}:
            return b"".join(map(self.pair, repeat(self.size, len(values)), values)), False
        if types != {self.kind, type(None)}:
            raise TypeError(f"not {self.kind.__name__}")
        return b"".join(_NULL if v is None else self.pair(self.size, v) for v in values), True


_WORDS = [_LENGTH(n) for n in range(1024)]  # the length words of short elements, made once


def _text(values: Sequence[Any]) -> tuple[bytes, bool]:
    types = set(map(type, values))
    if types == {str}:
        encoded = list(map(str.encode, values))
        sizes = set(map(len, encoded))
        if len(sizes) == 1:  # ids, card hashes, days: every element has the same length word
            word = _LENGTH(sizes.pop())
            return word + word.join(encoded), False
        words = map(_WORDS.__getitem__ if max(sizes) < len(_WORDS) else _LENGTH,
                    map(len, encoded))
        return b"".join(chain.from_iterable(zip(words, encoded, strict=True))), False
    if types != {str, type(None)}:
        raise TypeError("not text")
    return b"".join(_NULL if v is None else _LENGTH(len(b := v.encode())) + b
                    for v in values), True


# format_type(...) of a column -> (element oid, array oid, dump of a list)
_KINDS: dict[str, tuple[int, int, Any]] = {
    "text": (25, 1009, _text),
    "character varying": (1043, 1015, _text),
    "smallint": (21, 1005, _Fixed("h", 2, int)),
    "integer": (23, 1007, _Fixed("i", 4, int)),
    "bigint": (20, 1016, _Fixed("q", 8, int)),
    "boolean": (16, 1000, _Fixed("?", 1, bool)),
}


def _array_class(name: str, array_oid: int) -> type[BinaryArray]:
    return type(name, (BinaryArray,), {"__slots__": (), "oid": array_oid})


_CLASSES = {kind: _array_class(f"BinaryArray_{array_oid}", array_oid)
            for kind, (_, array_oid, _) in _KINDS.items()}


def array(values: Sequence[Any], kind: str) -> BinaryArray | list[Any]:
    """``values`` as an array of the SQL type ``kind`` (as format_type names it),
    for a ``%b`` parameter; the list itself when ``kind`` is not one dumped here or a value
    does not fit it (psycopg dumps it then)."""
    found = _KINDS.get(kind)
    if found is None:
        return list(values)
    element_oid, _, dump = found
    if not values:
        return _CLASSES[kind](_EMPTY.pack(0, 0, element_oid))
    try:
        body, nulls = dump(values)
    except (TypeError, struct.error):
        return list(values)
    return _CLASSES[kind](_HEAD.pack(1, nulls, element_oid, len(values), 1) + body)


class _ArrayDumper(adapt.Dumper):
    format = pq.Format.BINARY

    def dump(self, obj: BinaryArray) -> bytes:
        return obj.data


def register(adapters: adapt.AdaptersMap) -> None:
    """Dump :class:`BinaryArray` values on connections using ``adapters`` (a connection's
    ``adapters``, or psycopg's global map)."""
    for cls in _CLASSES.values():
        adapters.register_dumper(cls, type(f"Dumper{cls.oid}", (_ArrayDumper,),
                                           {"oid": cls.oid}))
