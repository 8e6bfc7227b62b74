"""An asyncio client for the Janus WebSocket API and Admin API.

Janus speaks JSON over one WebSocket per node (subprotocol ``janus-protocol``);
many sessions and plugin handles share that socket and replies are matched by
``transaction`` (https://janus.conf.meetecho.com/docs/rest.html). Synchronous
requests answer ``success`` or ``error``; asynchronous plugin messages
(``join``, ``publish``, ``configure``, ``start`` ...) answer ``ack`` first and
later an ``event`` carrying the same transaction. Events without a transaction
(``webrtcup``, ``media``, ``hangup``, ``slowlink``, plugin notifications) are
delivered to the handle they concern.

The Admin API (https://janus.conf.meetecho.com/docs/admin.html) runs on its
own socket (``janus-admin-protocol``) and is the health and stats source.

Messages are `JsonObject`s read through the checked readers of
`media.janus_messages` (re-exported here with the errors).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import ClientConnection

from diemcau.media.janus_messages import (
    JanusClosedError,
    JanusError,
    JanusTimeoutError,
    Jsep,
    PluginReply,
    child,
    ids,
    integer,
    jsep_of,
    objects,
    raise_core_error,
    raise_plugin_error,
    values,
)
from diemcau.records import JsonObject

__all__ = [
    "JanusAdmin",
    "JanusClosedError",
    "JanusConnection",
    "JanusError",
    "JanusHandle",
    "JanusSession",
    "JanusTimeoutError",
    "Jsep",
    "PluginReply",
    "child",
    "integer",
    "objects",
    "values",
    "sign_janus_token",
]

log = logging.getLogger(__name__)

EventCallback = Callable[[JsonObject], None]

KEEPALIVE_INTERVAL = 25.0
DEFAULT_TIMEOUT = 10.0


def sign_janus_token(secret: str, descriptors: list[str], expiry: int, realm: str = "janus") -> str:
    """Build an HMAC-signed Janus token (``token_auth_secret`` mode).

    Format (janus ``auth.c``): ``<expiry>,<realm>,<descriptor>...:<base64 HMAC-SHA1>``.
    With realm ``janus`` the descriptors are plugin package names (the core lets
    the token create sessions and attach those plugins). With a plugin realm
    (``janus.plugin.videoroom``) they are plugin scopes such as ``room=<id>``,
    which VideoRoom rooms created with ``signed_tokens: true`` require in ``join``.
    """
    data = ",".join([str(expiry), realm, *descriptors])
    sig = hmac.new(secret.encode(), data.encode(), hashlib.sha1).digest()
    return f"{data}:{base64.b64encode(sig).decode()}"


def _tls(url: str, ctx: ssl.SSLContext | None) -> ssl.SSLContext | bool | None:
    """``ssl=`` for websockets: ``ctx`` (else the system CAs) for ``wss://``, none for ``ws://``."""
    if not url.startswith("wss:"):
        return None
    return ctx if ctx is not None else True


class _Transport:
    """One WebSocket, request/reply matching by transaction, and event dispatch."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self._ws = ws
        self._name = name
        self._pending: dict[str, tuple[asyncio.Future[JsonObject], frozenset[str]]] = {}
        self._reader = asyncio.create_task(self._read(), name=f"janus-read-{name}")
        self._on_event: Callable[[JsonObject], None] | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def open(
        cls, url: str, protocol: str, max_size: int, timeout: float, ctx: ssl.SSLContext | None
    ) -> _Transport:
        """Connect to ``url`` speaking the WebSocket subprotocol ``protocol``."""
        ws = await asyncio.wait_for(
            websockets.connect(
                url,
                subprotocols=[websockets.Subprotocol(protocol)],
                max_size=max_size,
                ping_interval=None,
                ssl=_tls(url, ctx),
            ),
            timeout,
        )
        return cls(ws, url)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    log.warning("janus %s: unparsable message dropped", self._name)
                    continue
                if not isinstance(msg, dict):
                    continue
                self._dispatch(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for fut, _ in self._pending.values():
                if not fut.done():
                    fut.set_exception(JanusClosedError())
            self._pending.clear()

    def _dispatch(self, msg: JsonObject) -> None:
        txn = msg.get("transaction")
        kind = str(msg.get("janus", ""))
        if isinstance(txn, str) and txn in self._pending:
            fut, final_kinds = self._pending[txn]
            if kind in final_kinds or kind == "error":
                del self._pending[txn]
                if not fut.done():
                    fut.set_result(msg)
                return
            if kind == "ack":
                return
        if self._on_event is not None:
            self._on_event(msg)

    async def request(
        self, msg: JsonObject, final: frozenset[str], timeout: float = DEFAULT_TIMEOUT
    ) -> JsonObject:
        if self.closed.is_set():
            raise JanusClosedError()
        txn = secrets.token_hex(8)
        msg["transaction"] = txn
        fut: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._pending[txn] = (fut, final)
        try:
            await self._ws.send(json.dumps(msg))
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise JanusTimeoutError(f"{msg.get('janus')} on {self._name}") from None
        except websockets.ConnectionClosed:
            raise JanusClosedError() from None
        finally:
            self._pending.pop(txn, None)
        raise_core_error(reply)
        return reply

    async def close(self) -> None:
        await self._ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class JanusConnection:
    """One WebSocket to one Janus node, carrying many sessions.

    Args:
        token: a Janus token sent with every request when the node runs with
            ``token_auth`` (stored or signed); a callable is asked for a fresh
            one per request, so a long-lived control connection never holds an
            expired signed token.
        api_secret: the node's ``api_secret``, if any.
    """

    def __init__(
        self, transport: _Transport, token: str | Callable[[], str] | None, api_secret: str | None
    ) -> None:
        self._t = transport
        self.token = token
        self.api_secret = api_secret
        self._sessions: dict[int, JanusSession] = {}
        transport._on_event = self._route

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        token: str | Callable[[], str] | None = None,
        api_secret: str | None = None,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> JanusConnection:
        """Open the API socket; ``ssl_context`` verifies a ``wss://`` node (default: system CAs)."""
        transport = await _Transport.open(url, "janus-protocol", 2**22, timeout, ssl_context)
        return cls(transport, token, api_secret)

    @property
    def closed(self) -> asyncio.Event:
        return self._t.closed

    def _stamp(self, msg: JsonObject) -> JsonObject:
        if self.token is not None:
            msg["token"] = self.token() if callable(self.token) else self.token
        if self.api_secret is not None:
            msg["apisecret"] = self.api_secret
        return msg

    async def request(
        self,
        msg: JsonObject,
        *,
        final: frozenset[str] = frozenset({"success"}),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> JsonObject:
        """Send one Janus API request and return the final reply (raises `JanusError`)."""
        return await self._t.request(self._stamp(msg), final, timeout)

    async def info(self) -> JsonObject:
        """The node's ``info`` (version, plugins, transports)."""
        return await self.request({"janus": "info"}, final=frozenset({"server_info"}))

    async def create_session(self, *, keepalive: float = KEEPALIVE_INTERVAL) -> JanusSession:
        reply = await self.request({"janus": "create"})
        session = JanusSession(self, integer(child(reply, "data"), "id"), keepalive)
        self._sessions[session.id] = session
        return session

    def _route(self, msg: JsonObject) -> None:
        sid = msg.get("session_id")
        session = self._sessions.get(sid) if isinstance(sid, int) else None
        if session is not None:
            session._route(msg)

    def _forget(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    async def close(self) -> None:
        """Destroy nothing on the node (sessions time out); just close the socket."""
        for s in list(self._sessions.values()):
            s._stop_keepalive()
        self._sessions.clear()
        await self._t.close()


class JanusSession:
    """A Janus session: a keepalive task and its plugin handles."""

    def __init__(self, conn: JanusConnection, session_id: int, keepalive: float) -> None:
        self.conn = conn
        self.id = session_id
        self.handles: dict[int, JanusHandle] = {}
        self.timed_out = asyncio.Event()
        self._keepalive = asyncio.create_task(
            self._keepalive_loop(keepalive), name=f"janus-keepalive-{session_id}"
        )

    async def _keepalive_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.conn.request(
                    {"janus": "keepalive", "session_id": self.id}, final=frozenset({"ack"})
                )
            except JanusClosedError:
                return
            except JanusError as exc:
                log.warning("keepalive for session %s failed: %s", self.id, exc)

    def _stop_keepalive(self) -> None:
        self._keepalive.cancel()

    def _route(self, msg: JsonObject) -> None:
        kind = msg.get("janus")
        if kind == "timeout":
            self.timed_out.set()
            self._stop_keepalive()
            return
        sender = msg.get("sender")
        handle = self.handles.get(sender) if isinstance(sender, int) else None
        if handle is not None:
            handle._deliver(msg)

    async def attach(self, plugin: str, *, opaque_id: str | None = None) -> JanusHandle:
        msg: JsonObject = {"janus": "attach", "session_id": self.id, "plugin": plugin}
        if opaque_id:
            msg["opaque_id"] = opaque_id
        reply = await self.conn.request(msg)
        handle = JanusHandle(self, integer(child(reply, "data"), "id"), plugin)
        self.handles[handle.id] = handle
        return handle

    async def destroy(self) -> None:
        """Destroy the session on the node (its handles go with it)."""
        self._stop_keepalive()
        self.conn._forget(self.id)
        with contextlib.suppress(JanusClosedError):
            await self.conn.request({"janus": "destroy", "session_id": self.id})


@dataclass
class _Waiter:
    predicate: Callable[[JsonObject], bool]
    future: asyncio.Future[JsonObject]


@dataclass
class HandleState:
    """What the core told us about a handle's PeerConnection."""

    webrtc_up: bool = False
    hung_up: bool = False
    hangup_reason: str = ""
    media: dict[str, bool] = field(default_factory=dict)
    slowlink_count: int = 0


class JanusHandle:
    """A plugin handle. Events for it go to listeners and to `wait_event` waiters."""

    def __init__(self, session: JanusSession, handle_id: int, plugin: str) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.state = HandleState()
        self._listeners: list[EventCallback] = []
        self._waiters: list[_Waiter] = []
        self._recent: list[JsonObject] = []

    def add_listener(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(msg)`` for every event of this handle; returns an unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _deliver(self, msg: JsonObject) -> None:
        kind = msg.get("janus")
        if kind == "webrtcup":
            self.state.webrtc_up = True
        elif kind == "hangup":
            self.state.hung_up = True
            self.state.hangup_reason = str(msg.get("reason", ""))
        elif kind == "media":
            self.state.media[str(msg.get("mid", msg.get("type", "")))] = bool(msg.get("receiving"))
        elif kind == "slowlink":
            self.state.slowlink_count += 1
        self._recent.append(msg)
        del self._recent[:-50]
        for cb in list(self._listeners):
            try:
                cb(msg)
            except Exception:
                log.exception("janus handle listener failed")
        for w in list(self._waiters):
            if not w.future.done() and w.predicate(msg):
                w.future.set_result(msg)

    async def wait_event(
        self,
        predicate: Callable[[JsonObject], bool],
        timeout: float = DEFAULT_TIMEOUT,
        *,
        include_recent: bool = True,
    ) -> JsonObject:
        """Wait for an event matching ``predicate`` (recent ones count too)."""
        if include_recent:
            for msg in self._recent:
                if predicate(msg):
                    return msg
        fut: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(predicate, fut)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise JanusTimeoutError(f"event on handle {self.id}") from None
        finally:
            self._waiters.remove(waiter)

    async def send(
        self, body: JsonObject, jsep: Jsep | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> PluginReply:
        """Send a plugin message; resolve on ``success`` (sync) or the ``event`` (async).

        Raises `JanusError` for a core error or a plugin ``error_code``.
        """
        msg: JsonObject = {
            "janus": "message",
            "session_id": self.session.id,
            "handle_id": self.id,
            "body": body,
        }
        if jsep is not None:
            msg["jsep"] = dict(jsep)
        reply = await self.session.conn.request(
            msg, final=frozenset({"success", "event"}), timeout=timeout
        )
        data = child(child(reply, "plugindata"), "data")
        raise_plugin_error(data)
        return PluginReply(data=data, jsep=jsep_of(reply.get("jsep")))

    async def trickle_completed(self) -> None:
        """Tell Janus no more candidates follow (aiortc puts all of them in the SDP)."""
        await self.session.conn.request(
            {
                "janus": "trickle",
                "session_id": self.session.id,
                "handle_id": self.id,
                "candidate": {"completed": True},
            },
            final=frozenset({"ack"}),
        )

    async def hangup(self) -> None:
        await self.session.conn.request(
            {"janus": "hangup", "session_id": self.session.id, "handle_id": self.id}
        )

    async def detach(self) -> None:
        self.session.handles.pop(self.id, None)
        with contextlib.suppress(JanusClosedError):
            await self.session.conn.request(
                {"janus": "detach", "session_id": self.session.id, "handle_id": self.id}
            )


class JanusAdmin:
    """The Admin API of one node over its admin WebSocket (``janus-admin-protocol``)."""

    _ids = itertools.count(1)

    def __init__(self, transport: _Transport, secret: str) -> None:
        self._t = transport
        self._secret = secret

    @classmethod
    async def connect(
        cls,
        url: str,
        secret: str,
        *,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> JanusAdmin:
        transport = await _Transport.open(url, "janus-admin-protocol", 2**24, timeout, ssl_context)
        return cls(transport, secret)

    @property
    def closed(self) -> asyncio.Event:
        return self._t.closed

    async def request(
        self,
        janus: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        fields: Mapping[str, object] | None = None,
    ) -> JsonObject:
        msg: JsonObject = {"janus": janus, "admin_secret": self._secret, **(fields or {})}
        return await self._t.request(msg, frozenset({"success"}), timeout)

    async def get_status(self, timeout: float = DEFAULT_TIMEOUT) -> JsonObject:
        return child(await self.request("get_status", timeout), "status")

    async def list_sessions(self) -> list[int]:
        return ids(await self.request("list_sessions"), "sessions")

    async def list_handles(self, session_id: int) -> list[int]:
        reply = await self.request("list_handles", fields={"session_id": session_id})
        return ids(reply, "handles")

    async def handle_info(
        self, session_id: int, handle_id: int, *, plugin_only: bool = False
    ) -> JsonObject:
        """A handle's state; ``plugin_only`` leaves out the ICE and media details
        (the core part, with the ``token`` the handle was attached with, stays)."""
        fields: JsonObject = {"session_id": session_id, "handle_id": handle_id}
        if plugin_only:
            fields["plugin_only"] = True
        return child(await self.request("handle_info", fields=fields), "info")

    async def destroy_session(self, session_id: int) -> None:
        """End a session now: its handles are detached and their PeerConnections closed."""
        await self.request("destroy_session", fields={"session_id": session_id})

    async def add_token(self, token: str, plugins: list[str] | None = None) -> JsonObject:
        """Store a token (stored-token mode only), optionally limited to plugins."""
        fields: JsonObject = {"token": token}
        if plugins is not None:
            fields["plugins"] = plugins
        return child(await self.request("add_token", fields=fields), "data")

    async def remove_token(self, token: str) -> None:
        await self.request("remove_token", fields={"token": token})

    async def list_tokens(self) -> list[JsonObject]:
        return objects(child(await self.request("list_tokens"), "data"), "tokens")

    async def close(self) -> None:
        await self._t.close()
