"""``diemcau provision``: credentials and printable sheets for every site, with a progress bar."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from diemcau.accounts.cli import add_db_argument, open_store, run_command
from diemcau.config import Settings
from diemcau.directory.loaded import require_directory
from diemcau.directory.provision import provision

__all__ = ["ProgressBar", "register"]


class ProgressBar:
    """A one-line text bar on a stream: ``[#####.....] 1200/3356  812/s``.

    Redraws at most every `interval` seconds (and at the end), so it costs nothing
    next to the work it reports.
    """

    def __init__(
        self, label: str, stream: TextIO | None = None, width: int = 30, interval: float = 0.1
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._finished = False

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        final = total > 0 and done >= total
        if not final and now - self._last_draw < self.interval:
            return
        if self._finished:
            return
        if total == 0:  # nothing to do: no bar at all
            self._finished = True
            return
        self._last_draw = now
        filled = int(self.width * done / total) if total else self.width
        rate = done / max(now - self.started, 1e-9)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total} {rate:7.0f}/s")
        if final or total == 0:
            self.stream.write("\n")
            self._finished = True
        self.stream.flush()


def _provision(args: argparse.Namespace) -> int:
    async def work() -> int:
        settings = Settings()
        out = Path(args.out) if args.out else settings.data_dir / "provision"
        base_url = args.base_url or settings.resolved_public_url()
        # Before minutes of QR codes: the sheets' folder must exist and take files.
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "cannot write the sheets there", str(out))
        async with open_store(args.db) as (db, keys):
            await require_directory(db)
            result = await provision(
                db,
                keys.site,
                base_url,
                out,
                province_code=args.province,
                rotate=args.rotate,
                progress=ProgressBar("QR", stream=sys.stderr),
                xlsx=args.xlsx,
            )
        for sheet in result.sheets:
            print(f"{sheet.province_code:>4} {sheet.sites:6} {sheet.html_path}")
        rate = result.issued / result.seconds if result.seconds else 0.0
        print(
            f"issued {result.issued} site credentials ({result.kept} kept, "
            f"{result.revoked} revoked left alone) in {result.seconds:.1f} s "
            f"({rate:.0f} sites/s); index: {result.index_path}"
        )
        if result.issued == 0 and result.kept:
            print("every site in scope already has a credential: --rotate replaces them")
        return 0

    return run_command(work)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``provision`` command."""
    parser = subparsers.add_parser(
        "provision",
        help="issue site credentials and write per-province CSV (+ XLSX) and printable QR sheets",
    )
    add_db_argument(parser)
    parser.add_argument("--province", default=None, metavar="CODE", help="only this province")
    parser.add_argument(
        "--rotate",
        action="store_true",
        help="replace every credential in scope (default: only sites without one)",
    )
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="output folder (default: <data dir>/provision)"
    )
    parser.add_argument(
        "--base-url", default=None, metavar="URL", help="public server URL for join links"
    )
    parser.add_argument(
        "--xlsx",
        action="store_true",
        help="also write each province's list as an Excel workbook (.xlsx)",
    )
    parser.set_defaults(func=_provision)
