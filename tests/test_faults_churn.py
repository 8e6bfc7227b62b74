"""Reconnect churn with a meeting live, at CI size (``bench/faults.py`` runs it for 10
minutes, ``--soak`` for an hour): 10 connections cut per second among 40 sites for
20 s, while they file reports and acknowledge directives and the chair issues
directives and passes the floor. Every cut site is back within 5 s, nothing confirmed
is lost (every message received, resumes included), and the server's tasks and open
files are the same before and after with every site connected (read from
``GET /api/admin/process``), its memory within the slack (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

from diemcau.lab.churn_faults import CHURN_BOUND_S, churn


async def test_ten_reconnects_a_second_leak_nothing_and_lose_nothing(tmp_path: Path) -> None:
    result = await churn(tmp_path, sites=40, rate=10.0, duration_s=20.0)
    explain = (
        f"failed={result.failed!r} lost={result.losses.lost} checked={result.losses.checked} "
        f"details={result.losses.details} notes={result.notes}"
    )
    assert not result.failed, explain
    assert result.affected >= 190, explain  # 10 a second, give or take the last round
    assert len(result.recovery_s) == result.affected, explain
    assert max(result.recovery_s) <= CHURN_BOUND_S, explain
    assert result.losses.total == 0, explain
    for kind in ("reports", "acks", "directives", "messages", "attendance", "audit"):
        assert result.losses.checked.get(kind, 0) > 0, explain
    assert "tasks" in result.notes and "open files" in result.notes, explain
