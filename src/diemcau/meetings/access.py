"""Who may act on a meeting: the checks meetings applies to the calling `Actor`.

Every meetings peer takes a `diemcau.actors.Actor`; the API turns a principal into one
before calling, and the site-session handlers do the same with the principal the hub
hands them (`site_actor`). The meeting-dependent rules (its chair and delegates) live
here, the plain role rules on the actor itself (docs/meetings.md, "Who may act").
"""

from __future__ import annotations

from collections.abc import Mapping

from diemcau.accounts.service import SitePrincipal
from diemcau.actors import Actor
from diemcau.errors import Forbidden, Invalid
from diemcau.meetings.models import Meeting

__all__ = [
    "CHAIR_ROLES",
    "CREATOR_ROLES",
    "own_request",
    "require_control",
    "require_site",
    "site_actor",
]

CHAIR_ROLES = ("chair", "admin")
CREATOR_ROLES = ("admin", "chair", "operator")


def require_control(actor: Actor, m: Meeting, what: str) -> None:
    """Only the meeting's chair, one of its delegates or an admin run a meeting."""
    if actor.kind != "staff":
        raise Forbidden(f"only staff may {what}", code="staff_only")
    if actor.role == "admin":
        return
    if actor.user_id is not None and (
        actor.user_id == m.chair_user_id or actor.user_id in (m.delegates or ())
    ):
        return
    raise Forbidden(
        f"only the chair of meeting {m.id}, a delegate or an admin may {what}",
        code="not_chair",
    )


def require_site(actor: Actor, what: str) -> int:
    """The site id of a site actor: staff and the system never act as a site."""
    if actor.kind != "site" or actor.site_id is None:
        raise Forbidden(f"only a site may {what}", code="site_only")
    return actor.site_id


def own_request(site: Actor, body: Mapping[str, object]) -> int | None:
    """The meeting id a site message names; refuse a message that speaks for another site."""
    other = body.get("site_id")
    if other is not None and other != site.site_id:
        raise Forbidden("a site may act only for itself", code="not_your_site")
    code = body.get("site_code")
    if code is not None and code != site.name:
        raise Forbidden("a site may act only for itself", code="not_your_site")
    meeting_id = body.get("meeting_id")
    if meeting_id is None:
        return None
    if isinstance(meeting_id, bool) or not isinstance(meeting_id, int):
        raise Invalid("meeting_id must be an integer")
    return meeting_id


def site_actor(site: SitePrincipal) -> Actor:
    """The actor of a site the hub authenticated (its session's credential)."""
    return Actor.for_site(site.site_id, site.code, site.province_id)
