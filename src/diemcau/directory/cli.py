"""``diemcau directory load | stats | search``: fill and inspect the site directory.

These commands are what the checks run (issue 2); keep their flags and output
stable. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from diemcau.cliargs import bounded_int
from diemcau.config import Settings
from diemcau.directory.csv_import import CsvImportError, read_csv_file
from diemcau.directory.datasets import DATASETS, load_dataset
from diemcau.directory.loaded import require_directory
from diemcau.directory.records import UnitRecord
from diemcau.directory.schemas import LoadResult, SearchHit
from diemcau.errors import DomainError
from diemcau.store import Database, migrate

__all__ = ["register"]


def _db_url(args: argparse.Namespace) -> str:
    return str(args.db or Settings().resolved_database_url())


def _progress(stage: str, done: int, total: int) -> None:
    print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)


async def _load(
    url: str, dataset: str, records: list[UnitRecord]
) -> tuple[LoadResult, dict[str, int]]:
    from diemcau.directory import service

    await migrate(url)
    db = Database(url)
    try:
        result = await service.load_units(db, records, dataset=dataset, progress=_progress)
        counts = await service.stats(db)
    finally:
        await db.dispose()
    return result, counts


def _cmd_load(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.csv:
        path = Path(args.csv)
        print(f"diemcau: reading {path}", file=sys.stderr)
        try:
            records = read_csv_file(path)
        except OSError as exc:
            print(f"diemcau: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        except CsvImportError as exc:
            print(f"diemcau: {path} refused, nothing written:", file=sys.stderr)
            for error in exc.errors:
                print(f"{path}:{error.line}: {error.reason}", file=sys.stderr)
            return 1
        dataset = "csv"
    else:
        dataset = args.dataset
        print(f"diemcau: reading dataset {dataset}", file=sys.stderr)
        records = load_dataset(dataset)
    url = _db_url(args)
    print(f"diemcau: loading {len(records)} units", file=sys.stderr)
    try:
        result, counts = asyncio.run(_load(url, dataset, records))
    except DomainError as exc:
        print(f"diemcau: refused: {exc.message}", file=sys.stderr)
        return 1
    print(
        f"{dataset}: units +{result.units_inserted} ~{result.units_updated} "
        f"={result.units_unchanged}, sites +{result.sites_inserted} "
        f"~{result.sites_updated} ={result.sites_unchanged} "
        f"in {time.perf_counter() - started:.2f} s"
    )
    print("directory: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


async def _stats(url: str) -> dict[str, int]:
    from diemcau.directory import service

    db = Database(url)
    try:
        await require_directory(db)
        return await service.stats(db)
    finally:
        await db.dispose()


def _unreadable(url: str, exc: DBAPIError) -> int:
    first = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
    print(
        f"diemcau: cannot read the directory at {make_url(url)!r} ({first}); "
        "run `diemcau directory load` first",
        file=sys.stderr,
    )
    return 1


def _cmd_stats(args: argparse.Namespace) -> int:
    url = _db_url(args)
    try:
        counts = asyncio.run(_stats(url))
    except DBAPIError as exc:
        return _unreadable(url, exc)
    if args.json:
        print(json.dumps(counts))
    else:
        for key, value in counts.items():
            print(f"{key:>10} {value}")
    return 0


async def _search(url: str, query: str, limit: int) -> list[SearchHit]:
    from diemcau.directory import service

    db = Database(url)
    try:
        await require_directory(db)
        return await service.search(db, query, limit=limit)
    finally:
        await db.dispose()


def _cmd_search(args: argparse.Namespace) -> int:
    url = _db_url(args)
    try:
        hits = asyncio.run(_search(url, args.query, args.limit))
    except DBAPIError as exc:
        return _unreadable(url, exc)
    if args.json:
        print(json.dumps([hit.model_dump() for hit in hits], ensure_ascii=False))
        return 0
    for hit in hits:
        where = ", ".join(p for p in (hit.parent_name, hit.province_name) if p)
        print(f"{hit.type:4} {hit.code:>8}  {hit.name}  ({where})")
    if not hits:
        print("no match", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    directory = sub.add_parser("directory", help="load and inspect the site directory")
    commands = directory.add_subparsers(dest="directory_command", required=True, metavar="ACTION")
    db_help = "database URL (default: the embedded SQLite store in the data directory)"

    load = commands.add_parser(
        "load",
        help="load a built-in dataset or a CSV tree (idempotent, updates by code)",
        description="Migrate the database, then insert or update units and sites by code.",
    )
    load.add_argument("--db", default="", help=db_help)
    source = load.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=DATASETS, help="a built-in dataset")
    source.add_argument("--csv", metavar="FILE", help="a CSV tree (see docs/directory.md)")
    load.set_defaults(func=_cmd_load)

    stats = commands.add_parser("stats", help="count units per level and sites")
    stats.add_argument("--db", default="", help=db_help)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=_cmd_stats)

    search = commands.add_parser("search", help="find units and sites, with or without diacritics")
    search.add_argument("--db", default="", help=db_help)
    search.add_argument(
        "--limit", type=bounded_int(1, 1000), default=20, help="at most this many hits"
    )
    search.add_argument("--json", action="store_true", help="print a JSON list")
    search.add_argument("query", help='e.g. "phuong ben nghe" or "Bến Nghé"')
    search.set_defaults(func=_cmd_search)
