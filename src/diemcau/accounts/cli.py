"""``diemcau staff add|list|disable|enable|logout``, ``diemcau site rotate|revoke`` and
``diemcau keys status|new``.

Every command migrates the store first and uses the instance keys
(`diemcau.instance_keys`: key files, the environment, or the keys kept in the
database). Results go to stdout, errors to stderr with exit code 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager

from diemcau.accounts.service import (
    AccountError,
    create_staff,
    disable_staff,
    enable_staff,
    end_staff_sessions,
    join_link,
    list_staff,
    revoke_site,
    rotate_site,
)
from diemcau.config import Settings
from diemcau.directory.loaded import require_directory
from diemcau.errors import DomainError
from diemcau.instance_keys import InstanceKeys, load_instance_keys, site_key_usage
from diemcau.records import JsonObject
from diemcau.security import key_id
from diemcau.store import Database, migrate
from diemcau.store.models import ROLES

__all__ = ["register", "open_store", "add_db_argument", "run_command"]

PASSWORD_ENV = "DIEMCAU_PASSWORD"  # noqa: S105 (the variable's name, not a password)


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="database URL (default: DIEMCAU_DB or the embedded SQLite file)",
    )


@asynccontextmanager
async def open_store(url: str | None) -> AsyncIterator[tuple[Database, InstanceKeys]]:
    """A migrated store and its instance keys; disposed on exit."""
    settings = Settings()
    resolved = url or settings.resolved_database_url()
    await migrate(resolved)
    db = Database(resolved)
    try:
        yield db, await load_instance_keys(settings, db)
    finally:
        await db.dispose()


def run_command(work: Callable[[], Coroutine[object, None, int]]) -> int:
    """Run `work`; a domain refusal prints its message and exits 1."""
    try:
        return asyncio.run(work())
    except DomainError as exc:
        print(f"diemcau: error: {exc}", file=sys.stderr)
        return 1


def _read_password(args: argparse.Namespace) -> str:
    if args.password is not None:
        password: str = args.password
        return password
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if not sys.stdin.isatty():
        raise AccountError(f"no password: pass --password, set {PASSWORD_ENV}, or use a terminal")
    first = getpass.getpass("Mật khẩu (password): ")
    second = getpass.getpass("Nhập lại (repeat): ")
    if first != second:
        raise AccountError("the two passwords differ")
    return first


def _staff_add(args: argparse.Namespace) -> int:
    async def work() -> int:
        password = _read_password(args)
        async with open_store(args.db) as (db, _key):
            if args.province:
                await require_directory(db)
            principal = await create_staff(
                db,
                args.username,
                password,
                args.role,
                province_code=args.province,
                display_name=args.display_name,
            )
        print(f"created {principal.role} '{principal.username}' (id {principal.user_id})")
        return 0

    return run_command(work)


def _staff_list(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store(args.db) as (db, _key):
            accounts = await list_staff(db)
        if args.json:
            rows: list[JsonObject] = [
                {
                    "username": a.username,
                    "display_name": a.display_name,
                    "role": a.role,
                    "province": a.province_code,
                    "disabled": a.disabled,
                    "created_at": a.created_at.isoformat(),
                }
                for a in accounts
            ]
            print(json.dumps(rows, ensure_ascii=False))
            return 0
        for a in accounts:
            state = "disabled" if a.disabled else "active"
            print(f"{a.username:24} {a.role:17} {a.province_code or '-':8} {state}")
        return 0

    return run_command(work)


def _staff_toggle(disabled: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def work() -> int:
            async with open_store(args.db) as (db, _key):
                if disabled:
                    await disable_staff(db, args.username)
                else:
                    await enable_staff(db, args.username)
            print(f"{'disabled' if disabled else 'enabled'} '{args.username}'")
            return 0

        return run_command(work)

    return command


def _staff_logout(args: argparse.Namespace) -> int:
    """End every session of an account now (a lost laptop, a departing officer)."""

    async def work() -> int:
        async with open_store(args.db) as (db, _keys):
            user_id = next(
                (a.user_id for a in await list_staff(db) if a.username == args.username.lower()),
                None,
            )
            if user_id is None:
                raise AccountError(f"no staff account '{args.username}'")
            await end_staff_sessions(db, user_id)
        print(f"ended every session of '{args.username.lower()}'")
        return 0

    return run_command(work)


def _site_rotate(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store(args.db) as (db, keys):
            await require_directory(db)
            code = await rotate_site(db, keys.site, args.code)
        base = args.base_url or Settings().resolved_public_url()
        print(f"Mã tham gia (join code): {code}")
        print(f"Đường dẫn tham gia (join link): {join_link(base, code)}")
        return 0

    return run_command(work)


def _site_revoke(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store(args.db) as (db, _key):
            await require_directory(db)
            version = await revoke_site(db, args.code)
        print(f"revoked site '{args.code}' (credential version {version})")
        return 0

    return run_command(work)


def _keys_status(args: argparse.Namespace) -> int:
    """Which key signs, which still verify, and how many site digests each key made."""

    async def work() -> int:
        async with open_store(args.db) as (db, keys):
            legacy = key_id(keys.legacy or b"")
            usage = await site_key_usage(db, keys.site.ids, legacy)
        print(f"token key  {keys.token.current_id}  signs new tokens")
        for kid in keys.token.ids[1:]:
            print(f"token key  {kid}  verifies only (retire it 12 h after the rotation)")
        for kid, count in usage.items():
            if kid == keys.site.current_id:
                role = "makes new digests"
            elif kid in keys.site.ids:
                role = "verifies only"
            else:
                role = "NOT CONFIGURED: these sites need new join codes"
            print(f"site key   {kid}  {role}; {count} site digests")
        return 0

    return run_command(work)


def _keys_new(_args: argparse.Namespace) -> int:
    print(secrets.token_hex(32))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``staff``, ``site`` and ``keys`` commands."""
    staff = subparsers.add_parser("staff", help="staff accounts (admin, chair, operator ...)")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")

    add = staff_sub.add_parser("add", help="create a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--province", default=None, metavar="CODE", help="for province_officer")
    add.add_argument("--display-name", default="")
    add.add_argument(
        "--password",
        default=None,
        help=f"the password (else ${PASSWORD_ENV}, else asked on the terminal)",
    )
    add_db_argument(add)
    add.set_defaults(func=_staff_add)

    lst = staff_sub.add_parser("list", help="list staff accounts")
    lst.add_argument("--json", action="store_true", help="print one JSON array")
    add_db_argument(lst)
    lst.set_defaults(func=_staff_list)

    for name, disabled in (("disable", True), ("enable", False)):
        toggle = staff_sub.add_parser(name, help=f"{name} a staff account")
        toggle.add_argument("username")
        add_db_argument(toggle)
        toggle.set_defaults(func=_staff_toggle(disabled))

    logout = staff_sub.add_parser("logout", help="end every session of a staff account now")
    logout.add_argument("username")
    add_db_argument(logout)
    logout.set_defaults(func=_staff_logout)

    site = subparsers.add_parser("site", help="one site's credential")
    site_sub = site.add_subparsers(dest="site_command", required=True, metavar="ACTION")
    rotate = site_sub.add_parser("rotate", help="issue a new join code (the old one stops)")
    rotate.add_argument("code", help="site code")
    rotate.add_argument("--base-url", default=None, help="public URL for the join link")
    add_db_argument(rotate)
    rotate.set_defaults(func=_site_rotate)

    revoke = site_sub.add_parser("revoke", help="revoke a site's credential")
    revoke.add_argument("code", help="site code")
    add_db_argument(revoke)
    revoke.set_defaults(func=_site_revoke)

    keys = subparsers.add_parser("keys", help="the token and site keys (docs/security.md)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    status = keys_sub.add_parser("status", help="which keys sign and verify, digests per key")
    add_db_argument(status)
    status.set_defaults(func=_keys_status)
    new = keys_sub.add_parser("new", help="print a fresh random key (for a key file)")
    new.set_defaults(func=_keys_new)
