"""``diemcau command ...``: check indicator schemas, import situation reports from CSV.

``schemas`` validates the built-in presets and an optional folder of schema
files (what ``DIEMCAU_SCHEMAS_DIR`` would load) without starting a server, so
a typo in a new form is caught before it reaches 3,321 sites. ``import`` files
a CSV of reports as a named staff account, with that account's province scope.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from sqlalchemy import select

from diemcau.actors import Actor
from diemcau.command.reports import ReportService, parse_period
from diemcau.command.schemas import SchemaRegistry, builtin_registry
from diemcau.config import Settings
from diemcau.directory.loaded import EmptyDirectory, require_directory
from diemcau.errors import DomainError
from diemcau.store import Database, StaffUser, migrate

__all__ = ["register"]


def _registry(folder: str) -> SchemaRegistry:
    registry = builtin_registry()
    if folder:
        if not Path(folder).is_dir():
            raise DomainError(f"{folder}: no such folder of schema files")
        registry.load_dir(Path(folder))
    return registry


def _cmd_schemas(args: argparse.Namespace) -> int:
    try:
        registry = _registry(args.dir)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([s.public() for s in registry.all()], ensure_ascii=False))
        return 0
    for s in registry.all():
        kinds = ", ".join(i.type for i in s.indicators)
        print(
            f"{s.key:12} {s.period:6} due +{s.deadline_hours:g} h  "
            f"{len(s.indicators)} indicators ({kinds})  {s.label_vi}"
        )
    return 0


async def _import(args: argparse.Namespace) -> dict[str, int]:
    url = args.db or Settings().resolved_database_url()
    await migrate(url)
    db = Database(url)
    try:
        await require_directory(db)
        async with db.session() as s:
            user = await s.scalar(select(StaffUser).where(StaffUser.username == args.as_user))
        if user is None or user.disabled:
            raise DomainError(f"--as: no active staff account '{args.as_user}'")
        actor = Actor.for_staff(user.username, user.role, user.province_id, user_id=user.id)
        service = ReportService(db, _registry(args.schemas_dir), time.time)
        text = Path(args.file).read_text(encoding="utf-8-sig")
        period = parse_period(args.period) if args.period else None
        result = await service.import_csv(actor, args.schema, text, period=period, note=args.note)
        return result.public()
    finally:
        await db.dispose()


def _cmd_import(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_import(args))
    except EmptyDirectory:
        raise  # one line, said by the command line's own handler
    except DomainError as exc:
        # A refused file lists every bad line; one per output line reads better.
        for part in exc.message.split("; "):
            print(f"error: {part}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("command", help="situation report schemas and CSV imports")
    actions = command.add_subparsers(dest="command_action", required=True, metavar="ACTION")

    schemas = actions.add_parser("schemas", help="validate and list indicator schemas")
    schemas.add_argument("--dir", default="", help="also load every *.json schema in DIR")
    schemas.add_argument("--json", action="store_true", help="print the schemas as JSON")
    schemas.set_defaults(func=_cmd_schemas)

    imp = actions.add_parser(
        "import",
        help="import reports from a CSV (site_code, [period], indicator keys), all or nothing",
    )
    imp.add_argument("--db", default="", help="database URL (default: the embedded store)")
    imp.add_argument("--schema", required=True, help="schema key, e.g. covid19")
    imp.add_argument("--period", default="", help="YYYY-MM-DD for lines without a period")
    imp.add_argument("--as", dest="as_user", required=True, help="staff username filing it")
    imp.add_argument("--note", default="", help="why (kept in each report's history)")
    imp.add_argument("--schemas-dir", default="", help="extra schema folder")
    imp.add_argument("file", help="the CSV file (UTF-8)")
    imp.set_defaults(func=_cmd_import)
