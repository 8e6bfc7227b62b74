"""The refusals of the accounts package, each with the code the API answers with."""

from __future__ import annotations

from diemcau.errors import Conflict, DomainError, Invalid, NotFound

__all__ = [
    "AccountError",
    "DuplicateUsername",
    "InvalidDisplayName",
    "InvalidUsername",
    "ProvinceNotAllowed",
    "ProvinceRequired",
    "UnknownProvince",
    "UnknownRole",
    "UnknownSite",
    "UnknownStaff",
    "WeakPassword",
]


class AccountError(DomainError, ValueError):
    """Base of every refusal raised here; a ValueError so plain callers can catch it."""


class DuplicateUsername(AccountError, Conflict):
    code = "duplicate_username"


class InvalidUsername(AccountError, Invalid):
    code = "invalid_username"


class InvalidDisplayName(AccountError, Invalid):
    code = "invalid_display_name"


class UnknownRole(AccountError, Invalid):
    code = "unknown_role"


class WeakPassword(AccountError, Invalid):
    code = "weak_password"


class ProvinceRequired(AccountError, Invalid):
    code = "province_required"


class ProvinceNotAllowed(AccountError, Invalid):
    code = "province_not_allowed"


class UnknownProvince(AccountError, NotFound):
    code = "unknown_province"


class UnknownStaff(AccountError, NotFound):
    code = "unknown_staff"


class UnknownSite(AccountError, NotFound):
    code = "unknown_site"
