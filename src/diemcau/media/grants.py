"""The media grants handed to pages and bots: what they carry, signed here.

A grant costs no round trip to Janus: its tokens are HMAC-signed with the
node's secret (`rights`), and the rooms it names were made with their allowed
lists and pins before (`rooms.make_room`). This is what keeps thousands of
grants at a meeting's start cheap (docs/media.md, "Who may publish and watch").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from diemcau.media.node import JanusNode
from diemcau.media.program import ProgramFeed
from diemcau.media.rights import Holder, core_token, publish_token, room_token
from diemcau.media.turn import IceServer, TurnServer, ice_servers

__all__ = [
    "Feed",
    "GrantSigner",
    "MediaGrant",
    "ProgramWatch",
    "SiteGrant",
    "ChairGrant",
    "Publish",
    "Tokens",
    "WallGrant",
    "WallSite",
    "WatchGrant",
]


class Tokens(TypedDict):
    """The token part of every grant (`GrantSigner.tokens`)."""

    token: str
    room_token: str
    expires_at: int
    session_expires_at: int
    ice_servers: list[IceServer]


class MediaGrant(Tokens):
    """A grant: the node to talk to, its WebSocket, the tokens."""

    node: str
    ws_url: str


class Feed(TypedDict):
    """A feed in a room: what a grant subscribes to, or calls."""

    room: int
    feed_id: int


class Publish(Feed):
    """Where a grant publishes, with the publish token the room's allowed list holds."""

    token: str


class ProgramWatch(TypedDict):
    """The program a grant watches: its room, the room's pin, the feeds to subscribe to."""

    room: int
    pin: str | None
    feeds: list[ProgramFeed]


class SiteGrant(MediaGrant):
    """A site's grant: publish its feed; watch the program while one runs."""

    publish: Publish
    program: ProgramWatch | None


class ChairGrant(MediaGrant):
    """The chair feed's grant: publish it at central; watch the program."""

    publish: Publish
    program: ProgramWatch


class WatchGrant(MediaGrant):
    """A grant to watch one site's own feed (a spot-check, an inspector's view)."""

    subscribe: Feed


class WallSite(Feed):
    """A site on a page of the video wall."""

    site: str


class WallGrant(MediaGrant):
    """A grant to watch a page of sites on one relay, at the thumbnail layer."""

    substream: int
    subscribe: list[WallSite]


@dataclass(frozen=True)
class GrantSigner:
    """Signs the parts of every grant.

    Args:
        token_ttl: lifetime of room tokens (checked when a browser joins a room).
        session_ttl: lifetime of core tokens (checked on every Janus request,
            keepalives included, so it outlasts a meeting day).
        turn: TURN servers named in ``ice_servers``, with credentials that expire
            with the core token.
    """

    token_ttl: int
    session_ttl: int
    turn: Sequence[TurnServer] = ()

    def tokens(
        self, node: JanusNode, rooms: list[int], holder: str, label: str = "staff"
    ) -> Tokens:
        """The token part of a grant: a long core token naming ``holder``, a short room
        token naming ``rooms``, TURN.

        TURN credentials (labelled with the site code, or who asked) expire with
        the core token: coturn checks them again on every allocation refresh.
        """
        now = int(time.time())
        return {
            "token": core_token(node, holder, self.session_ttl),
            "room_token": room_token(node, rooms, self.token_ttl),
            "expires_at": now + self.token_ttl,
            "session_expires_at": now + self.session_ttl,
            "ice_servers": ice_servers(self.turn, label, now + self.session_ttl),
        }

    def site(
        self,
        node: JanusNode,
        code: str,
        credential: int,
        publish: tuple[int, int],
        program: ProgramWatch | None,
    ) -> SiteGrant:
        """A site's grant: publish as its feed in its uplink room, watch ``program``.

        ``publish`` is (uplink room, feed id); ``program`` carries the program room,
        its pin and its feeds (or None).
        """
        holder = Holder.site(code, credential)
        room, feed = publish
        rooms = [room] if program is None else [room, program["room"]]
        return {
            "node": node.name,
            "ws_url": node.browser_ws_url,
            **self.tokens(node, rooms, holder, code),
            "publish": {
                "room": room,
                "feed_id": feed,
                "token": publish_token(node, room, holder),
            },
            "program": program,
        }

    def chair(
        self,
        central: JanusNode,
        meeting: str,
        publish: tuple[int, int],
        program: ProgramWatch,
        holder: str,
        generation: int = 0,
    ) -> ChairGrant:
        """The chair feed's grant at central: its publish token (of the chair room's
        current ``generation``), the program to watch."""
        room, feed = publish
        return {
            "node": central.name,
            "ws_url": central.browser_ws_url,
            **self.tokens(central, [room, program["room"]], holder, "chair"),
            "publish": {
                "room": room,
                "feed_id": feed,
                "token": publish_token(central, room, Holder.chair(meeting, generation)),
            },
            "program": program,
        }
