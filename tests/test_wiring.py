"""The composition root: a typed runtime, and each reaction between services wired once.

The media reactions are driven here through a small stand-in orchestrator (its
registry callback and move listener are what a real one calls); the same reactions
over real Janus processes are in ``test_media_runtime.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from diemcau.command.center import CommandCenter
from diemcau.config import Settings
from diemcau.directory.credentials import SiteCredentials
from diemcau.directory.sites import SiteDirectory
from diemcau.inspection.service import InspectionService
from diemcau.media.node import JanusNode
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.media.service import NODE_ALERT, MediaPlaneService
from diemcau.media.topology import Move
from diemcau.meetings.service import MeetingService
from diemcau.presence.hub import PresenceHub
from diemcau.recording.service import RecordingService
from diemcau.store import Database
from diemcau.wiring import ProgramMedia, build_runtime
from tests.test_command_support import seed_country

NodeCallback = Callable[[JanusNode, bool], Awaitable[None]]
MoveCallback = Callable[[list[Move]], Awaitable[None]]


@dataclass
class _Registry:
    callbacks: list[NodeCallback] = field(default_factory=list)

    def on_change(self, callback: NodeCallback) -> None:
        self.callbacks.append(callback)


@dataclass
class _Orchestrator:
    """Records program calls; keeps the callbacks a real orchestrator would call."""

    registry: _Registry = field(default_factory=_Registry)
    calls: list[tuple[str, int, list[str]]] = field(default_factory=list)
    move_listeners: list[MoveCallback] = field(default_factory=list)

    def add_move_listener(self, callback: MoveCallback) -> None:
        self.move_listeners.append(callback)

    async def start_program(self, meeting_id: int) -> dict[str, Any]:
        self.calls.append(("start_program", meeting_id, []))
        return {}

    async def set_floor(self, meeting_id: int, site_codes: list[str]) -> dict[str, Any]:
        self.calls.append(("set_floor", meeting_id, site_codes))
        return {}

    async def stop_program(self, meeting_id: int) -> None:
        self.calls.append(("stop_program", meeting_id, []))


@dataclass
class _Notifier:
    sent: list[tuple[list[int], str, dict[str, Any], bool]] = field(default_factory=list)

    async def send(
        self, site_ids: Collection[int], kind: str, body: Mapping[str, Any], *, durable: bool
    ) -> None:
        self.sent.append((sorted(site_ids), kind, dict(body), durable))


@dataclass
class _Alerts:
    raised: list[tuple[str, str, str]] = field(default_factory=list)
    cleared: list[tuple[str, str]] = field(default_factory=list)

    async def raise_alert(
        self,
        kind: str,
        key: str,
        *,
        message_vi: str,
        message_en: str,
        severity: str = "warning",
        details: Mapping[str, Any] | None = None,
    ) -> object:
        self.raised.append((kind, key, severity))
        return None

    async def clear_alert(self, kind: str, key: str) -> object:
        self.cleared.append((kind, key))
        return None


def _node(name: str) -> JanusNode:
    return JanusNode(name, "relay", "ws://x", "ws://x", "s", "k", "t", provinces=("P1",))


async def test_runtime_is_typed_and_starts_its_services_in_order(tmp_path: Path) -> None:
    runtime = await build_runtime(
        Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", port=0)
    )
    try:
        assert isinstance(runtime.presence, PresenceHub)
        assert isinstance(runtime.meetings, MeetingService)
        assert isinstance(runtime.command, CommandCenter)
        assert isinstance(runtime.media_plane, MediaPlaneService)
        assert isinstance(runtime.credentials, SiteCredentials)
        # One site directory, shared by everything that reads sites.
        assert isinstance(runtime.sites, SiteDirectory)
        assert runtime.media_plane.sites is runtime.sites
        assert runtime.command.reports.sites is runtime.sites
        assert runtime.command.directives.sites is runtime.sites
        assert runtime.credentials.sites is runtime.sites
        assert isinstance(runtime.recording, RecordingService)
        assert runtime.recording.sites is runtime.sites
        assert isinstance(runtime.inspection, InspectionService)
        assert runtime.inspection.sites is runtime.sites
        # Presence first, then media: the plane restores what meetings reloaded; recording
        # after it, so it resumes live programs once the plane runs; inspection last, so it
        # stops first and tells its sites to stop publishing.
        assert list(runtime.lifecycle) == [
            runtime.presence,
            runtime.meetings,
            runtime.command,
            runtime.media_plane,
            runtime.recording,
            runtime.inspection,
        ]
        await runtime.start()
        await runtime.start()  # idempotent: nothing starts twice
        assert runtime.presence.running and runtime.media is None  # no plane configured
        await runtime.stop()
        assert not runtime.presence.running
    finally:
        await runtime.close()


async def test_program_media_forwards_only_while_a_plane_runs(db: Database) -> None:
    plane = MediaPlaneService(SiteDirectory(db))
    media = ProgramMedia(plane)
    # No plane (control only): a meeting still starts, grants the floor and ends.
    await media.start_program(1)
    await media.set_floor(1, ["A"])
    await media.stop_program(1)
    orch = _Orchestrator()
    plane.install(cast(MediaOrchestrator, orch))
    await media.start_program(7)
    await media.set_floor(7, ("A", "X"))
    await media.stop_program(7)
    assert orch.calls == [
        ("start_program", 7, []),
        ("set_floor", 7, ["A", "X"]),
        ("stop_program", 7, []),
    ]
    plane.uninstall()
    await media.set_floor(7, ["A"])
    assert len(orch.calls) == 3


async def test_node_health_raises_alerts_and_moves_reach_the_sites(db: Database) -> None:
    country = await seed_country(db)
    notifier, alerts = _Notifier(), _Alerts()
    plane = MediaPlaneService(SiteDirectory(db), notifier=notifier, alerts=alerts)
    orch = _Orchestrator()
    plane.install(cast(MediaOrchestrator, orch))
    [node_changed] = orch.registry.callbacks
    [sites_moved] = orch.move_listeners

    await node_changed(_node("relay-1"), False)
    await node_changed(_node("relay-1"), True)
    assert alerts.raised == [(NODE_ALERT, "relay-1", "critical")]
    assert alerts.cleared == [(NODE_ALERT, "relay-1")]

    moves = [
        Move("A", "relay-1", "relay-2"),
        Move("B", "relay-1", "relay-2"),
        Move("X", "relay-1", None),
        Move("nope", "relay-1", "relay-2"),  # not a site (any more): nobody to tell
    ]
    await sites_moved(moves)
    assert sorted(notifier.sent) == [
        (
            sorted([country.sites["A"], country.sites["B"]]),
            "media.moved",
            {"from": "relay-1", "to": "relay-2"},
            False,
        ),
        ([country.sites["X"]], "media.moved", {"from": "relay-1", "to": None}, False),
    ]
    await sites_moved([])
    assert len(notifier.sent) == 2

    # After the plane is stopped, a late health change raises nothing.
    await plane.stop()
    await node_changed(_node("relay-2"), False)
    assert len(alerts.raised) == 1
