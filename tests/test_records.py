"""`diemcau.records`: a service's dataclass becomes a JSON reply without `Any`."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from diemcau.records import Record, iso, jsonable


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    day: date


@dataclass(frozen=True)
class Row(Record):
    omit = frozenset({"secret"})

    id: int
    at: datetime
    colour: Colour
    secret: str
    tags: tuple[str, ...]
    inner: Inner
    extra: dict[int, date]


def test_a_record_is_its_fields_made_json_ready_in_order() -> None:
    row = Row(
        7,
        datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        Colour.RED,
        "not in the reply",
        ("a", "b"),
        Inner(date(2026, 1, 2)),
        {3: date(2026, 1, 3)},
    )
    reply = row.as_dict()
    assert list(reply) == ["id", "at", "colour", "tags", "inner", "extra"]
    assert reply == {
        "id": 7,
        "at": "2026-11-30T08:00:00+00:00",
        "colour": "red",
        "tags": ["a", "b"],
        "inner": {"day": "2026-01-02"},
        "extra": {"3": "2026-01-03"},
    }
    # What the API sends is plain JSON: it survives a round trip unchanged.
    assert json.loads(json.dumps(reply)) == reply


def test_plain_values_pass_through_and_iso_keeps_none() -> None:
    assert jsonable(None) is None
    assert jsonable("x") == "x"
    assert jsonable([Colour.RED, 1.5]) == ["red", 1.5]
    assert iso(None) is None
    assert iso(date(2026, 2, 3)) == "2026-02-03"


def test_a_record_that_is_not_a_dataclass_is_a_bug_said_plainly() -> None:
    class Loose(Record):
        pass

    with pytest.raises(TypeError, match="Loose is a Record but not a dataclass"):
        Loose().as_dict()
