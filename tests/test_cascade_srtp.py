"""Can the cascade between nodes be SRTP in Janus 1.1.2? Measured on the lab's wire: no.

Central and relay1 on the lab bridge, a publisher bot at central, and a
capture of what relay1 receives on its remote publisher's port (a raw socket
in relay1's namespace). Findings, each asserted here (docs/deploy.md §7):

1. ``publish_remotely`` (what the cascade uses) accepts ``srtp_suite`` and
   ``srtp_crypto`` without a word and sends plain RTP anyway: the capture reads
   VP8 key frames in clear, and ``listremotes`` says nothing of SRTP.
2. ``rtp_forward`` does encrypt (``listforwarders`` says ``"srtp": true``; the
   capture sees RTP headers with the remote publisher's SSRCs but no readable
   key frame), but ``add_remote_publisher`` has no SRTP option and the plugin no
   SRTP decryption, so a subscriber on relay1 decodes nothing; the same forward
   without SRTP is decoded (the setup itself works).

When a Janus with SRTP remote publishers (1.3.0 and later) is deployed, test 1
fails: that is the signal to turn SRTP on in `diemcau.media.control`.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from diemcau.lab.capture import capture_udp, clear_vp8_keyframes, rtp_ssrcs
from diemcau.lab.deployment import LabDeployment
from diemcau.lab.network import Lab
from diemcau.media.control import NodeControl
from diemcau.media.janus import objects, sign_janus_token
from diemcau.media.node import JanusNode
from diemcau.media.rights import control_token
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot
from tests.browser import lab_tls, wait_for

pytestmark = [
    pytest.mark.media,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

ROOM = 424242
FEED = 777
SRTP = {"srtp_suite": 80, "srtp_crypto": base64.b64encode(secrets.token_bytes(30)).decode()}


@dataclass
class Rig:
    lab: Lab
    central: NodeControl
    relay: NodeControl
    streams: list[dict[str, Any]]


def _target(node: JanusNode, room: int) -> JanusTarget:
    """The control plane's own way in: rooms admit only its token as a publisher."""
    token = sign_janus_token(node.token_secret, ["janus.plugin.videoroom"], 2**31)
    return JanusTarget(node.ws_url, room, token, control_token(node, room))


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(control_here=True, lans=()) as built:
        yield built


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    dep = LabDeployment(lab, tmp_path_factory.mktemp("srtp"), ca=lab_tls().ca)
    dep.prepare()
    await dep.start()
    nodes = {n.name: n for n in dep.nodes()}
    central, relay = NodeControl(nodes["central"]), NodeControl(nodes["relay1"])
    bot: PublisherBot | None = None
    try:
        await central.ensure_room(ROOM, "srtp probe")
        await relay.ensure_room(ROOM, "srtp probe")
        bot = PublisherBot(_target(nodes["central"], ROOM), FEED, "SRTP")
        await bot.start(timeout=15)

        async def streams() -> list[dict[str, Any]] | None:
            return await central.feed_streams(ROOM, FEED)

        yield Rig(lab, central, relay, await wait_for(streams, timeout=10))
    finally:
        if bot is not None:
            await bot.stop()
        await central.close()
        await relay.close()
        await dep.stop()


async def _viewer(rig: Rig, feed: int) -> ViewerBot:
    viewer = ViewerBot(_target(rig.relay.node, ROOM), feed)
    await viewer.start(timeout=15)
    return viewer


async def test_publish_remotely_ignores_srtp_and_sends_clear_rtp(rig: Rig) -> None:
    feed = FEED + 1
    port, rtcp = await rig.relay.add_remote_publisher(ROOM, feed, "remote", rig.streams)
    capture = await capture_udp(rig.lab.hosts["relay1"], [port], 4.0)
    remote_id = "srtp-probe"
    try:
        await rig.central.request(
            {
                "request": "publish_remotely",
                "room": ROOM,
                "secret": rig.central.room_secret,
                "admin_key": rig.central.node.admin_key,
                "publisher_id": FEED,
                "remote_id": remote_id,
                "host": rig.relay.node.rtp_host,
                "port": port,
                "rtcp_port": rtcp,
                **SRTP,
            }
        )
        viewer = await _viewer(rig, feed)
        try:
            await viewer.wait_frames(3, timeout=10)
        finally:
            await viewer.stop()
        listed = await rig.central.request(
            {
                "request": "listremotes",
                "room": ROOM,
                "secret": rig.central.room_secret,
                "publisher_id": FEED,
            }
        )
    finally:
        packets = await capture
        await rig.central.unpublish_remotely(ROOM, FEED, remote_id)
        await rig.relay.remove_remote_publisher(ROOM, feed)
    entry = next(r for r in objects(listed, "list") if r["remote_id"] == remote_id)
    assert "srtp" not in entry, entry
    assert clear_vp8_keyframes(packets) > 0, f"{len(packets)} packets, no clear key frame"


async def _forward(rig: Rig, feed: int, srtp: bool) -> tuple[list[bytes], int, dict[str, Any]]:
    """rtp_forward FEED to a remote publisher ``feed`` on relay1, the way publish_remotely
    addresses it; returns the captured packets, the frames a subscriber decoded, the
    forwarders listed."""
    port, rtcp = await rig.relay.add_remote_publisher(ROOM, feed, "forwarded", rig.streams)
    viewer = await _viewer(rig, feed)
    capture = await capture_udp(rig.lab.hosts["relay1"], [port], 4.0)
    streams = [
        {
            "mid": s["mid"],
            "port": port,
            "ssrc": 1000 + 10 * int(s["mindex"]),
            **({"rtcp_port": rtcp} if s["type"] == "video" else {}),
        }
        for s in rig.streams
    ]
    try:
        await rig.central.request(
            {
                "request": "rtp_forward",
                "room": ROOM,
                "secret": rig.central.room_secret,
                "admin_key": rig.central.node.admin_key,
                "publisher_id": FEED,
                "host": rig.relay.node.rtp_host,
                "streams": streams,
                **(SRTP if srtp else {}),
            }
        )
        listed = await rig.central.request(
            {"request": "listforwarders", "room": ROOM, "secret": rig.central.room_secret}
        )
    finally:
        packets = await capture
        decoded = viewer.stats.frames + viewer.stats.bad_frames
        await viewer.stop()
        for pub, stream in await rig.central.list_forwarders(ROOM):
            await rig.central.stop_forwarder(ROOM, pub, stream)
        await rig.relay.remove_remote_publisher(ROOM, feed)
    return packets, decoded, listed


async def test_srtp_forward_is_encrypted_but_no_remote_publisher_can_decrypt_it(
    rig: Rig,
) -> None:
    packets, decoded, listed = await _forward(rig, FEED + 2, srtp=True)
    forwarders = [f for p in listed["publishers"] for f in p["forwarders"]]
    assert forwarders and all(f.get("srtp") is True for f in forwarders), listed
    video_ssrc = next(1000 + 10 * int(s["mindex"]) for s in rig.streams if s["type"] == "video")
    assert rtp_ssrcs(packets).get(video_ssrc, 0) > 20, rtp_ssrcs(packets)
    assert clear_vp8_keyframes(packets) == 0
    assert decoded == 0

    # The same forward in clear reaches the subscriber: the setup is sound.
    packets, decoded, _ = await _forward(rig, FEED + 3, srtp=False)
    assert clear_vp8_keyframes(packets) > 0
    assert decoded > 0
