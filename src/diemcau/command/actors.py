"""Who is acting on the command center, and what that actor may see.

The services take an `Actor` rather than the API's principals so they stay
below the API layer (STYLE.md §2) and so the hub handlers, the CSV import and
tests all pass through the same role checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from diemcau.errors import Forbidden

__all__ = ["Actor"]


@dataclass(frozen=True)
class Actor:
    """The caller of a command-center action.

    Attributes:
        label: who, as written into histories and audits ("site:HCM-001", "staff:lan").
        site_id: set for a site: it may act only on its own reports and directives.
        province_id: set for a province officer: only sites of that province.
        staff: True for staff accounts (only staff issue directives, read aggregates).
        role: the staff role ("admin", "chair", "operator", "province_officer") or "site".
        user_id: the staff account id (for the audit log), if known.
    """

    label: str
    site_id: int | None = None
    province_id: int | None = None
    staff: bool = False
    role: str = "site"
    user_id: int | None = None

    @classmethod
    def for_site(cls, site_id: int, code: str) -> Actor:
        return cls(label=f"site:{code}", site_id=site_id, role="site")

    @classmethod
    def for_staff(
        cls,
        username: str,
        role: str,
        province_id: int | None = None,
        *,
        user_id: int | None = None,
    ) -> Actor:
        """A staff actor; only a province officer is limited to its province."""
        scope = province_id if role == "province_officer" else None
        return cls(
            label=f"staff:{username}", province_id=scope, staff=True, role=role, user_id=user_id
        )

    @property
    def name(self) -> str:
        """The label without its "staff:"/"site:" prefix (username or site code)."""
        return self.label.split(":", 1)[1] if ":" in self.label else self.label

    @classmethod
    def system(cls) -> Actor:
        return cls(label="system", staff=True, role="system")

    def may_touch(self, site_id: int, province_id: int | None) -> bool:
        """Whether this actor may read or write data of site `site_id`."""
        if self.site_id is not None:
            return self.site_id == site_id
        if not self.staff:
            return False
        return self.province_id is None or self.province_id == province_id

    def check_site(self, site_id: int, province_id: int | None, what: str = "report") -> None:
        if not self.may_touch(site_id, province_id):
            if self.site_id is not None:
                raise Forbidden(f"a site may only access its own {what}s", code="not_own")
            raise Forbidden(f"this {what} belongs to another province", code="other_province")

    def require_staff(self, action: str) -> None:
        if not self.staff:
            raise Forbidden(f"only staff may {action}", code="staff_only")

    def scope(self, requested: int | None = None) -> int | None:
        """The province filter to apply: the officer's own, or what staff asked for."""
        if self.province_id is not None:
            if requested is not None and requested != self.province_id:
                raise Forbidden("you may only see your own province", code="other_province")
            return self.province_id
        return requested
