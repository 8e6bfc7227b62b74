"""Where the instance keys come from: key files or the environment, else the store.

Two keys with two jobs (docs/security.md, "Keys"):

- the **token key** signs staff and site session tokens and the links of directive
  attachments. Whoever holds it can make an admin token, so it should live outside
  the database: ``DIEMCAU_TOKEN_KEY_FILE`` (or ``DIEMCAU_TOKEN_KEY``);
- the **site key** keys the digests of the site secrets stored in ``sites``:
  ``DIEMCAU_SITE_KEY_FILE`` (or ``DIEMCAU_SITE_KEY``).

A key file holds one key per line, newest first: the first key signs, the others
still verify (rotation); blank lines and ``#`` comments are skipped. A key has at
least `MIN_KEY_CHARS` characters (``openssl rand -hex 32`` makes one).

Without configuration both keys are kept in the store (generated once), as before
the split: the site key is the historical instance key ``secret_key`` (or
``DIEMCAU_SECRET_KEY``), so the digests made with it keep working, and the token key
is a second stored key. When a site key is configured, that historical key is kept
at the end of the ring (verify only) while any site digest is still made with it;
each site's digest is re-made with the new key at its next successful login, and the
old key drops out by itself once none is left (``diemcau keys status`` counts them).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, or_, select

from diemcau.config import Settings
from diemcau.errors import Invalid
from diemcau.security import KeyRing, key_id
from diemcau.store import Database
from diemcau.store.models import Site

__all__ = [
    "MIN_KEY_CHARS",
    "InstanceKeys",
    "KeyConfigError",
    "load_instance_keys",
    "parse_keys",
    "site_key_usage",
]

log = logging.getLogger(__name__)

MIN_KEY_CHARS = 32
TOKEN_KEY_SETTING = "token_key"  # noqa: S105 (a settings row name, not a key)
_TOKEN_KEY_LABEL = b"diemcau token key"


class KeyConfigError(Invalid):
    """A configured key is missing, unreadable or too short (one line, for the CLI)."""

    code = "bad_key"


@dataclass(frozen=True)
class InstanceKeys:
    """The keys of one control server.

    Attributes:
        token: signs session tokens and attachment links (first key), verifies (all).
        site: keys the stored digests of site secrets.
        legacy: the single instance key used before the keys were split (the store's
            ``secret_key`` or ``DIEMCAU_SECRET_KEY``); attachment links signed with it
            still verify.
    """

    token: KeyRing
    site: KeyRing
    legacy: bytes | None = None

    @classmethod
    def single(cls, key: bytes) -> InstanceKeys:
        """One key for every job (tests and tools that build a hub from one key)."""
        return cls(KeyRing([key]), KeyRing([key]), None)

    @property
    def links(self) -> KeyRing:
        """The ring attachment links are signed (first key) and checked (all) with."""
        extra = [self.legacy] if self.legacy is not None else []
        return KeyRing([*self.token.keys, *extra])


def parse_keys(text: str, source: str) -> list[bytes]:
    """The keys in `text` (one a line, newest first), each checked for length.

    Raises:
        KeyConfigError: no key at all, or a key shorter than `MIN_KEY_CHARS`.
    """
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if len(value) < MIN_KEY_CHARS:
            raise KeyConfigError(
                f"{source} line {number}: a key needs at least {MIN_KEY_CHARS} characters "
                f"(it has {len(value)}); make one with: openssl rand -hex 32"
            )
        keys.append(value.encode())
    if not keys:
        raise KeyConfigError(f"{source}: holds no key (one key per line, newest first)")
    return keys


def _configured(value: str, file: str, name: str) -> list[bytes] | None:
    """The keys given by ``name`` or ``name_FILE``; None when neither is set."""
    if value and file:
        raise KeyConfigError(f"set {name} or {name}_FILE, not both")
    if file:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise KeyConfigError(f"{name}_FILE: cannot read {file}: {reason}") from exc
        try:
            if path.stat().st_mode & 0o077:
                log.warning("%s_FILE %s is readable by other users: chmod 600 it", name, file)
        except OSError:
            pass
        return parse_keys(text, f"{name}_FILE {file}")
    if value:
        return parse_keys(value.replace(",", "\n"), name)
    return None


async def site_key_usage(db: Database, ring_ids: tuple[str, ...], legacy_id: str) -> dict[str, int]:
    """How many stored site digests each key made: ``{key id: count}``.

    Digests stored before key ids were recorded count for `legacy_id`; ids of keys
    no longer configured appear too (those sites need a new join code).
    """
    async with db.session() as s:
        rows = (
            await s.execute(
                select(Site.secret_key_id, func.count())
                .where(Site.secret_digest.is_not(None))
                .group_by(Site.secret_key_id)
            )
        ).all()
    usage: dict[str, int] = dict.fromkeys(ring_ids, 0)
    for kid, count in rows:
        name = kid or legacy_id
        usage[name] = usage.get(name, 0) + int(count)
    return usage


async def _uses_key(db: Database, kid: str) -> bool:
    async with db.session() as s:
        found = await s.scalar(
            select(Site.id)
            .where(
                Site.secret_digest.is_not(None),
                or_(Site.secret_key_id.is_(None), Site.secret_key_id == kid),
            )
            .limit(1)
        )
    return found is not None


async def load_instance_keys(settings: Settings, db: Database) -> InstanceKeys:
    """The token and site keys `settings` name, completed from the store.

    Raises:
        KeyConfigError: a configured key is unreadable or too short.
    """
    if settings.secret_key and len(settings.secret_key) < MIN_KEY_CHARS:
        raise KeyConfigError(
            f"DIEMCAU_SECRET_KEY: a key needs at least {MIN_KEY_CHARS} characters "
            f"(it has {len(settings.secret_key)}); make one with: openssl rand -hex 32"
        )
    token = _configured(settings.token_key, settings.token_key_file, "DIEMCAU_TOKEN_KEY")
    site = _configured(settings.site_key, settings.site_key_file, "DIEMCAU_SITE_KEY")
    legacy = await db.secret_key(settings.secret_key)
    if token is None:
        if settings.secret_key:
            # Outside the store already: derive a separate signing key from it.
            derived = hmac.new(legacy, _TOKEN_KEY_LABEL, hashlib.sha256).hexdigest()
            token = [derived.encode()]
        else:
            token = [await db.stored_key(TOKEN_KEY_SETTING)]
    if site is None:
        site = [legacy]
    elif legacy not in site and await _uses_key(db, key_id(legacy)):
        site.append(legacy)  # verify only, until every site logged in again
    keys = InstanceKeys(KeyRing(token), KeyRing(site), legacy)
    await _warn_orphans(db, keys)
    return keys


async def _warn_orphans(db: Database, keys: InstanceKeys) -> None:
    usage = await site_key_usage(db, keys.site.ids, key_id(keys.legacy or b""))
    orphans = sum(n for kid, n in usage.items() if kid not in keys.site.ids)
    if orphans:
        log.warning(
            "%d site credentials were made with a key that is no longer configured; "
            "those sites need new join codes (diemcau keys status)",
            orphans,
        )
