"""Top-N and rising-fast lists of one indicator for one period, by province or commune.

"Where are the most new cases today, and where are they rising fastest?" is the
question a command center asks first. For a number (or a yes/no answer) the
lists rank by the period's value or by its rise over the previous period; for a
choice (a zone level) they rank provinces by how many communes report the chosen
option, and list the communes reporting it (rising: those that did not report it
the period before, e.g. "turned red today").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, NamedTuple

from sqlalchemy import select

from diemcau.actors import Actor
from diemcau.command.aggregation import Aggregator, province_labels
from diemcau.command.exports import Table
from diemcau.command.models import Report
from diemcau.command.schemas import Indicator, SchemaRegistry, Value
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Invalid
from diemcau.store import Database

__all__ = ["Level", "Order", "Rankings"]

Level = Literal["province", "commune"]
Order = Literal["value", "rise"]

_COLS = [
    ("rank", "Hạng"),
    ("code", "Mã"),
    ("name", "Tên"),
    ("province_name", "Tỉnh/thành"),
    ("value", "Giá trị kỳ này"),
    ("previous", "Kỳ trước"),
    ("change", "Thay đổi"),
    ("change_pct", "Thay đổi (%)"),
]


@dataclass(frozen=True)
class _Entry:
    code: str
    name: str
    province: str
    value: float
    previous: float | None  # None: no report the period before
    # A commune's reported option of a choice indicator (shown instead of 1/0).
    shown: str | None = None
    shown_previous: str | None = None

    @property
    def change(self) -> float | None:
        return None if self.previous is None else self.value - self.previous


class _Ask(NamedTuple):
    """What one ranking compares: an indicator (or one option of it) over two periods."""

    schema_key: str
    ind: Indicator
    previous: date
    period: date
    option: str | None


def _number(ind: Indicator, raw: Value | None, option: str | None) -> float | None:
    """A report's value as a number to rank (a choice: 1 if it is `option`)."""
    if raw is None:
        return None
    if ind.type == "choice":
        return 1.0 if raw == option else 0.0
    if ind.type == "bool":
        return 1.0 if raw is True else 0.0
    if ind.type == "text":
        return None
    return float(raw)


class Rankings:
    """Ranks provinces or communes by an indicator.

    Args:
        db: the store.
        schemas: the indicator schemas.
        aggregator: province totals (the province ranking reads rollups, not reports).
        sites: the directory's read model of sites (commune names and provinces).
    """

    def __init__(
        self, db: Database, schemas: SchemaRegistry, aggregator: Aggregator, sites: SiteDirectory
    ) -> None:
        self.db = db
        self.schemas = schemas
        self.aggregator = aggregator
        self.sites = sites

    def _indicator(self, schema_key: str, key: str, option: str | None) -> Indicator:
        ind = self.schemas.get(schema_key).indicator(key)
        if ind.type == "text":
            raise Invalid(
                f"indicator: '{key}' is free text and cannot be ranked", code="not_numeric"
            )
        if ind.type == "choice":
            if option is None:
                raise Invalid(
                    f"option: name one of {', '.join(c.key for c in ind.choices)}", code="no_option"
                )
            if ind.choice(option) is None:
                raise Invalid(
                    f"option: '{option}' is not one of {', '.join(c.key for c in ind.choices)}",
                    code="bad_option",
                )
        elif option is not None:
            raise Invalid("option: only a choice indicator takes an option", code="bad_option")
        return ind

    async def table(
        self,
        actor: Actor,
        schema_key: str,
        indicator: str,
        period: date,
        *,
        level: Level = "province",
        order: Order = "value",
        option: str | None = None,
        n: int = 10,
    ) -> Table:
        """The first `n` provinces or communes in the actor's reach, best first.

        ``rise`` keeps only those whose value went up since the previous period.
        """
        actor.require_staff("read rankings")
        schema = self.schemas.get(schema_key)
        ind = self._indicator(schema_key, indicator, option)
        period = schema.normalise_period(period)
        previous = period - timedelta(days=schema.period_length().days)
        ask = _Ask(schema_key, ind, previous, period, option)
        if level == "province":
            rows = await self._provinces(actor, ask)
        else:
            rows = await self._communes(actor, ask)
        if order == "rise":
            rows = [r for r in rows if (r.change or 0) > 0]
            rows.sort(key=lambda r: (-(r.change or 0), r.code))
        else:
            rows = [r for r in rows if r.value]
            rows.sort(key=lambda r: (-r.value, r.code))
        table = Table.of(_COLS)
        for rank, r in enumerate(rows[:n], 1):
            change = r.change
            pct = round(100 * change / r.previous, 1) if change is not None and r.previous else None
            table.rows.append(
                [
                    rank,
                    r.code,
                    r.name,
                    r.province,
                    r.shown if r.shown is not None else _tidy(r.value),
                    r.shown_previous if r.shown is not None else _tidy(r.previous),
                    None if r.shown is not None else _tidy(change),
                    None if r.shown is not None else pct,
                ]
            )
        return table

    async def _provinces(self, actor: Actor, ask: _Ask) -> list[_Entry]:
        schema_key, ind, previous, period, option = ask
        agg = await self.aggregator.aggregate(
            actor, schema_key, previous, period, indicators=[ind.key]
        )
        labels = await province_labels(self.db, agg.provinces)

        def value(pid: int, p: date) -> float:
            cell = agg.cell(pid, p, ind.key)
            if ind.type == "choice":
                return float(cell.counts.get(option or "", 0))
            v = cell.value(ind)
            return float(v) if v is not None else 0.0

        out = []
        for pid in agg.provinces:
            if pid is None or pid not in labels:
                continue
            label = labels[pid]
            out.append(_Entry(label.code, label.name, "", value(pid, period), value(pid, previous)))
        return out

    async def _communes(self, actor: Actor, ask: _Ask) -> list[_Entry]:
        schema_key, ind, previous, period, option = ask
        q = select(Report.site_id, Report.period, Report.values).where(
            Report.schema_key == schema_key, Report.period.in_([previous, period])
        )
        if actor.province_id is not None:
            q = q.where(Report.province_id == actor.province_id)
        async with self.db.session() as s:
            rows = (await s.execute(q)).all()
        now: dict[int, float] = {}
        before: dict[int, float] = {}
        raw: dict[tuple[int, date], Value | None] = {}
        for site_id, p, values in rows:
            v = _number(ind, values.get(ind.key), option)
            if v is not None:
                (now if p == period else before)[site_id] = v
                raw[(site_id, p)] = values.get(ind.key)
        choice = ind.type == "choice"
        infos = await self.sites.by_ids(now)
        out = []
        for sid, v in now.items():
            info = infos.get(sid)
            if info is None:
                continue
            prev_raw = raw.get((sid, previous))
            out.append(
                _Entry(
                    info.code,
                    info.name,
                    info.province_name,
                    v,
                    before.get(sid),
                    str(raw[(sid, period)]) if choice else None,
                    str(prev_raw) if choice and prev_raw is not None else None,
                )
            )
        return out


def _tidy(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 4)
