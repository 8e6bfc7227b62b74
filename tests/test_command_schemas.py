"""Indicator schemas: presets load, and every kind of bad value is refused with its field named."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from diemcau.command.schemas import (
    IndicatorSchema,
    SchemaRegistry,
    builtin_registry,
    load_schema_file,
)
from diemcau.errors import Invalid, NotFound
from tests.test_command_support import covid


@pytest.fixture
def schema() -> IndicatorSchema:
    return builtin_registry().get("covid19")


def test_presets_load_with_vietnamese_and_english_labels() -> None:
    reg = builtin_registry()
    assert [s.key for s in reg.all()] == ["covid19", "disaster"]
    c = reg.get("covid19")
    keys = [i.key for i in c.indicators]
    for k in (
        "new_cases",
        "under_treatment",
        "recovered",
        "deaths",
        "vaccine_doses",
        "zone_level",
        "distancing_order",
    ):
        assert k in keys
    zone = c.indicator("zone_level")
    assert [ch.key for ch in zone.choices] == ["green", "yellow", "orange", "red"]
    assert c.indicator("deaths").label_vi == "Số ca tử vong"
    d = reg.get("disaster")
    assert {"people_evacuated", "houses_damaged", "deaths", "urgent_needs"} <= {
        i.key for i in d.indicators
    }
    assert all(i.label_vi and i.label_en for s in reg.all() for i in s.indicators)
    with pytest.raises(NotFound, match="schema: 'flu'"):
        reg.get("flu")


def test_good_report_is_typed(schema: IndicatorSchema) -> None:
    out = schema.validate_values(covid(new_cases=5.0, notes="  ổn định  "))
    assert out["new_cases"] == 5 and isinstance(out["new_cases"], int)
    assert out["notes"] == "ổn định"
    assert out["distancing_order"] is False


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("deaths", -1, "deaths: must be ≥ 0"),  # negative count
        ("new_cases", 2.5, "new_cases: must be an integer"),  # fraction for an int
        ("new_cases", "12", "new_cases: must be an integer"),  # text for an int
        ("new_cases", True, "new_cases: must be an integer"),  # bool is not an int
        ("zone_level", "purple", "zone_level: must be one of green, yellow, orange, red"),
        ("zone_level", 3, "zone_level: must be one of"),  # number for a choice
        ("distancing_order", "yes", "distancing_order: must be true or false"),
        ("distancing_order", 1, "distancing_order: must be true or false"),
        ("notes", 42, "notes: must be text"),
        ("notes", "x" * 2001, "notes: at most 2000 characters"),
        ("vaccine_doses", float("nan"), "vaccine_doses: must be an integer"),
    ],
)
def test_bad_values_name_the_field(
    schema: IndicatorSchema, field: str, bad: Any, message: str
) -> None:
    with pytest.raises(Invalid) as err:
        schema.validate_values(covid(**{field: bad}))
    assert err.value.message.startswith(message)


def test_missing_required_and_unknown_keys(schema: IndicatorSchema) -> None:
    values = covid()
    del values["deaths"]
    with pytest.raises(Invalid, match="deaths: is required"):
        schema.validate_values(values)
    with pytest.raises(Invalid, match="death: unknown indicator"):
        schema.validate_values(covid(death=1))
    # A correction may carry some fields only.
    assert schema.validate_values({"deaths": 2}, partial=True) == {"deaths": 2}


def test_percent_bounds() -> None:
    s = IndicatorSchema.model_validate(
        {
            "key": "vax",
            "label_vi": "Tiêm chủng",
            "label_en": "Vaccination",
            "indicators": [
                {
                    "key": "coverage",
                    "type": "percent",
                    "label_vi": "Tỷ lệ",
                    "label_en": "Coverage",
                    "unit_vi": "%",
                    "unit_en": "%",
                }
            ],
        }
    )
    assert s.validate_values({"coverage": 55}) == {"coverage": 55.0}
    with pytest.raises(Invalid, match="coverage: must be ≤ 100"):
        s.validate_values({"coverage": 100.5})
    with pytest.raises(Invalid, match="coverage: must be ≥ 0"):
        s.validate_values({"coverage": -3})
    with pytest.raises(Invalid, match="coverage: must be a number"):
        s.validate_values({"coverage": "half"})


def test_csv_cells_parse_by_type(schema: IndicatorSchema) -> None:
    assert schema.indicator("new_cases").parse_cell(" 12 ") == 12
    assert schema.indicator("distancing_order").parse_cell("Có") is True
    assert schema.indicator("distancing_order").parse_cell("0") is False
    assert schema.indicator("new_cases").parse_cell("") is None
    with pytest.raises(Invalid, match="new_cases: must be an integer"):
        schema.indicator("new_cases").parse_cell("mười")


def test_bad_schema_files_are_refused_on_load(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "key": "x",
        "label_vi": "X",
        "label_en": "X",
        "indicators": [{"key": "a", "type": "int", "label_vi": "A", "label_en": "A"}],
    }
    # An unknown indicator type.
    bad = json.loads(json.dumps(base))
    bad["indicators"][0]["type"] = "float"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(Invalid, match="schema file .*bad.json: indicators.0.type"):
        load_schema_file(p)
    # A choice indicator without choices.
    bad = json.loads(json.dumps(base))
    bad["indicators"][0]["type"] = "choice"
    with pytest.raises(Invalid, match="a choice indicator needs choices"):
        load_schema_file("inline.json", json.dumps(bad))
    # Duplicate indicator keys.
    bad = json.loads(json.dumps(base))
    bad["indicators"].append(bad["indicators"][0])
    with pytest.raises(Invalid, match="duplicate indicator keys: a"):
        load_schema_file("inline.json", json.dumps(bad))
    # Not JSON at all.
    with pytest.raises(Invalid, match="cannot read JSON"):
        load_schema_file("inline.json", "{nope")
    # The same key twice in one registry.
    (tmp_path / "one.json").write_text(json.dumps(base))
    (tmp_path / "two.json").write_text(json.dumps(base))
    (tmp_path / "bad.json").unlink()
    with pytest.raises(Invalid, match="schema 'x' is defined twice"):
        SchemaRegistry().load_dir(tmp_path)


def test_periods_and_deadlines(schema: IndicatorSchema) -> None:
    # 23:30 UTC on the 25th is 06:30 on the 26th in Vietnam (UTC+7).
    assert schema.period_of(datetime(2026, 11, 25, 23, 30, tzinfo=UTC)) == date(2026, 11, 26)
    # Daily COVID-19 reports are due at noon (local) the next day: 05:00 UTC.
    assert schema.deadline(date(2026, 11, 25)) == datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    weekly = schema.model_copy(update={"period": "weekly"})
    assert weekly.normalise_period(date(2026, 11, 26)) == date(2026, 11, 23)
    assert len(schema.periods(date(2026, 11, 1), date(2026, 11, 30))) == 30
