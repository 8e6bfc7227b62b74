"""The shapes of Janus API messages: errors, typed readers and plugin replies.

Messages are `JsonObject`s; what is read of them goes through `child`, `objects`,
`values` and `integer`, which check its shape and raise `JanusError` when a
message is malformed, instead of failing later with a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from diemcau.records import JsonObject

__all__ = [
    "JanusClosedError",
    "JanusError",
    "JanusTimeoutError",
    "Jsep",
    "PluginReply",
    "child",
    "ids",
    "integer",
    "jsep_of",
    "objects",
    "raise_core_error",
    "raise_plugin_error",
    "values",
]


class JanusError(Exception):
    """An error answered by Janus (core ``error`` or a plugin ``error_code``)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusTimeoutError(JanusError):
    """Janus did not answer a request in time."""

    def __init__(self, what: str) -> None:
        super().__init__(0, f"timed out waiting for {what}")


class JanusClosedError(JanusError):
    """The WebSocket to the node closed while a request was pending."""

    def __init__(self, reason: str = "connection closed") -> None:
        super().__init__(-1, reason)


@dataclass(frozen=True)
class PluginReply:
    """What a plugin answered: its ``data`` object and an optional JSEP."""

    data: JsonObject
    jsep: Jsep | None = None


class Jsep(TypedDict):
    """A session description carried beside a message (an offer or an answer)."""

    type: str
    sdp: str


def child(data: JsonObject, key: str) -> JsonObject:
    """The object under ``key`` of a Janus message (an empty one when absent or null)."""
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise JanusError(0, f"malformed {key!r} in a Janus message: {value!r}")
    return value


def values(data: JsonObject, key: str) -> list[object]:
    """The list under ``key`` of a Janus message ([] when absent or null)."""
    value = data.get(key) or []
    if not isinstance(value, list):
        raise JanusError(0, f"malformed {key!r} in a Janus message: {value!r}")
    return value


def objects(data: JsonObject, key: str) -> list[JsonObject]:
    """The objects listed under ``key`` of a Janus message ([] when absent or null)."""
    value = values(data, key)
    if not all(isinstance(v, dict) for v in value):
        raise JanusError(0, f"malformed {key!r} in a Janus message: {value!r}")
    return [v for v in value if isinstance(v, dict)]


def integer(data: JsonObject, key: str) -> int:
    """The whole number under ``key`` of a Janus message (`JanusError` when not one)."""
    value = data.get(key)
    if not isinstance(value, int):
        raise JanusError(0, f"malformed {key!r} in a Janus message: {value!r}")
    return value


def ids(data: JsonObject, key: str) -> list[int]:
    """The ids listed under ``key`` of an Admin API reply."""
    found = [v for v in values(data, key) if isinstance(v, int)]
    if len(found) != len(values(data, key)):
        raise JanusError(0, f"malformed {key!r} in a Janus message: {data.get(key)!r}")
    return found


def jsep_of(value: object) -> Jsep | None:
    if value is None:
        return None
    if isinstance(value, dict):
        kind, sdp = value.get("type"), value.get("sdp")
        if isinstance(kind, str) and isinstance(sdp, str):
            return Jsep(type=kind, sdp=sdp)
    raise JanusError(0, f"malformed jsep in a Janus message: {value!r}")


def raise_plugin_error(data: JsonObject) -> None:
    if "error_code" in data:
        raise JanusError(int(str(data["error_code"])), str(data.get("error", "")))


def raise_core_error(msg: JsonObject) -> None:
    if msg.get("janus") == "error":
        err = msg.get("error")
        err = err if isinstance(err, dict) else {}
        raise JanusError(int(str(err.get("code", 0))), str(err.get("reason", "")))
