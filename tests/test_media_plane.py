"""Starting the media plane for a server: local Janus processes carrying real media."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from diemcau.media.grants import ProgramWatch, SiteGrant
from diemcau.media.plane import local_relay_layout, start_media_plane
from diemcau.media.topology import SiteRef
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot


def watched(grant: SiteGrant) -> ProgramWatch:
    """The program a site's grant watches (one runs wherever this is asked)."""
    assert grant["program"] is not None, "the grant names no program"
    return grant["program"]


def test_local_relay_layout_balances_provinces_and_fits_everyone() -> None:
    sites = (
        [SiteRef(f"a{i}", "79") for i in range(50)]
        + [SiteRef(f"b{i}", "01") for i in range(30)]
        + [SiteRef(f"c{i}", "48") for i in range(25)]
    )
    layout = local_relay_layout(sites, 2)
    assert [provs for _, provs, _ in layout] == [("79",), ("01", "48")]
    assert all(cap >= len(sites) for _, _, cap in layout)
    # Bad input: more relays than provinces leaves no empty relay behind.
    assert len(local_relay_layout(sites, 5)) == 3


async def wait_until(cond: Callable[[], bool], timeout: float) -> None:
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout
        await asyncio.sleep(0.05)


@pytest.mark.media
async def test_local_plane_carries_site_and_chair_media(tmp_path: Path) -> None:
    sites = [SiteRef("S1", "01"), SiteRef("S2", "02"), SiteRef("S3", "02")]
    plane = await start_media_plane(sites, local_relays=2, base_dir=tmp_path)
    bots: list[PublisherBot | ViewerBot] = []

    async def started(bot: PublisherBot | ViewerBot) -> None:
        bots.append(bot)
        await bot.start()

    try:
        orch = plane.orchestrator
        assert plane.cluster is not None and len(plane.cluster.processes) == 3
        # Two sites publish into their uplink rooms on their relays, as site terminals do.
        for code in ("S1", "S2"):
            grant = await orch.site_media_grant(code)
            await started(
                PublisherBot(JanusTarget.publish_of(grant), grant["publish"]["feed_id"], code)
            )
        spot = await orch.spot_check_grant("S2")
        v = ViewerBot(JanusTarget.watch_of(spot), spot["subscribe"]["feed_id"])
        await started(v)
        await v.wait_frames(5, 5.0, label="S2")
        # A program starts: the chair publishes on central and the relays carry it.
        chair = await orch.start_program(7)
        await started(
            PublisherBot(JanusTarget.publish_of(chair), chair["publish"]["feed_id"], "CHU TRI")
        )
        grant = await orch.site_media_grant("S3", 7)
        chair_feed = watched(grant)["feeds"][0]["feed_id"]
        assert chair_feed == chair["publish"]["feed_id"]
        await wait_until(
            lambda: any(lk.target_node == grant["node"] for lk in orch.cascade.links()), 5.0
        )
        pv = ViewerBot(JanusTarget.program_of(grant), chair_feed)
        await started(pv)
        await pv.wait_frames(5, 5.0, label="CHU TRI")
        assert pv.stats.bad_frames == 0
        await orch.stop_program(7)
        await wait_until(
            lambda: not any(lk.target_node == grant["node"] for lk in orch.cascade.links()), 5.0
        )
        # A site provisioned later is placed without moving anyone.
        relay_s1 = orch.plan.assignment["S1"]
        moves = orch.add_sites([SiteRef("S4", "01")])
        assert [(m.site, m.old) for m in moves] == [("S4", None)]
        assert orch.plan.assignment["S4"] == relay_s1
        assert (await orch.site_media_grant("S4"))["node"] == relay_s1
    finally:
        for b in reversed(bots):
            await b.stop()
        await plane.close()
