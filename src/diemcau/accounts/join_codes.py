"""The join code a site logs in with, ``"<site code>:<secret>"``: built, linked, split,
checked against an in-memory map of digests.

The secret is 160 random bits, so a keyed SHA-256 (HMAC) of it is enough to store,
and checking it costs microseconds (docs/architecture.md, "Credentials fit the
scale"). The map comes from `accounts.site_credentials.load_site_digests`.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from diemcau.accounts.principals import SitePrincipal
from diemcau.security import Key, match_site_secret

__all__ = ["join_code", "join_link", "match_join_code", "split_join_code", "verify_join_code"]


def join_code(site_code: str, secret: str) -> str:
    """The join code a site types or scans: ``"<site code>:<secret>"``."""
    return f"{site_code}:{secret}"


def join_link(base_url: str, code: str) -> str:
    """``{base}/join#<site code>:<secret>`` for a join code.

    The secret rides in the URL fragment, which browsers never send to the
    server, so it stays out of access logs. The site code is percent-encoded
    (official codes are digits and stay as they are; an imported code with a
    space or ``#`` would otherwise break the link), so the join page reads the
    fragment with ``decodeURIComponent``.
    """
    site_code, _, secret = code.rpartition(":")
    return f"{base_url.rstrip('/')}/join#{quote(site_code, safe='')}:{secret}"


def split_join_code(code: str) -> tuple[str, str] | None:
    """``(site code, secret)`` from a join code, or None when malformed.

    Splits at the last colon: secrets are URL-safe base64 and never contain one,
    while an imported site code might.
    """
    site_code, sep, secret = code.strip().rpartition(":")
    if not sep or not site_code or not secret:
        return None
    return site_code, secret


def match_join_code(
    key: Key, digests: Mapping[str, tuple[str, SitePrincipal]], code: str
) -> tuple[SitePrincipal, str] | None:
    """Check a join code against a map from `load_site_digests`: the site and the id
    of the key that made its digest (not the current one: re-key it), or None."""
    parts = split_join_code(code)
    if parts is None:
        return None
    entry = digests.get(parts[0])
    if entry is None:
        return None
    kid = match_site_secret(key, entry[0], parts[1])
    return None if kid is None else (entry[1], kid)


def verify_join_code(
    key: Key, digests: Mapping[str, tuple[str, SitePrincipal]], code: str
) -> SitePrincipal | None:
    """Check a join code against a map from `load_site_digests`."""
    found = match_join_code(key, digests, code)
    return None if found is None else found[0]
