"""Aggregation equals a hand-computed fixture; series, map values and exports agree with it."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from diemcau.actors import Actor
from diemcau.command.aggregation import Aggregator, province_labels
from diemcau.command.exports import aggregate_table, rows_as_dicts, to_csv, to_xlsx
from diemcau.command.models import Rollup
from diemcau.command.reports import ReportService
from diemcau.command.rollups import rebuild
from diemcau.command.schemas import IndicatorSchema, SchemaRegistry, builtin_registry
from diemcau.errors import Forbidden, Invalid
from diemcau.store import Database
from tests.test_command_support import Country, FakeClock, covid, seed_country

D1, D2 = date(2026, 11, 24), date(2026, 11, 25)
CHAIR = Actor.for_staff("chair", "chair")

VAX = IndicatorSchema.model_validate(
    {
        "key": "vax",
        "label_vi": "Tiêm chủng",
        "label_en": "Vaccination",
        "indicators": [
            {"key": "coverage", "type": "percent", "label_vi": "Tỷ lệ phủ", "label_en": "Coverage"}
        ],
    }
)


async def _fixture(db: Database) -> tuple[Aggregator, Country]:
    registry = SchemaRegistry([*builtin_registry().all(), VAX])
    clock = FakeClock(datetime(2026, 11, 26, 3, 0, tzinfo=UTC).timestamp())
    reports = ReportService(db, registry, clock)
    c = await seed_country(db)

    def who(code: str) -> Actor:
        return Actor.for_site(c.sites[code], code)

    filings = [
        (
            D1,
            "A",
            covid(
                new_cases=2, deaths=0, under_treatment=5, zone_level="green", distancing_order=False
            ),
        ),
        (
            D1,
            "B",
            covid(
                new_cases=3, deaths=1, under_treatment=7, zone_level="yellow", distancing_order=True
            ),
        ),
        (
            D1,
            "X",
            covid(
                new_cases=10, deaths=0, under_treatment=20, zone_level="red", distancing_order=True
            ),
        ),
        (
            D2,
            "A",
            covid(
                new_cases=4, deaths=0, under_treatment=6, zone_level="green", distancing_order=False
            ),
        ),
        (
            D2,
            "C",
            covid(
                new_cases=1,
                deaths=0,
                under_treatment=1,
                zone_level="orange",
                distancing_order=False,
            ),
        ),
        (
            D2,
            "X",
            covid(
                new_cases=0, deaths=2, under_treatment=15, zone_level="red", distancing_order=True
            ),
        ),
        (
            D2,
            "Y",
            covid(
                new_cases=5,
                deaths=0,
                under_treatment=3,
                zone_level="red",
                distancing_order=None,
                vaccine_doses=None,
            ),
        ),
    ]
    for period, code, values in filings:
        await reports.submit(who(code), "covid19", values, period=period)
    # A correction must replace, not add to, the aggregated value: X's D2 deaths 2 -> 1.
    x_d2 = (await reports.list_reports(who("X"), "covid19", start=D2, end=D2))[0]
    await reports.correct(who("X"), x_d2.id, {"deaths": 1})
    for code, pct in (("A", 50), ("B", 70), ("X", 20)):
        await reports.submit(who(code), "vax", {"coverage": pct}, period=D1)
    return Aggregator(db, registry), c


async def test_aggregate_matches_hand_computed(any_db: Database) -> None:
    agg_svc, c = await _fixture(any_db)
    p1, p2 = c.provinces["P1"], c.provinces["P2"]
    agg = await agg_svc.aggregate(CHAIR, "covid19", D1, D2)
    covid19 = agg.schema

    def value(pid: int | None, period: date, key: str) -> object:
        return agg.cell(pid, period, key).value(covid19.indicator(key))

    # Sums of counts.
    assert value(p1, D1, "new_cases") == 5 and value(p2, D1, "new_cases") == 10
    assert value(None, D1, "new_cases") == 15
    assert value(p1, D2, "new_cases") == 5 and value(p2, D2, "new_cases") == 5
    assert value(None, D2, "new_cases") == 10
    assert value(None, D2, "deaths") == 1  # the corrected value, not 2 or 3
    assert value(None, D1, "under_treatment") == 32
    assert value(None, D2, "vaccine_doses") == 300  # Y left it out
    assert agg.cell(None, D2, "vaccine_doses").n == 3
    # Counts per zone level.
    assert agg.cell(None, D1, "zone_level").counts == {"green": 1, "yellow": 1, "red": 1}
    assert agg.cell(None, D2, "zone_level").counts == {"green": 1, "orange": 1, "red": 2}
    assert agg.cell(p2, D2, "zone_level").counts == {"red": 2}
    # Yes/no: how many sites have distancing in force.
    assert value(None, D1, "distancing_order") == 2
    assert agg.cell(None, D2, "distancing_order").counts == {"true": 1, "false": 2}
    # Reports filed.
    assert agg.national_filed == {D1: 3, D2: 4}
    assert agg.filed[p1] == {D1: 2, D2: 2}
    # Percent: mean per province, national mean weighted by reports (46.67, not 40).
    vax = await agg_svc.aggregate(CHAIR, "vax", D1, D1)
    cov = VAX.indicator("coverage")
    assert vax.cell(p1, D1, "coverage").value(cov) == 60.0
    assert vax.cell(None, D1, "coverage").value(cov) == pytest.approx(46.6667, abs=1e-3)


async def test_officer_sees_only_its_province_and_sites_none(db: Database) -> None:
    agg_svc, c = await _fixture(db)
    officer = Actor.for_staff("lan", "province_officer", c.provinces["P2"])
    agg = await agg_svc.aggregate(officer, "covid19", D1, D2)
    assert set(agg.provinces) == {c.provinces["P2"]}
    assert agg.cell(None, D1, "new_cases").total == 10
    with pytest.raises(Forbidden, match="own province"):
        await agg_svc.aggregate(officer, "covid19", D1, D2, province_id=c.provinces["P1"])
    with pytest.raises(Forbidden, match="only staff"):
        await agg_svc.aggregate(Actor.for_site(c.sites["A"], "A"), "covid19", D1, D2)
    with pytest.raises(Invalid, match="end: must not be before start"):
        await agg_svc.aggregate(CHAIR, "covid19", D2, D1)


async def test_series_and_map(db: Database) -> None:
    agg_svc, c = await _fixture(db)
    s = await agg_svc.series(CHAIR, "covid19", "new_cases", D1, D2)
    assert s["periods"] == ["2026-11-24", "2026-11-25"] and s["national"] == [15, 10]
    by_code = {p["code"]: p["points"] for p in s["provinces"]}
    assert by_code == {"P1": [5, 5], "P2": [10, 5]}
    z = await agg_svc.series(CHAIR, "covid19", "zone_level", D1, D2)
    assert z["national"][1] == {"green": 1, "yellow": 0, "orange": 1, "red": 2}
    with pytest.raises(Invalid, match="free text"):
        await agg_svc.series(CHAIR, "covid19", "notes", D1, D2)
    m = await agg_svc.map_values(CHAIR, "covid19", "zone_level", D2)
    colours = {x["code"]: (x["value"], x["color"]) for x in m["sites"]}
    assert colours["X"] == ("red", "#d7191c") and colours["A"] == ("green", "#2e9d4a")
    assert len(m["legend"]) == 4
    n = await agg_svc.map_values(CHAIR, "covid19", "new_cases", D1)
    assert {x["code"]: x["value"] for x in n["sites"]} == {"A": 2, "B": 3, "X": 10}
    assert n["range"] == {"min": 2.0, "max": 10.0}


async def test_exports_csv_and_xlsx(db: Database) -> None:
    agg_svc, c = await _fixture(db)
    agg = await agg_svc.aggregate(CHAIR, "covid19", D1, D2)
    table = aggregate_table(agg, await province_labels(db, agg.provinces))
    records = rows_as_dicts(table)
    national_d1 = records[0]
    assert national_d1["level"] == "national" and national_d1["new_cases"] == 15
    assert national_d1["zone_level_red"] == 1 and national_d1["reports"] == 3
    p2_d2 = next(r for r in records if r["province_code"] == "P2" and r["period"] == "2026-11-25")
    assert p2_d2["new_cases"] == 5 and p2_d2["zone_level_red"] == 2
    text = to_csv(table).decode("utf-8-sig")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0]["new_cases"] == "15" and len(parsed) == len(records)
    wb = load_workbook(io.BytesIO(to_xlsx(table, "COVID-19")))
    ws = wb.active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "Kỳ báo cáo" and rows[1][0] == "period"
    assert rows[2][list(table.keys).index("new_cases")] == 15


async def _rollup_rows(db: Database) -> list[tuple[object, ...]]:
    async with db.session() as s:
        rows = (
            await s.execute(
                select(
                    Rollup.schema_key,
                    Rollup.period,
                    Rollup.province_id,
                    Rollup.indicator,
                    Rollup.bucket,
                    Rollup.n,
                    Rollup.total,
                ).where(Rollup.n != 0)
            )
        ).all()
    return sorted(tuple(r) for r in rows)


async def test_running_totals_equal_a_rebuild_from_reports(any_db: Database) -> None:
    await _fixture(any_db)
    kept = await _rollup_rows(any_db)
    assert kept
    registry = SchemaRegistry([*builtin_registry().all(), VAX])
    for schema in registry.all():
        await rebuild(any_db, schema, D1, D2)
    assert await _rollup_rows(any_db) == kept


async def test_concurrent_filings_keep_totals_exact(any_db: Database) -> None:
    registry = builtin_registry()
    clock = FakeClock(datetime(2026, 11, 26, 3, 0, tzinfo=UTC).timestamp())
    reports = ReportService(any_db, registry, clock)
    c = await seed_country(any_db)
    # Every site files twice at once (the second is a correction), all concurrently.
    await asyncio.gather(
        *(
            reports.submit(Actor.for_site(sid, code), "covid19", covid(new_cases=n), period=D2)
            for code, sid in c.sites.items()
            for n in (1, 10)
        )
    )
    agg = await Aggregator(any_db, registry).aggregate(CHAIR, "covid19", D2, D2)
    cell = agg.cell(None, D2, "new_cases")
    assert cell.n == 5 and agg.national_filed[D2] == 5
    kept = await _rollup_rows(any_db)
    await rebuild(any_db, registry.get("covid19"), D2, D2)
    assert await _rollup_rows(any_db) == kept
