"""Only the control plane records: a publisher asking Janus to record writes no file.

Janus 1.1.2 lets a publisher switch recording on, with its own file name, in
``publish`` and ``configure`` unless the room has ``lock_record`` and a secret,
and never checks ``lock_record`` in ``joinandconfigure`` (janus_videoroom.c). So
every diemcau room has both, and a ``rec_dir`` Janus cannot create
(`NO_RECORDING_DIR`, docs/media.md "Who may publish and watch").

Tried with sites' real grants and aiortc publishers whose media flows: ``record``
with an absolute, a bare and a climbing (``../``) file name in ``publish``,
``configure`` and ``joinandconfigure``; no file appears anywhere. Beside them, two
controls that show the check can fail: the same ``joinandconfigure`` in a room
made with ``lock_record`` alone writes its file (1.1.2's hole, the reason for the
``rec_dir``), and the control plane, with the room secret, records into a folder
it names, and the publisher can neither stop that recording nor rename its files.
And every room kind (program, chair, inspect, uplink) is made locked, the chair's
own requests to record write nothing, and no browser's token publishes into the
rooms that may record (program, inspect).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from diemcau.media.cluster import LocalCluster
from diemcau.media.control_link import NO_RECORDING_DIR
from diemcau.media.grants import ProgramWatch, SiteGrant
from diemcau.media.janus import JanusError, integer, objects
from diemcau.media.orchestrator import MediaOrchestrator, feed_id, room_id
from diemcau.media.topology import SiteRef
from diemcau.sim.janus_bots import JanusTarget, PublisherBot, ViewerBot
from tests.test_media_cascade import linked, wait_for

pytestmark = pytest.mark.media


def watched(grant: SiteGrant) -> ProgramWatch:
    """The program a site's grant watches (one runs wherever this is asked)."""
    assert grant["program"] is not None, "the grant names no program"
    return grant["program"]


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[tuple[LocalCluster, MediaOrchestrator]]:
    cluster = LocalCluster(relays=[("r1", ("01",), 10)], base_dir=tmp_path / "janus")
    await cluster.start()
    orch = MediaOrchestrator(cluster.nodes(), [SiteRef("A", "01"), SiteRef("C", "01")])
    await orch.start()
    try:
        yield cluster, orch
    finally:
        await orch.close()
        await cluster.stop()


async def _publish_a_while(
    orch: MediaOrchestrator, site: str, label: str, **fields: Any
) -> PublisherBot:
    """``site`` publishes with its own grant (and ``fields``) until a watcher decodes it."""
    grant = await orch.site_media_grant(site)
    bot = PublisherBot(JanusTarget.publish_of(grant), feed_id("site", site), label, **fields)
    await bot.start()
    watcher = ViewerBot(
        JanusTarget.watch_of(await orch.spot_check_grant(site)), feed_id("site", site)
    )
    try:
        await watcher.start()
        await watcher.wait_frames(15, 5.0, label=label)  # recorders, if any, got media
    finally:
        await watcher.stop()
    return bot


def _files(tmp_path: Path, cwd: Path, names: tuple[str, ...]) -> list[Path]:
    """Every recording under ``tmp_path``, and any file named after ``names`` there or
    in ``cwd`` (where Janus, started from here, would put a bare name)."""
    found = set(tmp_path.rglob("*.mjr*"))
    for name in names:
        found |= {*tmp_path.rglob(f"{name}*"), *cwd.glob(f"{name}*")}
    return sorted(found)


async def test_no_publisher_records_and_the_control_plane_does(
    plane: tuple[LocalCluster, MediaOrchestrator], tmp_path: Path
) -> None:
    cluster, orch = plane
    tag = secrets.token_hex(4)
    absolute = str(tmp_path / f"abs-{tag}")
    bare = f"bare-{tag}"  # would land in Janus's working folder (this one)
    climbing = "../" * 12 + str(tmp_path / f"climb-{tag}").lstrip("/")
    names = (f"abs-{tag}", bare, f"climb-{tag}")
    cwd = Path.cwd()
    try:
        bots: list[PublisherBot] = []
        # publish, then configure, with a file name of its own, from site A.
        a = await _publish_a_while(
            orch, "A", "SITE-A", publish_fields={"record": True, "filename": absolute}
        )
        bots.append(a)
        assert a.handle is not None
        for name in (climbing, bare):
            reply = await a.handle.send({"request": "configure", "record": True, "filename": name})
            assert reply.data.get("configured") == "ok"  # accepted, and ignored
        # joinandconfigure (no lock_record check in 1.1.2), from site C, three names.
        for name in (absolute, bare, climbing):
            join = {"request": "joinandconfigure", "record": True, "filename": name}
            c = await _publish_a_while(orch, "C", "SITE-C", join_fields=join)
            await c.stop()
        assert _files(tmp_path, cwd, names) == []
        for bot in bots:
            await bot.stop()

        # Control 1: a room with lock_record and a secret but no rec_dir records for
        # a publisher's joinandconfigure (why every diemcau room gets one).
        relay = cluster.processes["r1"].node
        ctl = orch.control("r1")
        hole_room = 4242
        await ctl.request(
            {
                "request": "create",
                "room": hole_room,
                "admin_key": relay.admin_key,
                "secret": "s3cret",
                "lock_record": True,
                "is_private": True,
            }
        )
        hole = str(tmp_path / f"hole-{tag}")
        bot = PublisherBot(
            JanusTarget(relay.ws_url, hole_room, relay.browser_token()),
            7,
            "HOLE",
            join_fields={"request": "joinandconfigure", "record": True, "filename": hole},
        )
        try:
            await bot.start()
            await wait_for(lambda: bool(list(tmp_path.glob(f"hole-{tag}*.mjr"))), 5, "hole")
        finally:
            await bot.stop()
            await ctl.request({"request": "destroy", "room": hole_room, "secret": "s3cret"})

        # Control 2: a publisher cannot switch its room's recording on (it has no room
        # secret); the control plane, with the secret, records site A's uplink into a
        # folder it names.
        a = await _publish_a_while(orch, "A", "SITE-A")
        folder = tmp_path / f"control-{tag}"
        try:
            assert a.handle is not None
            uplink = room_id("uplink", "A")
            switch = {"request": "enable_recording", "room": uplink}
            for secret in ({}, {"secret": "guess"}, {"secret": ctl.room_secret[:-1]}):
                with pytest.raises(JanusError):
                    await a.handle.send({**switch, "record": True, **secret})
            edit = {"request": "edit", "room": uplink, "secret": ctl.room_secret}
            await ctl.request({**edit, "new_rec_dir": str(folder)})
            await ctl.request({**switch, "secret": ctl.room_secret, "record": True})
            await wait_for(lambda: len(list(folder.glob("*.mjr"))) == 2, 5, "control recording")
            # While it records, the publisher can neither stop it nor rename its files
            # (lock_record: the room secret is asked).
            for body in ({"record": False}, {"record": True, "filename": climbing}):
                await a.handle.send({"request": "configure", **body})
            sizes = {f: f.stat().st_size for f in folder.glob("*.mjr")}
            await wait_for(
                lambda: all(f.stat().st_size > n for f, n in sizes.items()), 5, "files to grow"
            )
            await ctl.request({**switch, "secret": ctl.room_secret, "record": False})
        finally:
            await a.stop()
        # Every recording made is the control plane's or the unguarded room's.
        control, unguarded = sorted(folder.glob("*.mjr")), sorted(tmp_path.glob("hole-*.mjr"))
        assert len(control) == 2 and unguarded
        assert _files(tmp_path, cwd, names) == sorted([*control, *unguarded])
    finally:
        for name in names:
            for leftover in cwd.glob(f"{name}*"):
                leftover.unlink(missing_ok=True)


async def test_every_room_kind_is_locked_and_browsers_publish_where_nothing_records(
    plane: tuple[LocalCluster, MediaOrchestrator], tmp_path: Path
) -> None:
    """All four room kinds (program on every node, chair and inspect at central, uplink
    on the relay) and the control plane's sentinel room (on every node) are made with
    ``lock_record`` and the uncreatable ``rec_dir``; the
    chair, the other browser publisher, asks to record in its room and writes nothing;
    the rooms that may record (program, inspect) admit no browser's publish token."""
    _cluster, orch = plane
    chair = await orch.start_program("m1")
    grant_a = await orch.site_media_grant("A", "m1")
    await orch.set_inspection("m1", "A")
    central, relay = orch.central.name, "r1"
    # "diemcau": the control plane's sentinel room on every node (media/control_link.py).
    kinds = {
        central: {"program", "chair", "inspect", "diemcau"},
        relay: {"program", "uplink", "diemcau"},
    }
    for node, wanted in kinds.items():
        ctl = orch.control(node)
        listed = await ctl.request({"request": "list", "admin_key": ctl.node.admin_key})
        rooms = {str(r["description"]).split()[0]: r for r in objects(listed, "list")}
        assert set(rooms) == wanted, node
        for kind, r in rooms.items():
            assert r["lock_record"] is True and r["record"] is False, (node, kind)
            assert r.get("rec_dir") == NO_RECORDING_DIR, (node, kind, r.get("rec_dir"))
            allowed = await ctl.allowed(integer(r, "room"))
            if kind == "diemcau":  # the sentinel: nobody publishes, not even the plane
                assert allowed == set(), (node, kind)
            elif kind in ("program", "inspect"):  # remote publishers only
                assert allowed == {ctl.control_token(integer(r, "room"))}, (node, kind)
            else:  # the control plane and the room's one publisher
                assert len(allowed) == 2, (node, kind)

    # The chair's grant names central's program room: it may watch there, and not
    # publish, with either of its tokens (a program room records for real).
    program = chair["program"]["room"]
    for token in (chair["publish"]["token"], chair["room_token"]):
        intruder = PublisherBot(
            JanusTarget(chair["ws_url"], program, chair["token"], token, chair["program"]["pin"]),
            feed_id("site", "A"),
            "INTRUDER",
        )
        try:
            with pytest.raises(JanusError) as exc:
                await intruder.start(timeout=5)
            assert exc.value.code == 433
        finally:
            await intruder.stop()
    # Nor can site A, with its own grant, publish into the relay's program room.
    target = JanusTarget(
        grant_a["ws_url"], watched(grant_a)["room"], grant_a["token"],
        grant_a["publish"]["token"], watched(grant_a)["pin"],
    )  # fmt: skip
    intruder = PublisherBot(target, feed_id("site", "A"), "INTRUDER")
    try:
        with pytest.raises(JanusError) as exc:
            await intruder.start(timeout=5)
        assert exc.value.code == 433
    finally:
        await intruder.stop()

    # The chair asks to record itself in its own room: at its join, at publish, at
    # configure. Its media flows to the relay's program; no file appears.
    tag = secrets.token_hex(4)
    name = str(tmp_path / f"chair-{tag}")
    join = {"request": "joinandconfigure", "record": True, "filename": name}
    bot = PublisherBot(
        JanusTarget.publish_of(chair),
        int(chair["publish"]["feed_id"]),
        "CHAIR",
        join_fields=join,
        publish_fields={"record": True, "filename": name + "-p"},
    )
    viewer = ViewerBot(JanusTarget.program_of(grant_a), int(chair["publish"]["feed_id"]))
    try:
        await bot.start()
        assert bot.handle is not None
        reply = await bot.handle.send({"request": "configure", "record": True, "filename": name})
        assert reply.data.get("configured") == "ok"
        feed = int(chair["publish"]["feed_id"])
        await wait_for(lambda: linked(orch, relay, "m1", feed), 5, "the chair on r1")
        await viewer.start()
        await viewer.wait_frames(15, 10.0, label="CHAIR")
    finally:
        await viewer.stop()
        await bot.stop()
    assert _files(tmp_path, Path.cwd(), (f"chair-{tag}",)) == []
