"""HTTP side of presence: socket discovery, site state, operator close, staff live stream.

The handlers authenticate and delegate to the presence hub (`Runtime.presence`);
they hold no logic.
The staff stream is a WebSocket in the FastAPI app (staff are few; sites use
the hub's own socket): snapshot first, then coalesced deltas (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket
from starlette.websockets import WebSocketDisconnect

from diemcau.accounts.actors import actor_of
from diemcau.accounts.service import StaffPrincipal, check_session_token
from diemcau.actors import Actor
from diemcau.api.deps import RuntimeDep, StaffDep, staff_actor
from diemcau.api.public_urls import presence_url
from diemcau.errors import NotFound
from diemcau.records import JsonObject
from diemcau.runtime import Runtime
from diemcau.security import TokenError

__all__ = [
    "router",
    "AUTH_TIMEOUT_S",
    "RECHECK_S",
    "STAFF_CLOSE_UNAUTHORIZED",
    "STAFF_CLOSE_FORBIDDEN",
    "STAFF_CLOSE_SLOW",
]

router = APIRouter(prefix="/api/presence", tags=["presence"])

STAFF_CLOSE_UNAUTHORIZED = 4001
STAFF_CLOSE_FORBIDDEN = 4003
STAFF_CLOSE_SLOW = 4006

# Time a browser has to send its auth message; how often an open stream's token is
# checked again (a disabled account or a revoked token loses the stream within
# this, plus the account cache's few seconds for changes made by another process).
AUTH_TIMEOUT_S = 5.0
RECHECK_S = 5.0
MAX_TOKEN_CHARS = 4096


_Operator = Annotated[Actor, Depends(staff_actor("admin", "operator"))]


@router.get("/info", summary="Where site terminals connect (no login needed)")
async def info(runtime: RuntimeDep) -> JsonObject:
    return {**runtime.presence.describe(), "url": presence_url(runtime)}


@router.get("/sites/{site_id}", summary="One site's live presence and link health")
async def site_state(site_id: int, runtime: RuntimeDep, actor: StaffDep) -> JsonObject:
    hub = runtime.presence
    info = await runtime.sites.get_visible(actor, site_id)
    if info is None:  # unknown or in another province: the same answer
        raise NotFound(f"no site {site_id} in your reach", code="unknown_site")
    st = hub.site_state(site_id)
    return {
        "site_id": site_id,
        "code": info.code,
        "name": info.name,
        "province_id": info.province_id,
        "state": st.state,
        "reason": st.reason,
        "since": st.since.isoformat(),
        "link": st.link.model_dump() if st.link else None,
        "in_meeting": hub.in_meeting(site_id),
        "streams": hub.streams_of(site_id),
    }


@router.post("/sites/{site_id}/close", summary="Close a site's live session")
async def close_site(site_id: int, runtime: RuntimeDep, actor: _Operator) -> JsonObject:
    closed = runtime.presence.close_site(site_id, f"closed by {actor.name}")
    return {"site_id": site_id, "closed": closed}


async def _bearer(websocket: WebSocket) -> str | None:
    """The staff token: an ``Authorization: Bearer`` header (scripts), else the first
    message ``{"type": "auth", "token": ...}`` within `AUTH_TIMEOUT_S` (browsers: a
    page cannot set headers on a WebSocket). None: refused (the socket is closed)."""
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    try:
        first = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
        msg = json.loads(first)
    except TimeoutError:
        await websocket.close(STAFF_CLOSE_UNAUTHORIZED, "no auth message")
        return None
    except (ValueError, KeyError, RuntimeError, WebSocketDisconnect):
        await _close_quietly(websocket, STAFF_CLOSE_UNAUTHORIZED, "the first message must be auth")
        return None
    token = msg.get("token") if isinstance(msg, dict) and msg.get("type") == "auth" else None
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        await websocket.close(
            STAFF_CLOSE_UNAUTHORIZED, 'the first message must be {"type": "auth"}'
        )
        return None
    return token


async def _close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code, reason)


@router.websocket("/staff")
async def staff_stream(websocket: WebSocket) -> None:
    """Live presence for staff: ``snapshot`` then ``delta`` frames (docs/protocol.md).

    The token never travels in the URL (proxies log URLs): a ``?token=`` is refused.
    It is checked again every `RECHECK_S` seconds: a disabled account, a logout, a
    password change or an expired token closes the stream with 4001.
    """
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    if "token" in websocket.query_params:
        await websocket.close(
            STAFF_CLOSE_UNAUTHORIZED, "never put the token in the URL: send it in the first message"
        )
        return
    bearer = await _bearer(websocket)
    if bearer is None:
        return
    try:
        principal = await check_session_token(runtime.db, runtime.keys.token, bearer)
    except TokenError as exc:
        await websocket.close(STAFF_CLOSE_UNAUTHORIZED, f"invalid session token: {exc}")
        return
    if not isinstance(principal, StaffPrincipal):
        await websocket.close(STAFF_CLOSE_FORBIDDEN, "the staff stream is for staff accounts")
        return
    hub = runtime.presence
    client = hub.staff.subscribe(actor_of(principal).scope())

    async def pump() -> None:
        while True:
            frame = await client.queue.get()
            if frame is None:
                code = STAFF_CLOSE_SLOW if client.overflowed else 1001
                reason = "client too slow" if client.overflowed else "server shutting down"
                await websocket.close(code, reason)
                return
            await websocket.send_text(frame)

    async def drain() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                msg = await websocket.receive()
                if msg["type"] == "websocket.disconnect":
                    return

    async def recheck() -> None:
        """The account may be disabled or its token revoked while the stream is open."""
        while True:
            await asyncio.sleep(RECHECK_S)
            try:
                await check_session_token(runtime.db, runtime.keys.token, bearer)
            except TokenError as exc:
                await _close_quietly(websocket, STAFF_CLOSE_UNAUTHORIZED, f"session ended: {exc}")
                return

    tasks = [asyncio.create_task(t()) for t in (pump, drain, recheck)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.staff.unsubscribe(client)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
