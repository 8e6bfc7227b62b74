"""Alert rules fire and clear; the feed records who acknowledged what, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from diemcau.accounts.service import SitePrincipal
from diemcau.actors import Actor
from diemcau.command.center import CommandCenter
from diemcau.command.directives import DirectiveIn
from diemcau.command.schemas import builtin_registry
from diemcau.errors import Forbidden, Invalid
from diemcau.store import Database
from tests.test_command_support import Country, FakeClock, FakeHub, covid, seed_country

CHAIR = Actor.for_staff("chair", "chair")
D1, D2, D3 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


@dataclass
class Change:
    site_id: int
    old: str
    new: str
    province_id: int | None
    reason: str = "connection_lost"


class Meetings:
    """The part of the meeting service the command center reads: its store's live list."""

    def __init__(self) -> None:
        self.live: list[int] = []
        self.store = self

    async def live_ids(self) -> list[int]:
        return list(self.live)


async def _center(db: Database) -> tuple[CommandCenter, FakeHub, FakeClock, Meetings, Country]:
    clock = FakeClock()
    hub = FakeHub()
    meetings = Meetings()
    center = CommandCenter(
        db, clock, builtin_registry(), hub=hub, live_meetings=meetings.live_ids, tick_s=0
    )
    await center.start()
    return center, hub, clock, meetings, await seed_country(db)


def site(c: Country, code: str) -> Actor:
    return Actor.for_site(c.sites[code], code)


async def test_threshold_fires_and_clears(any_db: Database) -> None:
    center, hub, _clock, _m, c = await _center(any_db)
    alerts, reports = center.alerts, center.reports
    key = f"covid19:deaths:site:{c.sites['A']}"
    rep = await reports.submit(site(c, "A"), "covid19", covid(deaths=7), period=D3)
    alert = await alerts.is_active("indicator_threshold", key)
    assert alert is not None and alert.severity == "critical"
    assert alert.province_id == c.provinces["P1"] and "A: Số ca tử vong = 7" in alert.message_vi
    raised = hub.events("alert.raised")
    assert raised and raised[0][2] == c.provinces["P1"]  # published to the province
    # An older period's report does not clear the newer alert.
    await reports.submit(site(c, "A"), "covid19", covid(deaths=0), period=D2)
    assert await alerts.is_active("indicator_threshold", key) is not None
    # The correction of the same report clears it.
    await reports.correct(CHAIR, rep.id, {"deaths": 3})
    assert await alerts.is_active("indicator_threshold", key) is None
    history = await alerts.feed(CHAIR, active=False)
    assert history[0].key == key and history[0].cleared_at is not None
    assert hub.events("alert.cleared")


async def test_rising_fast_fires_and_clears(any_db: Database) -> None:
    center, _hub, _clock, _m, c = await _center(any_db)
    alerts, reports = center.alerts, center.reports
    key = f"covid19:new_cases:site:{c.sites['X']}"
    await reports.submit(site(c, "X"), "covid19", covid(new_cases=10), period=D1)
    assert await alerts.is_active("indicator_rising", key) is None
    await reports.submit(site(c, "X"), "covid19", covid(new_cases=20), period=D2)  # +100 %
    alert = await alerts.is_active("indicator_rising", key)
    assert alert is not None and alert.details["previous"] == 10 and "+100%" in alert.message_en
    await reports.submit(site(c, "X"), "covid19", covid(new_cases=21), period=D3)  # +5 %
    assert await alerts.is_active("indicator_rising", key) is None
    # Below the schema's minimum (10 cases) a jump is not news: 2 -> 4 is +100 %.
    await reports.submit(site(c, "Y"), "covid19", covid(new_cases=2), period=D1)
    await reports.submit(site(c, "Y"), "covid19", covid(new_cases=4), period=D2)
    assert await alerts.active("indicator_rising") == []


async def test_offline_during_live_meeting(any_db: Database) -> None:
    center, hub, clock, meetings, c = await _center(any_db)
    alerts = center.alerts
    assert hub.listeners == [center.rules.on_presence]
    a, b = c.sites["A"], c.sites["B"]
    hub.follows = {a: {"meeting:7": 0, "site": 3}, b: {}}
    meetings.live = [7]
    for listener in hub.listeners:
        await listener(Change(a, "online", "offline", c.provinces["P1"]))
        await listener(Change(b, "online", "offline", c.provinces["P1"]))  # not in a meeting
    active = await alerts.active("site_offline_in_meeting")
    assert [v.key for v in active] == [f"7:site:{a}"] and active[0].site_id == a
    # Back online: cleared.
    await center.rules.on_presence(Change(a, "offline", "online", c.provinces["P1"]))
    assert await alerts.active("site_offline_in_meeting") == []
    # Offline again, then the meeting ends: the periodic round clears it.
    await center.rules.on_presence(Change(a, "online", "offline", c.provinces["P1"]))
    assert len(await alerts.active("site_offline_in_meeting")) == 1
    meetings.live = []
    await center.rules.run_once()
    assert await alerts.active("site_offline_in_meeting") == []
    # A meeting that is not live does not raise.
    await center.rules.on_presence(Change(a, "online", "offline", c.provinces["P1"]))
    assert await alerts.active("site_offline_in_meeting") == []
    # A site that says goodbye, or a server stopping, is no drop: nothing raised.
    meetings.live = [7]
    clock.now += 10  # past the rule's short cache of the live meetings
    for reason in ("left", "server_shutdown"):
        await center.rules.on_presence(Change(a, "online", "offline", c.provinces["P1"], reason))
        assert await alerts.active("site_offline_in_meeting") == [], reason
    # Back online clears only that site's alerts (found by its own index).
    hub.follows[b] = {"meeting:7": 0}
    await center.rules.on_presence(Change(a, "online", "offline", c.provinces["P1"]))
    await center.rules.on_presence(Change(b, "online", "offline", c.provinces["P1"]))
    await center.rules.on_presence(Change(b, "offline", "online", c.provinces["P1"], "resumed"))
    active = await alerts.active("site_offline_in_meeting")
    assert [v.key for v in active] == [f"7:site:{a}"]
    assert [v.key for v in await alerts.active_for_site("site_offline_in_meeting", a)] == [
        f"7:site:{a}"
    ]
    assert await alerts.active_for_site("site_offline_in_meeting", b) == []


async def test_report_overdue_fires_and_clears(any_db: Database) -> None:
    center, _hub, clock, _m, c = await _center(any_db)
    alerts, reports = center.alerts, center.reports
    # 10:00 in Vietnam on the 26th: the 25th is not due until noon.
    await reports.submit(site(c, "A"), "covid19", covid(), period=D3)
    await center.rules.run_once()
    keys = sorted(v.key for v in await alerts.active("report_overdue"))
    # The 23rd and 24th are past their deadlines and nobody filed them.
    p1, p2 = c.provinces["P1"], c.provinces["P2"]
    assert f"covid19:{D2}:province:{p1}" in keys and f"covid19:{D2}:province:{p2}" in keys
    assert not any(k.startswith(f"covid19:{D3}:") for k in keys)
    clock.set(datetime(2026, 11, 26, 6, 0, tzinfo=UTC))  # 13:00 local: the 25th is overdue
    await center.rules.run_once()
    p1_alert = await alerts.is_active("report_overdue", f"covid19:{D3}:province:{p1}")
    assert p1_alert is not None and p1_alert.details["missing"] == 2
    assert "2/3" in p1_alert.message_vi and p1_alert.province_id == p1
    for code in ("B", "C"):
        await reports.submit(site(c, code), "covid19", covid(), period=D3)
    await center.rules.run_once()
    assert await alerts.is_active("report_overdue", f"covid19:{D3}:province:{p1}") is None
    assert await alerts.is_active("report_overdue", f"covid19:{D3}:province:{p2}") is not None
    # The disaster schema is not in use: no alerts for it.
    assert not any(v.key.startswith("disaster") for v in await alerts.active("report_overdue"))


async def test_directive_overdue_fires_and_clears(db: Database) -> None:
    center, _hub, clock, _m, c = await _center(db)
    now = datetime.fromtimestamp(clock.now, UTC)
    d = await center.directives.issue_directive(
        CHAIR,
        DirectiveIn.parse(
            {
                "title": "Báo cáo nhanh",
                "body": "Gửi số liệu trước 12 giờ.",
                "priority": "high",
                "deadline": (now + timedelta(hours=1)).isoformat(),
                "target": {"provinces": ["P2"]},
            }
        ),
    )
    await center.rules.run_once()
    assert await center.alerts.active("directive_overdue") == []
    clock.advance(2 * 3600)
    await center.rules.run_once()
    [alert] = await center.alerts.active("directive_overdue")
    assert alert.key == str(d.id) and alert.severity == "critical"
    for code in ("X", "Y"):
        await center.directives.complete(site(c, code), d.id, "xong")
    await center.rules.run_once()
    assert await center.alerts.active("directive_overdue") == []


async def test_media_entry_point_and_acknowledgement(any_db: Database) -> None:
    center, hub, clock, _m, c = await _center(any_db)
    alerts = center.alerts
    first = await alerts.raise_alert(
        "media_node_degraded",
        "relay-hcm",
        message_vi="Nút relay HCM quá tải",
        message_en="Relay node HCM overloaded",
        severity="warning",
        details={"cpu": 0.97},
    )
    again = await alerts.raise_alert(
        "media_node_degraded",
        "relay-hcm",
        message_vi="Nút relay HCM quá tải",
        message_en="Relay node HCM overloaded",
        details={"cpu": 0.99},
    )
    assert again.id == first.id and len(hub.events("alert.raised")) == 1
    assert hub.events("alert.updated")[0][1]["details"] == {"cpu": 0.99}
    officer = Actor.for_staff("lan", "province_officer", c.provinces["P2"])
    assert [a.id for a in await alerts.feed(officer)] == [first.id]  # national: all see it
    with pytest.raises(Forbidden):
        await alerts.acknowledge(site(c, "A"), first.id)
    clock.advance(30)
    acked = await alerts.acknowledge(CHAIR, first.id)
    assert acked.acknowledged_by == "staff:chair"
    assert acked.acknowledged_at == datetime.fromtimestamp(clock.now, UTC)
    with pytest.raises(Forbidden, match="national alert"):  # not a province officer's to ack
        await alerts.acknowledge(officer, first.id)
    later = await alerts.acknowledge(Actor.for_staff("op", "operator"), first.id)
    assert later.acknowledged_by == "staff:chair"  # the first acknowledgement stands
    assert hub.events("alert.acknowledged")[0][1]["acknowledged_by"] == "staff:chair"
    assert await alerts.feed(CHAIR, unacknowledged=True) == []
    await alerts.clear_alert("media_node_degraded", "relay-hcm")
    assert await alerts.active() == []
    reopened = await alerts.raise_alert(
        "media_node_degraded", "relay-hcm", message_vi="Lại quá tải", message_en="Again"
    )
    assert reopened.id != first.id and reopened.acknowledged_at is None
    with pytest.raises(Invalid, match="severity"):
        await alerts.raise_alert("x", "y", message_vi="a", message_en="b", severity="boom")  # type: ignore[arg-type]


async def test_site_messages_through_the_hub(db: Database) -> None:
    center, hub, _clock, _m, c = await _center(db)
    assert {
        "report.submit",
        "report.mine",
        "directive.ack",
        "directive.complete",
        "directive.inbox",
    } <= set(hub.handlers)
    a = SitePrincipal(c.sites["A"], "A", "Điểm cầu xã A", c.provinces["P1"], 0, "commune", 1)
    reply = await hub.handlers["report.submit"](
        a, {"schema": "covid19", "period": D3.isoformat(), "values": covid()}
    )
    assert reply["site_id"] == c.sites["A"] and reply["revision"] == 1
    assert hub.events("report.filed")[0][2] == c.provinces["P1"]
    with pytest.raises(Invalid, match="deaths: must be ≥ 0"):
        await hub.handlers["report.submit"](a, {"schema": "covid19", "values": covid(deaths=-1)})
    mine = await hub.handlers["report.mine"](a, {"schema": "covid19"})
    assert [r["id"] for r in mine["items"]] == [reply["id"]]
    d = await center.directives.issue_directive(
        CHAIR,
        DirectiveIn.parse(
            {
                "title": "T",
                "body": "B",
                "target": {"sites": ["A"]},
            }
        ),
    )
    inbox = await hub.handlers["directive.inbox"](a, {})
    assert inbox["items"][0]["id"] == d.id
    ack = await hub.handlers["directive.ack"](a, {"id": d.id})
    assert ack["acknowledged_at"] is not None
    done = await hub.handlers["directive.complete"](a, {"id": d.id, "note": "xong"})
    assert done["completion_note"] == "xong"
    with pytest.raises(Invalid, match="id: must be an integer"):
        await hub.handlers["directive.ack"](a, {"id": "1"})
    await center.stop()
