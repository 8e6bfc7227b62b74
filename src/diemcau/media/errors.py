"""The error of a media request the plane cannot serve."""

from __future__ import annotations

__all__ = ["MediaError"]


class MediaError(Exception):
    """A media request the orchestrator cannot serve (unknown site, no relay...)."""
