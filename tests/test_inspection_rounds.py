"""Inspection rounds: planning (a list, a random sample), verdicts, snapshots, closing, the
report (HTML, CSV, XLSX with Vietnamese headings) and the figures by province.

Bad inputs tried: no title, both or neither of a list and a sample, unknown codes, a
sample larger than its pool, an unknown province, an officer planning outside its
province (answered as an unknown code or province), an unknown verdict, a note over
2,000 characters, a snapshot that is empty, too big, of another type or whose bytes are
not the image it claims; work on a closed round; another province's round for an
officer (answered as an unknown round).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.inspection.reports import round_html, round_sheet
from diemcau.inspection.rounds import MAX_SNAPSHOT_BYTES, Sample, Snapshot
from diemcau.inspection.summary import province_summary
from diemcau.spreadsheet import csv_bytes, xlsx_bytes
from diemcau.store import Database
from tests.inspection_support import World, build_world

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # the magic is what is checked
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def w(any_db: Database) -> AsyncIterator[World]:
    yield await build_world(any_db, answer_timeout_s=0.05, tick_s=60)


async def test_plan_a_list_and_a_sample(w: World) -> None:
    rounds = w.svc.rounds
    listed = await rounds.create(
        w.chair, " Kiểm tra trụ sở ", site_codes=["26734", "00004", "00004"]
    )
    # Ordered by province, then name; duplicates once; the round spans two provinces.
    assert [i.site_code for i in listed.items] == ["00004", "26734"]
    assert listed.title == "Kiểm tra trụ sở" and listed.province_id is None
    sample = await rounds.create(w.hanoi, "Ngẫu nhiên", sample=Sample(2))
    assert len(sample.items) == 2 and sample.province_id == w.provinces["01"]
    assert {i.site_code for i in sample.items} <= {"00004", "00008", "00091"}
    national = await rounds.create(w.operator, "Toàn quốc", sample=Sample(5))
    assert len({i.site_code for i in national.items}) == 5  # every commune, no province site
    hcm = await rounds.create(w.chair, "TP HCM", sample=Sample(2, "79"))
    assert {i.site_code for i in hcm.items} == {"26734", "26740"}
    # The officer sees its province's rounds only.
    assert [r.id for r in await rounds.list(w.hanoi)] == [sample.id]
    # Another province's round is answered like a round that does not exist.
    with pytest.raises(NotFound) as hidden:
        await rounds.get(w.hanoi, listed.id)
    with pytest.raises(NotFound) as missing:
        await rounds.get(w.hanoi, listed.id + 1000)
    assert hidden.value.code == missing.value.code == "no_round"
    assert hidden.value.message.replace(str(listed.id), "<id>") == missing.value.message.replace(
        str(listed.id + 1000), "<id>"
    )
    assert len(await w.audit("inspection.round.create")) == 4


# Each bad plan with the code it is refused with (one database for all of them: a
# database per case cost a migration each and said nothing more).
_BAD_PLANS: list[tuple[dict[str, object], str]] = [
    ({"title": " ", "site_codes": ["00004"]}, "no_title"),
    ({"title": "x"}, "bad_selection"),
    ({"title": "x", "site_codes": ["00004"], "sample": Sample(1)}, "bad_selection"),
    ({"title": "x", "site_codes": ["00004", "nope"]}, "unknown_site"),
    ({"title": "x", "site_codes": [" "]}, "bad_size"),
    ({"title": "x", "sample": Sample(6)}, "sample_too_big"),
    ({"title": "x", "sample": Sample(0)}, "bad_size"),
    ({"title": "x", "sample": Sample(1, "99")}, "unknown_province"),
    ({"title": "x", "site_codes": ["TW"]}, "not_inspectable"),
]


async def test_bad_plans_are_refused(w: World) -> None:
    for kwargs, code in _BAD_PLANS:
        with pytest.raises(Invalid) as err:
            await w.svc.rounds.create(w.chair, **kwargs)  # type: ignore[arg-type]
        assert err.value.code == code, (kwargs, err.value.code)
        assert await w.svc.rounds.list(w.chair) == [], kwargs
    assert await w.audit("inspection.round.create") == []


async def test_an_officer_plans_only_in_its_province(w: World) -> None:
    """Another province's site (or province code) is refused exactly like an unknown one:
    the same error, code and message, so it tells nothing about which sites exist."""
    # Each plan with the code it names: Hồ Chí Minh City's, then one that exists nowhere.
    pairs: list[list[tuple[dict[str, object], str]]] = [
        [({"site_codes": ["00004", c]}, c) for c in ("26734", "99999")],
        [({"sample": Sample(1, c)}, c) for c in ("79", "98")],
    ]
    for pair in pairs:
        answers = []
        for kwargs, key in pair:
            with pytest.raises(Invalid) as err:
                await w.svc.rounds.create(w.hanoi, "x", **kwargs)  # type: ignore[arg-type]
            answers.append((err.value.code, err.value.message.replace(key, "<x>")))
        assert answers[0] == answers[1], answers
        assert answers[0][0] in ("unknown_site", "unknown_province")
    # A sample without a province, or of its own, draws from its own province only.
    for sample in (Sample(3), Sample(3, "01")):
        drawn = await w.svc.rounds.create(w.hanoi, "x", sample=sample)
        assert {i.site_code for i in drawn.items} == {"00004", "00008", "00091"}
    with pytest.raises(Invalid) as too_big:
        await w.svc.rounds.create(w.hanoi, "x", sample=Sample(4))
    assert too_big.value.code == "sample_too_big"  # the country holds more; it does not
    assert [r.province_id for r in await w.svc.rounds.list(w.chair)] == [w.provinces["01"]] * 2


async def test_verdicts_snapshots_not_answered_and_closing(w: World) -> None:
    rounds = w.svc.rounds
    r = await rounds.create(w.chair, "Đợt 1", site_codes=["00004", "00008", "26734"])
    a, b, c = r.items
    item = await rounds.decide(w.operator, r.id, a.id, "pass", "  Có người trực, đủ thiết bị  ")
    assert item.verdict == "pass" and item.note == "Có người trực, đủ thiết bị"
    assert item.decided_by == "ops"
    with pytest.raises(Invalid) as bad:
        await rounds.decide(w.chair, r.id, a.id, "maybe", "")
    assert bad.value.code == "bad_verdict"
    with pytest.raises(Invalid):
        await rounds.decide(w.chair, r.id, a.id, "fail", "x" * 2001)
    with pytest.raises(NotFound):
        await rounds.decide(w.chair, r.id, 999_999, "fail", "")
    # A snapshot is kept; bad ones are refused and keep the old one.
    assert (
        await rounds.put_snapshot(w.chair, r.id, a.id, Snapshot("image/jpeg", JPEG))
    ).has_snapshot
    for shot, code in (
        (Snapshot("image/jpeg", b""), "empty"),
        (Snapshot("image/jpeg", PNG), "bad_type"),
        (Snapshot("image/gif", b"GIF89a"), "bad_type"),
        (Snapshot("image/png", PNG + b"\x00" * MAX_SNAPSHOT_BYTES), "too_big"),
    ):
        with pytest.raises(Invalid) as err:
            await rounds.put_snapshot(w.chair, r.id, a.id, shot)
        assert err.value.code == code
    assert (await rounds.snapshot(w.chair, r.id, a.id)).data == JPEG
    await rounds.put_snapshot(w.chair, r.id, a.id, Snapshot("image/png", PNG))
    assert (await rounds.snapshot(w.chair, r.id, a.id)).mime == "image/png"
    with pytest.raises(NotFound):
        await rounds.snapshot(w.chair, r.id, b.id)
    # Inspecting an item with no terminal open: not answered becomes its verdict.
    started = await w.svc.inspect(w.chair, "00008", b.id)
    assert started.inspection.round_id == r.id and started.inspection.state == "not_answered"
    with pytest.raises(Invalid) as wrong:
        await w.svc.inspect(w.chair, "26734", b.id)
    assert wrong.value.code == "wrong_item"
    # A standby site answering: the item records it answered, the verdict is the inspector's.
    w.presence.online.add(w.ids["26734"])
    view = (await w.svc.inspect(w.chair, "26734", c.id)).inspection
    await w.publishing("26734")
    # Answered as soon as the site publishes (a report printed while still looking).
    live = {i.site_code: i for i in (await rounds.get(w.chair, r.id)).items}["26734"]
    assert live.answered is True and live.inspection_id == view.id
    await w.svc.end(w.chair, view.id)
    await rounds.decide(w.chair, r.id, c.id, "fail", "Không có người trực")
    got = {i.site_code: i for i in (await rounds.get(w.chair, r.id)).items}
    assert got["00008"].verdict == "no_answer" and got["00008"].answered is False
    assert got["26734"].verdict == "fail" and got["26734"].answered is True
    assert (await rounds.get(w.chair, r.id)).counts() == {
        "sites": 3,
        "decided": 3,
        "pass": 1,
        "fail": 1,
        "no_answer": 1,
    }
    # Only its creator (or a chair) closes it; then it is final.
    with pytest.raises(Forbidden):
        await rounds.close(w.operator, r.id)
    closed = await rounds.close(w.chair, r.id)
    assert closed.closed_at is not None
    with pytest.raises(Conflict) as done:
        await rounds.decide(w.chair, r.id, a.id, "fail", "")
    assert done.value.code == "round_closed"
    with pytest.raises(Conflict):
        await w.svc.inspect(w.chair, "00004", a.id)
    assert [x.details["verdict"] for x in await w.audit("inspection.verdict") if x.details] == [
        "pass",
        "fail",
    ]
    assert len(await w.audit("inspection.snapshot")) == 2
    assert len(await w.audit("inspection.round.close")) == 1


async def test_the_report_and_the_figures_by_province(w: World) -> None:
    rounds = w.svc.rounds
    r = await rounds.create(w.chair, "Báo cáo <đợt> 2", site_codes=["00004", "26734"])
    a, b = r.items
    await rounds.decide(w.chair, r.id, a.id, "pass", "=SUM(A1) tốt")
    await rounds.put_snapshot(w.chair, r.id, a.id, Snapshot("image/jpeg", JPEG))
    await w.svc.inspect(w.chair, "26734", b.id)  # no terminal: not answered
    view = await rounds.get(w.chair, r.id)
    page = round_html(view, await rounds.snapshots(w.chair, r.id))
    assert "BÁO CÁO KIỂM TRA TRỰC TUYẾN" in page and "Báo cáo &lt;đợt&gt; 2" in page
    assert "Đạt / Pass" in page and "Không trả lời / No answer" in page
    assert 'src="data:image/jpeg;base64,' in page and "Theo tỉnh, thành phố" in page
    sheet = round_sheet(view)
    text = csv_bytes(sheet).decode("utf-8-sig")
    header = text.splitlines()[0]
    assert header.startswith("STT / No.,Mã / Code,Điểm cầu / Site")
    assert "'=SUM(A1) tốt" in text  # a note a spreadsheet would run is neutralised
    wb = load_workbook(io.BytesIO(xlsx_bytes(round_sheet(view))))
    ws = wb.active
    assert ws is not None and ws["E1"].value == "Kết quả / Verdict"
    assert ws["E2"].value == "Đạt / Pass" and ws["E3"].value == "Không trả lời / No answer"
    now = datetime.now(UTC)
    provinces, total = await province_summary(
        w.db, now - timedelta(days=1), now + timedelta(days=1)
    )
    by = {p.province_name: p for p in provinces}
    assert by["Thành phố Hồ Chí Minh"].not_answered == 1
    assert by["Thành phố Hồ Chí Minh"].no_answer == 1
    assert by["Thành phố Hà Nội"].passed == 1 and by["Thành phố Hà Nội"].inspections == 0
    assert total.inspections == 1 and total.passed == 1 and total.no_answer == 1
    mine, _ = await province_summary(
        w.db, now - timedelta(days=1), now + timedelta(days=1), w.provinces["01"]
    )
    assert [p.province_name for p in mine] == ["Thành phố Hà Nội"]
