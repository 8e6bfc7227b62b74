"""What the holder of a media grant may do on one Janus node, written as Janus tokens.

Janus 1.1.2 offers four locks, and each carries one right (docs/media.md, "Who may
publish and watch"). Every token is signed with the node's own ``token_auth_secret``,
so no token of one node opens anything on another.

- **Core token** (realm ``janus``), checked on every request, keepalives included:
  opens sessions and attaches the VideoRoom on one node. It names its holder
  (``holder=site.26734.v3``, ``holder=staff.lan``); Janus keeps the token on every
  handle, so the control plane finds a holder's sessions to end them (`revoke`).
- **Room token** (realm ``janus.plugin.videoroom``, ``room=<id>`` descriptors),
  checked at every ``join``: the rooms a holder may enter, to watch what is there.
  Short-lived (a grant's ``expires_at``).
- **The room's ``allowed`` list**, checked on top of the room token at every
  *publisher* ``join``: the publish token of the room's one publisher and the
  control plane's own token, nothing else. A publish token is stable (it expires
  in 2100): it is worth exactly what the room's list says, and a right is taken
  back by destroying the room (an uplink, on a rotated or revoked credential),
  by replacing the token in the list (a chair room whose meeting lost a
  delegate: `chair_guard`) or the meeting's end (a chair room). Stable tokens
  are what keep a grant free of round trips to Janus: the list is written once,
  when the room is made.
- **The room's ``pin``** (program rooms), checked at every ``join``: a random
  secret every viewer's grant carries, changed when a site of that relay is
  revoked, so the revoked site cannot come back with a room token it still holds.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Mapping

from diemcau.media.janus import sign_janus_token
from diemcau.media.node import JanusNode

__all__ = [
    "STABLE_EXPIRY",
    "VIDEOROOM",
    "Holder",
    "control_token",
    "core_token",
    "holder_of",
    "new_pin",
    "publish_token",
    "room_token",
]

VIDEOROOM = "janus.plugin.videoroom"
# 2100-01-01: tokens whose worth is bounded by a room's allowed list, not by time.
STABLE_EXPIRY = 4_102_444_800
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _safe(text: str) -> str:
    """A key fit for a Janus token descriptor (no ``,`` ``:`` ``.``), readable when it can be."""
    return text if _SAFE.fullmatch(text) else "x" + text.encode().hex()[:96]


class Holder:
    """Who a grant is for, as written into its tokens: ``site.<code>.v<credential>``,
    ``staff.<username>`` or ``chair.<meeting>`` (the chair feed's publish token)."""

    @staticmethod
    def site(code: str, credential: int) -> str:
        return f"site.{_safe(code)}.v{credential}"

    @staticmethod
    def staff(username: str) -> str:
        return f"staff.{_safe(username)}"

    @staticmethod
    def chair(meeting: str, generation: int = 0) -> str:
        """The chair feed of a meeting (whoever of its chair, delegates, admins publishes it).

        ``generation`` counts the times a live meeting lost a delegate: each gives the
        chair room a new publish token (`chair_guard`), so the removed delegate's old
        one opens nothing. Generation 0 is the token a program starts with.
        """
        base = f"chair.{_safe(meeting)}"
        return base if generation == 0 else f"{base}.g{generation}"

    @staticmethod
    def site_key(code: str) -> str:
        """``site.<code>``: what every credential version of a site's holder starts with."""
        return f"site.{_safe(code)}"

    @staticmethod
    def outdated(holder: str, current: Mapping[str, int | None]) -> bool:
        """Whether a site holder is of no current credential: ``current`` maps each
        site's `site_key` to its credential version (None: revoked); a site missing
        from it has none. Staff and chair holders are never outdated."""
        key, sep, version = holder.rpartition(".v")
        if not key.startswith("site.") or not sep:
            return False
        cred = current.get(key)
        return cred is None or not version.isdigit() or int(version) < cred

    @staticmethod
    def superseded(holder: str, code: str, credential: int | None) -> bool:
        """Whether ``holder`` is site ``code`` under a credential older than ``credential``
        (under any credential when ``credential`` is None: the site was revoked)."""
        prefix = f"site.{_safe(code)}.v"
        if not holder.startswith(prefix):
            return False
        version = holder[len(prefix) :]
        return credential is None or not version.isdigit() or int(version) < credential


def holder_of(token: str) -> str | None:
    """The ``holder`` a core token names, or None (no such descriptor, not a token)."""
    data = token.split(":", 1)[0]
    for part in data.split(",")[2:]:
        if part.startswith("holder="):
            return part[len("holder=") :]
    return None


def core_token(node: JanusNode, holder: str, ttl: int) -> str:
    """Sessions and the VideoRoom on ``node`` for ``ttl`` seconds, naming its holder."""
    return sign_janus_token(
        node.token_secret, [VIDEOROOM, f"holder={holder}"], int(time.time()) + ttl
    )


def room_token(node: JanusNode, rooms: Iterable[int], ttl: int) -> str:
    """Enter (and watch in) only ``rooms`` on ``node``, for ``ttl`` seconds."""
    return node.room_token(rooms, ttl)


def publish_token(node: JanusNode, room: int, holder: str) -> str:
    """The token of ``room``'s one publisher: valid while the room's list holds it."""
    return sign_janus_token(
        node.token_secret, [f"room={room}", f"pub={holder}"], STABLE_EXPIRY, realm=VIDEOROOM
    )


def control_token(node: JanusNode, room: int) -> str:
    """The control plane's own token for ``room``: in every allowed list, never handed out.

    It lets the control plane join any room as a participant that never publishes
    (to read a feed's streams, to watch who watches); it is as secret as the room
    secret, which never leaves the control plane either.
    """
    return sign_janus_token(
        node.token_secret, [f"room={room}", "pub=diemcau-control"], STABLE_EXPIRY, realm=VIDEOROOM
    )


def new_pin() -> str:
    """A fresh program-room pin (96 random bits)."""
    return secrets.token_urlsafe(12)
