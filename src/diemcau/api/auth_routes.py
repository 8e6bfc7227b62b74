"""Login endpoints for staff (username + password) and sites (join code); staff logout
and password change."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Literal, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from diemcau.accounts.actors import actor_of
from diemcau.accounts.service import (
    StaffPrincipal,
    authenticate_site,
    authenticate_staff,
    change_password,
    device_of,
    end_staff_sessions,
    issue_device_token,
    issue_session_token,
)
from diemcau.accounts.tokens import DEVICE_TOKEN_TTL_S
from diemcau.api.deps import Principal, RuntimeDep, get_principal, require_staff
from diemcau.audit import record_action
from diemcau.errors import Forbidden, Unauthorized, Unavailable
from diemcau.ratelimit import LoginThrottle, LoginTicket
from diemcau.runtime import Runtime

__all__ = ["router", "STAFF_TOKEN_TTL_S", "SITE_TOKEN_TTL_S"]

router = APIRouter(prefix="/api/auth", tags=["auth"])

T = TypeVar("T")

STAFF_TOKEN_TTL_S = 12 * 3600

_staff = require_staff()
SITE_TOKEN_TTL_S = 3600


class StaffLogin(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class SiteLogin(BaseModel):
    join_code: str = Field(
        min_length=3, max_length=200, description="'<site code>:<secret>' from the join link"
    )


class Session(BaseModel):
    token: str
    expires_in: int
    kind: Literal["staff", "site"]
    role: str
    name: str
    province_id: int | None
    site_code: str | None = None


def _session(principal: Principal, token: str, ttl: int) -> Session:
    if isinstance(principal, StaffPrincipal):
        return Session(
            token=token,
            expires_in=ttl,
            kind="staff",
            role=principal.role,
            name=principal.username,
            province_id=principal.province_id,
        )
    return Session(
        token=token,
        expires_in=ttl,
        kind="site",
        role="site",
        name=principal.name,
        province_id=principal.province_id,
        site_code=principal.code,
    )


def _device_cookie(username: str) -> str:
    """The cookie holding this browser's device token for `username` (one per account)."""
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:16]
    return f"diemcau_device_{digest}"


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _known_device(request: Request, runtime: Runtime, username: str) -> str | None:
    token = request.cookies.get(_device_cookie(username), "")
    return device_of(runtime.keys.token, token, username) if token else None


def _remember_device(request: Request, response: Response, runtime: Runtime, username: str) -> None:
    """Mark this client as known to the account (HttpOnly: page scripts never see it)."""
    if _known_device(request, runtime, username) is not None:
        return
    response.set_cookie(
        _device_cookie(username),
        issue_device_token(runtime.keys.token, username),
        max_age=DEVICE_TOKEN_TTL_S,
        path="/api/auth",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _ticket(request: Request, runtime: Runtime, username: str) -> LoginTicket:
    """A throttle ticket for one password check of `username` from this client."""
    throttle: LoginThrottle = request.app.state.login_throttle
    device = _known_device(request, runtime, username)
    return throttle.begin(username, _client(request), device)


def _issued(runtime: Runtime, principal: Principal, ttl: int) -> Session:
    """A fresh session token for `principal`, valid `ttl` seconds."""
    return _session(principal, issue_session_token(runtime.keys.token, principal, ttl), ttl)


async def _checked(ticket: LoginTicket, check: Awaitable[T]) -> T:
    """Run one password check under a throttle ticket; a busy server does not count it,
    anything else that stops it half-way (a dropped request) counts as a failure."""
    try:
        result = await check
    except Unavailable:
        ticket.cancelled()
        raise
    except BaseException:
        ticket.failed()
        raise
    return result


@router.post(
    "/login",
    response_model=Session,
    summary="Staff login",
    responses={429: {"description": "throttled"}, 503: {"description": "busy"}},
)
async def staff_login(
    body: StaffLogin,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
) -> Session:
    """Throttled per account (docs/security.md, "Login abuse"); a good login marks the
    browser as a known client of the account with an HttpOnly cookie."""
    ticket = _ticket(request, runtime, body.username)
    principal = await _checked(ticket, authenticate_staff(runtime.db, body.username, body.password))
    if principal is None:
        ticket.failed()
        raise Unauthorized("wrong username or password", code="bad_credentials")
    ticket.succeeded()
    _remember_device(request, response, runtime, principal.username)
    return _issued(runtime, principal, STAFF_TOKEN_TTL_S)


@router.post("/logout", status_code=204, response_class=Response, summary="End every session")
async def staff_logout(
    runtime: RuntimeDep,
    principal: StaffPrincipal = Depends(_staff),
) -> Response:
    """Every token issued to this account so far is refused from now on (all its
    browsers: a token copied elsewhere dies with the one logged out here)."""
    await end_staff_sessions(runtime.db, principal.user_id)
    return Response(status_code=204)


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


@router.post(
    "/password",
    response_model=Session,
    summary="Change one's own password (ends every other session)",
    responses={403: {"description": "wrong current password"}, 429: {"description": "throttled"}},
)
async def staff_password(
    body: PasswordChange,
    request: Request,
    runtime: RuntimeDep,
    principal: StaffPrincipal = Depends(_staff),
) -> Session:
    """The current password is checked like a login (same throttle); the answer is a
    fresh token, since every token issued before is refused from now on."""
    ticket = _ticket(request, runtime, principal.username)
    changed = await _checked(
        ticket, change_password(runtime.db, principal, body.old_password, body.new_password)
    )
    if changed is None:
        ticket.failed()
        raise Forbidden("old_password: not the current password", code="wrong_password")
    ticket.succeeded()
    await record_action(
        runtime.db, actor_of(changed), "staff.password_change", target=changed.username
    )
    return _issued(runtime, changed, STAFF_TOKEN_TTL_S)


@router.post("/site-login", response_model=Session, summary="Site login with its join code")
async def site_login(body: SiteLogin, runtime: RuntimeDep) -> Session:
    principal = await authenticate_site(runtime.db, runtime.keys.site, body.join_code)
    if principal is None:
        raise Unauthorized("unknown, revoked or outdated site credential", code="bad_credentials")
    return _issued(runtime, principal, SITE_TOKEN_TTL_S)


@router.get("/me", response_model=Session, summary="Who the token belongs to")
async def me(principal: Principal = Depends(get_principal)) -> Session:
    return _session(principal, "", 0)
