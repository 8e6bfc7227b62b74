"""The inspection service over a real store (SQLite and PostgreSQL) with fake presence and media.

What a standby site is told and when, answered and not-answered inspections (no terminal
open; a terminal that does not publish within the bound), calls and the floor, leases,
restarts, who may inspect whom, the wall's leases, and the audit rows every path leaves.
Bad inputs tried: an unknown site code, the central site, a site of another province
for an officer, a site as the inspector, another inspector's inspection, a call before
the answer, a second caller, a call to a floor speaker, a wall page too big or naming
unknown codes or another province, another person's wall page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import func, select

from diemcau.actors import Actor
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.inspection.models import Inspection
from diemcau.inspection.ports import Grant
from diemcau.inspection.records import InspectionFilter
from diemcau.inspection.service import InspectionService
from diemcau.store import Database
from diemcau.wiring import InspectionRecording
from tests.inspection_support import World, build_world


@pytest.fixture
async def w(any_db: Database) -> AsyncIterator[World]:
    world = await build_world(any_db, answer_timeout_s=0.3, lease_s=5.0, tick_s=60)
    yield world


async def _count(w: World) -> int:
    async with w.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Inspection)) or 0)


async def test_a_standby_site_is_told_publishes_is_answered_and_stops(w: World) -> None:
    site = w.ids["00004"]
    w.presence.online.add(site)
    w.meetings[site] = 7
    started = await w.svc.inspect(w.chair, "00004")
    view = started.inspection
    assert view.state == "waiting" and view.meeting_id == 7
    assert started.grant is not None and started.grant["kind"] == "watch"
    # The site is told to publish, live only, with who looks and since when.
    watch = w.presence.last_watch(site)
    assert watch["publish"] is True and watch["call"] is None
    [looker] = watch["watchers"]
    assert looker["by"] == "Nguyễn Văn Chủ Trì" and looker["role"] == "chair"
    assert looker["kind"] == "inspection" and looker["id"] == view.id
    assert [d for _, k, _, d in w.presence.sent if k == "inspect.watch"] == [False]
    # A reconnecting terminal asks again and gets the same picture, newer.
    state = await w.presence.handlers["inspect.state"](w.principal("00004"), {})
    assert state is not None and state["watchers"] == watch["watchers"]
    assert state["version"] > watch["version"]
    # The site's uplink is up: answered.
    assert (await w.publishing("00004"))["answered"] == [view.id]
    assert (await w.svc.get(w.chair, view.id)).state == "live"
    assert (await w.publishing("00004"))["answered"] == []  # nothing waits any more
    ended = await w.svc.end(w.chair, view.id)
    assert ended.state == "ended" and ended.reason == "ended" and ended.answered
    assert w.presence.last_watch(site)["publish"] is False
    assert (await w.svc.end(w.chair, view.id)).state == "ended"  # idempotent
    [start] = await w.audit("inspection.start")
    assert start.actor_name == "chair" and start.target == "00004" and start.meeting_id == 7
    [end] = await w.audit("inspection.end")
    assert end.details is not None
    assert end.details["answered"] is True and end.details["mode"] == "silent"
    duration = end.details["duration_s"]
    assert end.details["inspector"] == "chair" and isinstance(duration, int | float)
    assert duration >= 0
    assert [e[0] for e in w.presence.events] == ["inspection.changed"] * 3


async def test_no_terminal_open_is_not_answered_at_once(w: World) -> None:
    started = await w.svc.inspect(w.chair, "00008")
    assert started.grant is None and w.media.asked == []
    assert started.inspection.state == "not_answered"
    assert started.inspection.reason == "no_terminal"
    assert not [s for s in w.presence.sent if s[1] == "inspect.watch"]
    [row] = await w.audit("inspection.not_answered")
    assert row.details is not None and row.details["answered"] is False
    assert row.details["reason"] == "no_terminal"


async def test_a_terminal_that_does_not_publish_in_time_is_not_answered(w: World) -> None:
    site = w.ids["00004"]
    w.presence.online.add(site)
    view = (await w.svc.inspect(w.operator, "00004")).inspection
    await w.svc.expire()  # within the bound: still waiting
    assert (await w.svc.get(w.operator, view.id)).state == "waiting"
    await asyncio.sleep(0.35)
    await w.svc.expire()
    closed = await w.svc.get(w.operator, view.id)
    assert closed.state == "not_answered" and closed.reason == "no_publish"
    assert w.presence.last_watch(site)["publish"] is False  # a late terminal stays quiet
    [row] = await w.audit("inspection.not_answered")
    assert row.actor_kind == "system" and row.details is not None
    assert row.details["inspector"] == "ops"
    # A late answer changes nothing.
    assert (await w.publishing("00004"))["answered"] == []


async def test_who_may_inspect_whom(w: World) -> None:
    for code in ("00004", "26734"):
        w.presence.online.add(w.ids[code])
    # Another province's site is answered exactly like a site that does not exist.
    with pytest.raises(NotFound) as refused:
        await w.svc.inspect(w.hanoi, "26734")
    with pytest.raises(NotFound) as nowhere:
        await w.svc.inspect(w.hanoi, "99999")
    assert refused.value.code == nowhere.value.code == "unknown_site"
    assert refused.value.message.replace("26734", "<x>") == nowhere.value.message.replace(
        "99999", "<x>"
    )
    with pytest.raises(Forbidden):
        await w.svc.inspect(w.site("00008"), "00004")
    with pytest.raises(Invalid) as central:
        await w.svc.inspect(w.chair, "TW")
    assert central.value.code == "not_inspectable"
    with pytest.raises(NotFound) as unknown:
        await w.svc.inspect(w.chair, "99999")
    assert unknown.value.code == "unknown_site"
    assert await _count(w) == 0 and w.presence.sent == []  # refusals change nothing
    mine = (await w.svc.inspect(w.hanoi, "00004")).inspection
    # The officer's inspection is its own; another officer-less operator may not end it.
    with pytest.raises(Forbidden) as not_owner:
        await w.svc.end(w.operator, mine.id)
    assert not_owner.value.code == "not_owner"
    assert (await w.svc.end(w.chair, mine.id)).state == "ended"  # a chair may
    # An officer sees its province's inspections only.
    await w.svc.inspect(w.chair, "26734")
    listed = await w.svc.list(w.hanoi, InspectionFilter())
    assert [v.site_code for v in listed] == ["00004"]
    with pytest.raises(Forbidden):
        await w.svc.list(w.hanoi, InspectionFilter(province_id=w.provinces["79"]))
    assert {v.site_code for v in await w.svc.list(w.chair, InspectionFilter())} == {
        "00004",
        "26734",
    }


async def test_no_media_plane_refuses_and_records_nothing(w: World) -> None:
    w.presence.online.add(w.ids["00004"])
    w.media.up = False
    with pytest.raises(NotFound) as err:
        await w.svc.inspect(w.chair, "00004")
    assert err.value.code == "no_media" and await _count(w) == 0


async def test_a_call_goes_both_ways_never_to_a_speaker(w: World) -> None:
    site = w.ids["26734"]
    w.presence.online.add(site)
    view = (await w.svc.inspect(w.chair, "26734")).inspection
    with pytest.raises(Conflict) as early:
        await w.svc.start_call(w.chair, view.id)
    assert early.value.code == "not_answered_yet"
    await w.publishing("26734")
    call = await w.svc.start_call(w.chair, view.id)
    assert call.grant is not None and call.grant["kind"] == "call" and call.inspection.in_call
    assert w.presence.last_watch(site)["call"] == {"inspection_id": view.id}
    assert w.presence.last_watch(site)["watchers"][0]["call"] is True
    # A second inspector may look, not call at the same time.
    other = (await w.svc.inspect(w.operator, "26734")).inspection
    await w.publishing("26734")
    with pytest.raises(Conflict) as busy:
        await w.svc.start_call(w.operator, other.id)
    assert busy.value.code == "call_busy"
    assert len(w.presence.last_watch(site)["watchers"]) == 2
    # The site is given the floor: the call ends by itself (it would reach the program).
    await w.svc.floor_changed(["26734"])
    assert not (await w.svc.get(w.chair, view.id)).in_call
    assert w.media.ended == ["26734"] and w.presence.last_watch(site)["call"] is None
    w.floors[3] = ["26734"]
    with pytest.raises(Conflict) as floor:
        await w.svc.start_call(w.chair, view.id)
    assert floor.value.code == "on_floor"
    w.floors.clear()
    await w.svc.start_call(w.chair, view.id)
    after = await w.svc.end_call(w.chair, view.id)
    assert not after.in_call and after.call_count == 2
    ended = await w.svc.end(w.chair, view.id)
    assert ended.mode == "two_way"
    reasons = [r.details["reason"] for r in await w.audit("inspection.call.end") if r.details]
    assert reasons == ["floor", "ended"]
    assert len(await w.audit("inspection.call.start")) == 2
    [end] = [r for r in await w.audit("inspection.end") if r.target == "26734"][:1]
    assert end.details is not None and end.details["mode"] == "two_way"
    with pytest.raises(Conflict) as gone:
        await w.svc.start_call(w.chair, view.id)
    assert gone.value.code == "ended"


async def test_a_console_that_stops_renewing_ends_its_inspection(any_db: Database) -> None:
    w = await build_world(any_db, answer_timeout_s=10, lease_s=0.2, tick_s=60)
    w.presence.online.add(w.ids["00004"])
    view = (await w.svc.inspect(w.chair, "00004")).inspection
    await w.publishing("00004")
    await asyncio.sleep(0.12)
    renewed = await w.svc.keepalive(w.chair, view.id)
    assert renewed.grant is not None and renewed.inspection.state == "live"
    await asyncio.sleep(0.12)
    await w.svc.expire()
    assert (await w.svc.get(w.chair, view.id)).state == "live"  # renewed in time
    await asyncio.sleep(0.25)
    await w.svc.expire()
    gone = await w.svc.get(w.chair, view.id)
    assert gone.state == "ended" and gone.reason == "inspector_gone" and gone.answered
    assert w.presence.last_watch(w.ids["00004"])["publish"] is False


async def test_a_restart_closes_what_was_left_open(w: World) -> None:
    w.presence.online.add(w.ids["00004"])
    view = (await w.svc.inspect(w.chair, "00004")).inspection
    # A crash: the service never stops. The next process closes the record at start.
    again = await build_world_again(w)
    await again.start()
    try:
        closed = await again.records.get(view.id)
        assert closed.state == "ended" and closed.reason == "server_restart"
        [row] = await w.audit("inspection.end")
        assert row.actor_kind == "system" and row.details is not None
        assert row.details["reason"] == "server_restart"
    finally:
        await again.stop()


async def build_world_again(w: World) -> InspectionService:
    return InspectionService(w.db, w.sites, presence=w.presence, media=w.media, tick_s=60)


async def test_the_wall_puts_standby_sites_on_air_while_a_page_is_leased(w: World) -> None:
    a, b, c = (w.ids[x] for x in ("00004", "00008", "26734"))
    page = await w.svc.open_wall(w.chair, ["00004", "00008"])
    assert w.media.asked[-1] == ("wall", ("00004", "00008"))
    for site in (a, b):
        [looker] = w.presence.last_watch(site)["watchers"]
        assert looker["kind"] == "wall" and looker["by"] == "Nguyễn Văn Chủ Trì"
    # Renewing the same page is not a new audit row; paging is.
    await w.svc.open_wall(w.chair, ["00004", "00008"], page.wall_id)
    assert len(await w.audit("inspection.wall")) == 1
    page2 = await w.svc.open_wall(w.chair, ["00008", "26734"], page.wall_id)
    assert page2.wall_id == page.wall_id
    assert w.presence.last_watch(a)["publish"] is False
    assert w.presence.last_watch(c)["publish"] is True
    rows = await w.audit("inspection.wall")
    assert [r.details["sites"] for r in rows if r.details] == [
        ["00004", "00008"],
        ["00008", "26734"],
    ]
    # Bad pages change nothing.
    for codes, error in (
        ([], Invalid),
        (["00004"] * 2 + [f"x{i}" for i in range(40)], Invalid),
        (["00004", "nope"], Invalid),
    ):
        with pytest.raises(error):
            await w.svc.open_wall(w.chair, codes, page.wall_id)
    with pytest.raises(Invalid) as elsewhere:  # another province's site: an unknown one
        await w.svc.open_wall(w.hanoi, ["26734"])
    with pytest.raises(Invalid) as nowhere:
        await w.svc.open_wall(w.hanoi, ["99999"])
    assert elsewhere.value.code == nowhere.value.code == "unknown_site"
    assert elsewhere.value.message.replace("26734", "<x>") == nowhere.value.message.replace(
        "99999", "<x>"
    )
    with pytest.raises(Forbidden):
        await w.svc.open_wall(w.operator, ["00004"], page.wall_id)
    assert w.presence.last_watch(c)["publish"] is True
    await w.svc.wall.release(w.chair, page.wall_id)
    assert w.presence.last_watch(b)["publish"] is False
    assert w.presence.last_watch(c)["publish"] is False
    with pytest.raises(NotFound):
        await w.svc.wall.release(w.chair, page.wall_id)


async def test_a_page_left_while_paging_leaves_no_look_behind(w: World) -> None:
    """The console pages to other sites and leaves the page while the grants are made:
    the paging is refused (``no_wall``) and no site stays looked at."""
    a, c = w.ids["00004"], w.ids["26734"]
    page = await w.svc.open_wall(w.chair, ["00004"])
    entered, gate = asyncio.Event(), asyncio.Event()
    grants = w.media.wall_grants

    async def slow(site_codes: Sequence[str]) -> list[Grant]:
        entered.set()
        await gate.wait()
        return await grants(site_codes)

    w.media.wall_grants = slow  # type: ignore[method-assign]
    paging = asyncio.create_task(w.svc.open_wall(w.chair, ["26734"], page.wall_id))
    await asyncio.wait_for(entered.wait(), timeout=5)
    await w.svc.wall.release(w.chair, page.wall_id)
    gate.set()
    with pytest.raises(NotFound) as gone:
        await paging
    assert gone.value.code == "no_wall"
    assert w.svc.wall.held() == 0
    assert w.presence.last_watch(a)["publish"] is False
    assert not [body for ids, kind, body, _ in w.presence.sent if c in ids]


class FakeRecording:
    """A recording service that keeps inspections of meeting 7 only."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int, int | None]] = []
        self.ended: list[tuple[int, int | None]] = []

    async def inspection_started(
        self, actor: Actor, site_code: str, inspection_id: int, meeting_id: int | None
    ) -> bool:
        self.started.append((site_code, inspection_id, meeting_id))
        return meeting_id == 7

    async def inspection_ended(self, inspection_id: int, meeting_id: int | None) -> None:
        self.ended.append((inspection_id, meeting_id))


async def test_an_answered_inspection_is_offered_to_recording(any_db: Database) -> None:
    rec = FakeRecording()
    w = await build_world(any_db, answer_timeout_s=10, tick_s=60, recording=rec)
    for code in ("00004", "26734"):
        w.presence.online.add(w.ids[code])
    w.meetings[w.ids["00004"]] = 7  # in a meeting whose policy records inspections
    kept = (await w.svc.inspect(w.chair, "00004")).inspection
    other = (await w.svc.inspect(w.chair, "26734")).inspection
    assert rec.started == []  # offered once answered, not before
    await w.publishing("00004")
    await w.publishing("26734")
    assert rec.started == [("00004", kept.id, 7), ("26734", other.id, None)]
    assert (await w.svc.get(w.chair, kept.id)).recorded
    assert not (await w.svc.get(w.chair, other.id)).recorded
    await w.svc.end(w.chair, kept.id)
    await w.svc.end(w.chair, other.id)
    assert rec.ended == [(kept.id, 7)]  # only what was kept is ended
    ends = {r.target: r.details for r in await w.audit("inspection.end")}
    assert ends["00004"] is not None and ends["00004"]["recorded"] is True
    assert len(await w.audit("inspection.start")) == 2  # one row each, none from recording


class FakeRecordingService:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def on_spot_check(self, actor: Actor, site_code: str, *, audited: bool = True) -> bool:
        self.calls.append(("spot", (site_code, audited)))
        return True

    async def end_spot_check(self, meeting_id: int) -> None:
        self.calls.append(("end", meeting_id))


async def test_the_recording_adapter_ends_only_the_latest_of_a_meeting() -> None:
    svc = FakeRecordingService()
    hook = InspectionRecording(svc)  # type: ignore[arg-type]
    chair = Actor.for_staff("chair", "chair")
    assert not await hook.inspection_started(chair, "00004", 1, None)  # no meeting: never
    assert await hook.inspection_started(chair, "00004", 2, 7)
    assert await hook.inspection_started(chair, "00008", 3, 7)  # takes the meeting over
    await hook.inspection_ended(2, 7)  # older: the newer one keeps recording
    await hook.inspection_ended(3, 7)
    assert svc.calls == [("spot", ("00004", False)), ("spot", ("00008", False)), ("end", 7)]
