"""Credentials and tokens.

Staff passwords are hashed with argon2 (slow on purpose). A site credential is a
random secret of 160 bits, so a keyed SHA-256 (HMAC) is enough and costs
microseconds, which matters when every site of the country logs in at once
(docs/architecture.md, "Credentials fit the scale"). Reconnects and browser
sessions use short-lived signed tokens.

Keys come in a `KeyRing` so they can be rotated (docs/security.md, "Keys"): the
first key signs and digests, every key of the ring still verifies. A plain
``bytes`` key is a ring of one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "Key",
    "KeyRing",
    "TokenError",
    "TokenClaims",
    "hash_password",
    "verify_password",
    "new_site_secret",
    "site_secret_digest",
    "verify_site_secret",
    "match_site_secret",
    "sign_token",
    "verify_token",
    "key_id",
]

_HASHER = PasswordHasher()


class KeyRing:
    """Keys of one purpose, newest first: the first signs, every one verifies.

    Rotation puts a new key in front and keeps the old ones until nothing made
    with them is still in use (tokens expire; site digests are re-made with the
    first key at each site's next successful login).
    """

    __slots__ = ("keys", "ids")

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        unique: list[bytes] = []
        for key in keys:
            if not key:
                raise ValueError("a key may not be empty")
            if key not in unique:
                unique.append(key)
        self.keys: tuple[bytes, ...] = tuple(unique)
        self.ids: tuple[str, ...] = tuple(key_id(k) for k in self.keys)

    @property
    def current(self) -> bytes:
        return self.keys[0]

    @property
    def current_id(self) -> str:
        return self.ids[0]

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(ids={list(self.ids)})"


Key = bytes | KeyRing


def key_id(key: bytes) -> str:
    """A short public name for a key (12 hex digits of a hash; reveals nothing of it)."""
    return hashlib.sha256(b"diemcau key id\x00" + key).hexdigest()[:12]


def _ring(key: Key) -> KeyRing:
    return key if isinstance(key, KeyRing) else KeyRing([key])


class TokenError(ValueError):
    """A token that is malformed, forged or expired."""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_site_secret() -> str:
    """A fresh site secret: 20 random bytes (160 bits), URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(20)).rstrip(b"=").decode()


def site_secret_digest(key: Key, secret: str) -> str:
    """Keyed SHA-256 of a site secret with the ring's first key, hex; only this is stored."""
    return hmac.new(_ring(key).current, secret.encode(), hashlib.sha256).hexdigest()


def match_site_secret(key: Key, stored_digest: str | None, secret: str) -> str | None:
    """The id of the ring's key that made `stored_digest` from `secret`, or None.

    Every key is tried (in constant time each), so a digest made before a rotation
    still matches; the caller re-makes it with the first key when the id differs.
    """
    if not stored_digest:
        return None
    ring = _ring(key)
    raw = secret.encode()
    for kid, k in zip(ring.ids, ring.keys, strict=True):
        if hmac.compare_digest(stored_digest, hmac.new(k, raw, hashlib.sha256).hexdigest()):
            return kid
    return None


def verify_site_secret(key: Key, stored_digest: str | None, secret: str) -> bool:
    return match_site_secret(key, stored_digest, secret) is not None


@dataclass(frozen=True)
class TokenClaims:
    """What a signed token says: who (`sub`), acting as what (`role`), until when."""

    sub: str
    role: str
    exp: int
    extra: dict[str, object]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(
    key: Key,
    sub: str,
    role: str,
    ttl_s: int,
    now: float | None = None,
    **extra: object,
) -> str:
    """Sign a compact token ``payload.signature`` (HMAC-SHA256 with the ring's first key)."""
    issued = int(time.time() if now is None else now)
    payload = {"sub": sub, "role": role, "exp": issued + ttl_s, **extra}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(_ring(key).current, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_token(key: Key, token: str, now: float | None = None) -> TokenClaims:
    """Check signature (any key of the ring) and expiry; return the claims or raise
    `TokenError`."""
    try:
        body, sig = token.split(".", 1)
        given = _unb64(sig)
        signed = body.encode()
        if not any(
            hmac.compare_digest(hmac.new(k, signed, hashlib.sha256).digest(), given)
            for k in _ring(key).keys
        ):
            raise TokenError("bad token signature")
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, TokenError):
            raise
        raise TokenError("malformed token") from exc
    if not isinstance(payload, dict):
        raise TokenError("malformed token")
    exp = payload.pop("exp", None)
    sub = payload.pop("sub", None)
    role = payload.pop("role", None)
    if not isinstance(exp, int) or not isinstance(sub, str) or not isinstance(role, str):
        raise TokenError("malformed token")
    if exp < (time.time() if now is None else now):
        raise TokenError("token expired")
    return TokenClaims(sub=sub, role=role, exp=exp, extra=payload)
