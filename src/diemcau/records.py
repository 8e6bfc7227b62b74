"""Typed values made ready for a JSON reply, without ``Any``.

Services hand their read models to the API as frozen dataclasses; a reply is the
dataclass's fields as a dict, with dates and times as ISO 8601 text and enums as
their value. One function does that conversion for every package, so a new field
is in the reply the moment it is in the dataclass, and no reply is typed ``Any``:
``JsonObject`` is a ``dict[str, object]``, which a reader narrows before use.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import ClassVar

__all__ = ["JsonObject", "Record", "iso", "jsonable"]

JsonObject = dict[str, object]

# Returned as they are, checked first: most fields of a reply are one of these.
_PLAIN: frozenset[type] = frozenset({str, int, float, bool})


def iso(value: date | datetime | time | None) -> str | None:
    """Return ISO 8601 text for a date or time, ``None`` for none."""
    return None if value is None else value.isoformat()


def jsonable(value: object) -> object:
    """Return `value` with every date, enum, dataclass and tuple made JSON-ready.

    Containers are converted all the way down; anything else (str, int, float,
    bool, None) is returned as it is.
    """
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, Record):
            return value.as_dict()
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [jsonable(item) for item in value]
    return value


class Record:
    """Mixin for a dataclass whose reply is its fields (see `jsonable`).

    ``omit`` names fields that stay out of the reply (internal keys, raw bytes).
    """

    omit: ClassVar[frozenset[str]] = frozenset()

    def as_dict(self) -> JsonObject:
        """Return the fields as a JSON-ready dict, in declaration order."""
        return {name: jsonable(getattr(self, name)) for name in _reply_fields(type(self))}


# Field names per Record class, read once: replies are built on hot paths.
_FIELDS: dict[type[Record], tuple[str, ...]] = {}


def _reply_fields(cls: type[Record]) -> tuple[str, ...]:
    """The names of the fields `cls` replies with, in declaration order."""
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is a Record but not a dataclass")
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls.omit)
        _FIELDS[cls] = names
    return names
