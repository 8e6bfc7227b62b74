"""A site session's life from an accepted hello to its close, as presence sees it.

The server hands over a hello; the lifecycle authenticates it, registers the
session (replacing an older one of the same site), welcomes it with a session
token and the numbers of every stream it follows, marks the site online,
catches it up (`Replayer`), and, when the session ends, marks the site offline
unless a newer session already replaced it. Link reports of the live session
move it between ``online`` and ``degraded``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection

from diemcau.accounts.service import SitePrincipal, issue_session_token
from diemcau.presence.config import PresenceConfig
from diemcau.presence.credentials import CredentialCache
from diemcau.presence.follows import Follows
from diemcau.presence.protocol import Hello, LinkReport, Welcome
from diemcau.presence.registry import SessionRegistry
from diemcau.presence.replay import Replayer
from diemcau.presence.router import RequestRouter
from diemcau.presence.session import SiteSession
from diemcau.presence.state import PresenceTracker
from diemcau.presence.streams import Stream, StreamBook
from diemcau.security import Key

__all__ = ["SessionLifecycle"]

log = logging.getLogger(__name__)


class SessionLifecycle:
    """Opens and closes site sessions (the server's `SessionHost`, the sessions' events).

    Attributes:
        running: whether new sessions are accepted (set by the hub's start/stop).
        stats: counts of ``joins``, ``refused`` hellos and ``closed`` sessions.
    """

    def __init__(
        self,
        config: PresenceConfig,
        key: Key,
        clock: Callable[[], float],
        *,
        credentials: CredentialCache,
        registry: SessionRegistry,
        tracker: PresenceTracker,
        streams: StreamBook,
        follows: Follows,
        replayer: Replayer,
        router: RequestRouter,
    ) -> None:
        self.config = config
        self.key = key
        self.clock = clock
        self._credentials = credentials
        self._registry = registry
        self._tracker = tracker
        self._streams = streams
        self._follows = follows
        self._replayer = replayer
        self._router = router
        self.running = False
        self.stats: dict[str, int] = {"joins": 0, "refused": 0, "closed": 0}

    async def authenticate(self, hello: Hello) -> SitePrincipal | None:
        principal = await self._credentials.authenticate(hello.join_code, hello.token)
        if principal is None:
            self.stats["refused"] += 1
        return principal

    def new_session(self, conn: ServerConnection, principal: SitePrincipal) -> SiteSession:
        return SiteSession(
            self,
            self._router,
            conn,
            principal,
            rate=self.config.rate,
            burst=self.config.burst,
            send_buffer_bytes=self.config.send_buffer_bytes,
            offline_after_s=self.config.offline_after_s,
        )

    async def open_session(self, session: SiteSession, hello: Hello) -> None:
        """Register a session, welcome it, replay what it missed, then go live."""
        sid = session.site_id
        heartbeat_s, session.offline_after_s = self.config.timing(hello.v)
        self._registry.register(session)
        self.stats["joins"] += 1
        plan: list[tuple[Stream, int]] = [(self._streams.site(sid), 0)]
        plan += [
            (self._streams.broadcast(name), from_seq)
            for name, from_seq in self._follows.following(sid).items()
        ]
        session.write_payload(self._welcome(session, plan, hello.v, heartbeat_s))
        self._tracker.set_state(sid, "online", "resumed" if hello.resume is not None else "joined")
        await self._replayer.catch_up(session, plan, hello.resume)

    def _welcome(
        self, session: SiteSession, plan: list[tuple[Stream, int]], v: int, heartbeat_s: float
    ) -> bytes:
        cfg = self.config
        welcome = Welcome(
            v=v,
            session_token=issue_session_token(self.key, session.principal, cfg.token_ttl_s),
            token_ttl_s=cfg.token_ttl_s,
            site_id=session.site_id,
            site_code=session.principal.code,
            server_time=self.clock(),
            heartbeat_s=heartbeat_s,
            offline_after_s=session.offline_after_s,
            streams={st.seen_as: st.delivered for st, _ in plan},
        )
        return welcome.model_dump_json().encode()

    def session_closed(self, session: SiteSession, reason: str, *, detail: str = "") -> None:
        """A session ended: the site goes offline unless a newer session replaced it."""
        self.stats["closed"] += 1
        sid = session.site_id
        if self._registry.remove(session):
            self._tracker.set_state(sid, "offline", reason)
        log.debug("site %s session closed: %s (%s)", sid, reason, detail)

    def link_report(self, session: SiteSession, link: LinkReport) -> None:
        """A link report of the live session (a replaced session's reports are ignored)."""
        if self._registry.is_live(session):
            self._tracker.link_report(session.site_id, link)
