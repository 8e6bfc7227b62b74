"""Faults benchmark: one row per fault scenario, with recovery times and losses.

Run (as root; it enters a private network namespace, and some scenarios build
the lab of `docs/deploy.md` §9)::

    .venv/bin/python bench/faults.py [--soak] [--only NAME ...] [--db sqlite,postgresql]
                                     [--sites N] [--duration S] [--list]

Scenarios live in modules beside this one, ``bench/fault_<area>.py``, each
exposing ``SCENARIOS``: a list of functions taking `fault_kit.FaultOptions` and
returning `fault_kit.FaultRow` s (``fault_control``: the control server, its
store, the standby and churn; ``fault_media``: weak links and media nodes).
Every run is bounded: a scenario stops by itself, and one that overruns its
time limit is cancelled and reported as failed. ``--soak`` runs the long
versions. Exit status 1 when any row failed its pass condition (loss 0,
recovery under the bound). See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

from diemcau.media.isolation import enter_isolated_netns
from fault_kit import FaultOptions, FaultRow, Scenario, table

# A scenario that runs longer than this (short / soak) is cancelled and fails.
LIMIT_S = (900.0, 4 * 3600.0)


def registry() -> list[Scenario]:
    """Every scenario of every ``fault_*.py`` module beside this file, in module order."""
    here = Path(__file__).resolve().parent
    if str(here) not in sys.path:
        sys.path.insert(0, str(here))
    found: list[Scenario] = []
    for path in sorted(here.glob("fault_*.py")):
        if path.stem == "fault_kit":
            continue
        module = importlib.import_module(path.stem)
        found.extend(getattr(module, "SCENARIOS", []))
    return found


async def run_one(scenario: Scenario, options: FaultOptions) -> list[FaultRow]:
    """Run one scenario within its time limit; a crash or an overrun is a failed row."""
    limit = LIMIT_S[1] if options.soak else LIMIT_S[0]
    name = scenario.__name__
    started = time.monotonic()
    try:
        rows = await asyncio.wait_for(scenario(options), limit)
    except TimeoutError:
        rows = [FaultRow(name, "-", 0, [], failed=f"still running after {limit:.0f} s: cancelled")]
    except Exception as exc:
        traceback.print_exc()
        rows = [FaultRow(name, "-", 0, [], failed=f"{type(exc).__name__}: {exc}")]
    took = time.monotonic() - started
    print(f"[faults] {name}: {len(rows)} row(s) in {took:.0f} s", file=sys.stderr, flush=True)
    return rows


async def main(args: argparse.Namespace) -> int:
    scenarios = registry()
    if args.only:
        scenarios = [s for s in scenarios if any(o in s.__name__ for o in args.only)]
    if args.list or not scenarios:
        for s in registry():
            doc = (s.__doc__ or "").strip().splitlines()
            print(f"{s.__name__:<32} {doc[0] if doc else ''}")
        return 0 if args.list else 2
    rows: list[FaultRow] = []
    with tempfile.TemporaryDirectory(prefix="diemcau-faults-") as tmp:
        for index, scenario in enumerate(scenarios):
            folder = Path(tmp) / f"{index:02d}-{scenario.__name__}"
            folder.mkdir()
            options = FaultOptions(
                tmp=folder,
                soak=args.soak,
                databases=tuple(d for d in args.db.split(",") if d),
                sites=args.sites,
                duration_s=args.duration,
            )
            got = await run_one(scenario, options)
            print(table(got), flush=True)
            rows.extend(got)
    mode = "soak" if args.soak else "short"
    print(f"\nfaults ({mode} runs), recovery over the affected sites, losses vs the store")
    print(table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--soak", action="store_true", help="the long versions of each scenario")
    ap.add_argument("--only", action="append", default=[], help="scenarios whose name has this")
    ap.add_argument("--db", default="sqlite,postgresql", help="control stores to run on")
    ap.add_argument("--sites", type=int, default=None, help="simulated sites per scenario")
    ap.add_argument(
        "--duration", type=float, default=None, help="seconds a timed scenario keeps its fault"
    )
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    cli = ap.parse_args()
    if not cli.list:
        enter_isolated_netns()
    sys.exit(asyncio.run(main(cli)))
