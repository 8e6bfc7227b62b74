"""Who may list, watch, download and manage a meeting's recordings and minutes.

- The meeting's chair, its delegates (a secretary is made a delegate) and admins
  manage everything: policy, every file, the minutes draft, publication, deletion
  of a file before its time (admins only).
- A province officer sees the timeline of its own province's sites and watches
  the clips of its own province's interventions, and reads published minutes.
- A site reads only the published minutes of a meeting it took part in.
- Anyone else (operators, other chairs) is refused.
"""

from __future__ import annotations

from diemcau.actors import Actor
from diemcau.errors import Forbidden
from diemcau.recording.files import FileView
from diemcau.recording.ports import MeetingRecord

__all__ = [
    "may_manage",
    "may_read_minutes",
    "may_watch",
    "require_admin",
    "require_manage",
    "require_viewer",
]

MINUTES_KINDS = ("minutes_html", "minutes_pdf")
SCOPED_KINDS = ("clip", "inspection")


def may_manage(actor: Actor, meeting: MeetingRecord) -> bool:
    """The meeting's chair, one of its delegates, an admin, or the server itself."""
    if actor.kind == "system":
        return True
    if actor.kind != "staff":
        return False
    if actor.role == "admin":
        return True
    return actor.user_id is not None and (
        actor.user_id == meeting.chair_user_id or actor.user_id in meeting.delegates
    )


def require_manage(actor: Actor, meeting: MeetingRecord, what: str) -> None:
    if not may_manage(actor, meeting):
        raise Forbidden(
            f"only the chair of meeting {meeting.id}, a delegate or an admin may {what}",
            code="not_chair",
        )


def require_admin(actor: Actor, what: str) -> None:
    if not (actor.kind == "system" or actor.has_role("admin")):
        raise Forbidden(f"only an admin may {what}", code="role")


def require_viewer(actor: Actor, meeting: MeetingRecord) -> None:
    """Managers, and province officers (who then see their province only)."""
    if may_manage(actor, meeting) or actor.has_role("province_officer"):
        return
    raise Forbidden(
        f"recordings of meeting {meeting.id} are for its chair, delegates, admins "
        "and province officers (their province)",
        code="not_allowed",
    )


def may_read_minutes(actor: Actor, meeting: MeetingRecord, published: bool) -> bool:
    """Managers read drafts; officers and participant sites only published minutes."""
    if may_manage(actor, meeting):
        return True
    return published and (actor.has_role("province_officer") or actor.kind == "site")


def may_watch(actor: Actor, meeting: MeetingRecord, file: FileView, *, published: bool) -> bool:
    """Whether ``actor`` may list and fetch ``file`` (site participation checked apart)."""
    if file.kind in MINUTES_KINDS:
        return may_read_minutes(actor, meeting, published)
    if may_manage(actor, meeting):
        return True
    if actor.has_role("province_officer") and file.kind in SCOPED_KINDS:
        return file.province_id is not None and file.province_id == actor.province_id
    return False
