"""TLS for the browser-facing listeners: certificate checks, HTTPS + wss://, no fallback.

Bad inputs tried: a missing certificate, a file that is not PEM, a key that
belongs to another certificate, an expired and a not-yet-valid certificate,
a certificate without its key; each gives one specific line and nothing
listens. Plain HTTP to a non-loopback host is refused (403) and, with a
redirect port, sent to HTTPS (308).
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from diemcau.api.https_only import https_only, is_loopback_host, redirect_app
from diemcau.api.server import serve
from diemcau.config import Settings
from diemcau.media.node import LocalJanusProcess
from diemcau.tls import TlsError, check_server_files, client_context
from diemcau.tls.certs import LabCA
from tests.browser import free_port, lab_tls, live_server


def test_check_server_files_names_each_fault(tmp_path: Path) -> None:
    ca = LabCA.open_or_create(tmp_path / "ca")
    good = ca.issue(["127.0.0.1"], tmp_path, stem="good")
    other = ca.issue(["127.0.0.1"], tmp_path, stem="other")
    assert check_server_files(good.cert, good.key).subject.rfc4514_string() == "CN=127.0.0.1"

    with pytest.raises(TlsError, match="no such file"):
        check_server_files(tmp_path / "missing.pem", good.key)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(TlsError, match="not a PEM certificate"):
        check_server_files(junk, good.key)
    with pytest.raises(TlsError, match="not a PEM private key"):
        check_server_files(good.cert, junk)
    with pytest.raises(TlsError, match="does not match"):
        check_server_files(good.cert, other.key)
    old = ca.issue(
        ["127.0.0.1"],
        tmp_path,
        stem="old",
        days=1,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
    )
    with pytest.raises(TlsError, match="expired on"):
        check_server_files(old.cert, old.key)
    early = ca.issue(
        ["127.0.0.1"],
        tmp_path,
        stem="early",
        not_before=dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
    )
    with pytest.raises(TlsError, match="not valid before"):
        check_server_files(early.cert, early.key)


async def test_server_with_a_bad_certificate_does_not_start(tmp_path: Path) -> None:
    db_file = tmp_path / "d.db"
    base = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{db_file}", port=0)
    from dataclasses import replace

    only_cert = replace(base, tls_cert=str(lab_tls().server.cert))
    with pytest.raises(TlsError, match="--tls-key is missing"):
        await serve(only_cert)
    wrong = replace(base, tls_cert=str(lab_tls().server.cert), tls_key=str(lab_tls().ca.key_path))
    with pytest.raises(TlsError, match="does not match"):
        await serve(wrong)
    assert not db_file.exists()  # refused before the store was touched


def test_serve_command_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("nope")
    out = subprocess.run(
        [sys.executable, "-m", "diemcau.cli", "serve", "--data", str(tmp_path)]
        + ["--port", str(free_port()), "--tls-cert", str(junk), "--tls-key", str(junk)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    errors = [ln for ln in out.stderr.splitlines() if "TLS" in ln]
    assert errors == [f"diemcau: TLS certificate {junk}: not a PEM certificate"], out.stderr
    assert "Traceback" not in out.stderr


async def test_https_app_and_wss_site_sessions(tmp_path: Path) -> None:
    async with live_server(tmp_path, join_sites=("00004",)) as srv:
        assert srv.base_url.startswith("https://")
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=10) as client:
            info = (await client.get("/api/presence/info")).json()
            config = (await client.get("/api/web/config")).json()
        assert info["url"].startswith("wss://127.0.0.1:"), info
        assert config["presence_url"].startswith("wss://127.0.0.1:"), config
        ctx = client_context(lab_tls().ca.cert_path)
        async with connect(info["url"], ssl=ctx) as ws:
            await ws.send(
                json.dumps({"type": "hello", "v": 1, "join_code": srv.join_codes["00004"]})
            )
            welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome" and welcome["site_code"] == "00004"
        # Nobody is served in plain text on the TLS ports, and an unknown CA is refused.
        port = int(srv.base_url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(timeout=5) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{port}/api/presence/info")
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(info["url"], ssl=_trusting_nobody()) as ws:
                pass


def _trusting_nobody() -> ssl.SSLContext:
    """A verifying client context with an empty trust store (SSL_CERT_FILE ignored)."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


async def _asgi_get(app: object, host: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
        return await c.get(path)


async def test_plain_http_is_refused_or_redirected_off_loopback() -> None:
    async def ok(scope: object, receive: object, send: object) -> None:
        assert isinstance(scope, dict)
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"page"})  # type: ignore[operator]

    app = https_only(ok)
    assert (await _asgi_get(app, "127.0.0.1:8080", "/join")).status_code == 200
    assert (await _asgi_get(app, "localhost", "/join")).status_code == 200
    for host in ("198.51.100.10", "198.51.100.10:8080", "diemcau.example", "[2001:db8::1]"):
        page = await _asgi_get(app, host, "/join")
        assert page.status_code == 403 and "https://" in page.text, host
        api = await _asgi_get(app, host, "/api/site/media")
        assert api.json()["error"]["code"] == "https_required"
    assert not is_loopback_host("127.example") and is_loopback_host("[::1]:80")

    moved = await _asgi_get(redirect_app(443), "198.51.100.10", "/join?x=1")
    assert moved.status_code == 308
    assert moved.headers["location"] == "https://198.51.100.10/join?x=1"
    moved = await _asgi_get(redirect_app(8443), "198.51.100.10:80", "/chair")
    assert moved.headers["location"] == "https://198.51.100.10:8443/chair"


async def test_local_janus_serves_browsers_over_wss(tmp_path: Path) -> None:
    proc = LocalJanusProcess.create("central", "central", tmp_path, tls=lab_tls().server)
    await proc.start()
    try:
        url = proc.node.browser_ws_url
        assert url.startswith("wss://127.0.0.1:")
        ctx = client_context(lab_tls().ca.cert_path)
        async with connect(url, subprotocols=["janus-protocol"], ssl=ctx) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"janus": "info", "transaction": "t1"}))
            reply = json.loads(await ws.recv())
        assert reply["janus"] == "server_info" and reply["name"]
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(url, subprotocols=["janus-protocol"], ssl=_trusting_nobody()):  # type: ignore[list-item]
                pass
    finally:
        await proc.stop()


def test_a_server_without_tls_does_not_load_cryptography(tmp_path: Path) -> None:
    """cryptography (~10 MB resident) is loaded when a certificate is checked or made,
    not by importing the server's wiring (docs/performance.md); a check still works."""
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "import diemcau.wiring, diemcau.api.server, diemcau.media\n"
        "print('cryptography' in sys.modules)\n"
        "from diemcau.tls.certs import LabCA\n"
        "from diemcau.tls import check_server_files\n"
        f"files = LabCA.open_or_create(Path({str(tmp_path / 'ca')!r})).issue(['127.0.0.1'], "
        f"Path({str(tmp_path)!r}))\n"
        "print(check_server_files(files.cert, files.key).subject.rfc4514_string())\n"
        "print('cryptography' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert run.stdout.split() == ["False", "CN=127.0.0.1", "True"], run.stderr
