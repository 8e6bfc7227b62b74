"""The hub's parts on their own: directory, heartbeat deadlines, session log, router, GC.

Bad inputs tried: a follow of a site id the directory never had, a handler that
crashes, a handler kind registered twice, more requests in flight than allowed,
a router allowed to run no request at all, a site that hangs up while its
requests wait their turn, a store that refuses the session log (and stays down
past the backlog bound), a store locked for every request of a burst.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import logging
import sqlite3
import weakref
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

import diemcau.presence
from diemcau.accounts.service import SitePrincipal
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Invalid
from diemcau.presence import session_log as session_log_module
from diemcau.presence.deadlines import SilenceWatch
from diemcau.presence.hub import PresenceHub
from diemcau.presence.models import PresenceEvent
from diemcau.presence.session_log import SessionLog
from diemcau.presence.tuning import GC_THRESHOLDS, HeapSettler, tune_process_gc
from diemcau.store import Database
from tests.presence_support import RawSite, add_site, eventually, fast_config, make_sites

PRESENCE = Path(diemcau.presence.__file__).parent


async def test_hub_reads_sites_from_the_shared_directory(db: Database) -> None:
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=2)
    directory = SiteDirectory(db)
    await directory.load()
    hub = PresenceHub(db, key, fast_config(), sites=directory)
    await hub.start()
    try:
        a = d.site_ids[0]
        assert hub.site_infos()[a] is await directory.get(a)  # the same records, not a copy
        with pytest.raises(Invalid, match="unknown site ids: 999999"):
            await hub.follow("meeting:1", [a, 999_999])

        # A site provisioned after start joins at once and can be followed; the shared
        # directory was refreshed on the way (one load, seen by every service).
        generation = directory.generation
        late_id, late_code = await add_site(db, key, d.provinces[0], "P00C9999")
        late = RawSite(hub)
        welcome = await late.connect(join_code=late_code)
        assert welcome["site_id"] == late_id
        assert directory.generation > generation
        assert (await directory.get(late_id)) is hub.site_infos()[late_id]
        await hub.follow("meeting:1", [late_id])
        assert hub.in_meeting(late_id)
        assert hub.site_state(late_id).province_id == d.provinces[0]
        await late.close()
    finally:
        await hub.stop()


def test_silence_watch_allows_for_the_servers_own_stalls() -> None:
    watch = SilenceWatch({}, offline_after_s=2.5, sweep_s=0.25)
    assert watch.allowance(100.0) == 0.0
    assert watch.allowance(100.25) == 0.0  # on time
    assert watch.allowance(101.5) == pytest.approx(1.0)  # the loop stalled for 1 s
    assert watch.allowance(103.0) == pytest.approx(1.25)  # the worst within 2.5 s
    on_time = [103.0 + 0.25 * i for i in range(1, 12)]  # 103.25 ... 105.75
    allowances = [watch.allowance(t) for t in on_time]
    assert allowances[:-1] == [pytest.approx(1.25)] * 10  # the 103.0 stall still counts
    assert allowances[-1] == 0.0  # older than 2.5 s now: back to the plain deadline


async def test_session_log_keeps_rows_the_store_refused_within_a_bound(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=2)
    a, b = d.site_ids
    known = {a, b}
    log = SessionLog(db, known.__contains__)
    at = datetime.now(UTC)
    log.record(a, "online", "joined", at, None)
    log.record(999_999, "online", "joined", at, None)  # deleted meanwhile: dropped
    await log.flush()
    assert len(log) == 0

    async def stored() -> int:
        async with db.session() as s:
            return int(await s.scalar(select(func.count(PresenceEvent.id))) or 0)

    assert await stored() == 1
    monkeypatch.setattr(session_log_module, "BACKLOG_MAX", 3)
    async with db.session() as s:
        await s.execute(text("ALTER TABLE presence_events RENAME TO presence_events_away"))
    for i in range(5):
        log.record(b, "offline", f"reason {i}", at, None)
    with pytest.raises(Exception, match="presence_events"):
        await log.flush()
    assert len(log) == 3  # bounded: the oldest two were dropped
    async with db.session() as s:
        await s.execute(text("ALTER TABLE presence_events_away RENAME TO presence_events"))
    await log.flush()
    assert len(log) == 0
    async with db.session() as s:
        reasons = list(
            await s.scalars(
                select(PresenceEvent.reason).where(PresenceEvent.site_id == b).order_by("id")
            )
        )
    assert reasons == ["reason 2", "reason 3", "reason 4"]


async def test_router_answers_failures_duplicates_and_floods(db: Database) -> None:
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=1)
    hub = PresenceHub(db, key, fast_config())
    release = asyncio.Event()

    async def crash(site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        raise RuntimeError("a bug in a service")

    async def slow(site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        await release.wait()
        return {"done": body["n"]}

    hub.on_message("x.crash", crash)
    hub.on_message("x.slow", slow)
    with pytest.raises(ValueError, match="already registered"):
        hub.on_message("x.slow", slow)
    await hub.start()
    try:
        site = RawSite(hub)
        await site.connect(join_code=d.codes[d.site_ids[0]])
        await site.send({"type": "req", "id": "c", "kind": "x.crash"})
        for n in range(9):  # one more than may be in flight
            await site.send({"type": "req", "id": f"s{n}", "kind": "x.slow", "body": {"n": n}})

        def replies() -> dict[str, dict[str, Any]]:
            return {m["id"]: m for m in site.received if m["type"] == "reply"}

        await eventually(lambda: {"c", "s8"} <= set(replies()), what="crash and busy replies")
        assert replies()["c"]["error"] == {"code": "internal", "message": "internal error"}
        assert replies()["s8"]["error"]["code"] == "busy"
        release.set()
        await eventually(lambda: len(replies()) == 10, what="the slow replies")
        assert replies()["s0"] == {"type": "reply", "id": "s0", "ok": True, "body": {"done": 0}}
        assert hub.is_online(d.site_ids[0])  # a failing handler never ends the session
        await site.close()
    finally:
        await hub.stop()


async def test_router_runs_a_bounded_number_of_requests_in_arrival_order(db: Database) -> None:
    """At most `max_running_requests` handlers run at once over all sites; the rest
    wait in arrival order, and a waiting request of a site that hung up never runs."""
    with pytest.raises(ValueError, match="at least 1"):
        PresenceHub(db, await db.secret_key(), fast_config(max_running_requests=0))
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=3)
    hub = PresenceHub(db, key, fast_config(max_running_requests=2))
    release = asyncio.Event()
    started: list[str] = []

    async def slow(site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        started.append(f"{site.site_id}:{body['n']}")
        await release.wait()
        return {"done": body["n"]}

    hub.on_message("x.slow", slow)
    await hub.start()
    try:
        sites = [RawSite(hub) for _ in range(3)]
        for site, sid in zip(sites, d.site_ids, strict=True):
            await site.connect(join_code=d.codes[sid])
        a, b, c = d.site_ids[:3]

        def received() -> int:
            return hub.router.running + hub.router.waiting

        def replied(site: RawSite) -> int:
            return sum(m["type"] == "reply" for m in site.received)

        for i, site in enumerate(sites):  # a's two run; b's, then c's, wait in that order
            for n in range(2):
                await site.send({"type": "req", "id": f"r{n}", "kind": "x.slow", "body": {"n": n}})
            await eventually(lambda: received() == 2 * (i + 1), what=f"site {i}'s requests")  # noqa: B023
        assert hub.router.waiting == 4
        await eventually(lambda: len(started) == 2, what="a's requests started")
        assert started == [f"{a}:0", f"{a}:1"] and hub.router.running == 2
        await sites[1].close()  # b hangs up while its two requests wait
        await eventually(lambda: not hub.is_online(b), what="b offline")
        release.set()
        await eventually(lambda: len(started) == 4 and hub.router.running == 0, what="the rest")
        assert started == [f"{a}:0", f"{a}:1", f"{c}:0", f"{c}:1"]  # b's never ran
        assert hub.router.waiting == 0
        for site in (sites[0], sites[2]):
            await eventually(lambda: replied(site) == 2, what="both replies")  # noqa: B023
        for sid in (a, c):
            session = hub.sessions.live[sid]
            assert session.pending_requests == 0
        for site in (sites[0], sites[2]):
            await site.close()
    finally:
        await hub.stop()


async def test_a_stop_answers_waiting_requests_unavailable(db: Database) -> None:
    """A request still waiting its turn when the server stops is answered
    ``unavailable`` at once; the one running is let finish."""
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=1)
    hub = PresenceHub(db, key, fast_config(max_running_requests=1))
    release = asyncio.Event()

    async def slow(site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        await release.wait()
        return {"done": body["n"]}

    hub.on_message("x.slow", slow)
    await hub.start()
    try:
        site = RawSite(hub)
        await site.connect(join_code=d.codes[d.site_ids[0]])
        for n in range(2):
            await site.send({"type": "req", "id": f"r{n}", "kind": "x.slow", "body": {"n": n}})
        await eventually(lambda: hub.router.waiting == 1, what="one request waiting")
        draining = asyncio.create_task(hub.stop_requests())

        def replies() -> dict[str, dict[str, Any]]:
            return {m["id"]: m for m in site.received if m["type"] == "reply"}

        await eventually(lambda: "r1" in replies(), what="the waiting one answered")
        assert replies()["r1"]["error"]["code"] == "unavailable" and "r0" not in replies()
        assert not draining.done() and hub.router.waiting == 0
        release.set()
        await asyncio.wait_for(draining, 5)
        await eventually(lambda: "r0" in replies(), what="the running one's reply")
        assert replies()["r0"]["ok"] is True
        assert hub.sessions.live[d.site_ids[0]].pending_requests == 0
        await site.close()
    finally:
        await hub.stop()


@pytest.fixture
def restore_gc() -> Iterator[None]:
    """Python's default thresholds for the test (an earlier test may have tuned the
    process), the process's own afterwards."""
    thresholds = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_gc_tuning_is_opt_in(db: Database, restore_gc: None) -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    hub = PresenceHub(db, await db.secret_key(), fast_config())
    await hub.start()
    try:
        assert gc.get_threshold() == before  # the hub leaves the process alone
        assert hub.heap is None
    finally:
        await hub.stop()
    tune_process_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _in_collected_heap(obj: object) -> bool:
    """Whether the cyclic collector looks at `obj` (frozen objects are not listed)."""
    return any(o is obj for o in gc.get_objects())


def test_heap_settler_freezes_arrivals_and_collects_after_closes(restore_gc: None) -> None:
    gc.disable()  # only the settler collects here
    try:
        gc.unfreeze()
        gc.collect()
        heap = HeapSettler(grow_min=10, closed_share=0.25)
        assert heap.step(online=5, closed=0) == ""  # fewer than grow_min arrived
        assert gc.get_freeze_count() == 0

        kept = _Cycle()  # a session's objects, alive when the crowd is frozen
        alive = weakref.ref(kept)
        assert heap.step(online=12, closed=0) == "freeze"
        assert gc.get_freeze_count() > 0 and not _in_collected_heap(kept)
        del kept  # the session closes, leaving a cycle behind in the frozen heap
        gc.collect()
        assert alive() is not None  # frozen: full collections no longer walk it

        assert heap.step(online=12, closed=5) == ""  # fewer than grow_min closed
        assert heap.step(online=30, closed=5) == "freeze"  # a new crowd arrived
        assert heap.step(online=30, closed=12) == "collect"  # 12 >= 10 and >= 30 / 4
        assert alive() is None and heap.full_collections == 1
        assert gc.get_freeze_count() > 0  # what is alive is frozen again

        # Closes while the crowd still moves wait for it to hold still.
        assert heap.step(online=80, closed=40) == "freeze"
        assert heap.step(online=80, closed=40) == "collect"  # 28 closed >= 80 / 4
        assert heap.freezes == 3
    finally:
        gc.enable()


@pytest.mark.parametrize(("grow_min", "share"), [(0, 0.25), (-5, 0.25), (10, 0.0), (10, 1.5)])
def test_heap_settler_refuses_bad_settings(grow_min: int, share: float) -> None:
    with pytest.raises(ValueError, match="grow_min"):
        HeapSettler(grow_min=grow_min, closed_share=share)


async def test_tuned_hub_freezes_the_sessions_that_arrive(db: Database, restore_gc: None) -> None:
    key = await db.secret_key()
    directory = await make_sites(db, key, per_province=6)
    hub = PresenceHub(db, key, fast_config(tune_gc=True))
    await hub.start()
    sites = [RawSite(hub) for _ in directory.site_ids]
    try:
        assert hub.heap is not None
        hub.heap.grow_min = 4
        frozen = gc.get_freeze_count()
        for site, sid in zip(sites, directory.site_ids, strict=True):
            await site.connect(join_code=directory.codes[sid])
        await eventually(lambda: hub.heap is not None and hub.heap.freezes >= 1, 5)
        assert gc.get_freeze_count() > frozen
    finally:
        for site in sites:
            await site.close()
        await hub.stop()


def _presence_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PRESENCE.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("diemcau.presence."):
                    deps.add(node.module.split(".")[2])
                elif node.module == "diemcau.presence":
                    deps.update(alias.name for alias in node.names)
        graph[path.stem] = deps
    return graph


def test_parts_never_import_the_facade_and_form_no_cycle() -> None:
    graph = _presence_imports()
    facade_users = {mod for mod, deps in graph.items() if "hub" in deps}
    # Only the package surface and the wiring/HTTP modules (moving to the composition
    # root and api/) may know the facade; every part depends on smaller interfaces.
    assert facade_users <= {"__init__", "routes", "runtime"}
    done: set[str] = set()

    def visit(mod: str, path: tuple[str, ...]) -> None:
        assert mod not in path, f"import cycle: {' -> '.join((*path, mod))}"
        if mod in done:
            return
        for dep in graph.get(mod, ()):
            visit(dep, (*path, mod))
        done.add(mod)

    for mod in graph:
        visit(mod, ())


async def test_a_store_outage_is_answered_unavailable_and_logged_once_in_one_line(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A locked store fails every request of a batch alike: each site is told to send
    again, and the operator reads one line (no SQL, no parameters), not one per request."""
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=1)
    hub = PresenceHub(db, key, fast_config())

    async def locked(site: SitePrincipal, body: Mapping[str, Any]) -> Mapping[str, Any]:
        raise OperationalError(
            "UPDATE meeting_participants SET wants_in=?",
            [(1, 1, 2)],
            sqlite3.OperationalError("database is locked"),
        )

    hub.on_message("x.locked", locked)
    await hub.start()
    try:
        site = RawSite(hub)
        await site.connect(join_code=d.codes[d.site_ids[0]])
        with caplog.at_level(logging.WARNING, logger="diemcau.presence.router"):
            for n in range(5):
                await site.send({"type": "req", "id": f"r{n}", "kind": "x.locked", "body": {}})
            await eventually(lambda: hub.router.refused_for_outage == 5, what="five refusals")
        await eventually(
            lambda: sum(m["type"] == "reply" for m in site.received) == 5, what="five replies"
        )
        replies = [m for m in site.received if m["type"] == "reply"]
        assert {m["error"]["code"] for m in replies} == {"unavailable"}
        lines = [r.getMessage() for r in caplog.records if "cannot serve now" in r.getMessage()]
        assert len(lines) == 1, lines
        assert "database is locked" in lines[0] and "\n" not in lines[0]
        assert "UPDATE" not in lines[0] and "1 request(s)" in lines[0]
        await site.close()
    finally:
        await hub.stop()
