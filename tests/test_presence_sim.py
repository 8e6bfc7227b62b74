"""The site simulator: joins, heartbeats, link reports, resume after a drop, code files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from diemcau.presence.hub import PresenceHub
from diemcau.sim.cli import provision_sim_codes
from diemcau.sim.sites import SimOptions, Swarm, read_join_codes
from diemcau.store import Database
from tests.presence_support import eventually, fast_config, make_sites


async def test_swarm_joins_beats_and_resumes_after_a_drop(db: Database) -> None:
    key = await db.secret_key()
    d = await make_sites(db, key, per_province=10, provinces=2)
    hub = PresenceHub(db, key, fast_config())
    await hub.start()
    stop = asyncio.Event()
    swarm = Swarm(hub.url, [d.codes[s] for s in d.site_ids], SimOptions(summary_s=0, seed=1))
    run = asyncio.create_task(swarm.run(stop=stop))
    try:
        await eventually(lambda: len(hub.online_site_ids()) == 20, timeout=10)
        await hub.follow("meeting:1", d.site_ids)
        await hub.broadcast("meeting:1", "x", {"n": 1})
        await eventually(lambda: all(s.seqs.get("meeting:1") == 1 for s in swarm.sites))
        # Heartbeats keep everyone online well past the offline timeout.
        await asyncio.sleep(hub.config.offline_after_s + 0.5)
        assert len(hub.online_site_ids()) == 20
        assert all(hub.site_state(s).link is not None for s in d.site_ids)
        # Cut one site without a close: it comes back and resumes what it missed.
        victim = swarm.sites[0]
        assert victim.ws is not None
        victim.ws.transport.abort()
        await eventually(lambda: not hub.is_online(victim.site_id))
        await hub.broadcast("meeting:1", "x", {"n": 2})
        await hub.send([victim.site_id], "directive.new", {"d": 1})
        await eventually(lambda: victim.seqs.get("meeting:1") == 2, timeout=10)
        await eventually(lambda: victim.seqs.get("site") == 1)
        assert hub.site_state(victim.site_id).reason == "resumed"
        assert swarm.counters["reconnects"] >= 1
    finally:
        stop.set()
        await run
        await hub.stop()
    assert "online" in swarm.summary()


async def test_join_codes_from_csv_export_text_and_database(
    db: Database, sqlite_url: str, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "01.csv").write_text(
        "Mã điểm cầu (site code),Tên (site name),Mã tham gia (join code)\n"
        "00004,Phường Ba Đình,00004:abc\n00008,Ngọc Hà,'00008:def\n",
        encoding="utf-8",
    )
    (export / "79.csv").write_text(
        "Mã điểm cầu (site code),Mã tham gia (join code)\n26734,26734:ghi\n", encoding="utf-8"
    )
    assert read_join_codes(export) == ["00004:abc", "00008:def", "26734:ghi"]
    plain = tmp_path / "codes.txt"
    plain.write_text("A:1\n\nB:2\nnot-a-code\n", encoding="utf-8")
    assert read_join_codes(plain) == ["A:1", "B:2"]

    key = await db.secret_key()
    d = await make_sites(db, key, per_province=3)
    codes = await provision_sim_codes(sqlite_url, None, 2)
    assert len(codes) == 2
    assert all(c not in d.codes.values() for c in codes)  # fresh credentials
    hub = PresenceHub(db, key, fast_config())
    await hub.start()
    try:
        assert await hub.credentials.authenticate(codes[0], None) is not None
        assert await hub.credentials.authenticate(d.codes[d.site_ids[0]], None) is None
    finally:
        await hub.stop()
