"""What a fault lost: what clients were told or sent, compared with what the store holds.

Each count is "confirmed to a client, yet missing" (docs/reliability.md):

- reports: a filing the server confirmed whose values are in no revision of the
  site's report;
- acks: a directive acknowledgement confirmed to a site but not recorded;
- directives: a directive confirmed to the chair that is not stored, or that a
  recipient site never received;
- messages: a durable message stored for a site (its own stream, or a meeting's
  stream it follows) after it first connected that it never received, resumes
  included;
- attendance: a site joined and connected at the end but not present in the store,
  or an interval claiming presence across an outage (`gaps`);
- audit: a confirmed staff action without its audit row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from diemcau.audit.models import AuditEntry
from diemcau.command.models import Directive as DirectiveRow
from diemcau.command.models import DirectiveRecipient, Report, ReportRevision
from diemcau.lab.staff_driver import StaffLedger
from diemcau.lab.workload import Ledger
from diemcau.meetings.models import MeetingAttendance
from diemcau.presence.models import PresenceFollow, PresenceMessage
from diemcau.store import Database

__all__ = ["GAP_TOLERANCE", "Losses", "count_losses"]

# How far past the start of an outage an interval may end: the alive mark is written
# every 2 s (meetings.alive), plus a margin.
GAP_TOLERANCE = timedelta(seconds=3)


@dataclass
class Losses:
    """Lost and checked counts per kind (docs/reliability.md)."""

    lost: dict[str, int] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    def add(self, kind: str, lost: int, checked: int, detail: str = "") -> None:
        self.lost[kind] = self.lost.get(kind, 0) + lost
        self.checked[kind] = self.checked.get(kind, 0) + checked
        if lost and detail:
            self.details.append(f"{kind}: {detail}")

    @property
    def total(self) -> int:
        return sum(self.lost.values())


async def _reports(db: Database, ledger: Ledger, out: Losses) -> None:
    async with db.session() as s:
        rows = (
            await s.execute(
                select(Report.site_id, ReportRevision.values)
                .join(ReportRevision, ReportRevision.report_id == Report.id)
                .where(Report.schema_key == "covid19")
            )
        ).all()
    stored: dict[int, set[int]] = {}
    for site_id, values in rows:
        stored.setdefault(int(site_id), set()).add(int(values.get("vaccine_doses", -1)))
    checked = sum(len(v) for v in ledger.reports.values())
    missing = [
        (sid, n) for sid, numbers in ledger.reports.items() for n in numbers
        if n not in stored.get(sid, set())
    ]  # fmt: skip
    out.add("reports", len(missing), checked, f"site/number {missing[:5]}")


async def _acks(db: Database, ledger: Ledger, out: Losses) -> None:
    async with db.session() as s:
        rows = (
            await s.execute(
                select(DirectiveRecipient.site_id, DirectiveRecipient.directive_id).where(
                    DirectiveRecipient.acknowledged_at.is_not(None)
                )
            )
        ).all()
    stored = {(int(a), int(b)) for a, b in rows}
    missing = sorted(ledger.acks - stored)
    out.add("acks", len(missing), len(ledger.acks), f"site/directive {missing[:5]}")


async def _directives(
    db: Database, ledger: Ledger, staff: StaffLedger, site_ids: Sequence[int], out: Losses
) -> None:
    async with db.session() as s:
        stored = set(
            await s.scalars(select(DirectiveRow.id).where(DirectiveRow.id.in_(staff.directives)))
        )
    unstored = [d for d in staff.directives if d not in stored]
    undelivered = [
        (sid, d)
        for d in staff.directives
        for sid in site_ids
        if d not in ledger.directives_seen.get(sid, set())
    ]
    out.add(
        "directives",
        len(unstored) + len(undelivered),
        len(staff.directives),
        f"unstored {unstored[:5]}, not received (site, directive) {undelivered[:5]}",
    )


async def _messages(db: Database, ledger: Ledger, site_ids: Sequence[int], out: Losses) -> None:
    async with db.session() as s:
        own = (
            await s.execute(
                select(PresenceMessage.stream, PresenceMessage.seq).where(
                    PresenceMessage.stream.in_([f"site:{sid}" for sid in site_ids])
                )
            )
        ).all()
        follows = (
            await s.execute(
                select(
                    PresenceFollow.site_id, PresenceFollow.stream, PresenceFollow.from_seq
                ).where(PresenceFollow.site_id.in_(list(site_ids)))
            )
        ).all()
        streams = {stream for _, stream, _ in follows}
        broadcast = (
            await s.execute(
                select(PresenceMessage.stream, PresenceMessage.seq).where(
                    PresenceMessage.stream.in_(streams)
                )
            )
        ).all()
    wanted: dict[int, dict[str, set[int]]] = {}
    for stream, seq in own:
        sid = int(stream.split(":", 1)[1])
        wanted.setdefault(sid, {}).setdefault("site", set()).add(int(seq))
    by_stream: dict[str, list[int]] = {}
    for stream, seq in broadcast:
        by_stream.setdefault(stream, []).append(int(seq))
    for sid, stream, from_seq in follows:
        seqs = {q for q in by_stream.get(stream, []) if q > from_seq}
        wanted.setdefault(int(sid), {}).setdefault(stream, set()).update(seqs)
    checked = missing = 0
    examples: list[tuple[int, str, int]] = []
    for sid, per_stream in wanted.items():
        for stream, all_seqs in per_stream.items():
            before = ledger.baseline.get(sid, {}).get(stream, 0)
            seqs = {q for q in all_seqs if q > before}
            got = ledger.seen.get(sid, {}).get(stream, set())
            checked += len(seqs)
            lost = sorted(seqs - got)
            missing += len(lost)
            examples += [(sid, stream, q) for q in lost[:2]]
    out.add("messages", missing, checked, f"site/stream/seq {examples[:5]}")


async def _attendance(
    db: Database,
    ledger: Ledger,
    meeting_id: int,
    connected: Sequence[int],
    outages: Sequence[tuple[datetime, datetime]],
    out: Losses,
) -> None:
    async with db.session() as s:
        rows = (
            await s.execute(
                select(
                    MeetingAttendance.site_id,
                    MeetingAttendance.joined_at,
                    MeetingAttendance.left_at,
                ).where(MeetingAttendance.meeting_id == meeting_id)
            )
        ).all()
    present = {int(sid) for sid, _, left in rows if left is None}
    absent = sorted(sid for sid in connected if sid in ledger.joined and sid not in present)
    # An interval that runs on past an outage's start (more than the alive mark's
    # precision) claims presence while the server was down.
    spanning = [
        (int(sid), joined, left)
        for sid, joined, left in rows
        for down, up in outages
        if joined <= down and (left is None or left > down + GAP_TOLERANCE) and up > down
    ]
    checked = len(rows)
    out.add(
        "attendance",
        len(absent) + len(spanning),
        checked,
        f"not present {absent[:5]}, spanning an outage {spanning[:3]}",
    )


async def _audit(db: Database, staff: StaffLedger, out: Losses) -> None:
    targets = [f"directive:{d}" for d in staff.directives]
    async with db.session() as s:
        issued = set(
            await s.scalars(
                select(AuditEntry.target).where(
                    AuditEntry.action == "directive.issue", AuditEntry.target.in_(targets)
                )
            )
        )
        grants = await s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "floor.grant")
        )
    missing = len(set(targets) - issued) + max(0, staff.floor_grants - int(grants or 0))
    out.add("audit", missing, len(targets) + staff.floor_grants, "directive or floor rows")


async def count_losses(
    db: Database,
    ledger: Ledger,
    staff: StaffLedger,
    *,
    meeting_id: int,
    site_ids: Sequence[int],
    connected: Sequence[int],
    outages: Sequence[tuple[datetime, datetime]] = (),
) -> Losses:
    """Every kind of loss of one run (see the module docstring).

    Args:
        site_ids: the workload's sites.
        connected: those connected (and so present if joined) at the end.
        outages: (down, up) moments the control plane was known down, UTC.
    """
    out = Losses()
    await _reports(db, ledger, out)
    await _acks(db, ledger, out)
    await _directives(db, ledger, staff, site_ids, out)
    await _messages(db, ledger, site_ids, out)
    await _attendance(db, ledger, meeting_id, connected, outages, out)
    await _audit(db, staff, out)
    return out
