"""The audit log is append-only (no API to change it, and a database trigger), queryable
and exportable; it records the one `Actor` type of every package."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

import diemcau.audit as audit_package
import diemcau.audit.query as audit_query
import diemcau.audit.record as audit_record
from diemcau.actors import Actor
from diemcau.audit import AuditEntry, AuditQuery, audit_csv, query_audit, record_audit
from diemcau.store import Database
from tests.test_meetings_support import build_world


async def test_audit_has_no_update_or_delete_path_in_its_api() -> None:
    public = set(audit_package.__all__)
    assert public == {
        "AuditEntry",
        "AuditQuery",
        "AuditRecord",
        "audit_csv",
        "query_audit",
        "record_action",
        "record_audit",
    }
    for module in (audit_package, audit_query, audit_record):
        assert not [n for n in dir(module) if n.startswith(("update", "delete", "remove"))]


@pytest.mark.pg
async def test_database_refuses_update_and_delete_of_audit_rows(any_db: Database) -> None:
    w = await build_world(any_db)
    async with any_db.session() as s:
        await record_audit(s, w.actor("chair"), "floor.grant", 7, target="C1-S", details={"a": 1})
        await record_audit(s, Actor.system(), "meeting.remind", 7)
        await record_audit(s, Actor.for_site(42, "C1-S"), "conclusion.ack", 7)
    # Bad input: an ORM update, an ORM delete, raw SQL update/delete of the log.
    attempts: list[Executable] = [
        update(AuditEntry).values(action="forged"),
        delete(AuditEntry),
        text("UPDATE audit_log SET actor_name = 'someone else'"),
        text("DELETE FROM audit_log"),
    ]
    for stmt in attempts:
        with pytest.raises(DBAPIError, match="append-only"):
            async with any_db.session() as s:
                await s.execute(stmt)
    with pytest.raises(DBAPIError, match="append-only"):
        async with any_db.session() as s:
            row = await s.scalar(select(AuditEntry).limit(1))
            assert row is not None
            await s.delete(row)
    total, rows = await query_audit(any_db, AuditQuery(meeting_id=7))
    assert total == 3
    assert [(r.actor_kind, r.actor_id, r.actor_name, r.action) for r in rows] == [
        ("staff", w.staff["chair"].user_id, "chair", "floor.grant"),
        ("system", None, "system", "meeting.remind"),
        ("site", 42, "C1-S", "conclusion.ack"),
    ]
    assert rows[0].details == {"a": 1} and rows[0].target == "C1-S"
    text_csv = await audit_csv(any_db, AuditQuery(action="floor.grant"))
    parsed = list(csv.reader(io.StringIO(text_csv)))
    assert parsed[0][0] == "Mã / ID" and len(parsed) == 2 and parsed[1][4] == "floor.grant"
