"""Roll call (điểm danh): attendance computed from sessions, never typed by hand.

A site is present in a live meeting between its "join" and its "leave", while its
session is up. Each stretch of presence is a stored interval, opened on join (or on
coming back online after a drop, if the site had not left) and closed on leave, on
going offline, at the meeting's end, or at a server restart. Live counts and the
after-meeting report are both computed from those intervals, so they stay right
across leave/rejoin and restarts.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from diemcau.accounts.service import SitePrincipal
from diemcau.errors import Conflict
from diemcau.meetings.floor import own_request
from diemcau.meetings.models import Meeting, MeetingAttendance, MeetingParticipant
from diemcau.meetings.writer import AttendanceOp, AttendanceWriter
from diemcau.tasks import cancel_and_wait, run_to_end
from diemcau.text import spreadsheet_row

if TYPE_CHECKING:
    from diemcau.meetings.service import MeetingService, MeetingView

__all__ = [
    "Attendance",
    "AttendanceCounts",
    "AttendanceSummary",
    "SiteAttendance",
    "STATUS_LABELS",
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

log = logging.getLogger(__name__)


@dataclass
class AttendanceCounts:
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "province_id": self.province_id,
            "province_name": self.province_name,
            "invited": self.invited,
            "present": self.present,
            "not_joined": self.not_joined,
            "left": self.left,
            "rejoined": self.rejoined,
            "late": self.late,
        }


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "code": self.code,
            "name": self.name,
            "province_id": self.province_id,
            "province_name": self.province_name,
            "status": self.status,
            "first_joined": self.first_joined.isoformat() if self.first_joined else None,
            "last_left": self.last_left.isoformat() if self.last_left else None,
            "sessions": len(self.intervals),
            "presence_s": round(self.presence_s, 1),
            "late": self.late,
            "rejoined": self.rejoined,
            "intervals": [
                {
                    "joined_at": j.isoformat(),
                    "left_at": left.isoformat() if left else None,
                    "reason": reason,
                }
                for j, left, reason in self.intervals
            ],
        }


@dataclass
class AttendanceSummary:
    meeting_id: int
    state: str
    at: datetime
    total: AttendanceCounts
    provinces: list[AttendanceCounts]

    def as_dict(self) -> dict[str, Any]:
        return {
            "meeting_id": self.meeting_id,
            "state": self.state,
            "at": self.at.isoformat(),
            "total": self.total.as_dict(),
            "provinces": [p.as_dict() for p in self.provinces],
        }


class Attendance:
    """Roll call of every meeting of a `MeetingService`."""

    def __init__(self, svc: MeetingService) -> None:
        self.svc = svc
        # (meeting id, site id) -> id of the open interval; mirror of the store.
        self._open: dict[tuple[int, int], int] = {}
        # (meeting id, site id) of sites that joined and did not leave.
        self._wants: set[tuple[int, int]] = set()
        self._site_locks: dict[int, asyncio.Lock] = {}
        self.writer = AttendanceWriter(svc.db)
        self._stopped = False
        # Sites whose presence could not be applied (the store refused it): applied
        # again every `retry_s` until it holds, so roll call always catches up.
        self.retry_s = 1.0
        self._retry: set[tuple[int, int]] = set()
        self._retry_task: asyncio.Task[None] | None = None

    def _lock(self, site_id: int) -> asyncio.Lock:
        lk = self._site_locks.get(site_id)
        if lk is None:
            lk = self._site_locks[site_id] = asyncio.Lock()
        return lk

    def is_present(self, meeting_id: int, site_id: int) -> bool:
        return (meeting_id, site_id) in self._open

    def forget(self, meeting_id: int, site_id: int) -> None:
        self._open.pop((meeting_id, site_id), None)
        self._wants.discard((meeting_id, site_id))

    def forget_meeting(self, meeting_id: int) -> None:
        for key in [k for k in self._open if k[0] == meeting_id]:
            del self._open[key]
        self._wants = {k for k in self._wants if k[0] != meeting_id}

    async def reconcile(self) -> None:
        """After a (re)start: rebuild the mirror and close intervals of sites now offline.

        Whoever was present when the server stopped is not present now unless its
        session is up again; its interval ends at the restart (reason ``server_restart``)
        and a new one opens when its session comes back, because it never left.
        """
        self._stopped = False
        now = self.svc.now()
        async with self.svc.db.session() as s:
            live = select(Meeting.id).where(Meeting.state == "live")
            opened = (
                await s.execute(
                    select(
                        MeetingAttendance.id,
                        MeetingAttendance.meeting_id,
                        MeetingAttendance.site_id,
                    ).where(
                        MeetingAttendance.left_at.is_(None),
                        MeetingAttendance.meeting_id.in_(live),
                    )
                )
            ).all()
            wants = (
                await s.execute(
                    select(MeetingParticipant.meeting_id, MeetingParticipant.site_id).where(
                        MeetingParticipant.wants_in.is_(True),
                        MeetingParticipant.meeting_id.in_(live),
                    )
                )
            ).all()
            stale = [iid for iid, _, sid in opened if not self.svc.hub.is_online(sid)]
            for start in range(0, len(stale), 500):
                await s.execute(
                    update(MeetingAttendance)
                    .where(MeetingAttendance.id.in_(stale[start : start + 500]))
                    .values(left_at=now, left_reason="server_restart")
                )
        stale_set = set(stale)
        self._open = {(mid, sid): iid for iid, mid, sid in opened if iid not in stale_set}
        self._wants = {(mid, sid) for mid, sid in wants}
        for mid, sid in sorted(self._wants):
            if (mid, sid) not in self._open and self.svc.hub.is_online(sid):
                async with self._lock(sid):
                    await self._open_interval(mid, sid)

    async def _open_interval(
        self, meeting_id: int, site_id: int, wants: bool | None = None
    ) -> bool:
        """Open an interval unless one is open (call under the site's lock)."""
        key = (meeting_id, site_id)
        if key in self._open:
            if wants is not None:
                await self._set_wants(meeting_id, site_id, wants)
            return False
        op = AttendanceOp(meeting_id, site_id, self.svc.now(), open=True, wants=wants)
        await self._store(key, op)
        await self._event(meeting_id, site_id, "present")
        return True

    async def _close_interval(
        self, meeting_id: int, site_id: int, reason: str, wants: bool | None = None
    ) -> bool:
        """Close the open interval, if any (call under the site's lock)."""
        key = (meeting_id, site_id)
        iid = self._open.get(key)
        if iid is None:
            if wants is not None:
                await self._set_wants(meeting_id, site_id, wants)
            return False
        op = AttendanceOp(
            meeting_id,
            site_id,
            self.svc.now(),
            open=False,
            wants=wants,
            interval_id=iid,
            reason=reason,
        )
        await self._store(key, op)
        await self._event(meeting_id, site_id, "left", reason=reason)
        return True

    async def _store(self, key: tuple[int, int], op: AttendanceOp) -> None:
        """Write `op`, then the mirror, as one step a cancel cannot split (under the lock).

        A site's session closing cancels its requests in flight, a join among them: its
        write was queued and still commits, but the mirror was left behind, so the store
        kept an open interval nothing would close (a present site that is gone, never
        closed at a stop either). The caller's cancel is raised once both are done.
        """

        async def write() -> None:
            iid = await self.writer.submit(op)
            if op.open:
                assert iid is not None
                self._open[key] = iid
            elif op.interval_id is not None:
                self._open.pop(key, None)
            self._note_wants(key, op.wants)

        await run_to_end(write())

    def _note_wants(self, key: tuple[int, int], wants: bool | None) -> None:
        if wants is True:
            self._wants.add(key)
        elif wants is False:
            self._wants.discard(key)

    async def _event(self, meeting_id: int, site_id: int, status: str, **extra: Any) -> None:
        info = (await self.svc.site_infos([site_id])).get(site_id)
        body = {
            "meeting_id": meeting_id,
            "site_id": site_id,
            "code": info.code if info else "",
            "province_id": info.province_id if info else None,
            "status": status,
            **extra,
        }
        try:
            await self.svc.hub.publish_staff_event(
                "attendance.changed", body, province_id=info.province_id if info else None
            )
        except Exception:  # advisory; the interval is stored
            return

    async def _set_wants(self, meeting_id: int, site_id: int, wants: bool) -> None:
        op = AttendanceOp(meeting_id, site_id, self.svc.now(), open=False, wants=wants)
        await self._store((meeting_id, site_id), op)

    # --- site actions -----------------------------------------------------------------

    async def join(self, site: SitePrincipal, meeting_id: int | None = None) -> MeetingView:
        """An invited site enters a live meeting (idempotent). Uninvited sites are refused."""
        view = await self.svc.site_meeting(site, meeting_id)
        if view.state != "live":
            raise Conflict(f"meeting {view.id} is {view.state}, not live", code="not_live")
        key = (view.id, site.site_id)
        async with self._lock(site.site_id):
            if key not in self._open or key not in self._wants:
                await self._open_interval(view.id, site.site_id, wants=True)
        return view

    async def leave(self, site: SitePrincipal, meeting_id: int | None = None) -> None:
        """A site leaves on purpose: it is not rejoined when its session drops and returns."""
        view = await self.svc.site_meeting(site, meeting_id)
        key = (view.id, site.site_id)
        async with self._lock(site.site_id):
            if key in self._open or key in self._wants:
                await self._close_interval(view.id, site.site_id, "leave", wants=False)
        await self.svc.floor.close_hand(view.id, site.site_id, "left")
        await self.svc.floor.speaker_left(view.id, site.site_id)

    async def close_all(self, reason: str) -> int:
        """Close every open interval at once (the service is stopping); returns how many.

        From here on presence transitions are ignored: the sessions are being closed
        by the server itself, which says nothing about the sites.
        """
        self._stopped = True
        for lk in list(self._site_locks.values()):
            async with lk:  # let in-flight joins and leaves finish first
                pass
        # Idle now (stopped, and any pass in flight went through the locks above).
        await cancel_and_wait(self._retry_task)
        self._retry.clear()
        ids = list(self._open.values())
        now = self.svc.now()
        async with self.svc.db.session() as s:
            for start in range(0, len(ids), 500):
                await s.execute(
                    update(MeetingAttendance)
                    .where(
                        MeetingAttendance.id.in_(ids[start : start + 500]),
                        MeetingAttendance.left_at.is_(None),
                    )
                    .values(left_at=now, left_reason=reason)
                )
        self._open.clear()
        return len(ids)

    async def on_presence(self, change: Any) -> None:
        """Hub listener: a session drop closes the interval; coming back reopens it."""
        site_id = getattr(change, "site_id", None)
        if not isinstance(site_id, int) or self._stopped:
            return
        meeting_id = self.svc.live_site_meeting.get(site_id)
        if meeting_id is None:
            return
        await self._follow_presence((meeting_id, site_id))

    async def _follow_presence(self, key: tuple[int, int], *, retrying: bool = False) -> bool:
        """Make the site's interval match its session now; if the store refuses, again later.

        A presence change is applied once, when it happens: if that write fails (a mass
        drop and reconnect has the store answer "database is locked" for a while), the
        mirror and the store keep the old state while the session has moved on, and no
        later event corrects it, so a site online and joined stayed absent for the rest
        of the meeting (issue 16: ``present 0/3355`` after a reconnect wave). Failed
        sites are kept and applied again until it holds.

        Everything is decided under the site's lock, after any join or leave in flight:
        deciding before it (as an early "never joined" check did) let a join whose write
        was pending when the session dropped open an interval for an offline site.
        """
        meeting_id, site_id = key
        try:
            async with self._lock(site_id):
                if self._stopped or self.svc.live_site_meeting.get(site_id) != meeting_id:
                    return True
                # Listeners run as concurrent tasks, so transitions may be handled out of
                # order: act on the hub's state now, not on the (maybe stale) event.
                online = self.svc.hub.is_online(site_id)
                if online and key in self._wants and key not in self._open:
                    await self._open_interval(meeting_id, site_id)
                elif not online and key in self._open:
                    await self._close_interval(meeting_id, site_id, "offline")
        except Exception as exc:
            if not retrying:
                log.warning(
                    "attendance of site %s in meeting %s not stored (%r); will retry every %g s",
                    site_id,
                    meeting_id,
                    exc,
                    self.retry_s,
                )
            self._retry.add(key)
            if self._retry_task is None or self._retry_task.done():
                self._retry_task = asyncio.create_task(self._retry_loop())
            return False
        return True

    async def _retry_loop(self) -> None:
        while self._retry and not self._stopped:
            await asyncio.sleep(self.retry_s)
            keys, self._retry = sorted(self._retry), set()
            # Together, so the writer commits them in one transaction.
            done = await asyncio.gather(*(self._follow_presence(k, retrying=True) for k in keys))
            if not all(done):
                log.warning("attendance of %d sites still not stored; retrying", done.count(False))

    async def handle_join(self, site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        view = await self.join(site, own_request(site, body))
        conclusions = await self.svc.conclusions.for_site(view.id, site.site_id)
        return {
            "meeting": view.site_dict(),
            "floor": await self.svc.floor.for_site(view.id),
            "conclusions": conclusions,
        }

    async def handle_leave(self, site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        await self.leave(site, own_request(site, body))
        return {"left": True}

    # --- reports ----------------------------------------------------------------------

    async def sites(
        self, meeting_id: int, province_id: int | None = None
    ) -> tuple[MeetingView, datetime, list[SiteAttendance]]:
        """Every invited site's attendance (of one province if given), by province and code."""
        from diemcau.meetings.service import MeetingView

        async with self.svc.db.session() as s:
            m = await self.svc.load(s, meeting_id)
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
        ref = view.ended_at or self.svc.now()
        by_site: dict[int, list[tuple[datetime, datetime | None, str | None]]] = defaultdict(list)
        for sid, joined, left, reason in intervals:
            by_site[sid].append((joined, left, reason))
        infos = await self.svc.site_infos(site_ids)
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
        tz = timezone(timedelta(minutes=utc_offset_min))
        zone = _zone_label(utc_offset_min)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            (
                "STT / No.",
                "Mã điểm cầu / Site code",
                "Tên điểm cầu / Site name",
                "Tỉnh, thành phố / Province",
                "Trạng thái / Status",
                f"Vào lần đầu / First joined ({zone})",
                f"Rời lần cuối / Last left ({zone})",
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
        tz = timezone(timedelta(minutes=utc_offset_min))
        zone = _zone_label(utc_offset_min)
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
<style>
@page {{ size: A4 landscape; margin: 12mm; }}
body {{ font-family: "Times New Roman", serif; font-size: 11pt; color: #000; }}
h1 {{ font-size: 15pt; text-align: center; margin: 0 0 4pt; }}
p.en {{ text-align: center; color: #444; margin: 0 0 8pt; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 10pt; }}
th, td {{ border: 1px solid #000; padding: 2pt 4pt; text-align: left; }}
thead {{ display: table-header-group; }}
tr {{ page-break-inside: avoid; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 2pt 8pt; }}
dt {{ font-weight: bold; }}
</style></head><body>
<h1>BÁO CÁO ĐIỂM DANH CUỘC HỌP</h1>
<p class="en">Meeting attendance report</p>
<dl>
<dt>Cuộc họp / Meeting</dt><dd>{e(view.title)} (#{view.id})</dd>
<dt>Bắt đầu / Started ({zone})</dt><dd>{e(_fmt(view.started_at, tz))}</dd>
<dt>Kết thúc / Ended ({zone})</dt><dd>{ended}</dd>
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


def _zone_label(offset_min: int) -> str:
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def _fmt(value: datetime | None, tz: timezone) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else ""
