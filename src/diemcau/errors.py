"""Domain errors shared by every service; the API maps them to HTTP statuses.

Services raise these with a clear, specific, user-facing message; they never
leak internals. ``code`` is a stable machine-readable identifier.
"""

from __future__ import annotations

__all__ = [
    "DomainError",
    "Invalid",
    "NotFound",
    "Forbidden",
    "Conflict",
    "Unauthorized",
    "Unavailable",
]


class DomainError(Exception):
    """Base of the errors a caller can act on. ``status`` is the HTTP status it maps to."""

    status = 400
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Invalid(DomainError):
    status = 422
    code = "invalid"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unavailable(DomainError):
    """The server is saturated for now; the caller may retry after `retry_after_s` seconds
    (the API sends it as ``Retry-After``)."""

    status = 503
    code = "busy"

    def __init__(self, message: str, *, retry_after_s: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = max(1, int(retry_after_s))
