"""Who may inspect whom, and who may act on an inspection or a round once it exists.

Chair, operators and admins inspect any site; a province officer only the sites of its
province; a site never. An inspection is ended, called or kept alive by the inspector
who opened it, or by a chair or admin (who may have to end one left open). The checks
are made on the `Actor`, whatever the path (docs/inspection.md, "Who may inspect whom").

Whatever lies outside the caller's reach (another province's site, inspection or round)
is answered exactly like one that does not exist, so a refusal never tells which site
codes or records exist elsewhere (docs/security.md, "Who may do what").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from diemcau.actors import Actor
from diemcau.directory.sites import SiteInfo
from diemcau.errors import DomainError, Forbidden, Invalid

__all__ = [
    "INSPECTOR_ROLES",
    "SUPERVISOR_ROLES",
    "check_inspectable",
    "check_may_act_on",
    "check_may_see",
    "in_reach",
    "inspectable",
    "require_inspector",
]

INSPECTOR_ROLES = ("admin", "chair", "operator", "province_officer")
SUPERVISOR_ROLES = ("admin", "chair")


def require_inspector(actor: Actor, what: str = "inspect a site") -> None:
    """Refuse a site or a role outside `INSPECTOR_ROLES` (before any site is looked up).

    Raises:
        Forbidden: ``staff_only`` or ``role``.
    """
    actor.require_role(what, *INSPECTOR_ROLES)


def in_reach(actor: Actor, found: Mapping[str, SiteInfo]) -> dict[str, SiteInfo]:
    """The sites of `found` (by code) `actor` may inspect; the others are left out, so the
    caller answers them as unknown codes (another province's site is never named as such).
    """
    return {code: s for code, s in found.items() if actor.may_touch(s.id, s.province_id)}


def check_inspectable(site: SiteInfo) -> None:
    """Refuse the central (chair) site, which is no site to inspect.

    Raises:
        Invalid: ``not_inspectable``.
    """
    if site.province_id is None:
        raise Invalid(
            f"{site.code} is the central site, not a site to inspect", code="not_inspectable"
        )


def inspectable(
    actor: Actor, codes: Sequence[str], found: Mapping[str, SiteInfo], unknown: str
) -> list[SiteInfo]:
    """The sites named by `codes`, in order, each within `actor`'s reach and inspectable.

    Args:
        found: the directory's sites by code (those it knows of `codes`).
        unknown: the refusal's text before the first five unknown codes.

    Raises:
        Invalid: ``unknown_site`` (outside the reach counts as unknown), ``not_inspectable``.
    """
    reach = in_reach(actor, found)
    missing = [c for c in codes if c not in reach]
    if missing:
        raise Invalid(f"{unknown}{', '.join(missing[:5])}", code="unknown_site")
    for site in reach.values():
        check_inspectable(site)
    return [reach[c] for c in codes]


def check_may_see(
    actor: Actor, province_id: int | None, missing: DomainError, what: str = "inspection"
) -> None:
    """Refuse a site; answer an officer reaching another province's record with `missing`,
    the very error an unknown id gets."""
    actor.require_role(f"see an {what}", *INSPECTOR_ROLES)
    if not actor.may_see_province(province_id) or (actor.scoped and province_id is None):
        raise missing


def check_may_act_on(
    actor: Actor,
    owner: str,
    province_id: int | None,
    missing: DomainError,
    what: str = "inspection",
) -> None:
    """The owner (by username) or a chair or admin may act; anyone else is refused."""
    check_may_see(actor, province_id, missing, what)
    if actor.kind == "staff" and actor.name != owner and actor.role not in SUPERVISOR_ROLES:
        raise Forbidden(f"only {owner} (or a chair) may act on this {what}", code="not_owner")
