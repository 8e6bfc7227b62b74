"""The command center over the real presence hub and meeting service, with raw sites.

A directive reaches a connected site on its own stream and is acknowledged and
completed over the session; a report is filed over the session (a bad value is
refused naming the field); a site that drops out of a live meeting raises an
alert that clears when it comes back.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from openpyxl import load_workbook

from diemcau import actors
from diemcau.accounts.service import StaffPrincipal
from diemcau.actors import Actor
from diemcau.command.center import CommandCenter
from diemcau.command.directives import DirectiveIn
from diemcau.command.exports import to_xlsx
from diemcau.command.schemas import builtin_registry
from diemcau.meetings import InviteSpec, MeetingService
from diemcau.presence.hub import PresenceHub
from diemcau.store import Database
from diemcau.store.models import StaffUser
from tests.presence_support import Directory, RawSite, eventually, fast_config, make_sites
from tests.test_command_support import covid


@dataclass
class Live:
    hub: PresenceHub
    meetings: MeetingService
    center: CommandCenter
    d: Directory
    chair: StaffPrincipal


@pytest.fixture
async def live(db: Database) -> AsyncIterator[Live]:
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=2, provinces=2)
    async with db.session() as s:
        user = StaffUser(username="chair", display_name="", password_hash="x", role="chair")
        s.add(user)
        await s.flush()
        chair = StaffPrincipal(user.id, "chair", "chair", None)
    hub = PresenceHub(db, key, fast_config())
    meetings = MeetingService(db, hub, reminder_poll_s=0)
    meetings.register()

    async def live_ids() -> list[int]:
        return [m.id for m in await meetings.store.list_meetings(state="live")]

    center = CommandCenter(
        db, hub.clock, builtin_registry(), hub=hub, live_meetings=live_ids, tick_s=0
    )
    center.register()
    await hub.start()
    await meetings.start()
    await center.start()
    yield Live(hub, meetings, center, d, chair)
    await center.stop()
    await meetings.stop()
    await hub.stop()


def _replies(site: RawSite) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in site.received if m.get("type") == "reply"}


async def _request(site: RawSite, rid: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    await site.send({"type": "req", "id": rid, "kind": kind, "body": body})
    await eventually(lambda: rid in _replies(site), what=f"reply {rid}")
    return _replies(site)[rid]


async def test_directive_and_report_over_a_session(live: Live) -> None:
    d = live.d
    first = d.site_ids[0]
    site = RawSite(live.hub)
    await site.connect(join_code=d.codes[first])
    chair = Actor.for_staff("chair", "chair", user_id=live.chair.user_id)
    directive = await live.center.directives.issue_directive(
        chair,
        DirectiveIn.parse(
            {"title": "Kiểm tra đê", "body": "Báo cáo trước 17 giờ.", "target": {"country": True}}
        ),
    )
    await eventually(
        lambda: any(m["kind"] == "directive.issued" for m in site.msgs("site")), what="delivery"
    )
    msg = next(m for m in site.msgs("site") if m["kind"] == "directive.issued")
    assert msg["body"]["id"] == directive.id and msg["body"]["title"] == "Kiểm tra đê"
    reply = await _request(site, "a1", "directive.ack", {"id": directive.id})
    assert reply["ok"] and reply["body"]["acknowledged_at"]
    reply = await _request(site, "c1", "directive.complete", {"id": directive.id, "note": "Xong"})
    assert reply["ok"] and reply["body"]["completion_note"] == "Xong"
    view = await live.center.directives.get(chair, directive.id)
    assert (view.recipients, view.acknowledged, view.completed) == (4, 1, 1)

    reply = await _request(
        site, "r1", "report.submit", {"schema": "covid19", "values": covid(deaths=-3)}
    )
    assert not reply["ok"] and reply["error"]["message"] == "deaths: must be ≥ 0"
    reply = await _request(site, "r2", "report.submit", {"schema": "covid19", "values": covid()})
    assert reply["ok"] and reply["body"]["site_id"] == first
    mine = await _request(site, "r3", "report.mine", {"schema": "covid19"})
    assert [r["id"] for r in mine["body"]["items"]] == [reply["body"]["id"]]
    await site.close()


async def test_report_notes_and_text_with_controls_over_a_session(live: Live) -> None:
    """Bad input (issue 12, item 7): a ``report.submit`` note of 2,001 characters, a
    note that is not text, and a text indicator holding control characters XLSX cannot
    carry (BEL, ESC, vertical tab) with a formula. The notes are refused like over HTTP
    and store nothing; the text is kept, and the XLSX export still opens, the controls
    shown as visible escapes and the formula as text."""
    d = live.d
    first = d.site_ids[0]
    site = RawSite(live.hub)
    await site.connect(join_code=d.codes[first])
    for rid, note in (("n1", "x" * 2001), ("n2", ["not", "text"])):
        body = {"schema": "covid19", "values": covid(), "note": note}
        reply = await _request(site, rid, "report.submit", body)
        assert not reply["ok"] and reply["error"]["code"] == "bad_note", reply
    chair = Actor.for_staff("chair", "chair", user_id=live.chair.user_id)
    assert await live.center.reports.list_reports(chair, "covid19") == []  # nothing stored
    text = '=HYPERLINK("x")\x07 Bến\x1b Nghé\x0b'
    body = {"schema": "covid19", "values": covid(notes=text), "note": "y" * 2000}
    reply = await _request(site, "n3", "report.submit", body)
    assert reply["ok"] and reply["body"]["values"]["notes"] == text.strip(), reply
    day = date.fromisoformat(reply["body"]["period"])
    table = await live.center.exports.table(chair, "covid19", day, day, what="reports")
    book = load_workbook(io.BytesIO(to_xlsx(table, "covid19 reports")))
    cells = [str(c) for row in book.active.iter_rows(values_only=True) for c in row if c]
    assert any("\\x07 Bến\\x1b Nghé" in c for c in cells), cells
    assert not any(c.startswith("=") for c in cells)
    await site.close()


async def test_offline_during_live_meeting_alert(live: Live) -> None:
    d = live.d
    invited = [sid for sid in d.site_ids if d.province_of[sid] == d.provinces[0]]
    a = RawSite(live.hub)
    await a.connect(join_code=d.codes[invited[0]])
    chair = actors.Actor.for_staff("chair", "chair", user_id=live.chair.user_id)
    m = await live.meetings.lifecycle.create_meeting(
        chair, title="Họp khẩn", invite=InviteSpec(unit_ids=(d.provinces[0],))
    )
    await live.meetings.lifecycle.start_meeting(chair, m.id)
    reply = await _request(a, "j1", "meeting.join", {})
    assert reply["ok"]
    alerts = live.center.alerts
    key = f"{m.id}:site:{invited[0]}"
    await a.drop()  # a cut link, not a goodbye
    await eventually(lambda: _active(alerts, key), what="offline alert")
    view = await alerts.is_active("site_offline_in_meeting", key)
    assert view is not None and view.province_id == d.provinces[0]
    back = RawSite(live.hub)
    await back.connect(join_code=d.codes[invited[0]])
    await eventually(lambda: _inactive(alerts, key), what="alert cleared")
    await live.meetings.lifecycle.end_meeting(chair, m.id)
    await back.close()


async def _inactive(alerts: Any, key: str) -> bool:
    return await alerts.is_active("site_offline_in_meeting", key) is None


async def _active(alerts: Any, key: str) -> bool:
    return await alerts.is_active("site_offline_in_meeting", key) is not None


async def test_a_directive_the_hub_refused_reaches_its_sites_once_it_takes_them(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub cannot take a directive (its store out of reach for a moment) while the
    directive is stored and confirmed to the chair: it reaches the site within a few
    redelivery rounds, without a restart, exactly once. Tried: two refusals in a row
    (the first redelivery fails too)."""
    d = live.d
    site = RawSite(live.hub)
    await site.connect(join_code=d.codes[d.site_ids[0]])
    site.beat()  # stays online through the redelivery rounds
    real_send = live.hub.send
    refusals = [0]

    async def refusing_send(*args: Any, **kwargs: Any) -> Any:
        if refusals[0] < 2:
            refusals[0] += 1
            raise ConnectionRefusedError("the store is out of reach")
        return await real_send(*args, **kwargs)

    monkeypatch.setattr(live.hub, "send", refusing_send)
    chair = Actor.for_staff("chair", "chair", user_id=live.chair.user_id)
    directive = await live.center.directives.issue_directive(
        chair, DirectiveIn.parse({"title": "Sơ tán", "body": "Ngay.", "target": {"country": True}})
    )
    assert refusals[0] == 1 and not site.msgs("site")

    def delivered() -> list[dict[str, Any]]:
        return [m for m in site.msgs("site") if m["kind"] == "directive.issued"]

    await eventually(lambda: bool(delivered()), what="the redelivered directive", timeout=15)
    assert refusals[0] == 2 and [m["body"]["id"] for m in delivered()] == [directive.id]
    assert await live.center.directives.redeliver() == 0  # nothing left over
    await site.close()
