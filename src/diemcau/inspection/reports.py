"""A round's report: a printable HTML page, and one sheet for CSV and XLSX; Vietnamese first.

The HTML is what an inspection team files: the round, its counts per verdict, a table
per province and one line per site with the verdict, the note, whether the site
answered and the snapshot kept (embedded, so the page prints as it is). The sheet has
the same lines for a spreadsheet. Times are shown in the zone asked for (Vietnam's by
default).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from diemcau.inspection.rounds import Snapshot
from diemcau.inspection.views import VERDICT_LABELS, ItemView, RoundView
from diemcau.spreadsheet import Column, Sheet

__all__ = ["DEFAULT_UTC_OFFSET_MIN", "round_html", "round_sheet"]

DEFAULT_UTC_OFFSET_MIN = 420  # Vietnam, UTC+07:00

_COLUMNS = (
    Column("STT / No.", 8),
    Column("Mã / Code"),
    Column("Điểm cầu / Site"),
    Column("Tỉnh, thành phố / Province"),
    Column("Kết quả / Verdict"),
    Column("Trả lời / Answered"),
    Column("Ghi chú / Note", 50),
    Column("Người đánh giá / Decided by"),
    Column("Thời điểm / Decided at"),
    Column("Ảnh chụp / Snapshot"),
)

_CSS = """
body{font:14px/1.4 "DejaVu Sans",Arial,sans-serif;margin:24px;color:#111}
h1{font-size:20px;margin:0}h2{font-size:16px;margin:18px 0 6px}.en{color:#555;margin:0 0 12px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{font-weight:bold}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border:1px solid #999;
padding:3px 6px;text-align:left;vertical-align:top}th{background:#eee}
td.num{text-align:right}img{max-width:160px;max-height:100px}
.pass{color:#1e6b32}.fail{color:#b3261e}.no_answer{color:#8a5a00}
@media print{body{margin:0}a{color:inherit;text-decoration:none}}
"""


def _fmt(value: datetime | None, tz: timezone) -> str:
    return value.astimezone(tz).strftime("%d/%m/%Y %H:%M") if value else ""


def _answered(item: ItemView) -> str:
    if item.answered is None:
        return ""
    return "Có / Yes" if item.answered else "Không / No"


def round_sheet(view: RoundView, *, utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN) -> Sheet:
    """The round's lines, one per site, as a sheet (CSV and XLSX)."""
    tz = timezone(timedelta(minutes=utc_offset_min))
    rows = [
        (
            item.position,
            item.site_code,
            item.site_name,
            item.province_name,
            VERDICT_LABELS.get(item.verdict or "", ""),
            _answered(item),
            item.note,
            item.decided_by or "",
            item.decided_at,
            "Có / Yes" if item.has_snapshot else "",
        )
        for item in view.items
    ]
    return Sheet(title=f"Đợt kiểm tra {view.id}", columns=_COLUMNS, rows=rows, tz=tz)


def round_html(
    view: RoundView,
    snapshots: Mapping[int, Snapshot],
    *,
    utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN,
) -> str:
    """A print-ready report of the round, snapshots embedded (item id → snapshot)."""
    tz = timezone(timedelta(minutes=utc_offset_min))
    e = html.escape
    counts = view.counts()
    by_province: dict[str, dict[str, int]] = {}
    for item in view.items:
        p = by_province.setdefault(
            item.province_name, {"sites": 0, "pass": 0, "fail": 0, "no_answer": 0, "open": 0}
        )
        p["sites"] += 1
        p[item.verdict or "open"] += 1
    prov_rows = "".join(
        f"<tr><td>{e(name)}</td><td class=num>{c['sites']}</td><td class=num>{c['pass']}</td>"
        f"<td class=num>{c['fail']}</td><td class=num>{c['no_answer']}</td>"
        f"<td class=num>{c['open']}</td></tr>"
        for name, c in sorted(by_province.items())
    )
    site_rows = "".join(_site_row(item, snapshots.get(item.id), tz) for item in view.items)
    closed = e(_fmt(view.closed_at, tz)) or "Đang thực hiện / In progress"
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<title>Báo cáo kiểm tra trực tuyến – {e(view.title)}</title>
<style>{_CSS}</style></head><body>
<h1>BÁO CÁO KIỂM TRA TRỰC TUYẾN</h1>
<p class="en">Online inspection report</p>
<dl>
<dt>Đợt kiểm tra / Round</dt><dd>{e(view.title)} (#{view.id})</dd>
<dt>Người lập / Planned by</dt><dd>{e(view.created_by)}</dd>
<dt>Lập lúc / Planned at</dt><dd>{e(_fmt(view.created_at, tz))}</dd>
<dt>Kết thúc / Closed</dt><dd>{closed}</dd>
<dt>Số điểm cầu / Sites</dt><dd>{counts["sites"]}</dd>
<dt>Đạt / Pass</dt><dd>{counts["pass"]}</dd>
<dt>Chưa đạt / Fail</dt><dd>{counts["fail"]}</dd>
<dt>Không trả lời / No answer</dt><dd>{counts["no_answer"]}</dd>
<dt>Chưa đánh giá / Not yet decided</dt><dd>{counts["sites"] - counts["decided"]}</dd>
</dl>
<h2>Theo tỉnh, thành phố / By province</h2>
<table><thead><tr><th>Tỉnh, thành phố / Province</th><th>Điểm cầu / Sites</th>
<th>Đạt / Pass</th><th>Chưa đạt / Fail</th><th>Không trả lời / No answer</th>
<th>Chưa đánh giá / Open</th></tr></thead><tbody>{prov_rows}</tbody></table>
<h2>Theo điểm cầu / By site</h2>
<table><thead><tr><th>STT / No.</th><th>Mã / Code</th><th>Điểm cầu / Site</th>
<th>Tỉnh / Province</th><th>Kết quả / Verdict</th><th>Trả lời / Answered</th>
<th>Ghi chú / Note</th><th>Đánh giá / Decided</th><th>Ảnh chụp / Snapshot</th></tr></thead>
<tbody>{site_rows}</tbody></table>
</body></html>
"""


def _site_row(item: ItemView, shot: Snapshot | None, tz: timezone) -> str:
    e = html.escape
    img = ""
    if shot is not None:
        data = base64.b64encode(shot.data).decode()
        img = f'<img alt="Ảnh chụp {e(item.site_name)}" src="data:{e(shot.mime)};base64,{data}">'
    decided = " · ".join(x for x in (item.decided_by or "", _fmt(item.decided_at, tz)) if x)
    verdict = item.verdict or ""
    return (
        f"<tr><td class=num>{item.position}</td><td>{e(item.site_code)}</td>"
        f"<td>{e(item.site_name)}</td><td>{e(item.province_name)}</td>"
        f"<td class={e(verdict) or 'open'}>{e(VERDICT_LABELS.get(verdict, ''))}</td>"
        f"<td>{e(_answered(item))}</td><td>{e(item.note)}</td><td>{e(decided)}</td>"
        f"<td>{img}</td></tr>"
    )
