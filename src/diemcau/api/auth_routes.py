"""Login endpoints for staff (username + password) and sites (join code)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from diemcau.accounts.service import (
    StaffPrincipal,
    authenticate_site,
    authenticate_staff,
    issue_session_token,
)
from diemcau.api.deps import Principal, get_principal, get_runtime
from diemcau.errors import Unauthorized
from diemcau.ratelimit import LoginThrottle
from diemcau.runtime import Runtime

__all__ = ["router", "STAFF_TOKEN_TTL_S", "SITE_TOKEN_TTL_S"]

router = APIRouter(prefix="/api/auth", tags=["auth"])

STAFF_TOKEN_TTL_S = 12 * 3600
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


@router.post("/login", response_model=Session, summary="Staff login")
async def staff_login(
    body: StaffLogin, request: Request, runtime: Runtime = Depends(get_runtime)
) -> Session:
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else ""
    throttle.check(body.username, client)
    principal = await authenticate_staff(runtime.db, body.username, body.password)
    if principal is None:
        throttle.failed(body.username, client)
        raise Unauthorized("wrong username or password", code="bad_credentials")
    token = issue_session_token(runtime.keys.token, principal, STAFF_TOKEN_TTL_S)
    return _session(principal, token, STAFF_TOKEN_TTL_S)


@router.post("/site-login", response_model=Session, summary="Site login with its join code")
async def site_login(body: SiteLogin, runtime: Runtime = Depends(get_runtime)) -> Session:
    principal = await authenticate_site(runtime.db, runtime.keys.site, body.join_code)
    if principal is None:
        raise Unauthorized("unknown, revoked or outdated site credential", code="bad_credentials")
    token = issue_session_token(runtime.keys.token, principal, SITE_TOKEN_TTL_S)
    return _session(principal, token, SITE_TOKEN_TTL_S)


@router.get("/me", response_model=Session, summary="Who the token belongs to")
async def me(principal: Principal = Depends(get_principal)) -> Session:
    return _session(principal, "", 0)
