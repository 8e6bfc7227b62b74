"""Limits more than one layer must agree on, defined once.

`MAX_SPEAKERS`: how many sites may hold the floor at once. Meetings refuses a
grant beyond it, and the media plane's program carries at most that many speaker
feeds besides the chair (docs/meetings.md, docs/media.md).
"""

from __future__ import annotations

__all__ = ["MAX_SPEAKERS"]

# One speaker, or two for a dialogue.
MAX_SPEAKERS = 2
