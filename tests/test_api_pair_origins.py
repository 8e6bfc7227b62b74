"""The health check answers cross-origin reads from the pair's own pages, and only theirs;
the pages' policy lets them read the pair's servers.

A site terminal opened on one server of a standby pair reads the other server's
``/healthz`` to learn whether it took over (docs/reliability.md). Bad inputs tried:
an origin not of the pair, the pair's address with another port or scheme, no
origin, base URLs that are not URLs (no host, a port out of range, ftp).
"""

from __future__ import annotations

import httpx

from diemcau.api import create_app
from diemcau.api.pair_origins import cors_headers, origin_of, pair_origins
from diemcau.config import Settings
from diemcau.wiring import build_runtime

PAIR = ("https://198.51.100.10:443", "https://Standby.Example:8443/")


def test_origins_are_what_a_browser_sends() -> None:
    assert origin_of("https://198.51.100.10:443") == "https://198.51.100.10"
    assert origin_of("http://198.51.100.10:80/site") == "http://198.51.100.10"
    assert origin_of("https://Standby.Example:8443/") == "https://standby.example:8443"
    assert origin_of("https://[2001:db8::1]:443") == "https://[2001:db8::1]"
    for bad in ("", "198.51.100.10", "ftp://198.51.100.10", "https://", "https://h:99999"):
        assert origin_of(bad) == "", bad
    assert pair_origins([*PAIR, "not a url"]) == {
        "https://198.51.100.10",
        "https://standby.example:8443",
    }


def test_cors_only_for_the_pair() -> None:
    allowed = pair_origins(PAIR)
    assert cors_headers("https://198.51.100.10", allowed)["Access-Control-Allow-Origin"] == (
        "https://198.51.100.10"
    )
    for origin in (
        None,
        "",
        "https://evil.example",
        "http://198.51.100.10",
        "https://198.51.100.10:8443",
    ):
        assert "Access-Control-Allow-Origin" not in cors_headers(origin, allowed), origin


async def test_health_answers_the_pair_cross_origin(sqlite_url: str) -> None:
    runtime = await build_runtime(Settings(database_url=sqlite_url, port=0, servers=PAIR))
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/healthz", headers={"Origin": "https://standby.example:8443"})
            assert r.status_code == 200
            assert r.json()["role"] == "active"
            assert r.headers["access-control-allow-origin"] == "https://standby.example:8443"
            assert r.headers["cache-control"] == "no-store"
            assert "origin" in r.headers["vary"].lower()
            for origin in ("https://evil.example", "null"):
                r = await client.get("/healthz", headers={"Origin": origin})
                assert r.status_code == 200
                assert "access-control-allow-origin" not in r.headers, origin
            r = await client.get("/healthz")
            assert "access-control-allow-origin" not in r.headers
            # The pages may fetch from the pair's servers (the site terminal's probe).
            r = await client.get("/site")
            csp = r.headers["content-security-policy"]
            connect = next(d for d in csp.split("; ") if d.startswith("connect-src "))
            assert connect.split() == [
                "connect-src",
                "'self'",
                "https://198.51.100.10",
                "https://standby.example:8443",
                "ws:",
                "wss:",
            ], csp
    finally:
        await runtime.close()
