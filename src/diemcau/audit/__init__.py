"""The append-only audit log every service writes: who did what, when, to what.

Low in the layers (below the services), so meetings, command and the API import it
directly; the actor is always a `diemcau.actors.Actor` (docs/architecture.md).
"""

from diemcau.audit.models import AuditEntry
from diemcau.audit.query import AuditQuery, AuditRecord, audit_csv, query_audit
from diemcau.audit.record import record_action, record_audit

__all__ = [
    "AuditEntry",
    "AuditQuery",
    "AuditRecord",
    "audit_csv",
    "query_audit",
    "record_action",
    "record_audit",
]
