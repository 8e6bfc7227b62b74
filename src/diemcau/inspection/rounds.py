"""Inspection rounds: a planned list of sites (or a random sample) and a verdict per site.

An inspection team plans a round — named sites, or N communes drawn at random from a
province or the whole country — then steps through it, inspecting each site and
writing a verdict (*đạt / chưa đạt / không trả lời*), a short note and optionally a
snapshot of what it saw. A round is shared work: any inspector who may see its
province works on it; its creator or a chair closes it. The draw uses the system's
random source, so a commune cannot guess whether it will be in the next round.
Every creation, verdict, snapshot and closing is in the audit log.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from diemcau.actors import Actor
from diemcau.audit import record_audit
from diemcau.directory.sites import SiteDirectory, SiteInfo
from diemcau.errors import Conflict, Invalid, NotFound
from diemcau.inspection.access import (
    check_may_act_on,
    check_may_see,
    inspectable,
    require_inspector,
)
from diemcau.inspection.models import (
    VERDICTS,
    InspectionRound,
    InspectionRoundItem,
    InspectionSnapshot,
    site_by_value,
)
from diemcau.inspection.views import ItemView, RoundView
from diemcau.store import Database
from diemcau.text import fold

__all__ = ["MAX_ROUND_SITES", "MAX_SNAPSHOT_BYTES", "Rounds", "Sample", "Snapshot"]

MAX_ROUND_SITES = 500
MAX_SNAPSHOT_BYTES = 600_000
MAX_NOTE = 2000
# What a snapshot's first bytes must be, by type (a file is checked, not trusted).
_MAGIC = {"image/jpeg": (b"\xff\xd8\xff",), "image/png": (b"\x89PNG\r\n\x1a\n",)}


@dataclass(frozen=True)
class Sample:
    """N sites drawn at random, from one province (by code) or the whole country."""

    n: int
    province_code: str | None = None
    communes_only: bool = True


@dataclass(frozen=True)
class Snapshot:
    mime: str
    data: bytes


class Rounds:
    """Creates rounds, records verdicts and snapshots, closes rounds; reads them back."""

    def __init__(self, db: Database, sites: SiteDirectory, clock: Callable[[], float]) -> None:
        self.db = db
        self.sites = sites
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- planning ---------------------------------------------------------------------

    async def create(
        self,
        actor: Actor,
        title: str,
        *,
        site_codes: Sequence[str] | None = None,
        sample: Sample | None = None,
    ) -> RoundView:
        """Plan a round from a list of codes or a sample (exactly one of them).

        Raises:
            Invalid: no title; both or neither of list and sample; unknown codes
                (``unknown_site``) or province (``unknown_province``), which a site or
                province outside the officer's own is answered as; a sample bigger
                than what it draws from.
            Forbidden: a role that may not plan a round.
        """
        title = title.strip()
        if not title:
            raise Invalid("title: give the round a title", code="no_title")
        if (site_codes is None) == (sample is None):
            raise Invalid("give either sites or a sample", code="bad_selection")
        require_inspector(actor, "plan an inspection round")
        if site_codes is not None:
            chosen = await self._listed(actor, site_codes)
            selection: dict[str, object] = {"kind": "list"}
        else:
            assert sample is not None
            chosen = await self._drawn(actor, sample)
            selection = {
                "kind": "sample",
                "n": sample.n,
                "province": sample.province_code,
                "communes_only": sample.communes_only,
            }
        chosen.sort(key=lambda s: (fold(s.province_name), fold(s.name), s.code))
        provinces = {s.province_id for s in chosen}
        province_id = next(iter(provinces)) if len(provinces) == 1 else None
        now = self._now()
        async with self.db.session() as s:
            row = InspectionRound(
                title=title[:300],
                province_id=province_id,
                selection=selection,
                created_by=actor.name,
                created_by_user_id=actor.user_id,
                created_at=now,
            )
            s.add(row)
            await s.flush()
            s.add_all(
                InspectionRoundItem(
                    round_id=row.id,
                    position=i,
                    **site_by_value(site),
                    note="",
                )
                for i, site in enumerate(chosen, start=1)
            )
            await record_audit(
                s,
                actor,
                "inspection.round.create",
                target=f"round {row.id}",
                details={"title": row.title, "sites": len(chosen), "selection": selection},
                at=now,
            )
            await s.flush()
            return await self._view(s, row)

    async def _listed(self, actor: Actor, codes: Sequence[str]) -> list[SiteInfo]:
        wanted = list(dict.fromkeys(c.strip() for c in codes if c.strip()))
        if not 1 <= len(wanted) <= MAX_ROUND_SITES:
            raise Invalid(f"sites: a round holds 1 to {MAX_ROUND_SITES} sites", code="bad_size")
        found = await self.sites.by_codes(wanted, reload_missing=True)
        return inspectable(actor, wanted, found, "sites: unknown codes ")

    async def _drawn(self, actor: Actor, sample: Sample) -> list[SiteInfo]:
        if not 1 <= sample.n <= MAX_ROUND_SITES:
            raise Invalid(f"n: draw 1 to {MAX_ROUND_SITES} sites", code="bad_size")
        # Only what the caller may inspect is ever drawn from: an officer's pool is its
        # own province (with or without a province code), and another province's code
        # is answered like an unknown one.
        pool = [
            s
            for s in await self.sites.all()
            if s.province_id is not None and actor.may_touch(s.id, s.province_id)
        ]
        if sample.province_code:
            pool = [s for s in pool if s.province_code == sample.province_code]
            if not pool:
                raise Invalid(
                    f"province: no sites in {sample.province_code!r}", code="unknown_province"
                )
        if sample.communes_only:
            pool = [s for s in pool if s.kind == "commune"]
        if sample.n > len(pool):
            raise Invalid(
                f"n: only {len(pool)} sites to draw from, not {sample.n}", code="sample_too_big"
            )
        return secrets.SystemRandom().sample(pool, sample.n)

    # --- working a round --------------------------------------------------------------

    async def decide(
        self, actor: Actor, round_id: int, item_id: int, verdict: str | None, note: str
    ) -> ItemView:
        """Write (or clear, with None) a site's verdict and note.

        Raises:
            Invalid: an unknown verdict (``bad_verdict``), a note over 2,000 characters.
            Conflict: ``round_closed``.
        """
        if verdict is not None and verdict not in VERDICTS:
            raise Invalid(f"verdict: one of {', '.join(VERDICTS)}", code="bad_verdict")
        if len(note) > MAX_NOTE:
            raise Invalid(f"note: at most {MAX_NOTE} characters", code="too_long")
        now = self._now()
        async with self.db.session() as s:
            item = await self._open_item(s, actor, round_id, item_id)
            item.verdict, item.note = verdict, note.strip()
            item.decided_by, item.decided_at = (actor.name, now) if verdict else (None, None)
            await record_audit(
                s,
                actor,
                "inspection.verdict",
                target=item.site_code,
                details={
                    "round_id": round_id,
                    "item_id": item_id,
                    "verdict": verdict,
                    "note": item.note,
                },
                at=now,
            )
            return ItemView.of(item, await _has_snapshot(s, item.id))

    async def put_snapshot(
        self, actor: Actor, round_id: int, item_id: int, snapshot: Snapshot
    ) -> ItemView:
        """Keep a frame of what the inspector saw (replaces the item's previous one).

        Raises:
            Invalid: ``bad_type`` (not JPEG or PNG, or the bytes say otherwise),
                ``too_big`` (over 600 kB), ``empty``.
        """
        now = self._now()
        async with self.db.session() as s:
            # Who may, first: another province's round is refused whatever the body.
            item = await self._open_item(s, actor, round_id, item_id)
            _check_image(snapshot)
            old = await s.get(InspectionSnapshot, item.id)
            if old is not None:
                await s.delete(old)
                await s.flush()
            s.add(
                InspectionSnapshot(
                    item_id=item.id,
                    mime=snapshot.mime,
                    data=snapshot.data,
                    size=len(snapshot.data),
                    taken_by=actor.name,
                    taken_at=now,
                )
            )
            await record_audit(
                s,
                actor,
                "inspection.snapshot",
                target=item.site_code,
                details={"round_id": round_id, "item_id": item_id, "bytes": len(snapshot.data)},
                at=now,
            )
            return ItemView.of(item, True)

    async def snapshot(self, actor: Actor, round_id: int, item_id: int) -> Snapshot:
        async with self.db.session() as s:
            item = await self._item(s, actor, round_id, item_id)
            shot = await s.get(InspectionSnapshot, item.id)
            if shot is None:
                raise NotFound("no snapshot kept for this site", code="no_snapshot")
            return Snapshot(shot.mime, shot.data)

    async def snapshots(self, actor: Actor, round_id: int) -> dict[int, Snapshot]:
        """Every snapshot of a round by item id (the printed report embeds them)."""
        async with self.db.session() as s:
            await self._round(s, actor, round_id)
            rows = await s.execute(
                select(InspectionSnapshot.item_id, InspectionSnapshot.mime, InspectionSnapshot.data)
                .join(InspectionRoundItem, InspectionRoundItem.id == InspectionSnapshot.item_id)
                .where(InspectionRoundItem.round_id == round_id)
            )
            return {item_id: Snapshot(mime, data) for item_id, mime, data in rows.all()}

    async def close(self, actor: Actor, round_id: int) -> RoundView:
        """Close a round (its creator or a chair): verdicts are final afterwards."""
        now = self._now()
        async with self.db.session() as s:
            row = await self._round(s, actor, round_id)
            check_may_act_on(actor, row.created_by, row.province_id, _no_round(round_id), "round")
            if row.closed_at is None:
                row.closed_at = now
                await record_audit(
                    s, actor, "inspection.round.close", target=f"round {row.id}", at=now
                )
            return await self._view(s, row)

    async def item_for_inspection(self, actor: Actor, item_id: int) -> ItemView:
        """The open round item an inspection is made from (its round must be open)."""
        async with self.db.session() as s:
            item = await s.get(InspectionRoundItem, item_id)
            if item is None:
                raise NotFound(f"no round item {item_id}", code="no_item")
            row = await s.get(InspectionRound, item.round_id)
            missing = NotFound(f"no round item {item_id}", code="no_item")
            check_may_see(actor, row.province_id if row else None, missing, "round")
            await self._open_item(s, actor, item.round_id, item_id)
            return ItemView.of(item, False)

    # --- reading ----------------------------------------------------------------------

    async def get(self, actor: Actor, round_id: int) -> RoundView:
        async with self.db.session() as s:
            return await self._view(s, await self._round(s, actor, round_id))

    async def list(
        self, actor: Actor, *, include_closed: bool = True, limit: int = 100
    ) -> list[RoundView]:
        """Rounds newest first (an officer: its province's), each with its items."""
        require_inspector(actor, "see an round")
        stmt = (
            select(InspectionRound)
            .order_by(InspectionRound.id.desc())
            .limit(max(1, min(limit, 500)))
        )
        if actor.scoped:
            stmt = stmt.where(InspectionRound.province_id == actor.province_id)
        if not include_closed:
            stmt = stmt.where(InspectionRound.closed_at.is_(None))
        async with self.db.session() as s:
            return [await self._view(s, row) for row in (await s.scalars(stmt)).all()]

    async def _round(self, s: AsyncSession, actor: Actor, round_id: int) -> InspectionRound:
        row = await s.get(InspectionRound, round_id)
        if row is None:
            raise _no_round(round_id)
        check_may_see(actor, row.province_id, _no_round(round_id), "round")
        return row

    async def _item(
        self, s: AsyncSession, actor: Actor, round_id: int, item_id: int
    ) -> InspectionRoundItem:
        await self._round(s, actor, round_id)
        item = await s.get(InspectionRoundItem, item_id)
        if item is None or item.round_id != round_id:
            raise NotFound(f"round {round_id} has no item {item_id}", code="no_item")
        return item

    async def _open_item(
        self, s: AsyncSession, actor: Actor, round_id: int, item_id: int
    ) -> InspectionRoundItem:
        item = await self._item(s, actor, round_id, item_id)
        row = await s.get(InspectionRound, round_id)
        if row is not None and row.closed_at is not None:
            raise Conflict(f"round {round_id} is closed", code="round_closed")
        return item

    async def _view(self, s: AsyncSession, row: InspectionRound) -> RoundView:
        items = (
            await s.scalars(
                select(InspectionRoundItem)
                .where(InspectionRoundItem.round_id == row.id)
                .order_by(InspectionRoundItem.position)
            )
        ).all()
        shots = set(
            (
                await s.scalars(
                    select(InspectionSnapshot.item_id).where(
                        InspectionSnapshot.item_id.in_([i.id for i in items])
                    )
                )
            ).all()
        )
        return RoundView.of(row, tuple(ItemView.of(i, i.id in shots) for i in items))


def _no_round(round_id: int) -> NotFound:
    """The answer for an unknown round id, and for one out of the caller's reach."""
    return NotFound(f"no inspection round {round_id}", code="no_round")


def _check_image(snapshot: Snapshot) -> None:
    if not snapshot.data:
        raise Invalid("the snapshot is empty", code="empty")
    if len(snapshot.data) > MAX_SNAPSHOT_BYTES:
        raise Invalid(f"a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes", code="too_big")
    magic = _MAGIC.get(snapshot.mime)
    if magic is None or not snapshot.data.startswith(magic):
        raise Invalid("a snapshot is a JPEG or PNG image", code="bad_type")


async def _has_snapshot(s: AsyncSession, item_id: int) -> bool:
    n = await s.scalar(
        select(func.count())
        .select_from(InspectionSnapshot)
        .where(InspectionSnapshot.item_id == item_id)
    )
    return bool(n)
