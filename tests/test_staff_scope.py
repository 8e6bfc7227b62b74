"""A province officer's staff stream carries no other province's sites (issue 12, item 4).

National events (``province_id: null``) name sites of every province: the floor's
speakers, the raise-hand queue, a lowered hand. Bad inputs tried: a national
``floor.changed`` with one speaker of each province, a ``hand.raised`` of another
province's site, a ``hand.lowered`` naming only a site id, an event naming only a
site code, an event of another province; the national chair must still get all of it.
"""

from __future__ import annotations

import json
from typing import Any

from diemcau.presence.hub import PresenceHub
from diemcau.presence.redact import DROP, redact_for_province
from diemcau.store import Database
from tests.presence_support import fast_config, make_sites


async def _events(client: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not client.queue.empty():
        frame = client.queue.get_nowait()
        assert frame is not None
        events += json.loads(frame).get("events", [])
    return events


async def test_an_officer_gets_national_events_without_other_provinces_sites(
    db: Database,
) -> None:
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=2, provinces=2)
    mine, other = d.provinces
    my_site = next(s for s in d.site_ids if d.province_of[s] == mine)
    their_site = next(s for s in d.site_ids if d.province_of[s] == other)
    their_code = d.codes[their_site].split(":")[0]
    hub = PresenceHub(db, key, fast_config())
    await hub.start()
    try:
        officer = hub.staff.subscribe(mine)
        chair = hub.staff.subscribe(None)
        await _events(officer)
        await _events(chair)

        def speaker(site_id: int) -> dict[str, Any]:
            info = hub.credentials.site(site_id)
            assert info is not None
            return {
                "site_id": site_id,
                "code": info.code,
                "name": info.name,
                "province_id": info.province_id,
            }

        floor = {"meeting_id": 1, "speakers": [speaker(my_site), speaker(their_site)]}
        await hub.publish_staff_event("floor.changed", floor)
        await hub.publish_staff_event(
            "hand.raised", {"meeting_id": 1, "entry": speaker(their_site)}
        )
        await hub.publish_staff_event("hand.lowered", {"meeting_id": 1, "site_id": their_site})
        await hub.publish_staff_event("note", {"site_code": their_code, "text": "x"})
        await hub.publish_staff_event("alert.raised", {"site": "x"}, province_id=other)
        await hub.publish_staff_event("meeting.started", {"meeting": {"id": 1}})
        await hub.staff.flush()

        seen = await _events(officer)
        text = json.dumps(seen, ensure_ascii=False)
        assert their_code not in text and f'"site_id": {their_site}' not in text
        by_kind = {e["kind"]: e["body"] for e in seen}
        assert by_kind["floor.changed"]["speakers"] == [speaker(my_site)]
        assert by_kind["hand.raised"] == {"meeting_id": 1, "entry": None}
        assert "hand.lowered" not in by_kind and "note" not in by_kind  # wholly another's
        assert "alert.raised" not in by_kind  # another province's own event
        assert by_kind["meeting.started"] == {"meeting": {"id": 1}}

        everything = {e["kind"]: e["body"] for e in await _events(chair)}
        assert everything["floor.changed"] == floor
        assert set(everything) == {
            "floor.changed",
            "hand.raised",
            "hand.lowered",
            "note",
            "alert.raised",
            "meeting.started",
        }
    finally:
        await hub.stop()


def test_redaction_rules() -> None:
    sites = {1: 10, 2: 20}
    codes: dict[str, int | None] = {"A": 10, "B": 20}

    def redact(body: Any) -> Any:
        return redact_for_province(body, 10, sites.get, lambda c: codes.get(c, DROP))

    assert redact({"province_id": 20, "x": 1}) is DROP
    assert redact({"province_id": None, "site_id": 2}) is DROP  # a national row of site 2
    assert redact({"code": "B"}) is DROP
    assert redact({"code": "not a site", "n": [1, 2]}) == {"code": "not a site", "n": [1, 2]}
    assert redact([{"site_id": 1}, {"site_id": 2}, 3]) == [{"site_id": 1}, 3]
    assert redact({"a": {"b": [{"code": "A"}, {"code": "B"}]}}) == {"a": {"b": [{"code": "A"}]}}
    assert redact({"flag": True, "province_id": True}) == {"flag": True, "province_id": True}
