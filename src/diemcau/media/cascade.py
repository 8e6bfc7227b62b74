"""The cascade: VideoRoom remote publishers carrying a feed from one node's room to others.

A `RemoteLink` says "feed F in room S on node A appears as a remote publisher
in room T on node B". On B it is always ``add_remote_publisher`` with the feed's
streams in the same order as on A (B answers one RTP port and an RTCP port).
What feeds it depends on what F is on A (`RemoteLink.via`):

- ``remote``: F is a local publisher on A (a browser): A ``publish_remotely``
  to B's ports, RTCP paired so keyframe requests travel back to the source;
  torn down by ``unpublish_remotely`` on A.
- ``forward``: F is itself a remote publisher on A (a floor speaker that
  reached central). Janus 1.1.2 refuses to remotize a remote publisher, but
  it plain-``rtp_forward``s one: A forwards each stream to B's port with the
  SSRC a remote publisher expects (`control.forward_streams`), video RTCP
  paired, so a keyframe request goes B → A → the speaker's relay → browser.
  Torn down by ``stop_rtp_forward`` of the stream ids recorded at build time.

Either way ``remove_remote_publisher`` on B follows; Janus never does it for
us (a ghost publisher stays otherwise), so `Cascade` keeps the record of
every link it made, rebuilds links whose source came back, and `reconcile`
removes anything on the nodes that is not in the desired state (after a
control-plane restart), stray plain RTP forwarders included. A node sends its
own floor feeds to its own local address (no hairpin behind a 1:1 NAT).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from diemcau.media.control import NodeControl
from diemcau.media.control_link import ERR_ID_EXISTS
from diemcau.media.janus import JanusError
from diemcau.media.remote_requests import Forwarder, forward_streams
from diemcau.records import JsonObject

__all__ = ["Cascade", "LinkRecord", "LinkVia", "RemoteLink", "SyncReport"]

log = logging.getLogger(__name__)

LinkVia = Literal["remote", "forward"]
# Links of one source built at once (each is a few requests to distinct nodes).
BUILD_CONCURRENCY = 64
LISTED_WITHIN = 2.0  # seconds a new remote publisher may take to appear in its room


@dataclass(frozen=True, order=True)
class RemoteLink:
    """Feed ``feed_id`` of room ``source_room`` on ``source_node``, shown in a target room."""

    source_node: str
    source_room: int
    feed_id: int
    target_node: str
    target_room: int
    display: str = field(default="", compare=False)
    via: LinkVia = "remote"

    @property
    def remote_id(self) -> str:
        """Deterministic, so a restarted control plane recognises its own remotes."""
        return f"dc-{self.target_node}-{self.target_room}"

    @property
    def source(self) -> tuple[str, int, int]:
        return (self.source_node, self.source_room, self.feed_id)


@dataclass
class LinkRecord:
    """A link that exists on the nodes, as the control plane made or adopted it.

    ``streams`` are the feed's streams it was built with (a ``forward`` link
    downstream of it is built with the same); ``stream_ids`` the source's
    forwarder ids of a ``forward`` link.
    """

    link: RemoteLink
    port: int = 0
    rtcp_port: int = 0
    created_at: float = field(default_factory=time.time)
    streams: list[JsonObject] = field(default_factory=list)
    stream_ids: tuple[int, ...] = ()


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

    def _address_of(self, link: RemoteLink) -> str:
        """Where the source node sends the link's RTP (its own address if it is the target)."""
        if link.source_node == link.target_node:
            return self._local_of(link.target_node)
        return self._host_of(link.target_node)

    async def link(self, link: RemoteLink, streams: list[JsonObject]) -> LinkRecord:
        """Build one link (idempotent: an existing record is returned as is)."""
        if link in self.records:
            return self.records[link]
        src, dst = self._control(link.source_node), self._control(link.target_node)
        add = (link.target_room, link.feed_id, link.display, [dict(s) for s in streams])
        try:
            port, rtcp_port = await dst.add_remote_publisher(*add)
        except JanusError as exc:
            if exc.code != ERR_ID_EXISTS:
                raise
            # A ghost from an earlier build (the source republished) holds the id.
            await dst.remove_remote_publisher(link.target_room, link.feed_id)
            port, rtcp_port = await dst.add_remote_publisher(*add)
        stream_ids: tuple[int, ...] = ()
        try:
            host = self._address_of(link)
            if link.via == "forward":
                stream_ids = await src.rtp_forward(
                    link.source_room, link.feed_id, host, forward_streams(streams, port, rtcp_port)
                )
                if not stream_ids:
                    raise JanusError(0, f"no stream of feed {link.feed_id} could be forwarded")
            else:
                await src.unpublish_remotely(link.source_room, link.feed_id, link.remote_id)
                await src.publish_remotely(
                    link.source_room, link.feed_id, link.remote_id, host, port, rtcp_port
                )
        except BaseException:
            await dst.remove_remote_publisher(link.target_room, link.feed_id)
            raise
        # Janus lists a remote publisher once its thread has started, a moment
        # after answering: until then a viewer's subscribe fails ("no such feed").
        deadline = time.monotonic() + LISTED_WITHIN
        while not await self._target_has(link):
            if time.monotonic() > deadline:
                log.warning("%s: not listed on %s yet", link.remote_id, link.target_node)
                break
            await asyncio.sleep(0.01)
        record = LinkRecord(
            link, port, rtcp_port, streams=[dict(s) for s in streams], stream_ids=stream_ids
        )
        self.records[link] = record
        return record

    async def unlink(
        self, link: RemoteLink, *, source_up: bool = True, target_up: bool = True
    ) -> None:
        """Tear one link down on whichever side is still up, and forget it."""
        record = self.records.pop(link, None)
        if source_up:
            src = self._control(link.source_node)
            if link.via == "forward":
                for sid in record.stream_ids if record else ():
                    await src.stop_forwarder(link.source_room, link.feed_id, sid)
            else:
                await src.unpublish_remotely(link.source_room, link.feed_id, link.remote_id)
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

    async def _drop(self, links: Iterable[RemoteLink], report: SyncReport) -> None:
        """The source feed is gone: remove the target ends so subscribers learn it ended."""
        for lk in links:
            if lk in self.records:
                try:
                    await self.unlink(lk, source_up=False)
                    report.removed.append(lk)
                except (OSError, JanusError) as exc:
                    report.errors.append(f"unlink {lk.remote_id}: {exc}")
            report.waiting.append(lk)

    async def _build_all(
        self, links: list[RemoteLink], streams: list[JsonObject], report: SyncReport
    ) -> None:
        """Build links of one source side by side (each talks to its own target node)."""
        gate = asyncio.Semaphore(BUILD_CONCURRENCY)

        async def one(lk: RemoteLink) -> None:
            async with gate:
                try:
                    await self.link(lk, list(streams))
                    report.created.append(lk)
                except (OSError, JanusError) as exc:
                    report.errors.append(f"link {lk.remote_id} from {lk.source_node}: {exc}")

        await asyncio.gather(*(one(lk) for lk in sorted(links)))

    async def apply(self, desired: Iterable[RemoteLink]) -> SyncReport:
        """Make the links on the nodes equal ``desired`` (only healthy nodes in it).

        Links fed by a local publisher come first: a ``forward`` link needs its
        source feed to have arrived (as a remote publisher) on its source node.
        """
        want = set(desired)
        report = SyncReport()
        for lk in sorted(set(self.records) - want):
            try:
                await self.unlink(lk)
                report.removed.append(lk)
            except (OSError, JanusError) as exc:
                report.errors.append(f"unlink {lk.remote_id}: {exc}")
        groups: dict[tuple[LinkVia, tuple[str, int, int]], list[RemoteLink]] = defaultdict(list)
        for lk in want:
            groups[(lk.via, lk.source)].append(lk)
        for (via, source), links in sorted(groups.items(), key=lambda kv: kv[0][0] != "remote"):
            if via == "remote":
                await self._apply_remote(source, links, report)
            else:
                await self._apply_forward(source, links, report)
        return report

    async def _apply_remote(
        self, source: tuple[str, int, int], links: list[RemoteLink], report: SyncReport
    ) -> None:
        node, room, feed = source
        src = self._control(node)
        try:
            remotes = await src.list_remotes(room, feed)
        except (OSError, JanusError) as exc:
            report.errors.append(f"listremotes {node}/{room}/{feed}: {exc}")
            return
        if remotes is None:
            # The source feed is not there (not yet published, or gone).
            await self._drop(links, report)
            return
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
            return
        try:
            streams = await src.feed_streams(room, feed)
        except (OSError, JanusError) as exc:
            report.errors.append(f"streams of {node}/{room}/{feed}: {exc}")
            return
        if streams is None:
            report.waiting.extend(missing)
            return
        for lk in missing:
            self.records.pop(lk, None)
        await self._build_all(missing, streams, report)

    async def _upstream_streams(self, node: str, room: int, feed: int) -> list[JsonObject] | None:
        """The streams of a feed that reached ``node``/``room`` by a ``remote`` link."""
        for rec in self.records.values():
            lk = rec.link
            if lk.via == "remote" and (lk.target_node, lk.target_room, lk.feed_id) == (
                node,
                room,
                feed,
            ):
                if rec.streams:
                    return rec.streams
                # Adopted after a restart: read them from the feed's own room.
                return await self._control(lk.source_node).feed_streams(lk.source_room, feed)
        return None

    async def _apply_forward(
        self, source: tuple[str, int, int], links: list[RemoteLink], report: SyncReport
    ) -> None:
        node, room, feed = source
        src = self._control(node)
        try:
            parts = await src.participants(room)
            forwarders = [f for f in await src.forwarders(room) if f.publisher_id == feed]
        except (OSError, JanusError) as exc:
            report.errors.append(f"forwarders of {node}/{room}/{feed}: {exc}")
            return
        if not any(int(p["id"]) == feed and p.get("remote") for p in parts):
            # The feed has not reached the source yet, or left it (its forwarders
            # went with it).
            await self._drop(links, report)
            return
        await self._adopt_forwards(links, forwarders, report)
        live = {f.stream_id for f in forwarders}
        missing = [
            lk
            for lk in links
            if lk not in self.records
            or not self.records[lk].stream_ids
            or not set(self.records[lk].stream_ids) <= live
        ]
        for lk in missing:
            self.records.pop(lk, None)
        # Forwarders of this feed no record accounts for (half-built links, or
        # links no longer told apart after a restart) would keep sending: stop them.
        owned = {sid for rec in self.records.values() for sid in rec.stream_ids}
        for sid in sorted(live - owned):
            await src.stop_forwarder(room, feed, sid)
        if not missing:
            return
        try:
            streams = await self._upstream_streams(node, room, feed)
        except (OSError, JanusError) as exc:
            report.errors.append(f"streams of {feed} on {node}: {exc}")
            return
        if streams is None:
            report.waiting.extend(missing)
            return
        await self._build_all(missing, streams, report)

    async def _adopt_forwards(
        self, links: list[RemoteLink], forwarders: list[Forwarder], report: SyncReport
    ) -> None:
        """Adopt ``forward`` links an earlier control plane made, when recognisable."""
        if all(lk in self.records for lk in links):
            return
        owned = {sid for rec in self.records.values() for sid in rec.stream_ids}
        free = [f for f in forwarders if f.stream_id not in owned]
        for lk, ids in self._pair_forwarders(links, free).items():
            if lk not in self.records and await self._target_has(lk):
                self.records[lk] = LinkRecord(lk, stream_ids=ids)
                report.adopted.append(lk)

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
            if lk.via == "remote":
                wanted_remote_ids[lk.source].add(lk.remote_id)
        forwards = [lk for lk in want if lk.via == "forward"]
        seen_targets: set[tuple[str, int, int]] = set()
        seen_remotes: dict[tuple[str, int, int], set[str]] = {}
        paired: dict[RemoteLink, tuple[int, ...]] = {}
        for node in nodes:
            ctl = self._control(node)
            try:
                node_rooms = rooms.get(node) or set(await ctl.rooms())
                for room in sorted(node_rooms):
                    try:
                        parts = await ctl.participants(room)
                    except JanusError:
                        continue
                    found = await ctl.forwarders(room)
                    here = [lk for lk in forwards if lk.source[:2] == (node, room)]
                    kept = self._pair_forwarders(here, found)
                    paired.update(kept)
                    keep_ids = {sid for ids in kept.values() for sid in ids}
                    for f in found:
                        if f.stream_id not in keep_ids:
                            await ctl.stop_forwarder(room, f.publisher_id, f.stream_id)
                            report.orphans_removed.append(
                                f"forwarder {f.stream_id} of {f.publisher_id} in {node}/{room}"
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
                        kept_ids: set[str] = set()
                        for rid in await ctl.list_remotes(room, pid) or []:
                            if rid in wanted_remote_ids.get((node, room, pid), set()):
                                kept_ids.add(rid)
                            else:
                                await ctl.unpublish_remotely(room, pid, rid)
                                report.orphans_removed.append(f"{rid} of {pid} in {node}/{room}")
                        seen_remotes[(node, room, pid)] = kept_ids
            except (OSError, JanusError) as exc:
                report.errors.append(f"reconcile {node}: {exc}")
        # Adopt links intact at both ends; the rest is rebuilt by apply().
        for lk in sorted(want):
            target = (lk.target_node, lk.target_room, lk.feed_id) in seen_targets
            if lk.via == "forward":
                both = target and lk in paired
            else:
                both = target and lk.remote_id in seen_remotes.get(lk.source, set())
            if both and lk not in self.records:
                self.records[lk] = LinkRecord(lk, stream_ids=paired.get(lk, ()))
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

    def _pair_forwarders(
        self, links: list[RemoteLink], forwarders: list[Forwarder]
    ) -> dict[RemoteLink, tuple[int, ...]]:
        """Which existing forwarders feed which desired ``forward`` link.

        Janus does not say which remote publisher a forwarder feeds, only the
        address: a link is recognised when its target node is the only one of
        the feed's targets with that RTP address and one port there is fed.
        Relays sharing an address (a local cluster) are not told apart: their
        forwarders are removed and the links rebuilt.
        """
        out: dict[RemoteLink, tuple[int, ...]] = {}
        for lk in links:
            host = self._address_of(lk)
            same_host = [o for o in links if o.feed_id == lk.feed_id]
            if sum(1 for o in same_host if self._address_of(o) == host) != 1:
                continue
            mine = [f for f in forwarders if f.publisher_id == lk.feed_id and f.host == host]
            if len({f.port for f in mine}) == 1:
                out[lk] = tuple(f.stream_id for f in mine)
        return out
