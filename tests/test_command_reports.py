"""Situation reports: own-report only, correction history, CSV import, late and missing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from diemcau.actors import Actor
from diemcau.command.reports import ReportChange, ReportService
from diemcau.command.schemas import SchemaRegistry, builtin_registry
from diemcau.errors import Forbidden, Invalid
from diemcau.store import Database
from tests.test_command_support import Country, FakeClock, covid, seed_country

DAY = date(2026, 11, 25)


@pytest.fixture
def clock() -> FakeClock:
    # 10:00 in Vietnam on the 26th: the 25th's report is due at noon, so not late yet.
    return FakeClock(datetime(2026, 11, 26, 3, 0, tzinfo=UTC).timestamp())


async def _setup(db: Database, clock: FakeClock) -> tuple[ReportService, Country]:
    return ReportService(db, builtin_registry(), clock), await seed_country(db)


def site(country: Country, code: str) -> Actor:
    return Actor.for_site(country.sites[code], code)


async def test_site_files_and_reads_only_its_own(any_db: Database, clock: FakeClock) -> None:
    svc, c = await _setup(any_db, clock)
    a, b = site(c, "A"), site(c, "B")
    rep = await svc.submit(a, "covid19", covid(), period=DAY, source="site")
    assert rep.site_id == c.sites["A"] and rep.revision == 1 and not rep.late
    assert rep.province_id == c.provinces["P1"]
    # B cannot read, correct, file for, or list A's report.
    with pytest.raises(Forbidden, match="its own report"):
        await svc.get(b, rep.id)
    with pytest.raises(Forbidden):
        await svc.correct(b, rep.id, {"deaths": 1})
    with pytest.raises(Forbidden):
        await svc.submit(b, "covid19", covid(), period=DAY, site_id=c.sites["A"])
    with pytest.raises(Forbidden):
        await svc.list_reports(b, "covid19", site_id=c.sites["A"])
    assert await svc.list_reports(b, "covid19") == []
    assert [r.id for r in await svc.list_reports(a, "covid19")] == [rep.id]
    # A province officer of P2 may not see P1's report; P1's officer and the chair may.
    p2 = Actor.for_staff("lan", "province_officer", c.provinces["P2"])
    p1 = Actor.for_staff("minh", "province_officer", c.provinces["P1"])
    with pytest.raises(Forbidden, match="another province"):
        await svc.get(p2, rep.id)
    assert (await svc.get(p1, rep.id)).id == rep.id
    assert (await svc.get(Actor.for_staff("chair", "chair"), rep.id)).id == rep.id
    assert await svc.list_reports(p2, "covid19") == []
    with pytest.raises(Forbidden, match="own province"):
        await svc.list_reports(p2, "covid19", province_id=c.provinces["P1"])


async def test_bad_filings_change_nothing(db: Database, clock: FakeClock) -> None:
    svc, c = await _setup(db, clock)
    a = site(c, "A")
    with pytest.raises(Invalid, match="deaths: must be ≥ 0"):
        await svc.submit(a, "covid19", covid(deaths=-2), period=DAY)
    with pytest.raises(Invalid, match="period: 2026-11-27 is in the future"):
        await svc.submit(a, "covid19", covid(), period=date(2026, 11, 27))
    with pytest.raises(Forbidden, match="chair site"):
        await svc.submit(Actor.for_site(c.chair, "CHAIR"), "covid19", covid(), period=DAY)
    assert await svc.count_reports("covid19", DAY) == 0


async def test_corrections_keep_history(any_db: Database, clock: FakeClock) -> None:
    svc, c = await _setup(any_db, clock)
    a = site(c, "A")
    heard: list[ReportChange] = []

    async def listen(change: ReportChange) -> None:
        heard.append(change)

    svc.add_listener(listen)
    first = await svc.submit(a, "covid19", covid(deaths=1), period=DAY, source="site")
    # An identical retry changes nothing and records nothing.
    again = await svc.submit(a, "covid19", covid(deaths=1), period=DAY, source="site")
    assert again.id == first.id and again.revision == 1
    clock.advance(600)
    # The site re-files with one changed value: same report, revision 2.
    second = await svc.submit(a, "covid19", covid(deaths=2), period=DAY, note="đếm lại")
    assert second.id == first.id and second.revision == 2
    clock.advance(600)
    officer = Actor.for_staff("minh", "province_officer", c.provinces["P1"])
    third = await svc.correct(
        officer, first.id, {"new_cases": 4, "recovered": None}, note="theo báo cáo y tế"
    )
    assert third.revision == 3 and "recovered" not in third.values
    assert third.values["deaths"] == 2 and third.updated_by == "staff:minh"
    # A correction is validated like a filing.
    with pytest.raises(Invalid, match="zone_level: must be one of"):
        await svc.correct(officer, first.id, {"zone_level": "blue"})
    history = await svc.history(a, first.id)
    assert [h.revision for h in history] == [1, 2, 3]
    assert history[0].changes == {} and history[0].changed_by == "site:A"
    assert history[1].changes == {"deaths": [1, 2]} and history[1].note == "đếm lại"
    assert history[2].changes == {"new_cases": [3, 4], "recovered": [1, None]}
    assert history[2].changed_by == "staff:minh"
    assert history[1].changed_at < history[2].changed_at
    assert history[0].values["deaths"] == 1  # the old values are still there
    assert [(h.previous or {}).get("deaths") for h in heard] == [None, 1, 2]


async def test_concurrent_first_filings_make_one_report(db: Database, clock: FakeClock) -> None:
    svc, c = await _setup(db, clock)
    a = site(c, "A")
    views = await asyncio.gather(
        *(svc.submit(a, "covid19", covid(new_cases=n), period=DAY) for n in (1, 2, 3))
    )
    assert len({v.id for v in views}) == 1
    assert [h.revision for h in await svc.history(a, views[0].id)] == [1, 2, 3]


async def test_late_and_missing(any_db: Database, clock: FakeClock) -> None:
    svc, c = await _setup(any_db, clock)
    await svc.submit(site(c, "A"), "covid19", covid(), period=DAY)
    await svc.submit(site(c, "X"), "covid19", covid(), period=DAY)
    chair = Actor.for_staff("chair", "chair")
    before = await svc.filing_status(chair, "covid19", DAY)
    assert not before.overdue and before.expected == 5 and before.filed == 2
    # Past noon (local) on the 26th the 25th's reports are overdue; B files late.
    clock.set(datetime(2026, 11, 26, 6, 0, tzinfo=UTC))
    late = await svc.submit(site(c, "B"), "covid19", covid(), period=DAY)
    assert late.late
    status = await svc.filing_status(chair, "covid19", DAY)
    assert status.overdue
    per = {p.province_id: p for p in status.provinces}
    p1, p2 = per[c.provinces["P1"]], per[c.provinces["P2"]]
    assert (p1.expected, p1.filed, p1.late, p1.missing) == (3, 2, 1, 1)
    assert (p2.expected, p2.filed, p2.late, p2.missing) == (2, 1, 0, 1)
    assert sorted(m["code"] for m in status.missing_sites) == ["C", "Y"]
    assert [m["code"] for m in status.late_sites] == ["B"]
    officer = Actor.for_staff("lan", "province_officer", c.provinces["P2"])
    mine = await svc.filing_status(officer, "covid19", DAY)
    assert [m["code"] for m in mine.missing_sites] == ["Y"]
    with pytest.raises(Forbidden):
        await svc.filing_status(site(c, "A"), "covid19", DAY)


async def test_csv_import_by_province_officer(db: Database, clock: FakeClock) -> None:
    svc, c = await _setup(db, clock)
    officer = Actor.for_staff("minh", "province_officer", c.provinces["P1"])
    header = "site_code,new_cases,under_treatment,deaths,zone_level,distancing_order\n"
    # Bad lines: a negative count (line 2), a site of another province (line 3),
    # an unknown site (line 4), a bad choice (line 5), a short line (line 6).
    bad = header + (
        "A,1,2,-1,green,0\nX,1,2,0,green,0\nNOPE,1,2,0,green,0\nB,1,2,0,blue,0\nC,1,2\n"
    )
    with pytest.raises(Invalid) as err:
        await svc.import_csv(officer, "covid19", bad, period=DAY)
    msg = err.value.message
    assert "line 2: deaths: must be ≥ 0" in msg
    # Another province's site reads like one that does not exist.
    assert "line 3: site_code: no site 'X' in your province" in msg
    assert "line 4: site_code: no site 'NOPE' in your province" in msg
    assert "line 5: zone_level: must be one of" in msg
    assert "line 6: expected 6 columns, found 3" in msg
    assert await svc.count_reports("covid19", DAY) == 0  # all or nothing
    with pytest.raises(Invalid, match="line 1: death: unknown indicator"):
        await svc.import_csv(officer, "covid19", "site_code,death\nA,1\n", period=DAY)
    await svc.submit(site(c, "A"), "covid19", covid(), period=DAY)
    good = header + "A,5,10,0,yellow,có\nB,1,2,0,green,0\n"
    result = await svc.import_csv(officer, "covid19", good, period=DAY, note="nhập từ sở")
    assert (result.created, result.corrected, result.unchanged) == (1, 1, 0)
    reports = {r.site_id: r for r in await svc.list_reports(officer, "covid19")}
    a = reports[c.sites["A"]]
    assert a.revision == 2 and a.values["new_cases"] == 5 and a.values["distancing_order"]
    history = await svc.history(officer, a.id)
    assert history[1].source == "csv" and history[1].changed_by == "staff:minh"
    with pytest.raises(Forbidden, match="only staff"):
        await svc.import_csv(site(c, "A"), "covid19", good, period=DAY)


async def test_concurrent_corrections_merge(any_db: Database, clock: FakeClock) -> None:
    svc, c = await _setup(any_db, clock)
    a = site(c, "A")
    rep = await svc.submit(a, "covid19", covid(), period=DAY)
    officer = Actor.for_staff("minh", "province_officer", c.provinces["P1"])
    await asyncio.gather(
        svc.correct(officer, rep.id, {"deaths": 7}),
        svc.correct(a, rep.id, {"recovered": 9}),
        svc.correct(officer, rep.id, {"vaccine_doses": 500}),
    )
    final = await svc.get(a, rep.id)
    assert (final.values["deaths"], final.values["recovered"]) == (7, 9)
    assert final.values["vaccine_doses"] == 500 and final.revision == 4


async def test_failing_listener_does_not_fail_the_filing(db: Database, clock: FakeClock) -> None:
    svc, c = await _setup(db, clock)

    async def broken(_change: ReportChange) -> None:
        raise RuntimeError("rule bug")

    svc.add_listener(broken)
    rep = await svc.submit(site(c, "A"), "covid19", covid(), period=DAY)
    assert (await svc.get(site(c, "A"), rep.id)).revision == 1


async def test_weekly_schema_files_by_week(db: Database, clock: FakeClock) -> None:
    weekly = (
        builtin_registry()
        .get("disaster")
        .model_copy(update={"key": "flood_week", "period": "weekly"})
    )
    registry = SchemaRegistry([weekly])
    svc = ReportService(db, registry, clock)
    c = await seed_country(db)
    values = {"people_evacuated": 120, "houses_damaged": 4, "deaths": 0}
    # Wednesday 25 Nov and Monday 23 Nov are the same week: one report, two revisions.
    first = await svc.submit(site(c, "A"), "flood_week", values, period=date(2026, 11, 25))
    assert first.period == date(2026, 11, 23)
    again = await svc.submit(
        site(c, "A"), "flood_week", {**values, "deaths": 1}, period=date(2026, 11, 23)
    )
    assert again.id == first.id and again.revision == 2
    status = await svc.filing_status(
        Actor.for_staff("chair", "chair"), "flood_week", date(2026, 11, 27)
    )
    assert status.period == date(2026, 11, 23) and status.filed == 1
