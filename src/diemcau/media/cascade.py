"""The cascade: VideoRoom remote publishers carrying a feed from one node's room to others.

A `RemoteLink` says "feed F in room S on node A appears as a remote publisher
in room T on node B". Building one takes two requests (docs/media.md): on B
``add_remote_publisher`` with the feed's streams in the same order as on A
(B answers one RTP port and an RTCP port), then on A ``publish_remotely`` to
those ports, RTCP paired so keyframe requests travel back to the source.
Tearing one down is ``unpublish_remotely`` on A, then
``remove_remote_publisher`` on B; Janus never does it for us (a ghost
publisher stays otherwise), so `Cascade` keeps the record of every link it
made, rebuilds links whose source came back, and `reconcile` removes anything
on the nodes that is not in the desired state (after a control-plane restart),
plain RTP forwarders included (diemcau makes none).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from diemcau.media.control import NodeControl
from diemcau.media.janus import JanusError

__all__ = ["Cascade", "LinkRecord", "RemoteLink", "SyncReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class RemoteLink:
    """Feed ``feed_id`` of room ``source_room`` on ``source_node``, shown in a target room."""

    source_node: str
    source_room: int
    feed_id: int
    target_node: str
    target_room: int
    display: str = field(default="", compare=False)

    @property
    def remote_id(self) -> str:
        """Deterministic, so a restarted control plane recognises its own remotes."""
        return f"dc-{self.target_node}-{self.target_room}"

    @property
    def source(self) -> tuple[str, int, int]:
        return (self.source_node, self.source_room, self.feed_id)


@dataclass
class LinkRecord:
    """A link that exists on the nodes, as the control plane made or adopted it."""

    link: RemoteLink
    port: int = 0
    rtcp_port: int = 0
    created_at: float = field(default_factory=time.time)


@dataclass
class SyncReport:
    """What one pass changed."""

    created: list[RemoteLink] = field(default_factory=list)
    removed: list[RemoteLink] = field(default_factory=list)
    waiting: list[RemoteLink] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)
    adopted: list[RemoteLink] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Cascade:
    """The control plane's record of remote publishers, and the code that keeps it true.

    Args:
        control: the `NodeControl` of a node by name.
        host_of: the address other nodes send a node RTP to (``JanusNode.rtp_host``).
        local_of: the address a node sends itself RTP to (a feed shown in another
            room of the same node): its own interface's, since a node behind a 1:1
            NAT cannot reach its public address from inside (no hairpin).
    """

    def __init__(
        self,
        control: Callable[[str], NodeControl],
        host_of: Callable[[str], str],
        local_of: Callable[[str], str] | None = None,
    ) -> None:
        self._control = control
        self._host_of = host_of
        self._local_of = local_of or host_of
        self.records: dict[RemoteLink, LinkRecord] = {}

    def links(self) -> set[RemoteLink]:
        return set(self.records)

    async def link(self, link: RemoteLink, streams: list[dict[str, object]]) -> LinkRecord:
        """Build one link (idempotent: an existing record is returned as is)."""
        if link in self.records:
            return self.records[link]
        src, dst = self._control(link.source_node), self._control(link.target_node)
        # A ghost from an earlier build (source republished) would refuse the id.
        await dst.remove_remote_publisher(link.target_room, link.feed_id)
        port, rtcp_port = await dst.add_remote_publisher(
            link.target_room, link.feed_id, link.display, [dict(s) for s in streams]
        )
        try:
            await src.unpublish_remotely(link.source_room, link.feed_id, link.remote_id)
            await src.publish_remotely(
                link.source_room,
                link.feed_id,
                link.remote_id,
                (self._local_of if link.source_node == link.target_node else self._host_of)(
                    link.target_node
                ),
                port,
                rtcp_port,
            )
        except BaseException:
            await dst.remove_remote_publisher(link.target_room, link.feed_id)
            raise
        record = LinkRecord(link, port, rtcp_port)
        self.records[link] = record
        return record

    async def unlink(
        self, link: RemoteLink, *, source_up: bool = True, target_up: bool = True
    ) -> None:
        """Tear one link down on whichever side is still up, and forget it."""
        self.records.pop(link, None)
        if source_up:
            await self._control(link.source_node).unpublish_remotely(
                link.source_room, link.feed_id, link.remote_id
            )
        if target_up:
            await self._control(link.target_node).remove_remote_publisher(
                link.target_room, link.feed_id
            )

    async def node_lost(self, node: str, is_up: Callable[[str], bool]) -> list[RemoteLink]:
        """A node died (its Janus state is gone): clean the other ends of its links."""
        lost = [lk for lk in self.records if node in (lk.source_node, lk.target_node)]
        for lk in lost:
            try:
                await self.unlink(
                    lk,
                    source_up=lk.source_node != node and is_up(lk.source_node),
                    target_up=lk.target_node != node and is_up(lk.target_node),
                )
            except (OSError, JanusError) as exc:
                log.warning("cleaning %s after %s went down: %s", lk, node, exc)
        return lost

    def forget_node(self, node: str) -> None:
        """Drop records touching ``node`` without talking to it (it restarted empty)."""
        for lk in [lk for lk in self.records if node in (lk.source_node, lk.target_node)]:
            del self.records[lk]

    async def _target_has(self, link: RemoteLink) -> bool:
        try:
            parts = await self._control(link.target_node).participants(link.target_room)
        except JanusError:
            return False
        return any(int(p["id"]) == link.feed_id and p.get("remote") for p in parts)

    async def apply(self, desired: Iterable[RemoteLink]) -> SyncReport:
        """Make the links on the nodes equal ``desired`` (only healthy nodes in it)."""
        want = set(desired)
        report = SyncReport()
        for lk in sorted(set(self.records) - want):
            try:
                await self.unlink(lk)
                report.removed.append(lk)
            except (OSError, JanusError) as exc:
                report.errors.append(f"unlink {lk.remote_id}: {exc}")
        by_source: dict[tuple[str, int, int], list[RemoteLink]] = defaultdict(list)
        for lk in want:
            by_source[lk.source].append(lk)
        for (node, room, feed), links in sorted(by_source.items()):
            src = self._control(node)
            try:
                remotes = await src.list_remotes(room, feed)
            except (OSError, JanusError) as exc:
                report.errors.append(f"listremotes {node}/{room}/{feed}: {exc}")
                continue
            if remotes is None:
                # The source feed is not there (not yet published, or gone):
                # drop stale remote publishers so subscribers learn it ended.
                for lk in links:
                    if lk in self.records:
                        try:
                            await self.unlink(lk, source_up=False)
                            report.removed.append(lk)
                        except (OSError, JanusError) as exc:
                            report.errors.append(f"unlink {lk.remote_id}: {exc}")
                    report.waiting.append(lk)
                continue
            missing = []
            for lk in links:
                if lk.remote_id not in remotes:
                    missing.append(lk)
                elif lk not in self.records:
                    # Made by an earlier control plane: adopt it if the target end
                    # is there too, so viewers are not interrupted.
                    if await self._target_has(lk):
                        self.records[lk] = LinkRecord(lk)
                        report.adopted.append(lk)
                    else:
                        missing.append(lk)
            if not missing:
                continue
            try:
                streams = await src.feed_streams(room, feed)
            except (OSError, JanusError) as exc:
                report.errors.append(f"streams of {node}/{room}/{feed}: {exc}")
                continue
            if streams is None:
                report.waiting.extend(missing)
                continue
            for lk in sorted(missing):
                self.records.pop(lk, None)
                try:
                    await self.link(lk, list(streams))
                    report.created.append(lk)
                except (OSError, JanusError) as exc:
                    report.errors.append(f"link {lk.remote_id} from {node}: {exc}")
        return report

    async def reconcile(
        self, desired: Iterable[RemoteLink], nodes: Iterable[str], rooms: dict[str, set[int]]
    ) -> SyncReport:
        """Compare what the nodes hold with ``desired``; remove the rest, adopt, rebuild.

        Args:
            desired: every link that should exist.
            nodes: the healthy nodes to inspect.
            rooms: per node, the rooms to inspect (every room found there if absent).
        """
        want = set(desired)
        report = SyncReport()
        by_target = {(lk.target_node, lk.target_room, lk.feed_id): lk for lk in want}
        wanted_remote_ids: dict[tuple[str, int, int], set[str]] = defaultdict(set)
        for lk in want:
            wanted_remote_ids[lk.source].add(lk.remote_id)
        seen_targets: set[tuple[str, int, int]] = set()
        seen_remotes: dict[tuple[str, int, int], set[str]] = {}
        for node in nodes:
            ctl = self._control(node)
            try:
                node_rooms = rooms.get(node) or set(await ctl.rooms())
                for room in sorted(node_rooms):
                    try:
                        parts = await ctl.participants(room)
                    except JanusError:
                        continue
                    for pub, stream in await ctl.list_forwarders(room):
                        await ctl.stop_forwarder(room, pub, stream)
                        report.orphans_removed.append(
                            f"forwarder {stream} of {pub} in {node}/{room}"
                        )
                    for p in parts:
                        pid = int(p["id"])
                        if p.get("remote"):
                            if (node, room, pid) in by_target:
                                seen_targets.add((node, room, pid))
                            else:
                                await ctl.remove_remote_publisher(room, pid)
                                report.orphans_removed.append(f"remote {pid} in {node}/{room}")
                            continue
                        if not p.get("publisher"):
                            continue
                        kept: set[str] = set()
                        for rid in await ctl.list_remotes(room, pid) or []:
                            if rid in wanted_remote_ids.get((node, room, pid), set()):
                                kept.add(rid)
                            else:
                                await ctl.unpublish_remotely(room, pid, rid)
                                report.orphans_removed.append(f"{rid} of {pid} in {node}/{room}")
                        seen_remotes[(node, room, pid)] = kept
            except (OSError, JanusError) as exc:
                report.errors.append(f"reconcile {node}: {exc}")
        # Adopt links intact at both ends; the rest is rebuilt by apply().
        for lk in sorted(want):
            both = (lk.target_node, lk.target_room, lk.feed_id) in seen_targets and (
                lk.remote_id in seen_remotes.get(lk.source, set())
            )
            if both and lk not in self.records:
                self.records[lk] = LinkRecord(lk)
                report.adopted.append(lk)
            elif not both:
                self.records.pop(lk, None)
        # An adopted link whose target end vanished is rebuilt by apply().
        applied = await self.apply(want)
        report.created += applied.created
        report.removed += applied.removed
        report.waiting += applied.waiting
        report.adopted += applied.adopted
        report.errors += applied.errors
        return report
