"""Roll call (điểm danh): live counts and the after-meeting report, from presence intervals.

Attendance is never typed by hand: `attendance.py` stores every stretch of a site's
presence as an interval; this module reads them back, per site and per province, and
renders the report a secretariat prints (CSV with Vietnamese headings first, and an
A4 landscape HTML page).
"""

from __future__ import annotations

import csv
import html
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from diemcau.directory.sites import SiteDirectory
from diemcau.meetings.models import MeetingAttendance, MeetingParticipant
from diemcau.meetings.store import MeetingStore
from diemcau.meetings.views import MeetingView
from diemcau.records import JsonObject, Record, iso
from diemcau.text import spreadsheet_row

__all__ = [
    "AttendanceCounts",
    "AttendanceSummary",
    "RollCall",
    "SiteAttendance",
    "STATUS_LABELS",
    "zone",
]

# Vietnamese first, English after.
STATUS_LABELS = {
    "present": "Đang có mặt / Present",
    "left": "Đã rời / Left",
    "not_joined": "Chưa vào / Not yet joined",
    "attended": "Có tham dự / Attended",
    "absent": "Vắng mặt / Absent",
}
DEFAULT_UTC_OFFSET_MIN = 7 * 60  # Vietnam (ICT)
# A4 landscape, headings repeated on every printed page.
_REPORT_CSS = """
@page { size: A4 landscape; margin: 12mm; }
body { font-family: "Times New Roman", serif; font-size: 11pt; color: #000; }
h1 { font-size: 15pt; text-align: center; margin: 0 0 4pt; }
p.en { text-align: center; color: #444; margin: 0 0 8pt; }
table { border-collapse: collapse; width: 100%; margin-bottom: 10pt; }
th, td { border: 1px solid #000; padding: 2pt 4pt; text-align: left; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2pt 8pt; }
dt { font-weight: bold; }
"""


@dataclass
class AttendanceCounts(Record):
    """Counts of one province (or of the whole meeting)."""

    province_id: int | None = None
    province_name: str = ""
    invited: int = 0
    present: int = 0
    not_joined: int = 0
    left: int = 0
    rejoined: int = 0
    late: int = 0

    def add(self, site: SiteAttendance) -> None:
        self.invited += 1
        if site.intervals and site.intervals[-1][1] is None:
            self.present += 1
        elif site.intervals:
            self.left += 1
        else:
            self.not_joined += 1
        if site.rejoined:
            self.rejoined += 1
        if site.late:
            self.late += 1


@dataclass
class SiteAttendance:
    """One invited site's attendance."""

    site_id: int
    code: str
    name: str
    province_id: int | None
    province_name: str
    status: str
    intervals: list[tuple[datetime, datetime | None, str | None]] = field(default_factory=list)
    presence_s: float = 0.0
    late: bool = False

    @property
    def rejoined(self) -> bool:
        """Came back after leaving or dropping (more than one interval)."""
        return len(self.intervals) > 1

    @property
    def first_joined(self) -> datetime | None:
        return self.intervals[0][0] if self.intervals else None

    @property
    def last_left(self) -> datetime | None:
        return self.intervals[-1][1] if self.intervals else None

    def as_dict(self) -> JsonObject:
        return {
            "site_id": self.site_id,
            "code": self.code,
            "name": self.name,
            "province_id": self.province_id,
            "province_name": self.province_name,
            "status": self.status,
            "first_joined": iso(self.first_joined),
            "last_left": iso(self.last_left),
            "sessions": len(self.intervals),
            "presence_s": round(self.presence_s, 1),
            "late": self.late,
            "rejoined": self.rejoined,
            "intervals": [
                {
                    "joined_at": j.isoformat(),
                    "left_at": iso(left),
                    "reason": reason,
                }
                for j, left, reason in self.intervals
            ],
        }


@dataclass
class AttendanceSummary(Record):
    meeting_id: int
    state: str
    at: datetime
    total: AttendanceCounts
    provinces: list[AttendanceCounts]


class RollCall:
    """Attendance counts and reports of every meeting.

    Args:
        store: the meetings' shared read side.
        sites: the directory's read model (codes, names and provinces in the report).
    """

    def __init__(self, store: MeetingStore, sites: SiteDirectory) -> None:
        self.store = store
        self.directory = sites

    async def sites(
        self, meeting_id: int, province_id: int | None = None
    ) -> tuple[MeetingView, datetime, list[SiteAttendance]]:
        """Every invited site's attendance (of one province if given), by province and code."""
        async with self.store.db.session() as s:
            m = await self.store.load(s, meeting_id)
            view = MeetingView.of(m)
            pq = select(MeetingParticipant.site_id).where(
                MeetingParticipant.meeting_id == meeting_id
            )
            iq = select(
                MeetingAttendance.site_id,
                MeetingAttendance.joined_at,
                MeetingAttendance.left_at,
                MeetingAttendance.left_reason,
            ).where(MeetingAttendance.meeting_id == meeting_id)
            if province_id is not None:
                pq = pq.where(MeetingParticipant.province_id == province_id)
                iq = iq.where(MeetingAttendance.site_id.in_(pq))
            site_ids = list((await s.scalars(pq)).all())
            intervals = (
                await s.execute(iq.order_by(MeetingAttendance.joined_at, MeetingAttendance.id))
            ).all()
        ref = view.ended_at or self.store.now()
        by_site: dict[int, list[tuple[datetime, datetime | None, str | None]]] = defaultdict(list)
        for sid, joined, left, reason in intervals:
            by_site[sid].append((joined, left, reason))
        infos = await self.directory.by_ids(site_ids)
        late_after = (
            view.started_at + timedelta(seconds=view.late_after_s) if view.started_at else None
        )
        ended = view.state == "ended"
        out: list[SiteAttendance] = []
        for sid in site_ids:
            info = infos.get(sid)
            ivs = by_site.get(sid, [])
            if ended:
                status = "attended" if ivs else "absent"
            elif not ivs:
                status = "not_joined"
            else:
                status = "present" if ivs[-1][1] is None else "left"
            presence = sum(((left or ref) - joined).total_seconds() for joined, left, _ in ivs)
            out.append(
                SiteAttendance(
                    sid,
                    info.code if info else str(sid),
                    info.name if info else "",
                    info.province_id if info else None,
                    info.province_name if info else "",
                    status,
                    ivs,
                    max(0.0, presence),
                    bool(ivs and late_after is not None and ivs[0][0] > late_after),
                )
            )
        out.sort(key=lambda a: (a.province_name, a.code))
        return view, ref, out

    async def summary(self, meeting_id: int, province_id: int | None = None) -> AttendanceSummary:
        """Live counts per province and in total (present, not joined, left, rejoined, late)."""
        view, ref, sites = await self.sites(meeting_id, province_id)
        total = AttendanceCounts()
        provinces: dict[int | None, AttendanceCounts] = {}
        for site in sites:
            total.add(site)
            counts = provinces.get(site.province_id)
            if counts is None:
                counts = provinces[site.province_id] = AttendanceCounts(
                    site.province_id, site.province_name
                )
            counts.add(site)
        ordered = sorted(provinces.values(), key=lambda c: c.province_name)
        return AttendanceSummary(meeting_id, view.state, ref, total, ordered)

    async def report_csv(
        self,
        meeting_id: int,
        province_id: int | None = None,
        *,
        utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN,
    ) -> str:
        """Per-site report as CSV (Vietnamese headings first), times in the given zone."""
        view, _, sites = await self.sites(meeting_id, province_id)
        tz, label = zone(utc_offset_min)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            (
                "STT / No.",
                "Mã điểm cầu / Site code",
                "Tên điểm cầu / Site name",
                "Tỉnh, thành phố / Province",
                "Trạng thái / Status",
                f"Vào lần đầu / First joined ({label})",
                f"Rời lần cuối / Last left ({label})",
                "Số lượt vào / Sessions",
                "Tổng thời gian có mặt (phút) / Total presence (min)",
                "Vào muộn / Late",
                "Các lượt / Intervals",
            )
        )
        for no, a in enumerate(sites, start=1):
            writer.writerow(
                spreadsheet_row(
                    (
                        no,
                        a.code,
                        a.name,
                        a.province_name,
                        STATUS_LABELS.get(a.status, a.status),
                        _fmt(a.first_joined, tz),
                        _fmt(a.last_left, tz),
                        len(a.intervals),
                        f"{a.presence_s / 60:.1f}",
                        "Có / Yes" if a.late else "",
                        "; ".join(
                            f"{_fmt(j, tz)}–{_fmt(left, tz) or '…'}" for j, left, _ in a.intervals
                        ),
                    )
                )
            )
        return out.getvalue()

    async def report_html(
        self,
        meeting_id: int,
        province_id: int | None = None,
        *,
        utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN,
    ) -> str:
        """A print-ready HTML document: meeting header, counts per province, per-site table."""
        summary = await self.summary(meeting_id, province_id)
        view, _, sites = await self.sites(meeting_id, province_id)
        tz, label = zone(utc_offset_min)
        e = html.escape
        prov_rows = "".join(
            f"<tr><td>{e(c.province_name)}</td><td>{c.invited}</td><td>{c.present}</td>"
            f"<td>{c.left}</td><td>{c.not_joined}</td><td>{c.rejoined}</td><td>{c.late}</td></tr>"
            for c in summary.provinces
        )
        t = summary.total
        ended = e(_fmt(view.ended_at, tz)) or "Đang diễn ra / In progress"
        site_rows = "".join(
            f"<tr><td>{no}</td><td>{e(a.code)}</td><td>{e(a.name)}</td><td>{e(a.province_name)}</td>"
            f"<td>{e(STATUS_LABELS.get(a.status, a.status))}</td>"
            f"<td>{e(_fmt(a.first_joined, tz))}</td>"
            f"<td>{e(_fmt(a.last_left, tz))}</td><td>{len(a.intervals)}</td>"
            f"<td>{a.presence_s / 60:.1f}</td><td>{'Có' if a.late else ''}</td></tr>"
            for no, a in enumerate(sites, start=1)
        )
        return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<title>Báo cáo điểm danh – {e(view.title)}</title>
<style>{_REPORT_CSS}</style></head><body>
<h1>BÁO CÁO ĐIỂM DANH CUỘC HỌP</h1>
<p class="en">Meeting attendance report</p>
<dl>
<dt>Cuộc họp / Meeting</dt><dd>{e(view.title)} (#{view.id})</dd>
<dt>Bắt đầu / Started ({label})</dt><dd>{e(_fmt(view.started_at, tz))}</dd>
<dt>Kết thúc / Ended ({label})</dt><dd>{ended}</dd>
<dt>Được mời / Invited</dt><dd>{t.invited}</dd>
<dt>Đã tham dự / Attended</dt><dd>{t.invited - t.not_joined}</dd>
<dt>Vắng / Absent</dt><dd>{t.not_joined}</dd>
</dl>
<h2>Theo tỉnh, thành phố / By province</h2>
<table><thead><tr><th>Tỉnh, thành phố / Province</th><th>Được mời / Invited</th>
<th>Có mặt / Present</th><th>Đã rời / Left</th><th>Chưa vào / Not joined</th>
<th>Vào lại / Rejoined</th><th>Muộn / Late</th></tr></thead><tbody>{prov_rows}</tbody></table>
<h2>Theo điểm cầu / By site</h2>
<table><thead><tr><th>STT / No.</th><th>Mã / Code</th><th>Điểm cầu / Site</th>
<th>Tỉnh / Province</th><th>Trạng thái / Status</th><th>Vào lần đầu / First joined</th>
<th>Rời lần cuối / Last left</th><th>Số lượt / Sessions</th><th>Có mặt (phút) / Presence (min)</th>
<th>Muộn / Late</th></tr></thead><tbody>{site_rows}</tbody></table>
</body></html>
"""


def zone(utc_offset_min: int) -> tuple[timezone, str]:
    """The fixed zone and its label (``UTC+07:00``) for an offset in minutes."""
    sign = "+" if utc_offset_min >= 0 else "-"
    hours, minutes = divmod(abs(utc_offset_min), 60)
    return timezone(timedelta(minutes=utc_offset_min)), f"UTC{sign}{hours:02d}:{minutes:02d}"


def _fmt(value: datetime | None, tz: timezone) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else ""
