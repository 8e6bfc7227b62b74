"""Fault scenarios of the control plane (`bench/faults.py`): the control server killed,
its PostgreSQL restarted, a standby taking over, reconnect churn.

Each runs a scenario of `diemcau.lab` (the same code the tests run at CI size) bigger
and longer, and turns its result into a `fault_kit.FaultRow`; docs/reliability.md
states the promises. Sizes (short / ``--soak``):

- kill -9 mid-meeting, SQLite and PostgreSQL: 200 sites, 2 kills / 200 sites, 6 kills;
- PostgreSQL restarted under a running server: 200 sites, 2 restarts of 5 s / 6;
- standby takeover on the lab (PostgreSQL, Janus nodes): 100 sites / 300 sites;
- churn: 10 cuts a second for 10 minutes among 200 sites / 60 minutes (``--duration``
  sets it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from diemcau.lab.churn_faults import churn
from diemcau.lab.control_faults import kill_restart, store_restart
from diemcau.lab.fault_stage import FaultResult
from diemcau.lab.netns import Host
from diemcau.lab.postgres import LabPostgres
from diemcau.lab.server import free_port
from diemcau.lab.standby_faults import standby_takeover
from fault_kit import FaultOptions, FaultRow, Scenario


def _row(result: FaultResult) -> FaultRow:
    return FaultRow(
        scenario=result.scenario,
        action=result.action,
        affected=result.affected,
        recovery_s=result.recovery_s,
        bound_s=result.bound_s,
        lost=dict(result.losses.lost),
        checked=dict(result.losses.checked),
        notes=result.notes,
        failed=result.failed,
    )


@asynccontextmanager
async def _postgres() -> AsyncIterator[str]:
    """A private PostgreSQL cluster on loopback (this namespace) with an empty database."""
    pg = LabPostgres(Host.here("control"), "127.0.0.1", port=free_port(), allow="127.0.0.1/32")
    url = await pg.start()
    try:
        yield url
    finally:
        await pg.stop()


def _sites(options: FaultOptions, short: int, soak: int) -> int:
    return options.sites or (soak if options.soak else short)


async def control_kill_9(options: FaultOptions) -> list[FaultRow]:
    """kill -9 of the control server mid-meeting, restarted at once (SQLite, PostgreSQL)"""
    rows = []
    sites = _sites(options, 200, 200)
    kills = 6 if options.soak else 2
    for db in options.databases:
        tmp = options.tmp / db
        tmp.mkdir()
        if db == "postgresql":
            async with _postgres() as url:
                result = await kill_restart(
                    tmp, database_url=url, sites=sites, kills=kills, before_s=8, after_s=8
                )
        else:
            result = await kill_restart(tmp, sites=sites, kills=kills, before_s=8, after_s=8)
        rows.append(_row(result))
    return rows


async def postgresql_restart(options: FaultOptions) -> list[FaultRow]:
    """PostgreSQL restarted (fast shutdown, 5 s down) under a running server"""
    if "postgresql" not in options.databases:
        return []
    restarts = 6 if options.soak else 2
    result = await store_restart(
        options.tmp, sites=_sites(options, 200, 200), restarts=restarts, down_s=5, after_s=8
    )
    return [_row(result)]


async def standby(options: FaultOptions) -> list[FaultRow]:
    """kill -9 of the active server of a standby pair on the lab (PostgreSQL, Janus)"""
    result = await standby_takeover(
        options.tmp, sites=_sites(options, 100, 300), media=True, before_s=8, after_s=10
    )
    return [_row(result)]


async def reconnect_churn(options: FaultOptions) -> list[FaultRow]:
    """10 connections cut per second with a meeting live: leaks and losses"""
    seconds = options.duration_s or (3600.0 if options.soak else 600.0)
    result = await churn(
        options.tmp, sites=_sites(options, 200, 200), rate=10.0, duration_s=seconds
    )
    return [_row(result)]


SCENARIOS: list[Scenario] = [control_kill_9, postgresql_restart, standby, reconnect_churn]
