"""The staff live view: a snapshot, then coalesced deltas every `staff_batch_s`.

When a province loses power, hundreds of sites change state within a second;
sending each change to every dashboard would flood the browsers. Changes are
marked dirty and flushed together: one delta per batch window carrying the
changed sites' rows, the changed province aggregates, the national aggregate
and the staff events published meanwhile. A delta is encoded once per scope
(national, or one province for province officers), not per client. An officer
gets its province's events and national ones, the latter with every site of
another province taken out (`presence.redact`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol, TypedDict

from diemcau.directory.sites import SiteInfo
from diemcau.presence.redact import DROP, Drop, redact_for_province
from diemcau.presence.state import SiteState
from diemcau.records import JsonObject

__all__ = ["StaffFeed", "StaffClient", "StaffSource", "SITE_FIELDS"]

log = logging.getLogger(__name__)

# Column order of a site row in snapshots and deltas (kept compact: 10,799 rows).
SITE_FIELDS = (
    "id",
    "code",
    "name",
    "province_id",
    "state",
    "reason",
    "since",
    "rtt_ms",
    "loss_pct",
    "jitter_ms",
    "in_meeting",
    "recv_kbps",
    "media",
)
_STATES = ("online", "degraded", "offline")

# One site's row, in `SITE_FIELDS` order (ids, text, rounded figures, null when unknown).
SiteRow = list[int | float | str | None]


class StaffEvent(TypedDict):
    """A domain event waiting for the next batch (``province_id`` None: national)."""

    kind: str
    body: object
    province_id: int | None
    at: float


class StaffSource(Protocol):
    """What the staff stream reads about sites (the presence hub)."""

    def site_infos(self) -> Mapping[int, SiteInfo]: ...

    def sites_generation(self) -> int: ...

    def site_state(self, site_id: int) -> SiteState: ...

    def in_meeting(self, site_id: int) -> bool: ...


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class StaffClient:
    """One connected dashboard: its scope and a bounded queue of frames to send.

    Attributes:
        province_id: None for national staff, else the only province it may see.
        queue: frames (JSON text) to send; None means: close.
        overflowed: set when the client fell `max_queue` frames behind (it is closed).
    """

    def __init__(self, province_id: int | None, max_queue: int = 64) -> None:
        self.province_id = province_id
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=max_queue)
        self.overflowed = False

    def put(self, frame: str | None) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class StaffFeed:
    """Snapshot + coalesced deltas over the presence state.

    Args:
        source: the sites and their presence.
        clock: wall clock in seconds (``server_time``, event times).
    """

    def __init__(self, source: StaffSource, clock: Callable[[], float]) -> None:
        self.source = source
        self.clock = clock
        self.clients: set[StaffClient] = set()
        self._dirty: set[int] = set()
        self._events: list[StaffEvent] = []
        self._batch = 0
        self._by_province: dict[int | None, list[int]] = {}
        self._code_province: dict[str, int | None] = {}
        self._indexed = -1
        # Aggregate per province (None: sites outside any province), kept between batches.
        self._aggs: dict[int | None, dict[str, int]] = {}

    # --- inputs --------------------------------------------------------------------------

    def mark(self, site_id: int) -> None:
        if self.clients:
            self._dirty.add(site_id)

    def publish(self, kind: str, body: Mapping[str, object], province_id: int | None) -> None:
        if not self.clients:
            return
        self._events.append(
            {
                "kind": kind,
                "body": dict(body),
                "province_id": province_id,
                "at": round(self.clock(), 3),
            }
        )

    # --- clients -------------------------------------------------------------------------

    def subscribe(self, province_id: int | None) -> StaffClient:
        """A new client whose first queued frame is the snapshot of its scope."""
        client = StaffClient(province_id)
        client.put(self._snapshot(province_id))
        self.clients.add(client)
        return client

    def unsubscribe(self, client: StaffClient) -> None:
        self.clients.discard(client)

    async def close_all(self) -> None:
        for client in list(self.clients):
            client.put(None)
        self.clients.clear()

    # --- building frames -----------------------------------------------------------------

    def _provinces(self) -> dict[int | None, list[int]]:
        sites = self.source.site_infos()
        generation = self.source.sites_generation()
        if self._indexed != generation:
            by: dict[int | None, list[int]] = {}
            for sid, info in sites.items():
                by.setdefault(info.province_id, []).append(sid)
            self._by_province = by
            self._code_province = {info.code: info.province_id for info in sites.values()}
            self._indexed = generation
            self._aggs = {}
        return self._by_province

    def _row(self, site_id: int) -> SiteRow:
        src = self.source
        st = src.site_state(site_id)
        info = src.site_infos().get(site_id)
        link = st.link
        return [
            site_id,
            info.code if info else "",
            info.name if info else "",
            info.province_id if info else st.province_id,
            st.state,
            st.reason,
            round(st.since.timestamp(), 3),
            round(link.rtt_ms, 1) if link else None,
            round(link.loss_pct, 2) if link else None,
            round(link.jitter_ms, 1) if link else None,
            1 if src.in_meeting(site_id) else 0,
            round(link.recv_kbps) if link else None,
            link.media if link else "",
        ]

    def _aggregate(self, site_ids: list[int]) -> dict[str, int]:
        src = self.source
        counts = dict.fromkeys(_STATES, 0)
        meeting = 0
        for sid in site_ids:
            counts[src.site_state(sid).state] += 1
            if src.in_meeting(sid):
                meeting += 1
        return {"total": len(site_ids), **counts, "in_meeting": meeting}

    def _province_agg(self, pid: int | None, fresh: bool = False) -> dict[str, int]:
        agg = self._aggs.get(pid)
        if agg is None or fresh:
            agg = self._aggregate(self._provinces().get(pid, []))
            self._aggs[pid] = agg
        return agg

    def _national(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for pid in self._provinces():
            for k, v in self._province_agg(pid).items():
                total[k] = total.get(k, 0) + v
        return total

    def _snapshot(self, scope: int | None) -> str:
        by = self._provinces()
        national: dict[str, int] | None = None
        if scope is None:
            ids = [sid for group in by.values() for sid in group]
            provinces = {str(pid): self._province_agg(pid, True) for pid in by if pid is not None}
            national = self._national()
        else:
            ids = list(by.get(scope, []))
            provinces = {str(scope): self._province_agg(scope, True)}
        msg: JsonObject = {
            "type": "snapshot",
            "batch": self._batch,
            "server_time": round(self.clock(), 3),
            "fields": SITE_FIELDS,
            "sites": [self._row(sid) for sid in sorted(ids)],
            "provinces": provinces,
        }
        if national is not None:
            msg["national"] = national
        return _dumps(msg)

    async def flush(self) -> None:
        """Send one coalesced delta to every client (nothing if nothing changed)."""
        if not self.clients:
            self._dirty.clear()
            self._events.clear()
            return
        if not self._dirty and not self._events:
            return
        dirty, self._dirty = self._dirty, set()
        events, self._events = self._events, []
        self._batch += 1
        infos = self.source.site_infos()
        rows = {sid: self._row(sid) for sid in sorted(dirty)}
        touched = {infos[sid].province_id if sid in infos else None for sid in dirty}
        self._provinces()
        aggs = {pid: self._province_agg(pid, True) for pid in touched}
        at = round(self.clock(), 3)
        frames: dict[int | None, str] = {}
        for client in list(self.clients):
            scope = client.province_id
            frame = frames.get(scope)
            if frame is None:
                frame = self._delta(scope, rows, aggs, events, at)
                frames[scope] = frame
            client.put(frame)
            if client.overflowed:
                self.clients.discard(client)

    def _delta(
        self,
        scope: int | None,
        rows: Mapping[int, SiteRow],
        aggs: Mapping[int | None, dict[str, int]],
        events: list[StaffEvent],
        at: float,
    ) -> str:
        msg: JsonObject = {"type": "delta", "batch": self._batch, "server_time": at}
        if scope is None:
            msg["sites"] = list(rows.values())
            msg["provinces"] = {str(pid): a for pid, a in aggs.items() if pid is not None}
            msg["national"] = self._national()
            msg["events"] = events
        else:
            msg["sites"] = [r for r in rows.values() if r[3] == scope]
            msg["provinces"] = {str(scope): aggs[scope]} if scope in aggs else {}
            msg["events"] = self._scoped_events(events, scope)
        return _dumps(msg)

    def _scoped_events(self, events: list[StaffEvent], scope: int) -> list[StaffEvent]:
        """The events an officer of `scope` gets: its province's, and national ones
        redacted of other provinces' sites (dropped if nothing is left)."""
        infos = self.source.site_infos()

        def of_site(site_id: int) -> int | None:
            info = infos.get(site_id)
            return info.province_id if info else None

        def of_code(code: str) -> int | None | Drop:
            return self._code_province.get(code, DROP)

        out: list[StaffEvent] = []
        for event in events:
            if event["province_id"] == scope:
                out.append(event)
            elif event["province_id"] is None:
                body = redact_for_province(event["body"], scope, of_site, of_code)
                if body is not DROP:
                    out.append({**event, "body": body})
        return out

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)
