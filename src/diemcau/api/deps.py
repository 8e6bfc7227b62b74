"""Request dependencies: the runtime, the caller's identity and role, and its `Actor`.

Every endpoint states who may call it. A site credential (or a site session token) is
never accepted where staff are required, and a province officer is scoped to its own
province. The principal is turned into an `Actor` once, here (`accounts.actor_of`);
handlers hand that actor to the services, which make every role and scope check
(docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from diemcau.accounts.actors import actor_of
from diemcau.accounts.service import SitePrincipal, StaffPrincipal, check_session_token
from diemcau.actors import Actor
from diemcau.directory.sites import SiteInfo
from diemcau.errors import Forbidden, Invalid, Unauthorized
from diemcau.runtime import Runtime
from diemcau.security import TokenError

__all__ = [
    "CallerDep",
    "RuntimeDep",
    "SiteDep",
    "StaffDep",
    "get_actor",
    "get_runtime",
    "get_principal",
    "require_staff",
    "require_site",
    "province_scope",
    "site_actor",
    "staff_actor",
    "visible_site",
]

_bearer = HTTPBearer(auto_error=False, description="session token from /api/auth/*")

Principal = StaffPrincipal | SitePrincipal


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_principal(
    request: Request,
    creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    if creds is None or not creds.credentials:
        raise Unauthorized("missing bearer token; log in first", code="no_token")
    runtime = get_runtime(request)
    try:
        return await check_session_token(runtime.db, runtime.keys.token, creds.credentials)
    except TokenError as exc:
        raise Unauthorized(f"invalid session token: {exc}", code="bad_token") from exc


def require_staff(
    *roles: str,
) -> Callable[[Principal], Awaitable[StaffPrincipal]]:
    """A dependency admitting staff with one of `roles` (any staff role if none given)."""

    async def dependency(principal: Principal = Depends(get_principal)) -> StaffPrincipal:
        if not isinstance(principal, StaffPrincipal):
            raise Forbidden("this endpoint is for staff accounts, not sites", code="staff_only")
        if roles and principal.role not in roles:
            raise Forbidden(
                f"role '{principal.role}' may not do this (needs: {', '.join(roles)})",
                code="role",
            )
        return principal

    return dependency


async def require_site(principal: Principal = Depends(get_principal)) -> SitePrincipal:
    if not isinstance(principal, SitePrincipal):
        raise Forbidden("this endpoint is for site credentials", code="site_only")
    return principal


async def get_actor(principal: Principal = Depends(get_principal)) -> Actor:
    """The caller as an `Actor`: any staff member or site."""
    return actor_of(principal)


def staff_actor(*roles: str) -> Callable[[StaffPrincipal], Awaitable[Actor]]:
    """A dependency admitting staff with one of `roles` (any if none), as an `Actor`."""
    admit = require_staff(*roles)

    async def dependency(principal: StaffPrincipal = Depends(admit)) -> Actor:
        return actor_of(principal)

    return dependency


async def site_actor(principal: SitePrincipal = Depends(require_site)) -> Actor:
    """A dependency admitting only a site, as an `Actor`."""
    return actor_of(principal)


def province_scope(principal: StaffPrincipal) -> int | None:
    """The province a staff member is limited to (None: the whole country)."""
    return principal.province_id if principal.role == "province_officer" else None


# The parameters most routes declare, once: ``runtime: RuntimeDep, actor: StaffDep``.
# A route narrower than every staff role declares its own
# ``Annotated[Actor, Depends(staff_actor(...))]``.
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CallerDep = Annotated[Actor, Depends(get_actor)]
StaffDep = Annotated[Actor, Depends(staff_actor())]
SiteDep = Annotated[Actor, Depends(site_actor)]


async def visible_site(runtime: Runtime, actor: Actor, code: str) -> SiteInfo:
    """The site a caller names by code (query or body ``site_code``); one out of its
    reach is answered like one that does not exist (no telling which codes exist
    elsewhere)."""
    site = await runtime.sites.find_visible(actor, code)
    if site is None:
        raise Invalid(f"site_code: no site '{code}' in your reach", code="no_site")
    return site
