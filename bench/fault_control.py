"""Fault scenarios of the control plane (`bench/faults.py`): the control server killed,
its PostgreSQL restarted, a standby taking over, reconnect churn.

Each scenario returns `fault_kit.FaultRow` s; docs/reliability.md states the promises.
"""

from __future__ import annotations

from fault_kit import Scenario

SCENARIOS: list[Scenario] = []
