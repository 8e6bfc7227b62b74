"""`PresenceHub`: every site's live session, presence state and lossless delivery.

This is the service other packages use (interface pinned in the team's hub
brief and docs/protocol.md): meetings and command send to sites and broadcast
to streams, register handlers for site requests, and listen to presence
transitions; the staff stream shows it all live.

Design (DESIGN.md §4): the site socket is served by `websockets` directly on
its own port in the same event loop as the HTTP app; a broadcast is encoded
once and the same frame bytes are written to every follower; per-site sends
and broadcast streams each have their own sequence numbers, so a reconnecting
site resumes every stream it follows without loss. Presence lives in memory;
transitions are written to the session log in batches.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import delete, insert, select

from diemcau.accounts.service import SitePrincipal, issue_session_token
from diemcau.errors import DomainError, Invalid
from diemcau.presence.credentials import CredentialCache, SiteInfo
from diemcau.presence.health import DEFAULT_THRESHOLDS, LinkThresholds
from diemcau.presence.models import EVENTS_TABLE, FOLLOWS_TABLE, PresenceFollow
from diemcau.presence.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    SITE_STREAM,
    CloseCode,
    Hello,
    LinkReport,
    Reply,
    ReplyError,
    Request,
    Welcome,
    control_frame,
    encode_body,
    msg_frame,
    valid_stream_name,
    ws_text_frame,
)
from diemcau.presence.session import SiteSession
from diemcau.presence.staff import StaffFeed
from diemcau.presence.streams import (
    MessageWriter,
    Outgoing,
    Stream,
    load_stream_seqs,
    replay_from_db,
    site_stream_key,
    stored_msg_ids,
)
from diemcau.store import Database
from diemcau.tasks import cancel_and_wait, run_to_end

__all__ = [
    "PresenceHub",
    "PresenceConfig",
    "SiteState",
    "PresenceChange",
    "StateName",
    "MessageHandler",
    "PresenceListener",
]

log = logging.getLogger(__name__)

StateName = Literal["online", "degraded", "offline"]
# Transitions kept in memory while the store refuses them (~40 per site of vn-legacy).
_LOG_BACKLOG_MAX = 500_000
# Calls of one async listener running at once; the others wait their turn, in order.
# A mass drop or reconnect is thousands of transitions within a second: started all at
# once, a listener that touches the store per transition took every pooled connection
# for tens of seconds (checkouts timed out after 30 s, SQLite answered "database is
# locked"), and every other store user (attendance, the session log) failed with it.
# Below the SQLite pool's 15 connections, so one listener never holds them all.
LISTENER_CONCURRENCY = 8
# How long `stop` lets listener calls and loop steps already running finish.
_STOP_GRACE_S = 10.0
MessageHandler = Callable[[SitePrincipal, Mapping[str, Any]], Awaitable[Mapping[str, Any] | None]]


@dataclass(frozen=True)
class PresenceConfig:
    """Knobs of the hub; the defaults are the product's.

    Attributes:
        host: bind address of the site socket (loopback by default).
        port: its port; 0 picks a free one (tests), see `PresenceHub.port`.
        path: the WebSocket path sites connect to.
        public_url: the ``ws://`` URL sites are told (empty: derived from host/port).
        heartbeat_s: how often a site sends ``hb``.
        offline_after_s: silence after which a site is shown offline (issue: ≤ 3 s).
        sweep_s: how often silence is checked (adds to the detection time).
        hello_timeout_s: time allowed between connect and hello.
        token_ttl_s: lifetime of the resume/session token in the welcome.
        rate, burst: inbound messages per second per site (`RateLimiter`).
        send_buffer_bytes: unread bytes a site may have before it is closed as a slow reader.
        ring_size: recent messages kept in memory per stream for resumes.
        replay_limit: at most this many missed messages per stream are replayed;
            beyond it the site gets ``reset`` and resyncs over HTTP.
        persist_interval_s: how often transitions are flushed to the session log.
        credential_poll_s: how often rotations/revocations are looked for (0: never).
        tick_s: how often the server writes a ``tick`` to every site (server liveness).
        staff_batch_s: coalescing window of the staff stream.
        thresholds: link-health limits for ``degraded``.
        tune_gc: at start, move every object alive (modules, the app, caches) to the
            collector's permanent generation and raise the collection thresholds to
            (10,000, 10, 10). Measured: with the defaults a national join of 10,799
            sites ran 20+ full collections of growing size (pauses up to seconds),
            each stalling joins and broadcasts; with these, at most one or two.
            Steady-state garbage is freed by reference counting, and young cycles by
            the cheap generations, so memory stays bounded. Process-wide, so only the
            server's own wiring (`presence.runtime.attach`) turns it on.
    """

    host: str = "127.0.0.1"
    port: int = 8081
    path: str = "/site"
    public_url: str = ""
    heartbeat_s: float = 1.0
    offline_after_s: float = 2.5
    sweep_s: float = 0.25
    hello_timeout_s: float = 10.0
    token_ttl_s: int = 3600
    rate: float = 20.0
    burst: float = 60.0
    send_buffer_bytes: int = 1 << 20
    ring_size: int = 256
    replay_limit: int = 5000
    persist_interval_s: float = 0.5
    credential_poll_s: float = 5.0
    tick_s: float = 5.0
    staff_batch_s: float = 0.25
    thresholds: LinkThresholds = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    tune_gc: bool = False


@dataclass(frozen=True, slots=True)
class SiteState:
    """A site's presence as the hub knows it now.

    Attributes:
        state: ``online``, ``degraded`` (link below thresholds) or ``offline``.
        reason: why (``joined``, ``loss 7.5% > 5%``, ``heartbeat_timeout`` ...).
        since: when the site entered `state` (UTC).
        link: the latest link report, if any.
    """

    site_id: int
    state: StateName
    reason: str
    since: datetime
    link: LinkReport | None = None
    province_id: int | None = None


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """One presence transition, given to every listener."""

    site_id: int
    old: StateName
    new: StateName
    reason: str
    at: datetime
    province_id: int | None = None


PresenceListener = Callable[[PresenceChange], Awaitable[None] | None]


class PresenceHub:
    """Live site sessions, presence, lossless delivery and the staff live view.

    Args:
        db: the store (messages, follows and the session log are kept there).
        key: the instance HMAC key (site credentials and tokens).
        config: knobs, see `PresenceConfig`.
        clock: wall clock in seconds (times shown and stored).
    """

    def __init__(
        self,
        db: Database,
        key: bytes,
        config: PresenceConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.key = key
        self.config = config or PresenceConfig()
        self.clock = clock
        self.credentials = CredentialCache(db, key)
        self.staff = StaffFeed(self)
        self._live: dict[int, SiteSession] = {}
        self._states: dict[int, SiteState] = {}
        self._site_streams: dict[int, Stream] = {}
        self._streams: dict[str, Stream] = {}
        self._stored_seqs: dict[str, int] = {}
        self._followers: dict[str, set[int]] = {}
        self._follows_of: dict[int, dict[str, int]] = {}
        self._handlers: dict[str, MessageHandler] = {}
        self._listeners: list[tuple[PresenceListener, asyncio.Semaphore]] = []
        self._pending_ids: set[tuple[str, str]] = set()
        self._log_rows: list[dict[str, Any]] = []
        self._follow_lock = asyncio.Lock()
        self._writer = MessageWriter(db, self._fanout)
        self._tasks: list[asyncio.Task[None]] = []
        self._callbacks: set[asyncio.Task[Any]] = set()
        self._server: Any = None
        self._started_at = datetime.fromtimestamp(clock(), UTC)
        self._last_sweep = 0.0
        self._stalls: deque[tuple[float, float]] = deque()
        self.running = False
        self.stats: dict[str, int] = {"joins": 0, "refused": 0, "closed": 0}

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load caches and state from the store, then open the site socket."""
        from diemcau.presence.server import PresenceServer

        await self.credentials.load()
        self._stored_seqs = await load_stream_seqs(self.db)
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(PresenceFollow.stream, PresenceFollow.site_id, PresenceFollow.from_seq)
                )
            ).all()
        for stream, site_id, from_seq in rows:
            self._followers.setdefault(stream, set()).add(site_id)
            self._follows_of.setdefault(site_id, {})[stream] = from_seq
        self._started_at = datetime.fromtimestamp(self.clock(), UTC)
        self._writer.start()
        self.running = True
        self._server = PresenceServer(self)
        await self._server.start()
        if self.config.tune_gc:
            gc.collect()
            gc.freeze()
            gc.set_threshold(10_000, 10, 10)
        loops: list[tuple[str, Callable[[], Awaitable[None]], float]] = [
            ("sweep", self._sweep_once, self.config.sweep_s),
            ("persist", self._persist_once, self.config.persist_interval_s),
            ("tick", self._tick_once, self.config.tick_s),
            ("staff", self.staff.flush, self.config.staff_batch_s),
        ]
        if self.config.credential_poll_s > 0:
            loops.append(("credentials", self._poll_credentials, self.config.credential_poll_s))
        for name, fn, period in loops:
            self._tasks.append(
                asyncio.create_task(self._every(period, fn), name=f"presence-{name}")
            )

    async def stop(self) -> None:
        """Close every session (``server_shutdown``), store what is pending, stop."""
        if not self.running:
            return
        self.running = False
        for task in self._tasks:
            await cancel_and_wait(task, _STOP_GRACE_S)
        self._tasks.clear()
        for session in list(self._live.values()):
            session.close(CloseCode.GOING_AWAY, "server shutting down")
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self._writer.stop()
        await self._persist_once()
        await self.staff.close_all()
        await self._drain_listeners()

    async def _drain_listeners(self) -> None:
        """Let listener calls already running end; the queued ones are dropped.

        Never cancel a call in the middle of a store call: a cancel that lands in the
        pool's reset of a connection makes SQLAlchemy log "Exception during reset",
        invalidate the connection, and with aiosqlite leaves a close that waits for a
        worker thread that has already stopped, a task that never ends, so
        ``asyncio.run`` waits for it forever at exit (and the process ignores SIGTERM:
        its handler only sets the stop event again). Calls still waiting for their turn
        see `running` false and return without calling the listener: every consumer
        service is stopped before the hub (the runtime stops presence last).
        """
        pending = set(self._callbacks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=_STOP_GRACE_S)
        for task in pending:
            log.error("presence listener call still running at stop: cancelled")
            await cancel_and_wait(task)

    @property
    def port(self) -> int:
        """The bound port of the site socket (after `start`)."""
        return int(self._server.port) if self._server is not None else self.config.port

    @property
    def url(self) -> str:
        """The URL site terminals connect to."""
        if self.config.public_url:
            return self.config.public_url
        return f"ws://{self.config.host}:{self.port}{self.config.path}"

    async def _every(self, period: float, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` every `period`; a stop (cancel) ends the loop between steps only.

        A step is never cut short: a session-log write cancelled mid-insert lost its rows
        (they were taken out of the buffer) and, like any store call cancelled half-way,
        could wedge its connection (see `_drain_listeners`).
        """
        while True:
            await asyncio.sleep(period)
            try:
                await run_to_end(fn(), grace=_STOP_GRACE_S)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("presence background step %s failed", fn.__name__)

    # --- server -> site delivery -------------------------------------------------------------

    def _site_stream(self, site_id: int) -> Stream:
        st = self._site_streams.get(site_id)
        if st is None:
            key = site_stream_key(site_id)
            st = Stream(
                key,
                SITE_STREAM,
                self.config.ring_size,
                site_id=site_id,
                seq=self._stored_seqs.pop(key, 0),
            )
            self._site_streams[site_id] = st
        return st

    def _broadcast_stream(self, name: str) -> Stream:
        st = self._streams.get(name)
        if st is None:
            st = Stream(name, name, self.config.ring_size, seq=self._stored_seqs.pop(name, 0))
            self._streams[name] = st
        return st

    def _encode(self, kind: str, body: Mapping[str, Any]) -> str:
        if not kind or len(kind) > 64:
            raise Invalid("message kind must be 1-64 characters", code="bad_kind")
        try:
            body_json = encode_body(body)
        except (TypeError, ValueError) as exc:
            raise Invalid(f"message body is not JSON-serialisable: {exc}") from exc
        if len(body_json.encode()) > MAX_MESSAGE_BYTES - 512:
            raise Invalid(
                f"message body over {MAX_MESSAGE_BYTES - 512} bytes", code="message_too_big"
            )
        return body_json

    async def send(
        self,
        site_ids: Collection[int],
        kind: str,
        body: Mapping[str, Any],
        *,
        msg_id: str | None = None,
        durable: bool = True,
    ) -> None:
        """Send one message to each site on its own stream (per-site sequence numbers).

        Durable messages are stored before this returns and replayed on resume; a
        repeated `msg_id` for a site that already has it is skipped (idempotent
        retries). ``durable=False`` messages are live-only: sent to connected sites
        with ``seq: null``, never stored nor replayed.

        Raises:
            Invalid: bad kind, body not JSON, or over the size limit.
        """
        body_json = self._encode(kind, body)
        ids = sorted(set(site_ids))
        at = self.clock()
        mid = msg_id or uuid.uuid4().hex
        if not durable:
            payload = msg_frame(SITE_STREAM, None, mid, kind, at, body_json)
            frame = ws_text_frame(payload)
            for sid in ids:
                session = self._live.get(sid)
                if session is not None:
                    session.write_frame(frame)
            return
        streams = [self._site_stream(sid) for sid in ids]
        if msg_id is not None:
            streams = await self._without_duplicates(streams, msg_id)
        if not streams:
            return
        items = []
        for st in streams:
            st.seq += 1
            items.append(Outgoing(st, st.seq, mid, kind, body_json, at))
        await self._submit(items)

    async def broadcast(
        self,
        stream: str,
        kind: str,
        body: Mapping[str, Any],
        *,
        durable: bool = True,
        msg_id: str | None = None,
    ) -> int:
        """Send one message to every follower of `stream`, encoded once.

        Returns the stream's sequence number of the message (for a repeated
        `msg_id`, the number it got the first time; for ``durable=False``, the
        stream's current number, unchanged: live-only messages carry ``seq: null``).

        Raises:
            Invalid: bad stream name, kind, body, or over the size limit.
        """
        if not valid_stream_name(stream):
            raise Invalid(f"invalid stream name '{stream[:100]}'", code="bad_stream")
        body_json = self._encode(kind, body)
        st = self._broadcast_stream(stream)
        at = self.clock()
        mid = msg_id or uuid.uuid4().hex
        if not durable:
            frame = ws_text_frame(msg_frame(stream, None, mid, kind, at, body_json))
            for sid in self._followers.get(stream, ()):
                session = self._live.get(sid)
                if session is not None:
                    session.write_frame(frame)
            return st.seq
        if msg_id is not None:
            if not await self._without_duplicates([st], msg_id):
                return await self._seq_of(st, msg_id)
        st.seq += 1
        seq = st.seq
        await self._submit([Outgoing(st, seq, mid, kind, body_json, at)])
        return seq

    async def _seq_of(self, st: Stream, msg_id: str) -> int:
        from diemcau.presence.models import PresenceMessage

        async with self.db.session() as s:
            seq = await s.scalar(
                select(PresenceMessage.seq).where(
                    PresenceMessage.stream == st.key, PresenceMessage.msg_id == msg_id
                )
            )
        return int(seq or st.delivered)

    async def _without_duplicates(self, streams: list[Stream], msg_id: str) -> list[Stream]:
        fresh = [st for st in streams if (st.key, msg_id) not in self._pending_ids]
        stored = await stored_msg_ids(self.db, [st.key for st in fresh], msg_id)
        fresh = [
            st for st in fresh if st.key not in stored and (st.key, msg_id) not in self._pending_ids
        ]
        return fresh

    async def _submit(self, items: list[Outgoing]) -> None:
        keys = [(o.stream.key, o.msg_id) for o in items]
        self._pending_ids.update(keys)
        try:
            await self._writer.submit(items)
        finally:
            self._pending_ids.difference_update(keys)

    def _fanout(self, items: list[Outgoing]) -> None:
        """Called by the writer after a commit, in numbering order."""
        live = self._live
        for o in items:
            st = o.stream
            st.remember(o.seq, o.payload)
            if st.site_id is not None:
                session = live.get(st.site_id)
                if session is not None:
                    session.deliver(SITE_STREAM, o.seq, ws_text_frame(o.payload))
                continue
            frame = ws_text_frame(o.payload)
            for sid in self._followers.get(st.key, ()):
                session = live.get(sid)
                if session is not None:
                    session.deliver(st.key, o.seq, frame)

    async def follow(self, stream: str, site_ids: Collection[int]) -> None:
        """Make sites follow a broadcast stream from its current number on (persisted)."""
        if not valid_stream_name(stream):
            raise Invalid(f"invalid stream name '{stream[:100]}'", code="bad_stream")
        async with self._follow_lock:
            st = self._broadcast_stream(stream)
            new = sorted(
                sid for sid in set(site_ids) if stream not in self._follows_of.get(sid, {})
            )
            if not new:
                return
            unknown = [sid for sid in new if sid not in self.credentials.sites]
            if unknown:
                await self.credentials.load()  # maybe created since start
                unknown = [sid for sid in new if sid not in self.credentials.sites]
            if unknown:
                shown = ", ".join(str(sid) for sid in unknown[:10])
                raise Invalid(f"unknown site ids: {shown}", code="unknown_site")
            from_seq = st.seq
            async with self.db.session() as s:
                for i in range(0, len(new), 1000):
                    await s.execute(
                        insert(FOLLOWS_TABLE),
                        [
                            {"stream": stream, "site_id": sid, "from_seq": from_seq}
                            for sid in new[i : i + 1000]
                        ],
                    )
            followers = self._followers.setdefault(stream, set())
            frame = ws_text_frame(
                control_frame({"type": "follow", "stream": stream, "seq": from_seq})
            )
            for sid in new:
                followers.add(sid)
                self._follows_of.setdefault(sid, {})[stream] = from_seq
                session = self._live.get(sid)
                if session is not None:
                    if session.cursors.get(stream, 0) < from_seq:
                        session.cursors[stream] = from_seq
                    session.write_frame(frame)
                self.staff.mark(sid)

    async def unfollow(self, stream: str, site_ids: Collection[int] | None = None) -> None:
        """Stop sites (None: every follower) following a stream (persisted)."""
        async with self._follow_lock:
            followers = self._followers.get(stream, set())
            gone = sorted(followers if site_ids is None else followers & set(site_ids))
            if not gone:
                return
            async with self.db.session() as s:
                if site_ids is None:
                    await s.execute(delete(PresenceFollow).where(PresenceFollow.stream == stream))
                else:
                    for i in range(0, len(gone), 500):
                        await s.execute(
                            delete(PresenceFollow).where(
                                PresenceFollow.stream == stream,
                                PresenceFollow.site_id.in_(gone[i : i + 500]),
                            )
                        )
            frame = ws_text_frame(control_frame({"type": "unfollow", "stream": stream}))
            for sid in gone:
                followers.discard(sid)
                self._follows_of.get(sid, {}).pop(stream, None)
                session = self._live.get(sid)
                if session is not None:
                    session.cursors.pop(stream, None)
                    session.write_frame(frame)
                self.staff.mark(sid)
            if not followers:
                self._followers.pop(stream, None)
                st = self._streams.get(stream)
                if st is not None:
                    st.forget()

    def followers(self, stream: str) -> set[int]:
        return set(self._followers.get(stream, ()))

    def streams_of(self, site_id: int) -> dict[str, int]:
        """Broadcast streams a site follows, with the seq it follows from."""
        return dict(self._follows_of.get(site_id, {}))

    # --- site -> server ---------------------------------------------------------------------

    def on_message(self, kind: str, handler: MessageHandler) -> None:
        """Route inbound requests of `kind` to `handler` (its return value is the reply)."""
        if kind in self._handlers:
            raise ValueError(f"a handler for '{kind}' is already registered")
        self._handlers[kind] = handler

    async def handle_request(self, session: SiteSession, req: Request) -> None:
        handler = self._handlers.get(req.kind)
        if handler is None:
            self.reply_error(session, req.id, "unknown_kind", f"unknown request kind '{req.kind}'")
            return
        try:
            result = await handler(session.principal, req.body)
        except DomainError as exc:
            self.reply_error(session, req.id, exc.code, exc.message)
            return
        except Exception:
            log.exception("handler for %s failed", req.kind)
            self.reply_error(session, req.id, "internal", "internal error")
            return
        reply = Reply(id=req.id, ok=True, body=dict(result) if result is not None else None)
        session.write_payload(reply.model_dump_json(exclude_none=True).encode())

    def reply_error(self, session: SiteSession, req_id: str, code: str, message: str) -> None:
        reply = Reply(id=req_id, ok=False, error=ReplyError(code=code, message=message))
        session.write_payload(reply.model_dump_json(exclude_none=True).encode())

    # --- sessions (called by the server and sessions) ----------------------------------------

    async def authenticate(self, hello: Hello) -> SitePrincipal | None:
        principal = await self.credentials.authenticate(hello.join_code, hello.token)
        if principal is None:
            self.stats["refused"] += 1
        return principal

    def new_session(self, conn: Any, principal: SitePrincipal) -> SiteSession:
        return SiteSession(
            self,
            conn,
            principal,
            rate=self.config.rate,
            burst=self.config.burst,
            send_buffer_bytes=self.config.send_buffer_bytes,
        )

    async def open_session(self, session: SiteSession, hello: Hello) -> None:
        """Register a session, welcome it, replay what it missed, then go live."""
        sid = session.site_id
        old = self._live.get(sid)
        self._live[sid] = session
        if old is not None:
            old.close(CloseCode.REPLACED, "another session of this site connected")
        self.stats["joins"] += 1
        site_stream = self._site_stream(sid)
        follows = self._follows_of.get(sid, {})
        plan: list[tuple[Stream, int]] = [(site_stream, 0)]
        plan += [(self._broadcast_stream(name), from_seq) for name, from_seq in follows.items()]
        welcome = Welcome(
            session_token=issue_session_token(self.key, session.principal, self.config.token_ttl_s),
            token_ttl_s=self.config.token_ttl_s,
            site_id=sid,
            site_code=session.principal.code,
            server_time=self.clock(),
            heartbeat_s=self.config.heartbeat_s,
            offline_after_s=self.config.offline_after_s,
            streams={st.seen_as: st.delivered for st, _ in plan},
        )
        session.write_payload(welcome.model_dump_json().encode())
        self._set_state(sid, "online", "resumed" if hello.resume is not None else "joined")
        for st, from_seq in plan:
            if session.closed:
                return
            current = st.delivered
            if hello.resume is None:
                session.cursors[st.seen_as] = current
                continue
            last = hello.resume.get(st.seen_as, from_seq)
            last = max(last, from_seq)
            if last > current:
                self._reset(session, st, current, "ahead_of_server")
                continue
            missed = st.from_memory(last)
            if missed is None:
                missed = await replay_from_db(
                    self.db, st, last, current, self.config.replay_limit + 1
                )
                if session.closed:
                    return
            if len(missed) > self.config.replay_limit:
                self._reset(session, st, current, "too_many_missed")
                continue
            for seq, payload in missed:
                session.cursors[st.seen_as] = seq
                session.write_payload(payload)
            session.cursors[st.seen_as] = max(current, session.cursors.get(st.seen_as, 0))
        session.finish_replay()

    def _reset(self, session: SiteSession, st: Stream, current: int, why: str) -> None:
        session.cursors[st.seen_as] = current
        session.write_payload(
            control_frame({"type": "reset", "stream": st.seen_as, "seq": current, "reason": why})
        )

    def session_closed(self, session: SiteSession, reason: str, *, detail: str = "") -> None:
        """A session ended: the site goes offline unless a newer session replaced it."""
        self.stats["closed"] += 1
        sid = session.site_id
        if self._live.get(sid) is session:
            del self._live[sid]
            self._set_state(sid, "offline", reason)
        log.debug("site %s session closed: %s (%s)", sid, reason, detail)

    def link_report(self, session: SiteSession, link: LinkReport) -> None:
        sid = session.site_id
        if self._live.get(sid) is not session:
            return
        current = self._states.get(sid)
        degraded = current is not None and current.state == "degraded"
        why = self.config.thresholds.degraded_reason(link, degraded)
        if why is not None:
            self._set_state(sid, "degraded", why, link=link)
        elif degraded:
            self._set_state(sid, "online", "link_recovered", link=link)
        elif current is not None:
            self._states[sid] = replace(current, link=link)

    def close_site(self, site_id: int, reason: str = "closed by an operator") -> bool:
        """Close a site's live session (if any); returns whether one was open."""
        session = self._live.get(site_id)
        if session is None:
            return False
        session.close(CloseCode.CLOSED_BY_OPERATOR, reason)
        return True

    async def credentials_changed(self, site_ids: Collection[int] | None = None) -> list[int]:
        """Reload credentials now and close sessions whose credential is no longer current.

        The accounts API calls this after a rotation or revocation (the hub also polls
        every `credential_poll_s`). Returns the ids of the sessions closed.
        """
        await self.credentials.load()
        return self._close_stale(site_ids if site_ids is not None else list(self._live))

    def _close_stale(self, site_ids: Collection[int]) -> list[int]:
        closed = []
        for sid in site_ids:
            session = self._live.get(sid)
            if session is not None and not self.credentials.is_current(session.principal):
                session.close(CloseCode.REVOKED, "site credential revoked or replaced")
                closed.append(sid)
        return closed

    async def _poll_credentials(self) -> None:
        changed = await self.credentials.poll_versions()
        if changed:
            self._close_stale(changed)

    # --- state -------------------------------------------------------------------------------

    def is_online(self, site_id: int) -> bool:
        """Connected and heartbeating (``online`` or ``degraded``)."""
        return site_id in self._live

    def site_state(self, site_id: int) -> SiteState:
        state = self._states.get(site_id)
        if state is not None:
            return state
        info = self.credentials.sites.get(site_id)
        return SiteState(
            site_id,
            "offline",
            "not_connected",
            self._started_at,
            province_id=info.province_id if info else None,
        )

    def online_site_ids(self) -> set[int]:
        return set(self._live)

    def in_meeting(self, site_id: int) -> bool:
        """Connected and following a ``meeting:*`` stream."""
        return site_id in self._live and any(
            name.startswith("meeting:") for name in self._follows_of.get(site_id, ())
        )

    def site_infos(self) -> dict[int, SiteInfo]:
        return self.credentials.sites

    def add_listener(self, callback: PresenceListener) -> None:
        """Call `callback` on every presence transition (sync or async).

        A sync callback runs inline. An async one runs as a task, at most
        `LISTENER_CONCURRENCY` of its calls at once (the others wait, in the order of
        the transitions), so it may see transitions out of order: read the hub's state
        when handling one. Calls not started when the hub stops are dropped.
        """
        self._listeners.append((callback, asyncio.Semaphore(LISTENER_CONCURRENCY)))

    def _set_state(
        self, site_id: int, new: StateName, reason: str, *, link: LinkReport | None = None
    ) -> None:
        old = self.site_state(site_id)
        if old.state == new:
            if link is not None or (new != "online" and reason != old.reason):
                self._states[site_id] = replace(
                    old, reason=reason if new != "online" else old.reason, link=link or old.link
                )
                self.staff.mark(site_id)
            return
        at = datetime.fromtimestamp(self.clock(), UTC)
        info = self.credentials.sites.get(site_id)
        province_id = info.province_id if info else old.province_id
        keep = link or (old.link if new != "offline" else None)
        self._states[site_id] = SiteState(site_id, new, reason, at, keep, province_id)
        self._log_rows.append(
            {
                "site_id": site_id,
                "state": new,
                "reason": reason[:64],
                "at": at,
                "rtt_ms": keep.rtt_ms if keep else None,
                "loss_pct": keep.loss_pct if keep else None,
                "jitter_ms": keep.jitter_ms if keep else None,
            }
        )
        self.staff.mark(site_id)
        change = PresenceChange(site_id, old.state, new, reason, at, province_id)
        for callback, turns in self._listeners:
            try:
                result = callback(change)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(self._call_listener(turns, result))
                    self._callbacks.add(task)
                    task.add_done_callback(self._listener_done)
            except Exception:
                log.exception("presence listener failed")

    async def _call_listener(self, turns: asyncio.Semaphore, call: Awaitable[Any]) -> None:
        async with turns:
            if self.running:
                await call
                return
        if inspect.iscoroutine(call):
            call.close()  # stopping: never started, so nothing half-done

    def _listener_done(self, task: asyncio.Task[Any]) -> None:
        self._callbacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("presence listener failed", exc_info=task.exception())

    # --- staff live stream -------------------------------------------------------------------

    async def publish_staff_event(
        self, kind: str, body: Mapping[str, Any], *, province_id: int | None = None
    ) -> None:
        """Push a domain event to connected staff clients (province officers: own province
        and national events only), in the next coalesced batch.

        Raises:
            Invalid: bad kind or a body that is not JSON-serialisable.
        """
        self._encode(kind, body)
        self.staff.publish(kind, body, province_id)

    # --- background steps --------------------------------------------------------------------

    async def _sweep_once(self) -> None:
        """Close sessions silent for longer than `offline_after_s`.

        When the loop itself was stalled (a join storm, a busy machine), heartbeats
        wait unread in the sockets and look late through no fault of the sites: the
        stall seen over the last few seconds is added to the allowance, so the
        server never mass-disconnects healthy sites because it was slow itself.
        """
        now = time.monotonic()
        stall = 0.0
        if self._last_sweep:
            stall = max(0.0, now - self._last_sweep - self.config.sweep_s)
        self._last_sweep = now
        self._stalls.append((now, stall))
        while self._stalls and self._stalls[0][0] < now - self.config.offline_after_s:
            self._stalls.popleft()
        allowance = max(lag for _, lag in self._stalls)
        deadline = now - self.config.offline_after_s - allowance
        for session in [s for s in self._live.values() if s.last_seen < deadline]:
            session.close(CloseCode.HEARTBEAT_TIMEOUT, "no heartbeat")

    async def _tick_once(self) -> None:
        """Write a ``tick`` to every site, spread over the interval in ten slices, so
        10,799 writes never stall the loop in one burst (a broadcast would wait)."""
        sessions = list(self._live.values())
        slices = 10
        for part in range(slices):
            frame = ws_text_frame(control_frame({"type": "tick", "t": round(self.clock(), 3)}))
            for session in sessions[part::slices]:
                session.write_frame(frame)
            if part < slices - 1:
                if not self.running:
                    return
                await asyncio.sleep(self.config.tick_s / slices / 2)

    async def _persist_once(self) -> None:
        """Write the buffered transitions in one transaction (the session log)."""
        if not self._log_rows:
            return
        rows, self._log_rows = self._log_rows, []
        known = self.credentials.sites
        rows = [r for r in rows if r["site_id"] in known]
        if not rows:
            return
        try:
            async with self.db.session() as s:
                # Core insert: the ORM bulk path costs ~10x more per row in the event loop.
                await s.execute(insert(EVENTS_TABLE), rows)
        except Exception:
            log.exception("writing %d presence transitions failed; retrying", len(rows))
            self._log_rows[:0] = rows
            if len(self._log_rows) > _LOG_BACKLOG_MAX:  # the store is down for long: bound it
                dropped = len(self._log_rows) - _LOG_BACKLOG_MAX
                del self._log_rows[:dropped]
                log.error("dropped %d presence transitions the store could not take", dropped)
            raise

    def live_sessions(self) -> dict[int, SiteSession]:
        return self._live

    def describe(self) -> dict[str, Any]:
        """What a site terminal needs to find the socket (GET /api/presence/info)."""
        return {
            "url": self.url,
            "protocol_version": PROTOCOL_VERSION,
            "heartbeat_s": self.config.heartbeat_s,
            "offline_after_s": self.config.offline_after_s,
            "max_message_bytes": MAX_MESSAGE_BYTES,
        }
