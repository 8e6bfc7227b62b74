"""The command migration matches the models (SQLite and PostgreSQL); the public surface."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

import diemcau.command as command
from diemcau.store import Base, Database


async def test_migration_matches_models(any_db: Database) -> None:
    def diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn)
        return [d for d in compare_metadata(ctx, Base.metadata) if "command_" in repr(d)]

    async with any_db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def test_public_surface() -> None:
    assert sorted(command.__all__) == [
        "Aggregate",
        "Aggregator",
        "AlertRules",
        "AlertService",
        "AlertSpec",
        "AlertView",
        "CommandCenter",
        "DirectiveIn",
        "DirectiveService",
        "DirectiveView",
        "FilingStatus",
        "Indicator",
        "IndicatorSchema",
        "ReportChange",
        "ReportService",
        "ReportView",
        "SchemaRegistry",
        "Target",
        "builtin_registry",
    ]
    for name in command.__all__:
        assert getattr(command, name) is not None
