"""The alerts page's table: active and past alerts with filters, what triggered each,
and who acknowledged it with which note.

Reads go through `AlertService.feed`, so an officer sees its province's alerts
and national ones, exactly as the dashboard's list does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from diemcau.actors import Actor
from diemcau.command.aggregation import province_labels
from diemcau.command.alerts import AlertService, AlertView
from diemcau.command.exports import Table
from diemcau.directory.sites import SiteDirectory
from diemcau.records import JsonObject, iso
from diemcau.store import Database
from diemcau.text import fold

__all__ = ["AlertBoard", "AlertFilter", "trigger_text"]

_COLS = [
    ("id", "Số"),
    ("severity", "Mức độ"),
    ("kind", "Loại"),
    ("raised_at", "Phát sinh lúc"),
    ("message", "Nội dung"),
    ("province_name", "Tỉnh/thành"),
    ("site_code", "Mã điểm cầu"),
    ("site_name", "Điểm cầu"),
    ("trigger", "Căn cứ"),
    ("last_seen_at", "Ghi nhận gần nhất"),
    ("cleared_at", "Đã hết lúc"),
    ("acknowledged_at", "Xác nhận lúc"),
    ("acknowledged_by", "Người xác nhận"),
    ("acknowledge_note", "Ghi chú xử lý"),
]


def trigger_text(details: Mapping[str, object]) -> str:
    """What raised the alert, as "indicator=deaths; value=7; threshold=5; ..."."""
    return "; ".join(f"{k}={v}" for k, v in details.items() if v is not None and v != "")


@dataclass(frozen=True)
class AlertFilter:
    active: bool | None = True
    kinds: Sequence[str] = field(default_factory=tuple)
    severities: Sequence[str] = field(default_factory=tuple)
    province_id: int | None = None
    unacknowledged: bool = False
    q: str = ""


class AlertBoard:
    """Builds the alerts table.

    Args:
        db: the store (province names).
        alerts: the alert service (scope checks and the feed).
        sites: the directory's read model of sites (names of the sites alerts are about).
    """

    def __init__(self, db: Database, alerts: AlertService, sites: SiteDirectory) -> None:
        self.db = db
        self.alerts = alerts
        self.sites = sites

    async def table(
        self, actor: Actor, flt: AlertFilter, *, limit: int = 500
    ) -> tuple[Table, dict[int, JsonObject]]:
        """Newest first; also each alert's raw details (the page links them).

        ``q`` matches words (without diacritics) of the message, the site's code
        and name, and the province's name.
        """
        views: list[AlertView] = await self.alerts.feed(
            actor,
            active=flt.active,
            kinds=flt.kinds,
            province_id=flt.province_id,
            unacknowledged=flt.unacknowledged,
            limit=1000,
        )
        views = [v for v in views if not flt.severities or v.severity in flt.severities]
        labels = await province_labels(self.db, [v.province_id for v in views])
        infos = await self.sites.by_ids(v.site_id for v in views if v.site_id is not None)
        words = fold(flt.q).split()

        def text(v: AlertView) -> str:
            site = infos.get(v.site_id) if v.site_id is not None else None
            label = labels.get(v.province_id) if v.province_id is not None else None
            where = f"{site.code} {site.name}" if site else ""
            return fold(f"{v.message_vi} {v.message_en} {where} {label.name if label else ''}")

        chosen = [v for v in views if all(w in text(v) for w in words)][:limit]
        table = Table.of(_COLS)
        details: dict[int, JsonObject] = {}
        for v in chosen:
            site = infos.get(v.site_id) if v.site_id is not None else None
            label = labels.get(v.province_id) if v.province_id is not None else None
            table.rows.append(
                [
                    v.id,
                    v.severity,
                    v.kind,
                    iso(v.raised_at),
                    v.message_vi,
                    label.name if label else "",
                    site.code if site else "",
                    site.name if site else "",
                    trigger_text(v.details),
                    iso(v.last_seen_at),
                    iso(v.cleared_at),
                    iso(v.acknowledged_at),
                    v.acknowledged_by,
                    v.acknowledge_note,
                ]
            )
            details[v.id] = {**v.details, "message_en": v.message_en}
        return table, details
