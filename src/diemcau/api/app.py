"""The ASGI application: routers, JSON errors, static web pages, service lifespan."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from diemcau import __version__
from diemcau.api import (
    admin_routes,
    alert_routes,
    auth_routes,
    chart_routes,
    command_routes,
    directive_routes,
    directory_routes,
    exports_routes,
    inspection_routes,
    media_routes,
    meetings_routes,
    presence_routes,
    process_routes,
    recording_routes,
    report_routes,
    web_routes,
)
from diemcau.api.body_limit import BodyLimit, BodyTooLarge
from diemcau.api.command_routes import MAX_CSV_BYTES
from diemcau.api.headers import SecurityHeaders
from diemcau.api.pair_origins import cors_headers, pair_origins
from diemcau.command.files import MAX_FILE_BYTES
from diemcau.errors import DomainError
from diemcau.ratelimit import LoginThrottle
from diemcau.runtime import Runtime
from diemcau.standby import Leadership
from diemcau.store.outage import is_store_outage
from diemcau.store.reach import StoreUnavailable

__all__ = ["create_app", "ROUTERS", "MAX_REQUEST_BYTES"]

log = logging.getLogger(__name__)

# Seconds a client is asked to wait before it tries again while the store is out of reach.
STORE_RETRY_AFTER_S = 5

# Routers included in the app, by module; each module exposes ``router``.
ROUTERS = (
    auth_routes,
    directory_routes,
    presence_routes,
    meetings_routes,
    exports_routes,
    command_routes,
    directive_routes,
    report_routes,
    chart_routes,
    alert_routes,
    admin_routes,
    process_routes,
    media_routes,
    inspection_routes,
    recording_routes,
    web_routes,
)


def _static_dir() -> Path:
    return Path(str(resources.files("diemcau.web") / "static"))


# Every request body is cut at this size (413 ``too_large``), counted as it streams in
# (`api.body_limit`). The routes that take files have their own, larger limits.
MAX_REQUEST_BYTES = 1024 * 1024
ROUTE_BODY_LIMITS = {
    ("POST", "/api/command/files"): MAX_FILE_BYTES,
    ("POST", "/api/command/reports/import"): MAX_CSV_BYTES,
}


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


def _refused_value(exc: BaseException) -> bool:
    """Whether `exc` is the database (or its driver) refusing a value the client sent.

    Ids past the column's integer range and text holding NUL characters pass
    request validation but are refused when bound: SQLite raises OverflowError,
    PostgreSQL a data exception (SQLSTATE class 22). The transaction rolls back,
    so nothing changed; the caller gets a 422 instead of a 500.
    """
    if isinstance(exc, OverflowError):
        return True
    if isinstance(exc, DBAPIError):
        cause = exc.orig.__cause__ if exc.orig is not None else None
        sqlstate = getattr(cause, "sqlstate", None) or getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
        return "out of int32 range" in str(exc) or "out of int64 range" in str(exc)
    return False


def create_app(runtime: Runtime, leadership: Leadership | None = None) -> FastAPI:
    """Build the app around an assembled `Runtime`; its services start with the app.

    With `leadership` (a server of a standby pair) they start only once this server
    holds the leader lease (`diemcau.standby`).
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if leadership is not None:
            leadership.start()
            try:
                yield
            finally:
                await leadership.stop()
            return
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # /docs (Swagger UI) loads its script, style and icon from this server (the
    # fastapi-offline package ships them), never from a CDN: commune offices may sit
    # on closed networks. No online validator badge; no /redoc (its page shows a logo
    # from the vendor's CDN).
    app: FastAPI = FastAPIOffline(
        redoc_url=None,
        title="diemcau",
        version=__version__,
        description="Command center and online meeting system: directory, sites, meetings.",
        lifespan=lifespan,
        favicon_url="/static/favicon.svg",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.add_middleware(BodyLimit, default=MAX_REQUEST_BYTES, limits=ROUTE_BODY_LIMITS)
    # Outermost, so every answer carries them, errors included (docs/security.md).
    app.add_middleware(
        SecurityHeaders,
        tile_url=os.environ.get("DIEMCAU_TILE_URL", ""),
        connect=sorted(pair_origins(runtime.settings.servers)),
    )
    app.state.runtime = runtime
    app.state.login_throttle = LoginThrottle()

    @app.exception_handler(DomainError)
    async def _domain(_req: Request, exc: DomainError) -> JSONResponse:
        retry = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry)} if isinstance(retry, int) else None
        return _error(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"field": "", "message": "invalid request"}
        return _error(422, "invalid", f"{first['field']}: {first['message']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "too_large" if isinstance(exc, BodyTooLarge) else "http_error"
        return _error(exc.status_code, code, str(exc.detail))

    async def _store_error(_req: Request, exc: Exception) -> JSONResponse:
        # Handled here, below the server-error layer (which would log a traceback for
        # every request while PostgreSQL restarts): an outage is one warning line.
        if is_store_outage(exc):
            # PostgreSQL restarting, a connection cut, SQLite locked: nothing changed, and
            # the same request may succeed in a moment (docs/reliability.md).
            first = str(exc).strip().splitlines()
            log.warning("store out of reach: %s", first[0] if first else type(exc).__name__)
            response = _error(
                503,
                "store_unavailable",
                "the database cannot be reached just now; nothing was changed, "
                f"try again in {STORE_RETRY_AFTER_S} s",
            )
            response.headers["Retry-After"] = str(STORE_RETRY_AFTER_S)
            return response
        return await _unexpected(_req, exc)

    for kind in (StoreUnavailable, DBAPIError, SQLAlchemyTimeoutError):
        app.add_exception_handler(kind, _store_error)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        if _refused_value(exc):
            log.warning("value refused by the database: %s", exc)
            return _error(
                422,
                "invalid",
                "a value is out of range (an id or number too large) or holds a NUL character",
            )
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "internal", "internal server error")

    # The database refusing a client's value is answered here too, by class: Starlette
    # hands a handler for `Exception` to its outermost middleware, which re-raises after
    # answering, so the server logs a traceback and drops the keep-alive connection (the
    # client's next request on it is reset). Handlers for these classes answer and stop.
    app.add_exception_handler(OverflowError, _unexpected)
    app.add_exception_handler(DBAPIError, _unexpected)

    for module in ROUTERS:
        app.include_router(module.router)

    static = _static_dir()  # the pages themselves, "/" included: web_routes

    # A site terminal of the pair reads the other server's health from its own page.
    origins = pair_origins(runtime.settings.servers)

    @app.get("/healthz", tags=["meta"])
    async def _health(request: Request, response: Response) -> dict[str, str]:
        """Up, and whether this server serves (``active``) or stands by (``standby``)."""
        response.headers.update(cors_headers(request.headers.get("origin"), origins))
        response.headers["Cache-Control"] = "no-store"
        role = "active" if leadership is None else leadership.role
        return {"status": "ok", "version": __version__, "role": role}

    app.mount("/static", StaticFiles(directory=static), name="static")
    return app
