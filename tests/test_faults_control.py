"""The control plane under faults, at CI size: each test runs one scenario of
`diemcau.lab.control_faults` (the long versions are in ``bench/faults.py``) and pins its
pass condition (docs/reliability.md): nothing confirmed to a client is lost, every
site works again within the promised time, the server survives.

While the fault happens, 8 simulated sites are in a live meeting, file a report every
2 s and acknowledge every directive; the chair issues a directive and passes the floor
every 2 s. Losses are counted against the store afterwards: reports, acknowledgements,
directives (stored and received), messages (every durable message received, resumes
included), attendance (present at the end, and no interval claiming presence across an
outage) and audit rows.
"""

from __future__ import annotations

from pathlib import Path

from diemcau.lab.control_faults import kill_restart, store_restart
from diemcau.lab.fault_stage import FaultResult


def _explain(result: FaultResult) -> str:
    return (
        f"{result.scenario}: failed={result.failed!r} lost={result.losses.lost} "
        f"checked={result.losses.checked} recovery={sorted(result.recovery_s)} "
        f"details={result.losses.details} notes={result.notes}"
    )


def _assert_passes(result: FaultResult) -> None:
    assert not result.failed, _explain(result)
    assert result.losses.total == 0, _explain(result)
    # Every kind was really checked (a count over nothing would pass vacuously).
    for kind in ("reports", "acks", "directives", "messages", "attendance", "audit"):
        assert result.losses.checked.get(kind, 0) > 0, _explain(result)
    assert len(result.recovery_s) == result.affected, _explain(result)
    assert result.bound_s is not None and max(result.recovery_s) <= result.bound_s, _explain(result)
    assert result.ok


async def test_kill_9_mid_meeting_on_sqlite_loses_nothing(tmp_path: Path) -> None:
    """``kill -9`` of the control server while sites file and acknowledge; restarted at
    once (as systemd would). Sessions resume, attendance shows the gap (the intervals end
    at the last alive mark, none spans the outage), nothing confirmed is missing."""
    _assert_passes(await kill_restart(tmp_path, sites=8))


async def test_kill_9_mid_meeting_on_postgresql_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    _assert_passes(await kill_restart(tmp_path, database_url=pg_url, sites=8))


async def test_postgresql_restarted_under_a_running_server(tmp_path: Path) -> None:
    """PostgreSQL stops (fast shutdown, every session ended) for 3 s and starts again:
    meanwhile the API answers 503 ``store_unavailable`` (no 500, no traceback in the
    server's log), site requests are answered "unavailable" and sent again; afterwards
    the same server process serves 40 requests at once (no pool stuck on dead
    connections) and nothing confirmed is lost."""
    result = await store_restart(tmp_path, sites=8)
    _assert_passes(result)
    assert "503 store_unavailable" in result.notes, result.notes
    log = (tmp_path / "server" / "serve.log").read_text()
    assert "Traceback" not in log, log[-3000:]
