"""The light bots of the capacity benches against real Janus: they must carry real media.

bench/media_province.py reads Janus's CPU per site off `LightPublisher` and
`LightReceiver` (pre-encoded RTP sent over the negotiated SRTP session, RTP
counted off the socket, never decoded). A bot that connected but sent nothing
Janus could forward, or a counter that counted anything, would make those
figures meaningless: here the chair's light program reaches two light
two-way sites on their relay through central, each site's light uplink is a
publisher Janus forwards (a decoding viewer gets its frames), and a receiver
of a feed nobody publishes counts nothing.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator

import pytest

from diemcau.media.cluster import LocalCluster
from diemcau.media.janus import JanusError
from diemcau.media.orchestrator import MediaOrchestrator, feed_id
from diemcau.media.topology import SiteRef
from diemcau.sim.janus_bots import JanusTarget, ViewerBot
from diemcau.sim.light_publisher import LightPublisher, PreEncodedClip
from diemcau.sim.rtp_counter import LightReceiver
from diemcau.sim.swarm import run_sites, site_spec

pytestmark = pytest.mark.media

SITES = [SiteRef("A", "01"), SiteRef("B", "01")]


@pytest.fixture
async def orch() -> AsyncIterator[MediaOrchestrator]:
    cluster = LocalCluster(relays=[("r1", ("01",), 10)])
    await cluster.start()
    o = MediaOrchestrator(cluster.nodes(), SITES, sync_interval=0.2)
    try:
        await o.start()
        yield o
    finally:
        await o.close()
        await cluster.stop()


async def test_light_sites_publish_and_receive_the_light_program(orch: MediaOrchestrator) -> None:
    cg = await orch.start_program("m")
    clip = PreEncodedClip.make("CHAIR", video_bps=300_000, size=(320, 180))
    chair = LightPublisher(
        JanusTarget.publish_of(cg),
        cg["publish"]["feed_id"],
        "CHAIR",
        clip,
    )
    viewer: ViewerBot | None = None
    await chair.start()
    try:
        async with asyncio.timeout(10):
            while not any(lk.target_node == "r1" for lk in orch.cascade.links()):
                await asyncio.sleep(0.05)
        grants = {s.code: await orch.site_media_grant(s.code) for s in SITES}
        specs = [
            site_spec(code, g, chair.feed_id, publish=True, receive=True)
            for code, g in grants.items()
        ]
        out: queue.Queue[tuple[str, object]] = queue.Queue()
        result = await asyncio.wait_for(run_sites(specs, 2.0, out, settle_s=1.0), 60)
        assert out.get_nowait() == ("ready", 4)
        assert (result.publishers_up, result.receivers_up, result.silent_receivers) == (2, 2, 0)
        # Two receivers over 2 s of a clip at its nominal rate: most of it arrives,
        # and the sequence numbers say little was lost on loopback.
        assert result.received >= 0.5 * 2 * 2.0 * clip.packet_rate
        assert result.received <= result.expected
        assert result.received >= 0.9 * result.expected
        assert result.sent_packets >= 0.5 * 2 * 2.0 * result.clip_rate

        # A light uplink is real VP8: a decoding viewer on the relay gets frames of it.
        site_a = LightPublisher(
            JanusTarget(*specs[0].publish),  # type: ignore[misc]
            feed_id("site", "A"),
            "A",
            PreEncodedClip.make("A"),
        )
        await site_a.start()
        try:
            check = await orch.spot_check_grant("A")
            viewer = ViewerBot(
                JanusTarget(
                    check["ws_url"], check["subscribe"]["room"], check["token"], check["room_token"]
                ),
                check["subscribe"]["feed_id"],
            )
            await viewer.start()
            await viewer.wait_frames(3, timeout=10, label="A")
        finally:
            await site_a.stop()

        # A receiver of a feed nobody publishes is refused and counts nothing.
        ghost = LightReceiver(JanusTarget(*specs[1].program), 123_456_789)  # type: ignore[misc]
        with pytest.raises(JanusError):
            await ghost.start(timeout=3)
        await ghost.stop()
        assert ghost.counter.packets == 0
    finally:
        if viewer is not None:
            await viewer.stop()
        await chair.stop()
