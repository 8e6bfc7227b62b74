"""Meetings service: invitations by area, lifecycle, floor, roll call, conclusions, reminders.

Runs on a migrated SQLite store with a fake hub (the sites' side is played by the
test) and a fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest

from diemcau.audit import AuditQuery, query_audit
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.meetings import FloorDecision, InviteSpec, MeetingService
from diemcau.meetings.conclusions import Attachment
from diemcau.store import Database
from tests.test_meetings_support import FakeClock, FakeHub, World, build_world


@dataclass
class Env:
    db: Database
    hub: FakeHub
    clock: FakeClock
    svc: MeetingService
    w: World


@pytest.fixture
async def env(db: Database) -> AsyncIterator[Env]:
    w = await build_world(db)
    hub = FakeHub()
    clock = FakeClock()
    svc = MeetingService(db, hub, clock=clock, reminder_poll_s=0)
    svc.register()
    await svc.start()
    yield Env(db, hub, clock, svc, w)
    await svc.stop()


async def _resolve(e: Env, spec: InviteSpec) -> list[int]:
    return await e.svc.invitations.resolve(spec)


# --- invitations -------------------------------------------------------------------------


async def test_invite_whole_country_excludes_the_chair_site(env: Env) -> None:
    e = env
    got = await _resolve(e, InviteSpec(everyone=True))
    assert got == e.w.site_ids("P1-S", "D1-S", "C1-S", "C2-S", "C3-S", "C4-S")


async def test_invite_by_province_district_kind_sites_and_exclusions(env: Env) -> None:
    e = env
    u = e.w.units
    assert await _resolve(e, InviteSpec(unit_ids=(u["P1"],))) == e.w.site_ids(
        "P1-S", "D1-S", "C1-S", "C2-S", "C3-S"
    )
    # A district of the legacy three-level tree: its own site and its communes only.
    assert await _resolve(e, InviteSpec(unit_ids=(u["D1"],))) == e.w.site_ids(
        "D1-S", "C1-S", "C2-S"
    )
    assert await _resolve(e, InviteSpec(unit_ids=(u["P1"],), kinds=("commune",))) == (
        e.w.site_ids("C1-S", "C2-S", "C3-S")
    )
    spec = InviteSpec(
        unit_ids=(u["D1"],),
        site_ids=tuple(e.w.site_ids("C4-S")),
        exclude_site_ids=tuple(e.w.site_ids("C2-S")),
    )
    assert await _resolve(e, spec) == e.w.site_ids("D1-S", "C1-S", "C4-S")


async def test_invite_from_codes_and_saved_group(env: Env) -> None:
    e = env
    invitations = e.svc.invitations
    spec = await invitations.spec_from_codes(units=["D3"], sites=["C1-S"])
    # Bad input: a unit code that does not exist is named in the error; so is a site
    # code; an unknown group.
    with pytest.raises(NotFound, match="'NOPE'"):
        await invitations.spec_from_codes(units=["NOPE"])
    with pytest.raises(NotFound, match="'NOPE-S'") as info:
        await invitations.spec_from_codes(sites=["C1-S", "NOPE-S"])
    assert info.value.code == "unknown_site"
    with pytest.raises(NotFound):
        await invitations.spec_from_codes(groups=[999])
    assert await _resolve(e, spec) == e.w.site_ids("C1-S", "C4-S")
    groups = e.svc.groups
    operator = e.w.actor("operator")
    group = await groups.create(operator, "Tỉnh Hai", InviteSpec(unit_ids=(e.w.units["P2"],)))
    assert group.site_count == 1
    got = await _resolve(e, InviteSpec(group_ids=(group.id,), site_ids=tuple(e.w.site_ids("C1-S"))))
    assert got == e.w.site_ids("C1-S", "C4-S")
    # Bad input: a group inside a group, a duplicate name, an unknown kind.
    with pytest.raises(Invalid):
        await groups.create(operator, "nested", InviteSpec(group_ids=(group.id,)))
    with pytest.raises(Conflict):
        await groups.create(operator, "Tỉnh Hai", InviteSpec(everyone=True))
    with pytest.raises(Invalid):
        InviteSpec(everyone=True, kinds=("village",))
    assert [g.name for g in await groups.list_groups()] == ["Tỉnh Hai"]


# --- lifecycle ---------------------------------------------------------------------------


async def _live(e: Env, spec: InviteSpec | None = None, chair: str = "chair") -> int:
    m = await e.svc.lifecycle.create_meeting(
        e.w.actor(chair), title="Họp trực tuyến", invite=spec or InviteSpec(everyone=True)
    )
    await e.svc.lifecycle.start_meeting(e.w.actor(chair), m.id)
    return m.id


async def test_start_resolves_follows_and_announces(env: Env) -> None:
    e = env
    m = await e.svc.lifecycle.create_meeting(
        e.w.actor("chair"),
        title="  Phòng chống bão  ",
        invite=InviteSpec(unit_ids=(e.w.units["P1"],)),
    )
    assert m.state == "scheduled" and m.title == "Phòng chống bão" and m.invited_count == 5
    live = await e.svc.lifecycle.start_meeting(e.w.actor("chair"), m.id)
    assert live.state == "live" and live.started_at == e.svc.store.now()
    stream = f"meeting:{m.id}"
    assert e.hub.follows[stream] == set(e.w.site_ids("P1-S", "D1-S", "C1-S", "C2-S", "C3-S"))
    assert e.hub.kinds(stream) == ["meeting.started"]
    assert await e.svc.store.participant_ids(m.id) == sorted(e.hub.follows[stream])
    with pytest.raises(Conflict):
        await e.svc.lifecycle.start_meeting(e.w.actor("chair"), m.id)


async def test_a_site_is_in_at_most_one_live_meeting(env: Env) -> None:
    e = env
    first = await _live(e, InviteSpec(unit_ids=(e.w.units["D1"],)))
    other = await e.svc.lifecycle.create_meeting(
        e.w.actor("chair2"), title="Khác", invite=InviteSpec(unit_ids=(e.w.units["P1"],))
    )
    with pytest.raises(Conflict, match="already in another live meeting") as info:
        await e.svc.lifecycle.start_meeting(e.w.actor("chair2"), other.id)
    assert info.value.code == "site_busy"
    # Nothing of the failed start remains.
    assert await e.svc.store.participant_ids(other.id) == []
    assert (await e.svc.store.get_meeting(other.id)).state == "scheduled"
    await e.svc.lifecycle.end_meeting(e.w.actor("chair"), first)
    assert (await e.svc.lifecycle.start_meeting(e.w.actor("chair2"), other.id)).state == "live"


async def test_only_chair_delegate_or_admin_run_the_meeting(env: Env) -> None:
    e = env
    m = await e.svc.lifecycle.create_meeting(
        e.w.actor("operator"),
        title="Giao ban",
        invite=InviteSpec(everyone=True),
        chair_user_id=e.w.staff["chair"].user_id,
    )
    # Bad input: an operator cannot be the chair; a province officer cannot create.
    with pytest.raises(Invalid):
        await e.svc.lifecycle.create_meeting(
            e.w.actor("operator"), title="x", invite=InviteSpec(everyone=True)
        )
    with pytest.raises(Forbidden):
        await e.svc.lifecycle.create_meeting(
            e.w.actor("officer1"), title="x", invite=InviteSpec(everyone=True)
        )
    for who in ("chair2", "operator", "officer1"):
        with pytest.raises(Forbidden):
            await e.svc.lifecycle.start_meeting(e.w.actor(who), m.id)
    with pytest.raises(Forbidden):
        await e.svc.lifecycle.start_meeting(e.w.site("C1-S"), m.id)
    await e.svc.lifecycle.update_meeting(
        e.w.actor("chair"), m.id, delegates=[e.w.staff["chair2"].user_id]
    )
    await e.svc.lifecycle.start_meeting(e.w.actor("chair2"), m.id)
    extended = await e.svc.lifecycle.extend_meeting(e.w.actor("admin"), m.id, 30)
    assert extended.ends_at == e.svc.store.now() + timedelta(minutes=30)
    told = [b for _, k, b in e.hub.broadcasts if k == "meeting.extended"][-1]
    assert told["meeting"]["state"] == "live" and told["ends_at"] == extended.ends_at.isoformat()
    with pytest.raises(Invalid):
        await e.svc.lifecycle.extend_meeting(e.w.actor("chair"), m.id, 0)
    ended = await e.svc.lifecycle.end_meeting(e.w.actor("chair"), m.id)
    assert ended.state == "ended"
    with pytest.raises(Conflict):
        await e.svc.lifecycle.extend_meeting(e.w.actor("chair"), m.id, 10)


async def test_uninvited_site_is_refused(env: Env) -> None:
    e = env
    mid = await _live(e, InviteSpec(unit_ids=(e.w.units["P1"],)))
    outsider = e.w.sites["C4-S"]
    with pytest.raises(Forbidden, match="not invited"):
        await e.svc.attendance.join(e.w.site("C4-S"), mid)
    with pytest.raises(Forbidden):
        await e.hub.message(outsider, "meeting.join", {"meeting_id": mid})
    # Without a meeting id the outsider has no live meeting at all.
    with pytest.raises(NotFound):
        await e.hub.message(outsider, "meeting.join", {})
    with pytest.raises(Forbidden):
        await e.svc.hands.raise_hand(e.w.site("C4-S"), mid)
    summary = await e.svc.roll_call.summary(mid)
    assert summary.total.invited == 5 and summary.total.present == 0


async def test_a_site_without_a_live_session_is_never_present(env: Env) -> None:
    """Bad input (issue 12, item 5): an invited site joining while its session is down
    (a join over HTTP alone), and again after its session dropped. Neither counts it
    present nor lets the chair give it the floor; with its session up it joins."""
    e = env
    mid = await _live(e, InviteSpec(unit_ids=(e.w.units["P1"],)))
    c1 = e.w.site("C1-S")
    with pytest.raises(Conflict, match="no live session") as err:
        await e.svc.attendance.join(c1, mid)
    assert err.value.code == "no_session"
    assert (await e.svc.roll_call.summary(mid)).total.present == 0
    with pytest.raises(Conflict):
        await e.svc.floor.grant(e.w.actor("chair"), mid, e.w.site_ids("C1-S"))
    await e.hub.set_online(c1.site_id or 0, True)
    await e.svc.attendance.join(c1, mid)
    assert (await e.svc.roll_call.summary(mid)).total.present == 1
    await e.hub.set_online(c1.site_id or 0, False)
    assert (await e.svc.roll_call.summary(mid)).total.present == 0
    with pytest.raises(Conflict):  # joined before, but its session is gone now
        await e.svc.attendance.join(c1, mid)


# --- floor -------------------------------------------------------------------------------


async def _join(e: Env, *codes: str) -> None:
    for code in codes:
        await e.hub.set_online(e.w.sites[code].site_id, True)
        reply = await e.hub.message(e.w.sites[code], "meeting.join", {})
        assert reply is not None and reply["meeting"]["state"] == "live"


async def test_queue_order_grant_revoke_next(env: Env) -> None:
    e = env
    decisions: list[FloorDecision] = []
    e.svc.floor.add_floor_listener(decisions.append)
    mid = await _live(e)
    await _join(e, "C1-S", "C2-S", "C3-S", "C4-S")
    chair = e.w.actor("chair")
    for code in ("C3-S", "C1-S", "C4-S"):
        e.clock.advance(1)
        await e.hub.message(e.w.sites[code], "hand.raise", {})
    # Raising again keeps the place.
    reply = await e.hub.message(e.w.sites["C3-S"], "hand.raise", {"meeting_id": mid})
    assert reply is not None and reply["position"] == 1
    queue = await e.svc.hands.queue(mid)
    assert [q.code for q in queue] == ["C3-S", "C1-S", "C4-S"]
    assert queue[0].province_name == "Tỉnh Một" and queue[2].province_name == "Tỉnh Hai"

    d = await e.svc.floor.next(chair, mid)
    assert d.speaker_codes == ["C3-S"] and d.action == "next"
    assert [q.code for q in await e.svc.hands.queue(mid)] == ["C1-S", "C4-S"]
    await e.hub.message(e.w.sites["C1-S"], "hand.lower", {})
    d = await e.svc.floor.next(chair, mid)
    assert d.speaker_codes == ["C4-S"]  # C1 lowered its hand; C3 was replaced
    # A dialogue: add a second speaker; a third is refused.
    d = await e.svc.floor.grant(chair, mid, e.w.site_ids("C2-S"), add=True)
    assert sorted(d.speaker_codes) == ["C2-S", "C4-S"]
    with pytest.raises(Conflict):
        await e.svc.floor.grant(chair, mid, e.w.site_ids("C1-S"), add=True)
    d = await e.svc.floor.revoke(chair, mid, e.w.sites["C4-S"].site_id)
    assert d.speaker_codes == ["C2-S"]
    d = await e.svc.floor.revoke(chair, mid)
    assert d.speakers == ()
    with pytest.raises(Conflict):
        await e.svc.floor.revoke(chair, mid)
    with pytest.raises(Conflict, match="queue"):
        await e.svc.floor.next(chair, mid)
    # Bad input: three sites at once; a site not present (P1-S never joined).
    with pytest.raises(Invalid):
        await e.svc.floor.grant(chair, mid, e.w.site_ids("C1-S", "C2-S", "C3-S"))
    with pytest.raises(Conflict, match="not present"):
        await e.svc.floor.grant(chair, mid, e.w.site_ids("P1-S"))
    d = await e.svc.floor.mute_all(chair, mid)
    assert d.muted_all and not d.unmute_allowed
    d = await e.svc.floor.allow_unmute(chair, mid)
    assert not d.muted_all and d.unmute_allowed

    # Every decision was broadcast once on the meeting stream, in version order.
    floor_events = [b for s, k, b in e.hub.broadcasts if k == "floor.changed"]
    versions = [b["version"] for b in floor_events]
    assert versions == sorted(versions) and len(versions) == 7
    assert [x.action for x in decisions][1:] == [
        "next",
        "next",
        "grant",
        "revoke",
        "revoke",
        "mute_all",
        "allow_unmute",
    ]


async def test_a_site_cannot_grant_itself_or_act_for_another(env: Env) -> None:
    e = env
    mid = await _live(e)
    await _join(e, "C1-S", "C2-S")
    me = e.w.sites["C1-S"]
    with pytest.raises(Forbidden):
        await e.svc.floor.grant(e.w.site("C1-S"), mid, [me.site_id])
    with pytest.raises(Forbidden):
        await e.svc.floor.mute_all(e.w.site("C1-S"), mid)
    # Another chair (not of this meeting) cannot either.
    with pytest.raises(Forbidden):
        await e.svc.floor.grant(e.w.actor("chair2"), mid, [me.site_id])
    # A message naming another site is refused; the other site's hand stays down.
    other = e.w.sites["C2-S"]
    with pytest.raises(Forbidden):
        await e.hub.message(me, "hand.raise", {"site_id": other.site_id})
    with pytest.raises(Forbidden):
        await e.hub.message(me, "hand.lower", {"site_code": other.code})
    assert await e.svc.hands.queue(mid) == []
    # Bad input: a non-integer meeting id.
    with pytest.raises(Invalid):
        await e.hub.message(me, "hand.raise", {"meeting_id": "1"})
    # A site holding the floor cannot queue for it.
    await e.svc.floor.grant(e.w.actor("chair"), mid, [me.site_id])
    with pytest.raises(Conflict):
        await e.hub.message(me, "hand.raise", {})


async def test_a_speaker_who_leaves_loses_the_floor(env: Env) -> None:
    e = env
    mid = await _live(e)
    await _join(e, "C1-S")
    await e.svc.floor.grant(e.w.actor("chair"), mid, e.w.site_ids("C1-S"))
    await e.hub.message(e.w.sites["C1-S"], "meeting.leave", {})
    assert (await e.svc.floor.state(mid)).speakers == ()


# --- roll call ---------------------------------------------------------------------------


async def test_attendance_across_leave_rejoin_drop_and_restart(env: Env) -> None:
    e = env
    mid = await _live(e, InviteSpec(unit_ids=(e.w.units["D1"],)))  # D1-S, C1-S, C2-S
    c1, c2 = e.w.sites["C1-S"], e.w.sites["C2-S"]
    e.clock.advance(60)
    await _join(e, "C1-S")
    e.clock.advance(600)  # C2 joins late (after the 300 s grace)
    await _join(e, "C2-S")
    s = await e.svc.roll_call.summary(mid)
    assert (s.total.present, s.total.not_joined, s.total.late) == (2, 1, 1)

    e.clock.advance(100)
    await e.hub.message(c1, "meeting.leave", {})
    e.clock.advance(50)
    # Coming back online after leaving on purpose does not rejoin.
    await e.hub.set_online(c1.site_id, False)
    await e.hub.set_online(c1.site_id, True)
    assert not e.svc.attendance.is_present(mid, c1.site_id)
    await e.hub.message(c1, "meeting.join", {})  # rejoin
    e.clock.advance(30)
    # A drop closes the interval; coming back reopens it (the site never left).
    await e.hub.set_online(c2.site_id, False)
    assert not e.svc.attendance.is_present(mid, c2.site_id)
    e.clock.advance(20)
    await e.hub.set_online(c2.site_id, True)
    assert e.svc.attendance.is_present(mid, c2.site_id)
    s = await e.svc.roll_call.summary(mid)
    assert (s.total.present, s.total.rejoined, s.total.left) == (2, 2, 0)

    # Restart mid-meeting: a new service and hub on the same store; only C1 reconnected
    # so far.
    e.clock.advance(40)
    await e.svc.stop()
    hub2 = FakeHub(online={c1.site_id})
    svc2 = MeetingService(e.db, hub2, clock=e.clock, reminder_poll_s=0)
    svc2.register()
    await svc2.start()
    assert svc2.attendance.is_present(mid, c1.site_id)
    assert not svc2.attendance.is_present(mid, c2.site_id)
    e.clock.advance(10)
    await hub2.set_online(c2.site_id, True)  # reconnects: rejoined automatically
    assert svc2.attendance.is_present(mid, c2.site_id)
    e.clock.advance(100)
    await svc2.lifecycle.end_meeting(e.w.actor("chair"), mid)

    view, _, sites = await svc2.roll_call.sites(mid)
    by = {a.code: a for a in sites}
    assert by["D1-S"].status == "absent" and by["D1-S"].presence_s == 0
    # C1: joined at 60, left at 760 (700 s), rejoined at 810 until the end at 1010 (200 s).
    assert by["C1-S"].presence_s == pytest.approx(700 + 200)
    assert [r for _, _, r in by["C1-S"].intervals] == ["leave", "server_stop", "ended"]
    assert not by["C1-S"].late
    # C2: joined at 660 (late), dropped at 840, back at 860, cut by the restart at 900,
    # back at 910, end at 1010: 180 + 40 + 100.
    assert by["C2-S"].late
    assert by["C2-S"].presence_s == pytest.approx(180 + 40 + 100)
    assert [r for _, _, r in by["C2-S"].intervals] == ["offline", "server_stop", "ended"]
    assert view.state == "ended"

    csv_text = await svc2.roll_call.report_csv(mid)
    assert csv_text.splitlines()[0].startswith("STT / No.,Mã điểm cầu / Site code")
    assert "C2-S" in csv_text and "Vắng mặt / Absent" in csv_text
    html_text = await svc2.roll_call.report_html(mid)
    assert "BÁO CÁO ĐIỂM DANH" in html_text and "@page" in html_text and "C1-S" in html_text


async def test_province_officer_scope_of_attendance(env: Env) -> None:
    e = env
    mid = await _live(e)
    await _join(e, "C1-S", "C4-S")
    p1 = e.w.units["P1"]
    scoped = await e.svc.roll_call.summary(mid, province_id=p1)
    assert [p.province_id for p in scoped.provinces] == [p1]
    assert (scoped.total.invited, scoped.total.present) == (5, 1)
    whole = await e.svc.roll_call.summary(mid)
    assert (whole.total.invited, whole.total.present) == (6, 2)


# --- conclusions, reminders, invite changes ---------------------------------------------------


async def test_conclusions_publish_ack_and_status(env: Env) -> None:
    e = env
    mid = await _live(e, InviteSpec(unit_ids=(e.w.units["D1"],)))
    await _join(e, "C1-S")
    c = await e.svc.conclusions.publish(
        e.w.actor("chair"), mid, "Kết luận:\n1. Sơ tán dân.", [Attachment(name="kl.pdf", size=10)]
    )
    assert c.body == "Kết luận:\n1. Sơ tán dân."
    # A site joining after the publication finds it in its join reply.
    await e.hub.set_online(e.w.sites["C2-S"].site_id, True)
    joined = await e.hub.message(e.w.sites["C2-S"], "meeting.join", {})
    assert joined is not None
    assert [(x["id"], x["acked_at"]) for x in joined["conclusions"]] == [(c.id, None)]
    assert ("meeting:" + str(mid), "conclusion.published") in [
        (s, k) for s, k, _ in e.hub.broadcasts
    ]
    with pytest.raises(Forbidden):
        await e.svc.conclusions.publish(e.w.actor("chair2"), mid, "x")
    reply = await e.hub.message(e.w.sites["C1-S"], "conclusion.ack", {"conclusion_id": c.id})
    assert reply is not None
    again = await e.hub.message(e.w.sites["C1-S"], "conclusion.ack", {"conclusion_id": c.id})
    assert again == reply
    with pytest.raises(Forbidden):
        await e.hub.message(e.w.sites["C4-S"], "conclusion.ack", {"conclusion_id": c.id})
    status = await e.svc.conclusions.status(c.id)
    assert [x["code"] for x in status.acknowledged] == ["C1-S"]
    assert sorted(x["code"] for x in status.pending) == ["C2-S", "D1-S"]
    # After the meeting, a conclusion is sent per site (durable, resumable).
    await e.svc.lifecycle.end_meeting(e.w.actor("chair"), mid)
    c2 = await e.svc.conclusions.publish(e.w.actor("chair"), mid, "Bổ sung")
    sent = [x for x in e.hub.sends if x[1] == "conclusion.published"]
    assert sent[-1][0] == tuple(e.w.site_ids("D1-S", "C1-S", "C2-S"))
    assert sent[-1][3] == f"conclusion:{c2.id}"


async def test_reminder_before_scheduled_start(env: Env) -> None:
    e = env
    start = e.svc.store.now() + timedelta(hours=1)
    m = await e.svc.lifecycle.create_meeting(
        e.w.actor("chair"),
        title="Hẹn giờ",
        invite=InviteSpec(unit_ids=(e.w.units["P2"],)),
        scheduled_start=start,
        reminder_lead_s=600,
    )
    assert await e.svc.reminders.run_due_reminders() == 0
    e.clock.advance(2900)  # 11 min 40 s before the start
    assert await e.svc.reminders.run_due_reminders() == 0
    e.clock.advance(120)  # 9 min 40 s before
    assert await e.svc.reminders.run_due_reminders() == 1
    assert e.hub.sends[-1][:2] == (tuple(e.w.site_ids("C4-S")), "meeting.reminder")
    assert e.hub.sends[-1][3] == f"meeting:{m.id}:reminder"
    assert await e.svc.reminders.run_due_reminders() == 0  # once


async def test_invite_change_on_a_live_meeting(env: Env) -> None:
    e = env
    mid = await _live(e, InviteSpec(unit_ids=(e.w.units["D1"],)))
    await _join(e, "C2-S")
    await e.svc.floor.grant(e.w.actor("chair"), mid, e.w.site_ids("C2-S"))
    view = await e.svc.roster.set_invites(
        e.w.actor("chair"), mid, InviteSpec(site_ids=tuple(e.w.site_ids("C1-S", "C4-S")))
    )
    assert view.invited_count == 2
    assert await e.svc.store.participant_ids(mid) == e.w.site_ids("C1-S", "C4-S")
    assert e.hub.follows[f"meeting:{mid}"] == set(e.w.site_ids("C1-S", "C4-S"))
    with pytest.raises(Forbidden):
        await e.hub.message(e.w.sites["C2-S"], "hand.raise", {"meeting_id": mid})
    # The removed speaker lost the floor, and every site was told.
    assert (await e.svc.floor.state(mid)).speakers == ()
    last = [b for _, k, b in e.hub.broadcasts if k == "floor.changed"][-1]
    assert last["action"] == "revoke" and last["speakers"] == [] and last["actor"] == "system"
    await _join(e, "C4-S")


async def test_audit_records_every_chair_action(env: Env) -> None:
    e = env
    mid = await _live(e)
    await _join(e, "C1-S")
    chair = e.w.actor("chair")
    await e.svc.lifecycle.extend_meeting(chair, mid, 15)
    await e.svc.floor.grant(chair, mid, e.w.site_ids("C1-S"))
    await e.svc.floor.revoke(chair, mid)
    await e.svc.floor.mute_all(chair, mid)
    await e.svc.floor.allow_unmute(chair, mid)
    await e.svc.roster.set_invites(chair, mid, InviteSpec(unit_ids=(e.w.units["P1"],)))
    await e.svc.conclusions.publish(chair, mid, "Kết luận")
    await e.svc.lifecycle.end_meeting(chair, mid)
    total, rows = await query_audit(e.db, AuditQuery(meeting_id=mid))
    assert [r.action for r in rows] == [
        "meeting.create",
        "meeting.start",
        "meeting.extend",
        "floor.grant",
        "floor.revoke",
        "floor.mute_all",
        "floor.allow_unmute",
        "meeting.invites",
        "conclusion.publish",
        "meeting.end",
    ]
    assert total == 10
    assert all(r.actor_name == "chair" and r.actor_kind == "staff" for r in rows)
    assert rows[3].target == "C1-S"


class FakeMedia:
    """Records what the meetings layer asks of the media plane (a `MediaPort`)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[str, object, object]] = []
        self.fail = fail

    def _note(self, call: tuple[str, object, object]) -> None:
        self.calls.append(call)
        if self.fail:
            raise RuntimeError(f"media node down during {call[0]}")

    async def start_program(self, meeting_id: int) -> None:
        self._note(("start_program", meeting_id, None))

    async def set_floor(self, meeting_id: int, site_codes: Sequence[str]) -> None:
        self._note(("set_floor", meeting_id, list(site_codes)))

    async def stop_program(self, meeting_id: int) -> None:
        self._note(("stop_program", meeting_id, None))

    async def chair_lost(self, meeting_id: int, usernames: Collection[str]) -> None:
        self._note(("chair_lost", meeting_id, sorted(usernames)))


async def test_media_follows_floor_decisions_and_restart_offers_live_floors(env: Env) -> None:
    e = env
    media = FakeMedia()
    hub = FakeHub(online=set(e.w.site_ids("C1-S")))  # a site joins with its session up
    svc = MeetingService(e.db, hub, clock=e.clock, media=media, reminder_poll_s=0)
    await svc.start()
    chair = e.w.actor("chair")
    m = await svc.lifecycle.create_meeting(chair, title="Media", invite=InviteSpec(everyone=True))
    await svc.lifecycle.start_meeting(chair, m.id)
    await svc.attendance.join(e.w.site("C1-S"), m.id)
    await svc.floor.grant(chair, m.id, e.w.site_ids("C1-S"))
    await svc.floor.mute_all(chair, m.id)  # no speaker change: media is not asked
    assert media.calls == [("start_program", m.id, None), ("set_floor", m.id, ["C1-S"])]
    await svc.stop()
    restarted = MeetingService(e.db, FakeHub(), clock=e.clock, media=media, reminder_poll_s=0)
    await restarted.start()
    # Meetings itself touches no media node at start: the composition root restores the
    # running programs once, from what live_floors offers.
    assert len(media.calls) == 2
    assert await restarted.live_floors() == {m.id: ["C1-S"]}
    await restarted.lifecycle.end_meeting(chair, m.id)
    assert ("stop_program", m.id, None) in media.calls[-1:]
    assert await restarted.live_floors() == {}
    await restarted.stop()


async def test_a_live_meeting_losing_a_delegate_takes_the_chair_feed_back(env: Env) -> None:
    """Only people who can no longer run the live meeting are named to the media plane:
    a dropped delegate, not an admin dropped (it still may), not the chair, not anyone
    while the meeting is only scheduled; an unchanged list names nobody."""
    e = env
    media = FakeMedia()
    svc = MeetingService(e.db, FakeHub(), clock=e.clock, media=media, reminder_poll_s=0)
    await svc.start()
    chair = e.w.actor("chair")
    ids = {n: e.w.staff[n].user_id for n in ("chair", "chair2", "operator", "admin")}
    invite = InviteSpec(everyone=True)
    m = await svc.lifecycle.create_meeting(chair, title="Uỷ quyền", invite=invite)
    everyone = [ids["chair2"], ids["operator"], ids["admin"]]
    await svc.lifecycle.update_meeting(chair, m.id, delegates=everyone)
    await svc.lifecycle.update_meeting(chair, m.id, delegates=[ids["operator"], ids["admin"]])
    assert [c for c in media.calls if c[0] == "chair_lost"] == []  # scheduled: nothing runs
    await svc.lifecycle.update_meeting(chair, m.id, delegates=everyone)
    await svc.lifecycle.start_meeting(chair, m.id)
    await svc.lifecycle.update_meeting(chair, m.id, delegates=everyone)  # unchanged
    await svc.lifecycle.update_meeting(chair, m.id, delegates=[ids["chair"]])  # the chair itself
    assert media.calls[-1] == ("chair_lost", m.id, ["chair2", "operator"])
    assert [c[0] for c in media.calls].count("chair_lost") == 1
    await svc.lifecycle.update_meeting(chair, m.id, delegates=[])  # the chair was never lost
    assert [c[0] for c in media.calls].count("chair_lost") == 1
    # A delegate may not change the list (nothing is named to media either).
    await svc.lifecycle.update_meeting(chair, m.id, delegates=[ids["chair2"]])
    with pytest.raises(Forbidden):
        await svc.lifecycle.update_meeting(e.w.actor("chair2"), m.id, delegates=[])
    assert [c[0] for c in media.calls].count("chair_lost") == 1
    await svc.stop()


async def test_a_failing_media_plane_never_undoes_a_decision(env: Env) -> None:
    e = env
    media = FakeMedia(fail=True)
    hub = FakeHub(online=set(e.w.site_ids("C1-S")))
    svc = MeetingService(e.db, hub, clock=e.clock, media=media, reminder_poll_s=0)
    await svc.start()
    chair = e.w.actor("chair")
    m = await svc.lifecycle.create_meeting(chair, title="Lỗi", invite=InviteSpec(everyone=True))
    assert (await svc.lifecycle.start_meeting(chair, m.id)).state == "live"
    await svc.attendance.join(e.w.site("C1-S"), m.id)
    d = await svc.floor.grant(chair, m.id, e.w.site_ids("C1-S"))
    assert d.speaker_codes == ["C1-S"]
    assert [s.code for s in (await svc.floor.state(m.id)).speakers] == ["C1-S"]
    assert hub.kinds(f"meeting:{m.id}") == ["meeting.started", "floor.changed"]
    assert (await svc.lifecycle.end_meeting(chair, m.id)).state == "ended"
    assert [c[0] for c in media.calls] == ["start_program", "set_floor", "stop_program"]
    await svc.stop()


async def test_attendance_after_a_crash_mid_meeting(env: Env) -> None:
    """No orderly stop: intervals still open in the store close at the next start, as of
    the last moment the crashed server was known up (its alive mark), not the restart:
    attendance shows the outage."""
    e = env
    mid = await _live(e, InviteSpec(unit_ids=(e.w.units["D1"],)))
    await _join(e, "C1-S", "C2-S")
    e.clock.advance(100)
    await e.svc.alive.write()  # its last sign of life
    await e.svc.alive.stop()  # then it crashes: no more marks, no orderly stop
    # The old service is simply abandoned (a crash); a new one starts 50 s later with
    # only C1 reconnected.
    e.clock.advance(50)
    c1, c2 = e.w.sites["C1-S"], e.w.sites["C2-S"]
    hub2 = FakeHub(online={c1.site_id})
    svc2 = MeetingService(e.db, hub2, clock=e.clock, reminder_poll_s=0)
    svc2.register()
    await svc2.start()
    assert svc2.attendance.is_present(mid, c1.site_id)
    assert not svc2.attendance.is_present(mid, c2.site_id)
    _, _, sites = await svc2.roll_call.sites(mid)
    by = {a.code: a for a in sites}
    assert [r for _, _, r in by["C2-S"].intervals] == ["server_restart"]
    assert by["C2-S"].presence_s == pytest.approx(100)  # not 150: the outage is a gap
    # C1, back before the meeting service started, was still away meanwhile.
    assert by["C1-S"].status == "present"
    assert [r for _, _, r in by["C1-S"].intervals] == ["server_restart", None]
    await hub2.set_online(c2.site_id, True)
    assert svc2.attendance.is_present(mid, c2.site_id)
    await svc2.stop()


async def test_the_database_refuses_a_site_in_two_live_meetings(env: Env) -> None:
    """Another process put a site in a live meeting behind this service's back: the
    primary key of meeting_live_sites refuses the second start, and nothing is kept."""
    e = env
    other = await _live(e, InviteSpec(site_ids=tuple(e.w.site_ids("C4-S"))), chair="chair2")
    e.svc.store.live_site_meeting.pop(e.w.sites["C4-S"].site_id)  # the mirror no longer knows
    m = await e.svc.lifecycle.create_meeting(
        e.w.actor("chair"), title="Race", invite=InviteSpec(unit_ids=(e.w.units["P2"],))
    )
    with pytest.raises(Conflict) as info:
        await e.svc.lifecycle.start_meeting(e.w.actor("chair"), m.id)
    assert info.value.code == "site_busy"
    assert (await e.svc.store.get_meeting(m.id)).state == "scheduled"
    assert await e.svc.store.participant_ids(m.id) == []
    assert await e.svc.store.participant_ids(other) == e.w.site_ids("C4-S")
