"""Indicator schemas added at run time by an administrator, kept in the database.

The presets ship as files and extra ones can be put in ``DIEMCAU_SCHEMAS_DIR``;
an administrator may also add one from the administration page (a JSON file in
the same shape). It is validated exactly as a file would be, every problem
reported with the field it concerns (``indicators.2.type: Input should be
'int', 'percent', …``), stored in ``command_custom_schemas``, added to the
running registry, and loaded again at every start, so nothing added is lost on
restart. A schema is never replaced or removed here: reports refer to it by key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select

from diemcau.actors import Actor
from diemcau.command.models import CustomSchema
from diemcau.command.schemas import IndicatorSchema, SchemaRegistry
from diemcau.command.timeutil import Clock, now_from
from diemcau.command.writes import writing
from diemcau.errors import Conflict, Invalid
from diemcau.store import Database

__all__ = ["FieldError", "SchemaRefused", "SchemaStore"]

log = logging.getLogger(__name__)

# Largest schema document accepted (the presets are about 4 KB).
MAX_SCHEMA_BYTES = 256 * 1024


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def public(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class SchemaRefused(Invalid):
    """A schema that does not validate, with every problem by field."""

    def __init__(self, errors: list[FieldError]) -> None:
        first = errors[0]
        super().__init__(f"{first.field}: {first.message}", code="bad_schema")
        self.errors = errors


class SchemaStore:
    """Adds schemas to the registry and keeps them.

    Args:
        db: the store.
        registry: the running registry (what reports are checked against).
        clock: wall clock.
    """

    def __init__(self, db: Database, registry: SchemaRegistry, clock: Clock) -> None:
        self.db = db
        self.registry = registry
        self.clock = clock

    async def load(self) -> int:
        """Add the stored schemas to the registry (at start); returns how many."""
        async with self.db.session() as s:
            rows = (await s.scalars(select(CustomSchema).order_by(CustomSchema.key))).all()
        added = 0
        for row in rows:
            if row.key in self.registry:
                continue
            try:
                self.registry.add(IndicatorSchema.model_validate(row.body))
                added += 1
            except (ValidationError, Invalid):
                log.exception("stored schema %r no longer validates; left out", row.key)
        return added

    @staticmethod
    def check(data: object) -> IndicatorSchema:
        """Validate a schema document, raising `SchemaRefused` with every field's problem."""
        if not isinstance(data, dict):
            raise SchemaRefused([FieldError("schema", "must be a JSON object")])
        try:
            return IndicatorSchema.model_validate(data)
        except ValidationError as exc:
            errors = [
                FieldError(
                    ".".join(str(p) for p in e.get("loc", ())) or "schema", str(e.get("msg", ""))
                )
                for e in exc.errors()
            ]
            raise SchemaRefused(errors) from exc

    async def add(self, actor: Actor, data: object) -> IndicatorSchema:
        """Validate, keep and register a new schema (admins only; keys are never reused)."""
        actor.require_role("add indicator schemas", "admin")
        schema = self.check(data)
        if schema.key in self.registry:
            raise Conflict(f"key: a schema '{schema.key}' already exists", code="duplicate_schema")
        async with writing(self.db) as s:
            if await s.get(CustomSchema, schema.key) is not None:
                raise Conflict(
                    f"key: a schema '{schema.key}' already exists", code="duplicate_schema"
                )
            s.add(
                CustomSchema(
                    key=schema.key,
                    body=schema.model_dump(mode="json"),
                    added_by=actor.label,
                    added_at=now_from(self.clock),
                )
            )
        self.registry.add(schema)
        return schema
