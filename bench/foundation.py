"""Foundation bench: load the national directory and provision the whole country.

Run: ``.venv/bin/python bench/foundation.py [--runs 3] [--no-inline]``

Each run uses a fresh temporary SQLite database and measures, each step in its
own child process so that its peak RSS (``resource.getrusage``) is its own:

* ``load vn-legacy``: read the legacy three-level dataset and store it
  (63 provinces, ~700 districts, ~10,000 communes, one site per unit);
* ``load vn-2025``: the same for today's two-level country (34 + 3,321);
* ``provision vn-2025``: credentials for all 3,356 sites, per-province CSV and
  QR sheets, with the default QR worker processes (one per core);
* ``provision --rotate (inline)``: the same work again (rotating every
  credential) with QR codes made in the main process, side by side, to show
  what the workers buy on this machine.

The table prints the median over runs, with min-max. Wall time suffers on a
busy machine; CPU seconds (the step's process plus its QR workers) do not, so
read both. Peak RSS is the main process's; each QR worker (python + segno, a
few tens of MB) comes on top of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASE_URL = "https://diemcau.example.vn"


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the QR workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _phase(name: str, db_url: str, out: Path) -> dict[str, Any]:
    """One measured step, run inside a child process; returns its figures."""
    from diemcau.directory.datasets import load_dataset
    from diemcau.directory.provision import provision
    from diemcau.directory.service import load_units
    from diemcau.store import Database, migrate

    await migrate(db_url)
    db = Database(db_url)
    base_rss = _rss_mb()
    try:
        started, cpu_started = time.perf_counter(), _cpu_s()
        if name in ("load-legacy", "load-2025"):
            dataset = "vn-legacy" if name == "load-legacy" else "vn-2025"
            records = load_dataset(dataset)
            result = await load_units(db, records, dataset=dataset)
            count = result.sites_inserted + result.sites_updated + result.sites_unchanged
            extra: dict[str, float] = {"units": len(records)}
        else:
            key = await db.secret_key()
            inline = name == "provision-inline"
            outcome = await provision(
                db, key, BASE_URL, out, rotate=inline, workers=1 if inline else None
            )
            count = outcome.issued
            size = sum(p.stat().st_size for p in out.iterdir())
            extra = {"sheets": len(outcome.sheets), "out_mb": size / 2**20}
        seconds = time.perf_counter() - started
        cpu = _cpu_s() - cpu_started
    finally:
        await db.dispose()
    return {
        "sites": count,
        "seconds": seconds,
        "cpu": cpu,
        "rss": _rss_mb(),
        "base_rss": base_rss,
        **extra,
    }


def _child(name: str, db_url: str, out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--db", db_url, "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _one_run(inline: bool) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="diemcau-bench-") as tmp:
        root = Path(tmp)
        legacy_url = f"sqlite+aiosqlite:///{root / 'legacy.db'}"
        url = f"sqlite+aiosqlite:///{root / 'vn2025.db'}"
        figures = {
            "load vn-legacy": _child("load-legacy", legacy_url, root / "unused"),
            "load vn-2025": _child("load-2025", url, root / "unused"),
            f"provision vn-2025 ({os.cpu_count()} QR workers)": _child(
                "provision", url, root / "sheets"
            ),
        }
        if inline:
            figures["provision --rotate (QR inline)"] = _child(
                "provision-inline", url, root / "sheets-inline"
            )
    return figures


def _fmt(values: list[float], digits: int) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-inline", action="store_true", help="skip the inline QR row")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(asyncio.run(_phase(args.phase, args.db, Path(args.out)))))
        return 0

    runs: list[dict[str, dict[str, Any]]] = []
    for index in range(args.runs):
        print(f"run {index + 1}/{args.runs} ...", file=sys.stderr, flush=True)
        runs.append(_one_run(inline=not args.no_inline))

    print(
        f"\nfoundation bench: {args.runs} run(s), median (min-max), SQLite, {os.cpu_count()} CPUs"
    )
    header = (
        f"{'step':34} {'sites':>6} {'wall s':>17} {'CPU s':>17} {'sites/s':>15} {'peak RSS MB':>13}"
    )
    print(header)
    print("-" * len(header))
    for step in runs[0]:
        rows = [run[step] for run in runs]
        seconds = [r["seconds"] for r in rows]
        rates = [r["sites"] / r["seconds"] for r in rows]
        cpu = [r["cpu"] for r in rows]
        rss = [r["rss"] for r in rows]
        print(
            f"{step:34} {rows[0]['sites']:>6} {_fmt(seconds, 2):>17} {_fmt(cpu, 2):>17} "
            f"{_fmt(rates, 0):>15} {_fmt(rss, 0):>13}"
        )
    base = statistics.median(r["base_rss"] for run in runs for r in run.values())
    sheets = runs[0][next(s for s in runs[0] if s.startswith("provision"))]
    print(
        f"\nprocess RSS before each step (imports + migrated store): ~{base:.0f} MB; "
        f"provisioning wrote {sheets['sheets']} province sheet pairs, {sheets['out_mb']:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
