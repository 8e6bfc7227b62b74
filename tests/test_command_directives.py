"""Directives: issued → acknowledged → completed, rates per province, overdue, remind, escalate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from diemcau.actors import Actor
from diemcau.audit import AuditQuery, query_audit
from diemcau.command.alerts import AlertService
from diemcau.command.directives import DirectiveIn, DirectiveService
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.store import Database
from tests.test_command_support import Country, FakeClock, FakeHub, seed_country

CHAIR = Actor.for_staff("chair", "chair", user_id=1)


async def _setup(
    db: Database,
) -> tuple[DirectiveService, AlertService, FakeHub, FakeClock, Country]:
    clock = FakeClock()
    hub = FakeHub()
    alerts = AlertService(db, clock, hub)
    svc = DirectiveService(db, clock, hub, alerts)
    return svc, alerts, hub, clock, await seed_country(db)


async def _audited(db: Database) -> list[tuple[str, str, str | None]]:
    """(actor, action, target) of every record in the shared audit log."""
    _, rows = await query_audit(db, AuditQuery())
    return [(f"{r.actor_kind}:{r.actor_name}", r.action, r.target) for r in rows]


def _directive(clock: FakeClock, **target: Any) -> DirectiveIn:
    return DirectiveIn.parse(
        {
            "title": "Tăng cường giãn cách",
            "body": "Các xã triển khai ngay biện pháp giãn cách theo Chỉ thị 16.",
            "priority": "urgent",
            "deadline": (datetime.fromtimestamp(clock.now, UTC) + timedelta(hours=6)).isoformat(),
            "attachments": [{"name": "chi-thi-16.pdf", "url": "/files/ct16.pdf", "size": 1024}],
            "target": target,
        }
    )


def site(c: Country, code: str) -> Actor:
    return Actor.for_site(c.sites[code], code)


async def test_lifecycle_issued_acknowledged_completed_overdue(any_db: Database) -> None:
    svc, _alerts, hub, clock, c = await _setup(any_db)
    d = await svc.issue_directive(CHAIR, _directive(clock, country=True))
    assert d.recipients == 5 and d.acknowledged == 0 and d.overdue == 0
    # Delivered losslessly once to every commune site (never the chair), with its id.
    assert len(hub.sent) == 1
    ids, kind, body, msg_id = hub.sent[0]
    assert kind == "directive.issued" and msg_id == f"directive:{d.id}"
    assert ids == sorted(c.sites.values())
    assert body["title"] == "Tăng cường giãn cách" and body["attachments"][0]["name"]
    assert hub.events("directive.issued")
    assert ("staff:chair", "directive.issue", f"directive:{d.id}") in await _audited(any_db)
    inbox = await svc.inbox(site(c, "A"))
    assert inbox[0]["id"] == d.id and inbox[0]["acknowledged_at"] is None
    assert inbox[0]["delivered_at"] is not None

    ack = await svc.acknowledge(site(c, "A"), d.id)
    assert ack["acknowledged_at"] is not None
    await svc.acknowledge(site(c, "A"), d.id)  # idempotent
    await svc.acknowledge(site(c, "X"), d.id)
    done = await svc.complete(site(c, "A"), d.id, "Đã triển khai 100% thôn")
    assert done["completed_at"] is not None and done["completion_note"] == "Đã triển khai 100% thôn"
    with pytest.raises(Conflict, match="already reported completed"):
        await svc.complete(site(c, "A"), d.id, "lần hai")
    # Completing without acknowledging first acknowledges too.
    await svc.complete(site(c, "Y"), d.id, "xong")
    view = await svc.get(CHAIR, d.id)
    assert (view.recipients, view.acknowledged, view.completed, view.overdue) == (5, 3, 2, 0)
    rates = {p.province_id: p.public() for p in await svc.progress(CHAIR, d.id)}
    p1, p2 = rates[c.provinces["P1"]], rates[c.provinces["P2"]]
    assert (p1["recipients"], p1["acknowledged"], p1["completed"]) == (3, 1, 1)
    assert p1["ack_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert (p2["acknowledged"], p2["completed"], p2["completion_rate"]) == (2, 1, 0.5)
    assert hub.events("directive.acknowledged") and hub.events("directive.completed")
    assert await svc.overdue(CHAIR) == []

    # Past the deadline (injected clock), the three unfinished sites are overdue.
    clock.advance(7 * 3600)
    view = await svc.get(CHAIR, d.id)
    assert view.overdue == 3
    assert [o.id for o in await svc.overdue(CHAIR)] == [d.id]
    late = await svc.recipients(CHAIR, d.id, state="overdue")
    assert sorted(r.code for r in late) == ["B", "C", "X"]
    by = {p.province_id: p for p in await svc.progress(CHAIR, d.id)}
    assert by[c.provinces["P1"]].overdue == 2 and by[c.provinces["P2"]].overdue == 1


async def test_targets_by_area(db: Database) -> None:
    svc, _alerts, hub, clock, c = await _setup(db)
    d = await svc.issue_directive(CHAIR, _directive(clock, provinces=["P2"]))
    assert hub.sent[-1][0] == sorted([c.sites["X"], c.sites["Y"]]) and d.recipients == 2
    await svc.issue_directive(CHAIR, _directive(clock, districts=["D1"]))
    assert hub.sent[-1][0] == sorted([c.sites["A"], c.sites["B"]])
    await svc.issue_directive(CHAIR, _directive(clock, districts=["D1"], sites=["Y"]))
    assert hub.sent[-1][0] == sorted([c.sites["A"], c.sites["B"], c.sites["Y"]])
    await svc.issue_directive(CHAIR, _directive(clock, units=["P1"]))
    assert hub.sent[-1][0] == sorted([c.sites["A"], c.sites["B"], c.sites["C"]])
    # Bad targets name the field.
    with pytest.raises(Invalid, match="target.provinces: unknown unit code 'P9'"):
        await svc.issue_directive(CHAIR, _directive(clock, provinces=["P9"]))
    with pytest.raises(Invalid, match="target.districts: 'P1' is a province, not a district"):
        await svc.issue_directive(CHAIR, _directive(clock, districts=["P1"]))
    with pytest.raises(Invalid, match="target.sites: unknown site code 'Q'"):
        await svc.issue_directive(CHAIR, _directive(clock, sites=["Q"]))
    with pytest.raises(Invalid, match="target: choose"):
        await svc.issue_directive(CHAIR, _directive(clock))


async def test_who_may_issue_and_see(db: Database) -> None:
    svc, _alerts, hub, clock, c = await _setup(db)
    officer = Actor.for_staff("lan", "province_officer", c.provinces["P2"])
    with pytest.raises(Forbidden, match="only staff"):
        await svc.issue_directive(site(c, "A"), _directive(clock, country=True))
    with pytest.raises(Forbidden, match="role 'operator'"):
        await svc.issue_directive(
            Actor.for_staff("op", "operator"), _directive(clock, country=True)
        )
    with pytest.raises(Forbidden, match="own province"):
        await svc.issue_directive(officer, _directive(clock, country=True))
    # A site of another province reads like an unknown code (no telling which exist).
    with pytest.raises(Invalid, match="unknown site code '[AX]' in your province"):
        await svc.issue_directive(officer, _directive(clock, sites=["X", "A"]))
    mine = await svc.issue_directive(officer, _directive(clock, provinces=["P2"]))
    assert mine.issuer_province_id == c.provinces["P2"]
    national = await svc.issue_directive(CHAIR, _directive(clock, country=True))
    # The officer sees the national directive restricted to its province's sites.
    seen = await svc.get(officer, national.id)
    assert seen.recipients == 2
    assert {d.id for d in await svc.list_directives(officer)} == {mine.id, national.id}
    p1_only = await svc.issue_directive(CHAIR, _directive(clock, provinces=["P1"]))
    with pytest.raises(NotFound):
        await svc.get(officer, p1_only.id)
    # A site acts only on directives sent to it.
    with pytest.raises(NotFound, match="not sent to this site"):
        await svc.acknowledge(site(c, "X"), p1_only.id)
    with pytest.raises(Forbidden):
        await svc.acknowledge(CHAIR, p1_only.id)
    # Bad input names the field.
    with pytest.raises(Invalid, match="deadline: must be in the future"):
        data = _directive(clock, country=True).model_copy(
            update={"deadline": datetime(2020, 1, 1, tzinfo=UTC)}
        )
        await svc.issue_directive(CHAIR, data)
    with pytest.raises(Invalid, match="priority"):
        DirectiveIn.parse({"title": "t", "body": "b", "priority": "asap", "target": {}})
    with pytest.raises(Invalid, match="attachments.0.url"):
        DirectiveIn.parse(
            {
                "title": "t",
                "body": "b",
                "target": {},
                "attachments": [{"name": "x", "url": "javascript:alert(1)"}],
            }
        )


async def test_idempotent_issue_with_client_id(db: Database) -> None:
    svc, _alerts, hub, clock, c = await _setup(db)
    data = _directive(clock, country=True).model_copy(update={"client_id": "retry-0001"})
    first = await svc.issue_directive(CHAIR, data)
    again = await svc.issue_directive(CHAIR, data)
    assert first.id == again.id and len(hub.sent) == 1


async def test_remind_and_escalate(any_db: Database) -> None:
    svc, alerts, hub, clock, c = await _setup(any_db)
    d = await svc.issue_directive(CHAIR, _directive(clock, country=True))
    await svc.acknowledge(site(c, "A"), d.id)
    await svc.complete(site(c, "X"), d.id, "xong")
    n = await svc.remind(CHAIR, d.id)
    assert n == 3  # B, C, Y have not acknowledged
    ids, kind, body, msg_id = hub.sent[-1]
    assert kind == "directive.reminder" and body["reminder"] == 1
    assert ids == sorted([c.sites["B"], c.sites["C"], c.sites["Y"]])
    assert (await svc.get(CHAIR, d.id)).reminders == 1
    assert ("staff:chair", "directive.remind", f"directive:{d.id}") in await _audited(any_db)

    escalated = await svc.escalate(CHAIR, d.id)
    assert {p.province_id for p in escalated} == {c.provinces["P1"], c.provinces["P2"]}
    p2_key = f"{d.id}:province:{c.provinces['P2']}"
    alert = await alerts.is_active("directive_escalated", p2_key)
    assert alert is not None and alert.province_id == c.provinces["P2"]
    officer = Actor.for_staff("lan", "province_officer", c.provinces["P2"])
    feed = await alerts.feed(officer)
    assert [a.key for a in feed] == [p2_key]  # the P2 officer sees only its escalation
    ev = [e for e in hub.events("directive.escalated") if e[2] == c.provinces["P2"]]
    assert ev and ev[0][1]["completed"] == 1
    with pytest.raises(Forbidden):
        await svc.escalate(officer, d.id)
    # P2's last site completes: its escalation clears; P1's stays.
    await svc.complete(site(c, "Y"), d.id, "xong")
    assert await alerts.is_active("directive_escalated", p2_key) is None
    assert await alerts.is_active("directive_escalated", f"{d.id}:province:{c.provinces['P1']}")
    assert hub.events("alert.cleared")


async def test_directive_too_big_to_deliver_is_refused(db: Database) -> None:
    svc, _alerts, hub, clock, c = await _setup(db)
    data = _directive(clock, country=True)
    # 20,000 Vietnamese characters (3 bytes each in UTF-8) exceed what one message carries.
    huge = data.model_copy(update={"body": "Ữ" * 20000})
    with pytest.raises(Invalid, match="body: the directive is .* bytes"):
        await svc.issue_directive(CHAIR, huge)
    assert hub.sent == [] and await svc.list_directives(CHAIR) == []


async def test_concurrent_acknowledgements_and_completions(any_db: Database) -> None:
    svc, _alerts, hub, clock, c = await _setup(any_db)
    d = await svc.issue_directive(CHAIR, _directive(clock, country=True))
    codes = sorted(c.sites)
    # Every site acknowledges twice and completes once, all at the same time.
    results = await asyncio.gather(
        *(svc.acknowledge(site(c, code), d.id) for code in codes * 2),
        *(svc.complete(site(c, code), d.id, f"xong {code}") for code in codes),
        svc.acknowledge(site(c, "A"), d.id + 999),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], NotFound)
    view = await svc.get(CHAIR, d.id)
    assert (view.acknowledged, view.completed) == (5, 5)
    notes = {r.code: r.completion_note for r in await svc.recipients(CHAIR, d.id)}
    assert notes == {code: f"xong {code}" for code in codes}
    assert len(hub.events("directive.completed")) == 5
