"""XLSX exports: attendance, acknowledgements, audit log, provisioning sheets, the writer.

Each file is opened with openpyxl and checked for its Vietnamese headings, the
frozen heading row, column widths, a time as a real date cell, and formula
safety. Bad inputs tried: a site named like a formula (``=HYPERLINK(...)``), and
one holding control characters openpyxl refuses (BEL, NUL, ESC), which must be
escaped, never a 500; a non-finite number; a sheet title with characters Excel
refuses; a province officer asking for another province's rows.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from diemcau.cli import main
from diemcau.directory.records import UnitRecord
from diemcau.directory.service import load_units
from diemcau.spreadsheet import Column, Sheet, csv_bytes, xlsx_bytes
from diemcau.store import Database, migrate
from tests.api_support import ApiEnv, api_env

FORMULA = '=HYPERLINK("http://evil.example","bấm")'
CONTROL = "Xã Chuông\x07 Reo\x00\x1b"
TREE = [
    UnitRecord("VN", "Việt Nam", "country"),
    UnitRecord("01", "Thành phố Hà Nội", "province", "Thành phố", "VN", 21.03, 105.85),
    UnitRecord("00004", "Phường Ba Đình", "commune", "Phường", "01", 21.035, 105.834),
    UnitRecord("79", "Thành phố Hồ Chí Minh", "province", "Thành phố", "VN", 10.78, 106.70),
    UnitRecord("26734", FORMULA, "commune", "Phường", "79", 10.776, 106.701),
    UnitRecord("26737", CONTROL, "commune", "Xã", "79", 10.77, 106.70),
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _sheets(body: bytes) -> list[Worksheet]:
    wb = load_workbook(io.BytesIO(body))
    return [ws for ws in wb.worksheets if isinstance(ws, Worksheet)]


def _rows(ws: Worksheet) -> list[tuple[Any, ...]]:
    return list(ws.iter_rows(values_only=True))


def _assert_layout(ws: Worksheet, first_heading: str, header_rows: int = 1) -> None:
    assert ws.cell(1, 1).value == first_heading
    assert ws.cell(1, 1).font.b  # headings in bold
    assert ws.freeze_panes == f"A{header_rows + 1}"
    assert ws.auto_filter.ref is not None and ws.auto_filter.ref.startswith(f"A{header_rows}:")
    widths = [ws.column_dimensions[c].width for c in "ABC"]
    assert all(w is not None and 6 <= w <= 60 for w in widths), widths


def _assert_safe(ws: Worksheet) -> None:
    """No formula cell anywhere; the formula-like name and the control characters are text."""
    cells = [c for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert "'" + FORMULA in texts
    assert any("Chuông\\x07 Reo\\x00\\x1b" in t for t in texts)


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[ApiEnv]:
    async with api_env(sqlite_url, TREE, ("00004", "26734", "26737")) as e:
        yield e


async def _meeting(env: ApiEnv) -> tuple[int, int, dict[str, str]]:
    """A meeting two sites joined, ended, with a conclusion one of them acknowledged."""
    c = env.client
    chair = await env.login("chair")
    r = await c.post(
        "/api/meetings", json={"title": "Họp =SUM(1)", "invite": {"everyone": True}}, headers=chair
    )
    mid = r.json()["id"]
    assert (await c.post(f"/api/meetings/{mid}/start", headers=chair)).status_code == 200
    for code in ("26734", "00004"):
        site = await env.site(code)
        await env.connect(code)  # a site joins only while its session is up
        r = await c.post(f"/api/site/meetings/{mid}/join", headers=site)
        assert r.status_code == 200, r.text
    r = await c.post(f"/api/meetings/{mid}/conclusions", json={"body": "Kết luận"}, headers=chair)
    cid = r.json()["id"]
    r = await c.post(f"/api/site/conclusions/{cid}/ack", headers=await env.site("26734"))
    assert r.status_code == 200, r.text
    assert (await c.post(f"/api/meetings/{mid}/end", headers=chair)).status_code == 200
    return mid, cid, chair


async def test_attendance_xlsx(env: ApiEnv) -> None:
    mid, _, chair = await _meeting(env)
    r = await env.client.get(f"/api/meetings/{mid}/attendance/report.xlsx", headers=chair)
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert f'filename="diem-danh-{mid}.xlsx"' in r.headers["content-disposition"]
    per_site, per_province = _sheets(r.content)
    _assert_layout(per_site, "STT / No.")
    headings = _rows(per_site)[0]
    assert headings[1] == "Mã điểm cầu / Site code"
    assert headings[5] == "Vào lần đầu / First joined (UTC+07:00)"
    rows = {row[1]: row for row in _rows(per_site)[1:]}
    assert set(rows) == {"01", "00004", "79", "26734", "26737"}  # province sites too
    joined = per_site.cell(2 + list(rows).index("26734"), 6)
    assert joined.is_date and isinstance(joined.value, datetime)
    # Shown in Vietnam's time: within minutes of now (UTC+7), as a naive Excel time.
    now_vn = datetime.now(UTC).astimezone(timezone(timedelta(hours=7))).replace(tzinfo=None)
    assert abs(joined.value - now_vn) < timedelta(minutes=5)
    assert rows["26737"][4] == "Vắng mặt / Absent" and rows["26737"][5] is None
    minutes = per_site.cell(2 + list(rows).index("26734"), 9)
    assert minutes.data_type == "n" and minutes.number_format == "0.0"  # a number, not text
    _assert_safe(per_site)
    _assert_layout(per_province, "Tỉnh, thành phố / Province")
    totals = _rows(per_province)[-1]
    assert totals[0] == "Tổng / Total" and totals[1] == 5 and totals[2] == 0  # ended

    # A province officer gets only its province (HCMC), opened to check.
    hcm = await env.login("hcm")
    r = await env.client.get(f"/api/meetings/{mid}/attendance/report.xlsx", headers=hcm)
    codes = {row[1] for row in _rows(_sheets(r.content)[0])[1:]}
    assert codes == {"79", "26734", "26737"}
    r = await env.client.get(f"/api/meetings/{mid}/attendance/report.xlsx", headers={})
    assert r.status_code == 401
    r = await env.client.get(
        f"/api/meetings/{mid}/attendance/report.xlsx?utc_offset_min=9999", headers=chair
    )
    assert r.status_code == 422


async def test_acknowledgements_xlsx_and_csv(env: ApiEnv) -> None:
    _, cid, chair = await _meeting(env)
    r = await env.client.get(f"/api/conclusions/{cid}/acknowledgements.xlsx", headers=chair)
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    (ws,) = _sheets(r.content)
    _assert_layout(ws, "STT / No.")
    rows = {row[1]: row for row in _rows(ws)[1:]}
    assert rows["26734"][4] == "Đã xác nhận / Acknowledged"
    assert rows["00004"][4] == "Chưa xác nhận / Not yet" and rows["00004"][5] is None
    acked = ws.cell(2 + list(rows).index("26734"), 6)
    assert acked.is_date and isinstance(acked.value, datetime)
    _assert_safe(ws)

    r = await env.client.get(f"/api/conclusions/{cid}/acknowledgements.csv", headers=chair)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0][0] == "STT / No." and len(lines) == 6
    by_code = {line[1]: line for line in lines[1:]}
    assert by_code["26734"][2] == "'" + FORMULA  # the same rule as every CSV export
    assert datetime.strptime(by_code["26734"][5], "%Y-%m-%d %H:%M:%S")

    hcm = await env.login("hcm")
    r = await env.client.get(f"/api/conclusions/{cid}/acknowledgements.xlsx", headers=hcm)
    assert {row[1] for row in _rows(_sheets(r.content)[0])[1:]} == {"79", "26734", "26737"}
    r = await env.client.get("/api/conclusions/999999/acknowledgements.xlsx", headers=chair)
    assert r.status_code == 404


async def test_audit_xlsx(env: ApiEnv) -> None:
    mid, _, chair = await _meeting(env)
    r = await env.client.get(f"/api/audit/export.xlsx?meeting_id={mid}", headers=chair)
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    (ws,) = _sheets(r.content)
    _assert_layout(ws, "Mã / ID")
    rows = _rows(ws)
    assert rows[0][1] == "Thời điểm / Time (UTC+07:00)"
    actions = [row[4] for row in rows[1:]]
    assert actions and all(row[5] == mid for row in rows[1:])
    assert ws.cell(2, 2).is_date
    csv_text = await env.client.get(f"/api/audit/export.csv?meeting_id={mid}", headers=chair)
    assert len(list(csv.reader(io.StringIO(csv_text.text.lstrip("\ufeff"))))) == len(rows)
    assert not [c for row in ws.iter_rows() for c in row if c.data_type == "f"]
    r = await env.client.get("/api/audit/export.xlsx", headers=await env.login("hcm"))
    assert r.status_code == 403  # province officers do not read the audit log


def test_provision_xlsx_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"

    async def seed() -> None:
        await migrate(url)
        db = Database(url)
        try:
            await load_units(db, TREE, dataset="test")
        finally:
            await db.dispose()

    import asyncio

    asyncio.run(seed())
    out = tmp_path / "sheets"
    args = ["provision", "--db", url, "--out", str(out), "--province", "79", "--xlsx"]
    assert main([*args, "--base-url", "https://diemcau.example"]) == 0
    capsys.readouterr()
    path = out / "79-thanh-pho-ho-chi-minh.xlsx"
    (ws,) = _sheets(path.read_bytes())
    _assert_layout(ws, "Mã điểm cầu (site code)")
    rows = _rows(ws)
    assert rows[0][7] == "Cấp lúc (issued at, UTC+07:00)"
    assert ws.cell(2, 8).is_date and isinstance(ws.cell(2, 8).value, datetime)
    by_code = {row[0]: row for row in rows[1:]}
    assert set(by_code) == {"79", "26734", "26737"}
    assert by_code["26734"][5].startswith("https://diemcau.example/join#26734:")
    csv_lines = (out / "79-thanh-pho-ho-chi-minh.csv").read_text(encoding="utf-8-sig")
    assert by_code["26734"][6] in csv_lines  # the same join codes as the CSV
    _assert_safe(ws)
    assert 'href="79-thanh-pho-ho-chi-minh.xlsx">XLSX' in (out / "index.html").read_text()

    # Without --xlsx no workbook is written (the CSV and HTML sheets are unchanged).
    assert main(["provision", "--db", url, "--out", str(tmp_path / "plain")]) == 0
    assert not list((tmp_path / "plain").glob("*.xlsx"))


def test_the_writer_on_bad_cells_and_titles() -> None:
    when = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    sheet = Sheet(
        title="Báo cáo: 1/2 [thử]?*",
        columns=[Column("Tên / Name"), Column("Lúc / At"), Column("Ngày / Day"), Column("Số")],
        rows=[
            ["@SUM(A1)", when, date(2026, 3, 1), math.nan],
            ["-1+2", None, None, math.inf],
            ["x" * 40_000, None, None, 3],
            ["\x00\x08\x0b\x0c\x1f tab\tnewline\n", None, None, 4],
        ],
        tz=timezone(timedelta(hours=7)),
    )
    (ws,) = _sheets(xlsx_bytes(sheet))
    assert ws.title == "Báo cáo- 1-2 -thử---"
    assert ws["A2"].value == "'@SUM(A1)" and ws["A3"].value == "'-1+2"
    assert ws["B2"].is_date and ws["B2"].value == datetime(2026, 3, 1, 9, 30)  # shown in UTC+7
    assert ws["C2"].is_date and ws["C2"].number_format == "dd/mm/yyyy"
    assert ws["D2"].value is None and ws["D3"].value is None  # NaN and infinity: empty
    assert len(ws["A4"].value) == 32_767 and ws["A4"].value.endswith("…")
    assert ws["A5"].value == "\\x00\\x08\\x0b\\x0c\\x1f tab\tnewline\n"
    assert ws.column_dimensions["A"].width == 60  # capped
    keyed = Sheet("k", [Column("Kỳ"), Column("Số")], [[date(2026, 1, 2), 1]], keys=["p", "n"])
    (ws,) = _sheets(xlsx_bytes(keyed))
    assert ws.freeze_panes == "A3" and [c.value for c in ws[2]] == ["p", "n"]
    text = csv_bytes(keyed).decode("utf-8")
    assert text.startswith("\ufeffp,n\r\n") and "2026-01-02,1" in text
