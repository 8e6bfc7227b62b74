"""Credentials and tokens.

Staff passwords are hashed with argon2 (slow on purpose). A site credential is a
random secret of 160 bits, so a keyed SHA-256 (HMAC) is enough and costs
microseconds, which matters when every site of the country logs in at once
(docs/architecture.md, "Credentials fit the scale"). Reconnects and browser
sessions use short-lived signed tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "TokenError",
    "TokenClaims",
    "hash_password",
    "verify_password",
    "new_site_secret",
    "site_secret_digest",
    "verify_site_secret",
    "sign_token",
    "verify_token",
]

_HASHER = PasswordHasher()


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


def site_secret_digest(key: bytes, secret: str) -> str:
    """Keyed SHA-256 of a site secret, hex; only this is stored."""
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def verify_site_secret(key: bytes, stored_digest: str | None, secret: str) -> bool:
    if not stored_digest:
        return False
    return hmac.compare_digest(stored_digest, site_secret_digest(key, secret))


@dataclass(frozen=True)
class TokenClaims:
    """What a signed token says: who (`sub`), acting as what (`role`), until when."""

    sub: str
    role: str
    exp: int
    extra: dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(
    key: bytes,
    sub: str,
    role: str,
    ttl_s: int,
    now: float | None = None,
    **extra: Any,
) -> str:
    """Sign a compact token ``payload.signature`` (HMAC-SHA256 over the payload)."""
    issued = int(time.time() if now is None else now)
    payload = {"sub": sub, "role": role, "exp": issued + ttl_s, **extra}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_token(key: bytes, token: str, now: float | None = None) -> TokenClaims:
    """Check signature and expiry; return the claims or raise `TokenError`."""
    try:
        body, sig = token.split(".", 1)
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(sig)):
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
