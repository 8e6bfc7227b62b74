"""The site-session wire protocol, versions 1 and 2 (documented in docs/protocol.md).

Version 2 is version 1 with one promise more from the client: it follows the
heartbeat interval of its welcome even below one second, so the server can show
a silently cut site offline within a second. The server speaks both.

Every message is one JSON object in one WebSocket text frame of at most
`MAX_MESSAGE_BYTES`. Inbound messages (site -> server) are validated by the
Pydantic models below on arrival; a message that fails closes that one session
with `CloseCode.BAD_MESSAGE`. Outbound delivery frames are built by hand from a
body encoded once (`encode_body`), because a broadcast to 10,799 sites must not
re-encode JSON per site (docs/performance.md: 5-12 µs more per send).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from enum import IntEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "PROTOCOL_VERSION",
    "PROTOCOL_VERSIONS",
    "FAST_HEARTBEAT_VERSION",
    "MAX_MESSAGE_BYTES",
    "SITE_STREAM",
    "CloseCode",
    "LinkReport",
    "Hello",
    "Heartbeat",
    "Link",
    "Request",
    "Ack",
    "Bye",
    "Inbound",
    "Welcome",
    "Reply",
    "ReplyError",
    "parse_inbound",
    "encode_body",
    "msg_frame",
    "control_frame",
    "ws_text_frame",
    "valid_stream_name",
    "close_reason",
]

# The newest version; every version in PROTOCOL_VERSIONS is accepted in a hello.
PROTOCOL_VERSION = 2
PROTOCOL_VERSIONS = (1, 2)
# From this version on the client honours sub-second heartbeat intervals.
FAST_HEARTBEAT_VERSION = 2
# Large enough for a situation report or a directive with attachments' metadata,
# small enough that a hostile site cannot make the server buffer much.
MAX_MESSAGE_BYTES = 64 * 1024
# The name under which a site sees its own per-site stream (`PresenceHub.send`).
SITE_STREAM = "site"
_STREAM_MAX = 80


class CloseCode(IntEnum):
    """WebSocket close codes the server uses; the reason text says more."""

    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_BIG = 1009  # sent by the websockets library itself when over max_size
    BAD_MESSAGE = 4000
    UNAUTHORIZED = 4001
    HELLO_TIMEOUT = 4002
    BAD_VERSION = 4003
    REVOKED = 4004
    REPLACED = 4005
    SLOW_READER = 4006
    HEARTBEAT_TIMEOUT = 4007
    RATE_LIMITED = 4008
    CLOSED_BY_OPERATOR = 4009


_STRICT = ConfigDict(extra="forbid", frozen=True)
_LENIENT = ConfigDict(extra="ignore", frozen=True)


class LinkReport(BaseModel):
    """Link health measured by the site (browsers: WebRTC getStats)."""

    model_config = _LENIENT

    rtt_ms: float = Field(ge=0, le=600_000)
    loss_pct: float = Field(ge=0, le=100)
    jitter_ms: float = Field(ge=0, le=600_000)
    send_kbps: float = Field(default=0, ge=0, le=10_000_000)
    recv_kbps: float = Field(default=0, ge=0, le=10_000_000)
    # What of the program the site's link carries: "high", "low" (a reduced video
    # layer) or "audio" (video off); empty when no program plays.
    media: str = Field(default="", max_length=16)


class Hello(BaseModel):
    """First message of every session: a join code or a resume token."""

    model_config = _STRICT

    type: Literal["hello"]
    v: int
    join_code: str | None = Field(default=None, max_length=200)
    token: str | None = Field(default=None, max_length=2000)
    # Last sequence number seen per stream; absent = a fresh client (no replay).
    resume: dict[Annotated[str, Field(max_length=_STREAM_MAX)], int] | None = Field(
        default=None, max_length=256
    )
    client: str = Field(default="", max_length=100)


class Heartbeat(BaseModel):
    """Liveness, sent every `heartbeat_s`; may carry a link report."""

    model_config = _STRICT

    type: Literal["hb"]
    t: float | None = None
    link: LinkReport | None = None


class Link(BaseModel):
    """A link-health report on its own."""

    model_config = _STRICT

    type: Literal["link"]
    link: LinkReport


class Request(BaseModel):
    """A site -> server request routed to `PresenceHub.on_message` handlers."""

    model_config = _STRICT

    type: Literal["req"]
    id: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=64)
    body: dict[str, object] = Field(default_factory=dict)


class Ack(BaseModel):
    """Cumulative acknowledgement: the site has everything up to `seq` on `stream`."""

    model_config = _STRICT

    type: Literal["ack"]
    stream: str = Field(min_length=1, max_length=_STREAM_MAX)
    seq: int = Field(ge=0)


class Bye(BaseModel):
    """The site leaves on purpose (shown offline with reason ``left``)."""

    model_config = _STRICT

    type: Literal["bye"]


Inbound = Annotated[Hello | Heartbeat | Link | Request | Ack | Bye, Field(discriminator="type")]
_INBOUND: TypeAdapter[Hello | Heartbeat | Link | Request | Ack | Bye] = TypeAdapter(Inbound)


def parse_inbound(data: str | bytes) -> Hello | Heartbeat | Link | Request | Ack | Bye:
    """Validate one inbound frame; raises `pydantic.ValidationError` if it is not valid."""
    return _INBOUND.validate_json(data)


class Welcome(BaseModel):
    """The server's answer to a good hello."""

    model_config = _STRICT

    type: Literal["welcome"] = "welcome"
    v: int = PROTOCOL_VERSION
    session_token: str
    token_ttl_s: int
    site_id: int
    site_code: str
    server_time: float
    heartbeat_s: float
    offline_after_s: float
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # Current sequence number of every stream the site follows ("site" included).
    streams: dict[str, int]


class ReplyError(BaseModel):
    model_config = _STRICT

    code: str
    message: str


class Reply(BaseModel):
    """The answer to a `Request`, matched by `id`."""

    model_config = _STRICT

    type: Literal["reply"] = "reply"
    id: str
    ok: bool
    body: dict[str, object] | None = None
    error: ReplyError | None = None


def valid_stream_name(name: str) -> bool:
    """Broadcast stream names: 1-80 printable ASCII chars, not the reserved ``site``."""
    return (
        0 < len(name) <= _STREAM_MAX
        and name != SITE_STREAM
        and name.isascii()
        and name.isprintable()
        and '"' not in name
        and "\\" not in name
    )


# RFC 6455 §5.5: a control frame's payload is at most 125 bytes, 2 of them the code.
_MAX_CLOSE_REASON_BYTES = 123


def close_reason(text: str) -> str:
    """`text` cut to what a close frame can carry (123 UTF-8 bytes, whole characters).

    A longer reason makes the close itself fail, and the site would see the socket
    drop (1006) or a plain 1000 instead of the documented code; the reasons name
    fields of the site's own message, so their length is the site's to choose.
    """
    data = text.encode("utf-8")
    if len(data) <= _MAX_CLOSE_REASON_BYTES:
        return text
    return data[:_MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("non-finite number in message body")
    return value


def encode_body(body: Mapping[str, object]) -> str:
    """Encode a message body once (compact, UTF-8 kept, no NaN)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def msg_frame(
    stream: str, seq: int | None, msg_id: str, kind: str, at: float, body_json: str
) -> bytes:
    """A delivery message ``{"type":"msg",...}`` from a pre-encoded body.

    ``stream``, ``msg_id`` and ``kind`` are JSON-encoded here; ``body_json`` is
    spliced in as is, which is why callers encode it once with `encode_body`.
    ``seq`` is None (JSON null) for a live-only message that is never replayed.
    """
    seq_text = "null" if seq is None else str(seq)
    head = (
        f'{{"type":"msg","stream":{json.dumps(stream)},"seq":{seq_text},'
        f'"id":{json.dumps(msg_id)},"kind":{json.dumps(kind)},"at":{_finite(at):.3f},"body":'
    )
    return (head + body_json + "}").encode()


def control_frame(message: Mapping[str, object]) -> bytes:
    """Any other server -> site message (follow, unfollow, reset, error, tick)."""
    return encode_body(message).encode()


def ws_text_frame(payload: bytes) -> bytes:
    """A complete unmasked WebSocket text frame (RFC 6455 §5.2) for a server to write.

    Building the frame once and writing the same bytes to every socket is the
    cheapest broadcast (docs/performance.md: 6.4 µs per socket).
    """
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload
