"""What every fault scenario of `bench/faults.py` shares: its options, its row, the table.

A scenario module (``bench/fault_<area>.py``) exposes ``SCENARIOS``, a list of
`Scenario` functions. Each takes the run's `FaultOptions` and returns one or more
`FaultRow` s: what was done, how long the affected sites took to recover (one
figure per site), and what was lost, counted by comparing what clients sent or
were told against what the store holds afterwards (docs/reliability.md).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LOSS_KINDS",
    "FaultOptions",
    "FaultRow",
    "Scenario",
    "percentile",
    "table",
]

# What a scenario may count as lost (a kind it did not check is left out of its row).
LOSS_KINDS = ("messages", "reports", "directives", "acks", "attendance", "audit")


@dataclass(frozen=True)
class FaultOptions:
    """How a run is sized.

    Attributes:
        tmp: a fresh folder the scenario may fill (stores, logs, certificates).
        soak: the long versions (minutes to hours) instead of the short ones.
        databases: the control stores to run store-dependent scenarios on.
        sites: simulated sites per scenario (None: the scenario's own default).
        duration_s: how long a timed scenario (churn, a weak link) keeps its fault on
            (None: the scenario's own default, longer with `soak`).
    """

    tmp: Path
    soak: bool = False
    databases: tuple[str, ...] = ("sqlite", "postgresql")
    sites: int | None = None
    duration_s: float | None = None


@dataclass
class FaultRow:
    """One scenario's outcome.

    Attributes:
        scenario: its short name (``control kill -9 (sqlite)``).
        action: what was done, in a few words.
        affected: how many sites the fault touched.
        recovery_s: per affected site that recovered, seconds from the fault to recovery.
        bound_s: the promised recovery bound (None: no bound promised).
        lost: per kind of `LOSS_KINDS` checked, how many were lost.
        checked: per kind, how many were checked (the denominator of `lost`).
        notes: anything a reader needs to judge the figures (RSS, tasks, fds ...).
    """

    scenario: str
    action: str
    affected: int
    recovery_s: list[float]
    bound_s: float | None = None
    lost: dict[str, int] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
    notes: str = ""
    failed: str = ""

    @property
    def ok(self) -> bool:
        """Every affected site recovered within the bound, nothing lost, no failure noted."""
        if self.failed or len(self.recovery_s) < self.affected:
            return False
        if self.bound_s is not None and self.recovery_s and max(self.recovery_s) > self.bound_s:
            return False
        return not any(self.lost.values())


Scenario = Callable[[FaultOptions], Awaitable[list[FaultRow]]]


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of `values` by nearest rank; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _lost(row: FaultRow) -> str:
    parts = []
    for kind in LOSS_KINDS:
        if kind in row.lost:
            total = row.checked.get(kind)
            parts.append(f"{kind} {row.lost[kind]}" + (f"/{total}" if total is not None else ""))
    return ", ".join(parts) or "-"


def table(rows: Sequence[FaultRow]) -> str:
    """The rows as a text table (recovery in seconds over the affected sites)."""
    head = (
        f"{'scenario':<34} {'sites':>5} {'recovered':>9} {'p50 s':>6} {'p95 s':>6} "
        f"{'max s':>6} {'bound':>5}  {'result':<6} lost (of checked)"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        rec = row.recovery_s
        bound = "-" if row.bound_s is None else f"{row.bound_s:g}"
        lines.append(
            f"{row.scenario:<34} {row.affected:>5} {len(rec):>9} "
            f"{_seconds(percentile(rec, 0.5)):>6} {_seconds(percentile(rec, 0.95)):>6} "
            f"{_seconds(max(rec) if rec else math.nan):>6} {bound:>5}  "
            f"{'ok' if row.ok else 'FAIL':<6} {_lost(row)}"
        )
        lines.append(f"    done: {row.action}")
        if row.notes:
            lines.append(f"    {row.notes}")
        if row.failed:
            lines.append(f"    FAILED: {row.failed}")
    return "\n".join(lines)
