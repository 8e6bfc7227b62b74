"""Starting the media plane for a server, and the demo's synthetic media."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from diemcau.media.plane import local_relay_layout, start_media_plane
from diemcau.media.topology import SiteRef
from diemcau.sim.media_bot import DemoMedia, JanusTarget, ViewerBot


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
async def test_local_plane_with_demo_media(tmp_path: Path) -> None:
    sites = [SiteRef("S1", "01"), SiteRef("S2", "02"), SiteRef("S3", "02")]
    plane = await start_media_plane(sites, local_relays=2, base_dir=tmp_path)
    demo = DemoMedia(plane.orchestrator, ["S1", "S2"], interval=0.2)
    viewers: list[ViewerBot] = []
    try:
        orch = plane.orchestrator
        assert plane.cluster is not None and len(plane.cluster.processes) == 3
        await demo.start()
        assert set(demo.sites) == {"S1", "S2"}
        spot = await orch.spot_check_grant("S2")
        v = ViewerBot(
            JanusTarget(
                spot["ws_url"], spot["subscribe"]["room"], spot["token"], spot["room_token"]
            ),
            spot["subscribe"]["feed_id"],
        )
        viewers.append(v)
        await v.start()
        await v.wait_frames(5, 5.0, label="S2")
        # A program starts: the demo's chair publishes and the relays carry it.
        await orch.start_program(7)
        await wait_until(lambda: "7" in demo.chairs, 5.0)
        grant = await orch.site_media_grant("S3", 7)
        chair_feed = grant["program"]["feeds"][0]["feed_id"]
        await wait_until(
            lambda: any(lk.target_node == grant["node"] for lk in orch.cascade.links()), 5.0
        )
        pv = ViewerBot(
            JanusTarget(
                grant["ws_url"], grant["program"]["room"], grant["token"], grant["room_token"]
            ),
            chair_feed,
        )
        viewers.append(pv)
        await pv.start()
        await pv.wait_frames(5, 5.0, label="CHU TRI")
        await orch.stop_program(7)
        await wait_until(lambda: not demo.chairs, 5.0)
        # A site provisioned later is placed without moving anyone.
        relay_s1 = orch.plan.assignment["S1"]
        moves = orch.add_sites([SiteRef("S4", "01")])
        assert [(m.site, m.old) for m in moves] == [("S4", None)]
        assert orch.plan.assignment["S4"] == relay_s1
        assert (await orch.site_media_grant("S4"))["node"] == relay_s1
    finally:
        for b in viewers:
            await b.stop()
        await demo.close()
        await plane.close()
