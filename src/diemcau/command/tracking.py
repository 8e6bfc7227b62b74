"""Directive tracking for the staff pages: the filtered list, the province table, the
drill-down to communes, each as a `Table` the page shows and exports alike.

Reads go through `DirectiveService` (so an officer sees exactly what the API
lets it see) plus one grouped count of deliveries per province, which the
service's progress does not carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select

from diemcau.actors import Actor
from diemcau.command.aggregation import province_cells, province_code, province_labels
from diemcau.command.directive_views import DirectiveView, RecipientState
from diemcau.command.directives import DirectiveService
from diemcau.command.exports import Table
from diemcau.command.models import DirectiveRecipient
from diemcau.command.report_views import rate
from diemcau.directory.sites import SiteDirectory
from diemcau.records import iso
from diemcau.store import Database
from diemcau.text import fold

__all__ = ["DirectiveBoard", "ListFilter", "Status", "status_of"]

Status = Literal["all", "open", "done", "overdue"]
# How many of the newest directives the filtered list looks through.
SCAN = 500


def status_of(view: DirectiveView) -> str:
    """ "done" once every recipient completed, "overdue" past the deadline, else "open"."""
    if view.recipients and view.completed >= view.recipients:
        return "done"
    if view.overdue:
        return "overdue"
    return "open"


@dataclass(frozen=True)
class ListFilter:
    status: Status = "all"
    priority: str | None = None
    q: str = ""
    mine: bool = False
    since: datetime | None = None


_LIST_KEYS = [
    ("id", "Số"),
    ("issued_at", "Ngày ban hành"),
    ("title", "Trích yếu"),
    ("priority", "Mức độ"),
    ("deadline", "Hạn hoàn thành"),
    ("issued_by", "Người ban hành"),
    ("status", "Tình trạng"),
    ("recipients", "Số nơi nhận"),
    ("acknowledged", "Đã xác nhận"),
    ("completed", "Đã hoàn thành"),
    ("overdue", "Quá hạn"),
    ("ack_rate", "Tỷ lệ xác nhận"),
    ("completion_rate", "Tỷ lệ hoàn thành"),
]

_PROVINCE_KEYS = [
    ("province_id", "Mã số tỉnh"),
    ("province_code", "Mã tỉnh"),
    ("province_name", "Tỉnh/thành"),
    ("recipients", "Số nơi nhận"),
    ("delivered", "Đã nhận"),
    ("acknowledged", "Đã xác nhận"),
    ("completed", "Đã hoàn thành"),
    ("overdue", "Quá hạn"),
    ("ack_rate", "Tỷ lệ xác nhận"),
    ("completion_rate", "Tỷ lệ hoàn thành"),
]

_RECIPIENT_KEYS = [
    ("site_code", "Mã điểm cầu"),
    ("site_name", "Tên điểm cầu"),
    ("province_name", "Tỉnh/thành"),
    ("delivered_at", "Đã nhận lúc"),
    ("acknowledged_at", "Xác nhận lúc"),
    ("completed_at", "Hoàn thành lúc"),
    ("completion_note", "Ghi chú kết quả"),
    ("reminded", "Số lần nhắc"),
]


class DirectiveBoard:
    """The tables of the directives page.

    Args:
        db: the store.
        directives: the directive service (role and scope checks live there).
        sites: the directory's read model of sites (names for the drill-down).
    """

    def __init__(self, db: Database, directives: DirectiveService, sites: SiteDirectory) -> None:
        self.db = db
        self.directives = directives
        self.sites = sites

    async def list_table(self, actor: Actor, flt: ListFilter, *, limit: int = 200) -> Table:
        """Directives newest first, filtered by status, priority, words of the title."""
        views = await self.directives.list_directives(actor, limit=SCAN)
        words = fold(flt.q).split()
        table = Table.of(_LIST_KEYS)
        for v in views:
            status = status_of(v)
            if flt.status != "all" and status != flt.status:
                continue
            if flt.priority and v.priority != flt.priority:
                continue
            if words and not all(w in fold(v.title + " " + v.body) for w in words):
                continue
            if flt.mine and v.issued_by != actor.label:
                continue
            if flt.since is not None and v.issued_at < flt.since:
                continue
            table.rows.append(
                [
                    v.id,
                    iso(v.issued_at),
                    v.title,
                    v.priority,
                    iso(v.deadline),
                    v.issued_by,
                    status,
                    v.recipients,
                    v.acknowledged,
                    v.completed,
                    v.overdue,
                    rate(v.acknowledged, v.recipients),
                    rate(v.completed, v.recipients),
                ]
            )
            if len(table.rows) >= limit:
                break
        return table

    async def province_table(self, actor: Actor, directive_id: int) -> Table:
        """Delivered, acknowledged, completed and overdue per province (scope checked)."""
        progress = await self.directives.progress(actor, directive_id)
        R = DirectiveRecipient
        q = (
            select(R.province_id, func.count(R.delivered_at))
            .where(R.directive_id == directive_id)
            .group_by(R.province_id)
        )
        if actor.province_id is not None:
            q = q.where(R.province_id == actor.province_id)
        async with self.db.session() as s:
            delivered = {pid: int(n) for pid, n in (await s.execute(q)).all()}
        labels = await province_labels(self.db, [p.province_id for p in progress])
        table = Table.of(_PROVINCE_KEYS)
        for p in sorted(progress, key=lambda p: province_code(p.province_id, labels)):
            table.rows.append(
                [
                    *province_cells(p.province_id, labels),
                    p.recipients,
                    delivered.get(p.province_id, 0),
                    p.acknowledged,
                    p.completed,
                    p.overdue,
                    rate(p.acknowledged, p.recipients),
                    rate(p.completed, p.recipients),
                ]
            )
        return table

    async def recipients_table(
        self,
        actor: Actor,
        directive_id: int,
        *,
        state: RecipientState = "all",
        province_id: int | None = None,
        limit: int = 5000,
    ) -> Table:
        """The receiving sites of one province (or all in reach) with their state."""
        rows = await self.directives.recipients(
            actor, directive_id, state=state, province_id=province_id, limit=limit
        )
        infos = await self.sites.by_ids(r.site_id for r in rows)
        table = Table.of(_RECIPIENT_KEYS)
        for r in rows:
            info = infos.get(r.site_id)
            table.rows.append(
                [
                    r.code,
                    r.name,
                    info.province_name if info else "",
                    iso(r.delivered_at),
                    iso(r.acknowledged_at),
                    iso(r.completed_at),
                    r.completion_note,
                    r.reminded,
                ]
            )
        return table
