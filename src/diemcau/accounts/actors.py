"""The one conversion from an authenticated principal to the `Actor` services take.

The API calls `actor_of` once per request (and the site-session handlers once per
message), so nothing below the API ever sees a principal (docs/architecture.md).
"""

from __future__ import annotations

from diemcau.accounts.principals import Principal, StaffPrincipal
from diemcau.actors import Actor

__all__ = ["actor_of"]


def actor_of(principal: Principal) -> Actor:
    """The actor a staff member or a site acts as."""
    if isinstance(principal, StaffPrincipal):
        return Actor.for_staff(
            principal.username, principal.role, principal.province_id, user_id=principal.user_id
        )
    return Actor.for_site(principal.site_id, principal.code, principal.province_id)
