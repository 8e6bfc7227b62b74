"""Media bots: frame stamps, RTP loss counting, and one real publish/subscribe."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from diemcau.media.node import LocalJanusProcess
from diemcau.sim.media_bot import (
    HEIGHT,
    JanusTarget,
    LightReceiver,
    PublisherBot,
    RtpCounter,
    ViewerBot,
    label_code,
    make_frame_luma,
    read_stamp,
)


def test_stamp_round_trips_and_corruption_is_detected() -> None:
    img = make_frame_luma(0xDEADBEEF, label_code("HN-001"), shade=90)
    luma = img[:HEIGHT]
    stamp = read_stamp(luma)
    assert stamp is not None
    assert stamp.sent_ms == 0xDEADBEEF and stamp.label == label_code("HN-001")
    # Bad input: one flipped timestamp block no longer matches its complement.
    broken = luma.copy()
    broken[0:10, 0:10] = 255 - broken[0:10, 0:10]
    assert read_stamp(broken) is None
    # Bad input: a frame too small to carry the blocks.
    assert read_stamp(luma[:20, :100]) is None


def test_site_name_drawn_below_the_stamp_leaves_it_readable() -> None:
    import numpy as np

    from diemcau.sim.media_bot import WIDTH, draw_text

    bg = np.full((HEIGHT, WIDTH), 90, dtype=np.uint8)
    draw_text(bg, "Phường Bến Nghé")
    assert (bg[60:75] == 235).any()  # the text is there
    img = make_frame_luma(42, label_code("P"), 0, bg)
    stamp = read_stamp(img[:HEIGHT])
    assert stamp is not None and stamp.sent_ms == 42


def test_rtp_counter_counts_loss_across_sequence_wrap() -> None:
    c = RtpCounter()
    for seq in [65530, 65531, 65533, 65535, 0, 1, 3]:
        c.add(1, seq, 100)
    # 65530..3 is 10 packets; 7 arrived.
    assert c.expected() == 10
    assert c.loss() == pytest.approx(0.3)
    assert c.bytes == 700


@pytest.mark.media
async def test_publisher_viewer_and_light_receiver_on_one_node(tmp_path: Path) -> None:
    proc = LocalJanusProcess.create("solo", "central", tmp_path, ice_enforce_list="jlo0")
    await proc.start()
    node = proc.node
    conn = await node.connect()
    bots: list[ViewerBot | PublisherBot] = []
    try:
        s = await conn.create_session()
        h = await s.attach("janus.plugin.videoroom")
        await h.send(
            {"request": "create", "room": 77, "admin_key": node.admin_key, "signed_tokens": True}
        )
        target = JanusTarget(node.ws_url, 77, node.browser_token(), node.room_token([77]))
        pub = PublisherBot(target, 1001, "CHAIR")
        bots.append(pub)
        await pub.start()
        viewer = ViewerBot(target, 1001)
        bots.append(viewer)
        await viewer.start()
        await viewer.wait_frames(30, 5.0, label="CHAIR")
        await viewer.wait_audio(3.0)
        assert viewer.stats.bad_frames == 0
        assert 0 <= statistics.median(viewer.stats.latencies_ms) < 500
        light = LightReceiver(target, 1001)
        bots.append(light)
        await light.start()
        await light.wait_packets(100, 5.0)
        assert light.counter.bytes > 10_000
        assert light.stats.frames == 0  # it never decodes
        # Core events reach the handle they concern: webrtcup, media, hangup.
        assert pub.handle is not None and pub.handle.state.webrtc_up
        await pub.handle.wait_event(
            lambda m: m.get("janus") == "media" and m.get("receiving") is True, 3.0
        )
        await pub.handle.hangup()
        hung = await pub.handle.wait_event(lambda m: m.get("janus") == "hangup", 3.0)
        assert hung["sender"] == pub.handle.id and pub.handle.state.hung_up
    finally:
        for b in reversed(bots):
            await b.stop()
        await conn.close()
        await proc.stop()
