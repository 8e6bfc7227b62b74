"""Who may inspect whom, and who may act on an inspection or a round once it exists.

Chair, operators and admins inspect any site; a province officer only the sites of its
province; a site never. An inspection is ended, called or kept alive by the inspector
who opened it, or by a chair or admin (who may have to end one left open). The checks
are made on the `Actor`, whatever the path (docs/inspection.md, "Who may inspect whom").
"""

from __future__ import annotations

from diemcau.actors import Actor
from diemcau.directory.sites import SiteInfo
from diemcau.errors import Forbidden, Invalid

__all__ = [
    "INSPECTOR_ROLES",
    "SUPERVISOR_ROLES",
    "check_may_act_on",
    "check_may_inspect",
    "check_may_see",
]

INSPECTOR_ROLES = ("admin", "chair", "operator", "province_officer")
SUPERVISOR_ROLES = ("admin", "chair")


def check_may_inspect(actor: Actor, site: SiteInfo, what: str = "inspect a site") -> None:
    """Refuse a site, a role outside `INSPECTOR_ROLES`, or a site outside the officer's province.

    Raises:
        Forbidden: ``staff_only``, ``role`` or ``other_province``.
        Invalid: ``not_inspectable`` for the central (chair) site.
    """
    actor.require_role(what, *INSPECTOR_ROLES)
    if site.province_id is None:
        raise Invalid(
            f"{site.code} is the central site, not a site to inspect", code="not_inspectable"
        )
    if not actor.may_touch(site.id, site.province_id):
        raise Forbidden(f"{site.code} is outside your province", code="other_province")


def check_may_see(actor: Actor, province_id: int | None, what: str = "inspection") -> None:
    """Refuse a site, or an officer reaching another province's record."""
    actor.require_role(f"see an {what}", *INSPECTOR_ROLES)
    if not actor.may_see_province(province_id) or (actor.scoped and province_id is None):
        raise Forbidden(f"this {what} belongs to another province", code="other_province")


def check_may_act_on(
    actor: Actor, owner: str, province_id: int | None, what: str = "inspection"
) -> None:
    """The owner (by username) or a chair or admin may act; anyone else is refused."""
    check_may_see(actor, province_id, what)
    if actor.kind == "staff" and actor.name != owner and actor.role not in SUPERVISOR_ROLES:
        raise Forbidden(f"only {owner} (or a chair) may act on this {what}", code="not_owner")
