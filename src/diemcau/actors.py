"""Who performs an action: the one actor type every service, the audit log and the API share.

The API turns an authenticated principal (a staff account or a site credential) into an
`Actor` once (``accounts.actor_of``); services below it check roles and scope on the actor
and write it into histories and the audit log. Nothing below the API ever sees a
principal or an HTTP request, so the WebSocket path, the CLI and tests pass through the
same checks (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diemcau.errors import Forbidden

__all__ = ["Actor", "ActorKind", "STAFF_ROLES"]

ActorKind = Literal["staff", "site", "system"]

# Staff roles, most powerful first. A province officer is bound to one province.
STAFF_ROLES = ("admin", "chair", "operator", "province_officer")


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of an action.

    Attributes:
        kind: "staff", "site" or "system" (the server itself: timers, rules, restarts).
        name: the staff username, the site code, or a short system label.
        role: the staff role, "site" or "system".
        user_id: the staff account id (None for sites and the system).
        site_id: the site's id (None for staff and the system).
        province_id: the province a staff actor is limited to: a province officer's
            province; None for every other staff role, the system and sites (a site is
            limited to itself by `site_id`, a stronger limit).
        site_province_id: a site's own province (which national data it may not see).
    """

    kind: ActorKind
    name: str
    role: str
    user_id: int | None = None
    site_id: int | None = None
    province_id: int | None = None
    site_province_id: int | None = None

    # --- construction -----------------------------------------------------------------

    @classmethod
    def for_staff(
        cls, username: str, role: str, province_id: int | None = None, *, user_id: int | None = None
    ) -> Actor:
        """A staff actor; only a province officer keeps its province as a limit."""
        scope = province_id if role == "province_officer" else None
        return cls("staff", username, role, user_id=user_id, province_id=scope)

    @classmethod
    def for_site(cls, site_id: int, code: str, province_id: int | None = None) -> Actor:
        return cls("site", code, "site", site_id=site_id, site_province_id=province_id)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls("system", name, "system")

    # --- what it is -------------------------------------------------------------------

    @property
    def label(self) -> str:
        """How histories write the actor: "staff:lan", "site:HCM-001" or "system"."""
        return self.name if self.kind == "system" else f"{self.kind}:{self.name}"

    @property
    def staff(self) -> bool:
        """Staff accounts and the system itself act with staff powers."""
        return self.kind != "site"

    @property
    def is_site(self) -> bool:
        return self.kind == "site"

    @property
    def scoped(self) -> bool:
        """Whether a staff actor is limited to one province (a province officer)."""
        return self.province_id is not None

    def has_role(self, *roles: str) -> bool:
        return self.kind == "staff" and self.role in roles

    # --- checks -----------------------------------------------------------------------

    def require_staff(self, action: str) -> None:
        if not self.staff:
            raise Forbidden(f"only staff may {action}", code="staff_only")

    def require_role(self, action: str, *roles: str) -> None:
        """Refuse unless this is staff with one of `roles` (or the system itself)."""
        self.require_staff(action)
        if self.kind == "staff" and self.role not in roles:
            raise Forbidden(
                f"role '{self.role}' may not {action} (needs: {', '.join(roles)})", code="role"
            )

    def may_touch(self, site_id: int, province_id: int | None) -> bool:
        """Whether this actor may read or write data of site `site_id` in `province_id`."""
        if self.kind == "site":
            return self.site_id == site_id
        return self.province_id is None or self.province_id == province_id

    def check_site(self, site_id: int, province_id: int | None, what: str = "report") -> None:
        if not self.may_touch(site_id, province_id):
            if self.kind == "site":
                raise Forbidden(f"a site may only access its own {what}s", code="not_own")
            raise Forbidden(f"this {what} belongs to another province", code="other_province")

    def may_see_province(self, province_id: int | None) -> bool:
        """Whether data of `province_id` (None: national-level data) is visible to this actor.

        Admins, chairs, operators and the system see the whole country; a province
        officer only its province; a site only its own province (never national data).
        """
        if self.kind == "site":
            return province_id is not None and province_id == self.site_province_id
        return self.province_id is None or self.province_id == province_id

    def scope(self, requested: int | None = None) -> int | None:
        """The province filter to apply: the officer's own, or what staff asked for."""
        if self.province_id is not None:
            if requested is not None and requested != self.province_id:
                raise Forbidden("you may only see your own province", code="other_province")
            return self.province_id
        return requested
