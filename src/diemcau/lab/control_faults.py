"""Faults of the control plane, each run end to end: the server killed, its store restarted.

Each scenario builds its stage (`FaultStage`), injects its fault while sites file
reports and acknowledge directives and the chair issues directives and passes the
floor, and returns a `FaultResult`: how long each site took to have a request
confirmed again after the fault, and what was lost. Tests run them small
(`tests/test_faults_control.py`), ``bench/faults.py`` larger and longer
(docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx

from diemcau.lab.control_process import ControlProcess
from diemcau.lab.fault_stage import FaultResult, FaultStage, seed_sites, utcnow
from diemcau.lab.losses import Losses
from diemcau.lab.netns import Host
from diemcau.lab.postgres import LabPostgres
from diemcau.lab.server import STAFF_PASSWORD, free_port

__all__ = ["KILL_RESTART_BOUND_S", "STORE_RESTART_BOUND_S", "kill_restart", "store_restart"]

# Sites work again (a request confirmed) within this once the killed server, restarted
# at once as a service manager does, serves again. The restart itself is mostly Python
# loading the server (2 s on an idle machine, 10-30 s on this shared one): reported
# beside the figure, not in it.
KILL_RESTART_BOUND_S = 5.0


async def kill_restart(
    tmp: Path,
    *,
    database_url: str | None = None,
    sites: int = 8,
    kills: int = 1,
    before_s: float = 4.0,
    after_s: float = 4.0,
    label: str = "",
) -> FaultResult:
    """``kill -9`` the control server mid-meeting `kills` times, restarting it each time.

    Args:
        tmp: a fresh folder (store, data, log).
        database_url: an empty PostgreSQL database (None: SQLite in `tmp`).
        sites: how many sites work meanwhile.
        before_s, after_s: seconds of work before each kill and after each restart.
    """
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'control.db'}"
    codes, ids = await seed_sites(url, sites)
    server = ControlProcess(tmp / "server", url, free_port(), free_port())
    await server.start()
    stage = FaultStage(url, codes, ids, [server.base_url], [server.presence_url])
    recovery: list[float] = []
    restarts: list[float] = []
    failed = ""
    try:
        await stage.begin()
        for _ in range(kills):
            await asyncio.sleep(before_s)
            down = utcnow()
            server.kill()
            server.spawn()  # at once, as a service manager would
            restarts.append(await server.wait_role("active"))
            back = time.monotonic()
            stage.outage(down, utcnow())
            await asyncio.sleep(after_s)
            recovery += stage.sites.ledger.recovered_after(back, stage.site_ids)
        losses = await stage.finish()
    except Exception as exc:
        failed = f"{type(exc).__name__}: {exc}; server log: {server.log_tail(5)}"
        losses = await stage.finish(settle_s=5) if stage.meeting_id else Losses()
    finally:
        await stage.close()
        status = await server.stop()
    if not failed and (status not in (0, -15) or "Traceback" in server.log.read_text()):
        # uvicorn ends an orderly SIGTERM stop by raising the signal again (-15).
        failed = f"the server's orderly stop ended with {status}: {server.log_tail(8)}"
    store = "PostgreSQL" if database_url else "SQLite"
    restart_text = ", ".join(f"{r:.1f}" for r in restarts)
    return FaultResult(
        scenario=label or f"control kill -9 ({store.lower()})",
        action=f"kill -9 of the control server x{kills} mid-meeting, restarted at once "
        f"({store}; {sites} sites filing and acknowledging, chair issuing and granting)",
        affected=sites * kills,
        recovery_s=recovery,
        bound_s=KILL_RESTART_BOUND_S,
        losses=losses,
        notes="; ".join(
            [f"recovery counted from the server serving again, {restart_text} s after each kill"]
            + losses.details[:3]
        ),
        failed=failed,
    )


# After a restart of its PostgreSQL server, sites have a request confirmed within this
# (counted from the database accepting connections again).
STORE_RESTART_BOUND_S = 10.0
# The API requests fired at once after the restart: more than the pool holds (10 + 20).
POOL_PROBE = 40


async def _probe_api(base: str, token: str, path: str, stop: asyncio.Event) -> Counter[str]:
    """Ask `path` every 0.2 s until `stop`; count the answers (status and error code)."""
    seen: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while not stop.is_set():
            try:
                r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
                seen[f"{r.status_code} {code}".strip()] += 1
            except httpx.TransportError as exc:
                seen[type(exc).__name__] += 1
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass
    return seen


async def _pool_after(base: str, token: str, path: str) -> Counter[str]:
    """`POOL_PROBE` requests at once: a pool stuck on dead connections would fail them."""
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:
        auth = {"Authorization": f"Bearer {token}"}
        answers = await asyncio.gather(
            *(client.get(path, headers=auth) for _ in range(POOL_PROBE)), return_exceptions=True
        )
    return Counter(
        str(a.status_code) if isinstance(a, httpx.Response) else type(a).__name__ for a in answers
    )


async def store_restart(
    tmp: Path,
    *,
    sites: int = 8,
    restarts: int = 1,
    down_s: float = 3.0,
    before_s: float = 3.0,
    after_s: float = 4.0,
) -> FaultResult:
    """Restart the PostgreSQL server under a running control server, mid-meeting.

    Passes when, during each outage, the API answers ``503 store_unavailable`` (never a
    500), the server recovers by itself (same process), `POOL_PROBE` requests at once
    all succeed afterwards (no pool stuck on dead connections), nothing confirmed is
    lost, and every site has a request confirmed again within `STORE_RESTART_BOUND_S`.
    """
    pg = LabPostgres(Host.here("control"), "127.0.0.1", port=free_port(), allow="127.0.0.1/32")
    url = await pg.start()
    server: ControlProcess | None = None
    failed = ""
    recovery: list[float] = []
    during: Counter[str] = Counter()
    pool: Counter[str] = Counter()
    try:
        codes, ids = await seed_sites(url, sites)
        server = ControlProcess(tmp / "server", url, free_port(), free_port())
        await server.start()
        pid = server.pid
        stage = FaultStage(url, codes, ids, [server.base_url], [server.presence_url])
        try:
            await stage.begin()
            token = await _chair_token(server.base_url)
            path = f"/api/meetings/{stage.meeting_id}"
            for _ in range(restarts):
                await asyncio.sleep(before_s)
                await pg.pause()
                stop = asyncio.Event()
                probe = asyncio.create_task(_probe_api(server.base_url, token, path, stop))
                await asyncio.sleep(down_s)
                stop.set()
                during += await probe
                await pg.resume()
                back = time.monotonic()
                await asyncio.sleep(after_s)
                recovery += stage.sites.ledger.recovered_after(back, stage.site_ids)
            pool = await _pool_after(server.base_url, token, path)
            losses = await stage.finish()
        finally:
            await stage.close()
        if server.pid != pid or not server.alive():
            failed = f"the server did not survive: {server.log_tail(8)}"
        elif any(k.startswith("500") for k in during):
            failed = f"500 answers during the outage: {dict(during)}"
        elif pool.get("200", 0) != POOL_PROBE:
            failed = f"after the restart, {POOL_PROBE} requests at once got {dict(pool)}"
    except Exception as exc:
        failed = f"{type(exc).__name__}: {exc}"
        losses = Losses()
    finally:
        if server is not None:
            await server.stop()
        await pg.stop()
    return FaultResult(
        scenario="postgresql restart",
        action=f"PostgreSQL stopped (fast shutdown) for {down_s:.0f} s and started again x"
        f"{restarts} under a running server ({sites} sites filing and acknowledging)",
        affected=sites * restarts,
        recovery_s=recovery,
        bound_s=STORE_RESTART_BOUND_S,
        losses=losses,
        notes="; ".join(
            [
                f"API during the outage: {dict(during)}",
                f"{POOL_PROBE} requests at once after: {dict(pool)}",
                "recovery counted from PostgreSQL back",
            ]
            + losses.details[:3]
        ),
        failed=failed,
    )


async def _chair_token(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:
        r = await c.post("/api/auth/login", json={"username": "chair", "password": STAFF_PASSWORD})
        r.raise_for_status()
        return str(r.json()["token"])
