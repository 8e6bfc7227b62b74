"""The base of every JSON request body the API parses: a field it does not know is refused.

A misspelt field would otherwise be dropped without a word and the request carried
out without it; with ``extra="forbid"`` the caller gets a 422 naming the field.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictBody"]


class StrictBody(BaseModel):
    """A request body refusing unknown fields."""

    model_config = ConfigDict(extra="forbid")
