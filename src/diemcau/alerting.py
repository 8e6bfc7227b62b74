"""The one way a service raises or clears an operator alert: the `AlertSink` port.

The media plane (a node down), recording (the disk filling up) and any later
service report conditions the command center shows its operators. They all need
the same two calls, so the port is declared once, here below the services; the
command center's alert book implements it and the composition root plugs it in
(docs/architecture.md), so no service imports the command center.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

__all__ = ["AlertSink", "Severity"]

Severity = Literal["info", "warning", "critical"]


class AlertSink(Protocol):
    """Where a condition is raised (again: updated) and cleared, by kind and key."""

    async def raise_alert(
        self,
        kind: str,
        key: str,
        *,
        message_vi: str,
        message_en: str,
        severity: Severity = "warning",
        details: Mapping[str, object] | None = None,
    ) -> object: ...

    async def clear_alert(self, kind: str, key: str) -> object: ...
