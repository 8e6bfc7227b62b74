"""Which links carry a floor speaker, and the forwards that feed a remote publisher.

No Janus here: the orchestrator's desired state and the forwarder requests it
builds from a feed's streams (tests/test_media_cascade.py runs them on real nodes).
"""

from __future__ import annotations

import pytest

from diemcau.media.cascade import RemoteLink
from diemcau.media.control import forward_streams
from diemcau.media.node import JanusNode
from diemcau.media.orchestrator import MediaError, MediaOrchestrator, feed_id, room_id
from diemcau.media.topology import SiteRef


def _node(name: str, role: str, provinces: tuple[str, ...] = ()) -> JanusNode:
    return JanusNode(
        name=name,
        role=role,  # type: ignore[arg-type]
        ws_url=f"ws://{name}.invalid",
        admin_ws_url=f"ws://{name}.invalid:7188",
        admin_secret="a",
        admin_key="k",
        token_secret="t",
        provinces=provinces,
    )


def _orchestrator(fanout: str) -> MediaOrchestrator:
    nodes = [_node("central", "central")] + [_node(f"r{i}", "relay", (f"0{i}",)) for i in (1, 2, 3)]
    orch = MediaOrchestrator(
        nodes,
        [SiteRef("A", "01"), SiteRef("B", "02")],
        floor_fanout=fanout,  # type: ignore[arg-type]
    )
    for node in nodes:
        orch.registry.state(node.name).up = True
    orch.plan.assignment.update({"A": "r1", "B": "r2"})
    orch.restore_program("m", ["A"])
    return orch


def test_the_speaker_relay_sends_once_and_central_forwards_to_the_others() -> None:
    orch = _orchestrator("central")
    program, uplink, feed = room_id("program", "m"), room_id("uplink", "A"), feed_id("site", "A")
    floor = {lk for lk in orch.desired_links() if lk.feed_id == feed}
    assert floor == {
        RemoteLink("r1", uplink, feed, "central", program),
        RemoteLink("r1", uplink, feed, "r1", program),
        RemoteLink("central", program, feed, "r2", program, via="forward"),
        RemoteLink("central", program, feed, "r3", program, via="forward"),
    }
    # Only one copy crosses the network from the speaker's relay (the other stays on it).
    assert [lk.target_node for lk in floor if lk.source_node == "r1"].count("central") == 1
    # A relay that is down is not a target; the speaker's relay down: no floor links.
    orch.registry.state("r3").up = False
    assert not [lk for lk in orch.desired_links() if lk.target_node == "r3"]
    orch.registry.state("r1").up = False
    assert not [lk for lk in orch.desired_links() if lk.feed_id == feed]


def test_the_earlier_layout_sends_every_copy_from_the_speaker_relay() -> None:
    orch = _orchestrator("source")
    feed = feed_id("site", "A")
    floor = [lk for lk in orch.desired_links() if lk.feed_id == feed]
    assert sorted(lk.target_node for lk in floor) == ["central", "r1", "r2", "r3"]
    assert {(lk.source_node, lk.via) for lk in floor} == {("r1", "remote")}


def test_an_unknown_fanout_is_refused() -> None:
    with pytest.raises(MediaError, match="fan-out"):
        _orchestrator("everywhere")


def test_forwards_carry_the_ssrcs_a_remote_publisher_expects() -> None:
    streams = [
        {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"},
        {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8", "simulcast": True},
        {"type": "video", "mindex": 2, "mid": "2", "codec": "vp8"},
        {"type": "data", "mindex": 3, "mid": "3"},
    ]
    assert forward_streams(streams, 40000, 40001) == [
        {"mid": "0", "port": 40000, "ssrc": 1000},
        # RTCP (keyframe requests) paired on the first video stream only;
        # simulcast layers on the same port, SSRC +1 and +2.
        {
            "mid": "1",
            "port": 40000,
            "ssrc": 1010,
            "rtcp_port": 40001,
            "port_2": 40000,
            "ssrc_2": 1011,
            "port_3": 40000,
            "ssrc_3": 1012,
        },
        {"mid": "2", "port": 40000, "ssrc": 1020},
    ]


def test_floor_speakers_and_a_recorded_spot_check_ask_for_the_high_layer() -> None:
    orch = _orchestrator("central")
    assert orch.desired_looks() == {"A": ("r1", room_id("uplink", "A"))}
    orch.meetings["m"].inspect = "B"  # set_inspection without the sync
    assert orch.desired_looks() == {
        "A": ("r1", room_id("uplink", "A")),
        "B": ("r2", room_id("uplink", "B")),
    }
    # A site whose relay is down is not looked at.
    orch.registry.state("r2").up = False
    assert set(orch.desired_looks()) == {"A"}
