"""The ``staff``, ``site`` and ``provision`` commands, run in-process."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from pathlib import Path

import pytest

from diemcau.accounts import cli as accounts_cli
from diemcau.accounts.service import (
    authenticate_site,
    authenticate_staff,
    check_session_token,
    issue_session_token,
)
from diemcau.directory import provision_cli
from diemcau.directory.provision_cli import ProgressBar
from diemcau.security import TokenError
from diemcau.store import Database, migrate
from tests.test_accounts_service import make_tree

KEY = b"a test token key of more than 32 bytes"


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="diemcau")
    sub = parser.add_subparsers(dest="command", required=True)
    accounts_cli.register(sub)
    provision_cli.register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


async def _seed(url: str) -> None:
    await migrate(url)
    db = Database(url)
    try:
        await make_tree(db)
    finally:
        await db.dispose()


def test_staff_commands(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_seed(sqlite_url))
    monkeypatch.setenv("DIEMCAU_PASSWORD", "from the environment")
    assert _run(["staff", "add", "chair", "--role", "chair", "--db", sqlite_url]) == 0
    assert _run(["staff", "add", "hcm", "--role", "province_officer", "--province", "79",
                 "--password", "given on argv", "--db", sqlite_url]) == 0  # fmt: skip
    # Refused: officer without a province; duplicate; too short a password.
    assert _run(["staff", "add", "xa", "--role", "province_officer", "--db", sqlite_url]) == 1
    assert _run(["staff", "add", "chair", "--role", "chair", "--db", sqlite_url]) == 1
    assert _run(["staff", "add", "ya", "--role", "admin", "--password", "short",
                 "--db", sqlite_url]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "province_officer must be bound" in err and "already taken" in err
    assert "at least 8" in err

    assert _run(["staff", "list", "--json", "--db", sqlite_url]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["username"], a["role"], a["province"]) for a in listed] == [
        ("chair", "chair", None),
        ("hcm", "province_officer", "79"),
    ]
    assert _run(["staff", "disable", "hcm", "--db", sqlite_url]) == 0

    async def check() -> None:
        db = Database(sqlite_url)
        try:
            assert await authenticate_staff(db, "chair", "from the environment") is not None
            assert await authenticate_staff(db, "hcm", "given on argv") is None  # disabled
        finally:
            await db.dispose()

    asyncio.run(check())

    # ``staff logout`` ends every session the account holds, at once.
    async def token() -> str:
        db = Database(sqlite_url)
        try:
            principal = await authenticate_staff(db, "chair", "from the environment")
            assert principal is not None
            return issue_session_token(KEY, principal, 3600)
        finally:
            await db.dispose()

    async def still_valid(tok: str) -> bool:
        db = Database(sqlite_url)
        try:
            await check_session_token(db, KEY, tok)
            return True
        except TokenError:
            return False
        finally:
            await db.dispose()

    issued = asyncio.run(token())
    assert asyncio.run(still_valid(issued))
    assert _run(["staff", "logout", "Chair", "--db", sqlite_url]) == 0
    assert "ended every session of 'chair'" in capsys.readouterr().out
    assert not asyncio.run(still_valid(issued))


def test_provision_and_site_commands(
    sqlite_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIEMCAU_SECRET_KEY", "cli-test-key-0123456789abcdef-0123")
    asyncio.run(_seed(sqlite_url))
    out = tmp_path / "sheets"
    argv = ["provision", "--db", sqlite_url, "--out", str(out), "--base-url", "http://h:1"]
    assert _run([*argv, "--province", "01"]) == 0
    captured = capsys.readouterr()
    assert "issued 3 site credentials" in captured.out
    assert "3/3" in captured.err  # the progress bar
    assert (out / "01-thanh-pho-ha-noi.html").exists()
    assert _run([*argv, "--province", "99"]) == 1
    assert "no province with code '99'" in capsys.readouterr().err

    assert _run(["site", "rotate", "00001", "--db", sqlite_url, "--base-url", "http://h:1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    join = lines[0].split(": ", 1)[1]
    assert join.startswith("00001:") and lines[1].endswith(f"http://h:1/join#{join}")
    assert _run(["site", "revoke", "00004", "--db", sqlite_url]) == 0
    assert "revoked site '00004'" in capsys.readouterr().out
    assert _run(["site", "revoke", "nope", "--db", sqlite_url]) == 1

    async def check() -> None:
        db = Database(sqlite_url)
        try:
            key = await db.secret_key("cli-test-key-0123456789abcdef-0123")
            assert await authenticate_site(db, key, join) is not None
        finally:
            await db.dispose()

    asyncio.run(check())


def test_progress_bar_shows_count_and_rate() -> None:
    stream = io.StringIO()
    bar = ProgressBar("QR", stream=stream, interval=0.0)
    bar(0, 10)
    bar(5, 10)
    bar(10, 10)
    bar(10, 10)  # a repeated final call draws nothing more
    text = stream.getvalue()
    assert "[###############...............] 5/10" in text
    assert text.endswith("10/10" + text.rsplit("10/10", 1)[1]) and text.endswith("/s\n")
    assert text.count("\n") == 1
    empty = io.StringIO()
    ProgressBar("QR", stream=empty)(0, 0)
    assert empty.getvalue() == ""
