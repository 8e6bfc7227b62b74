"""Every ``diemcau`` command answers a bad invocation in one line and a non-zero exit.

For each subcommand that ``diemcau --help`` lists, the cases below try what a
newcomer gets wrong: a wrong argument (an unknown choice, a number out of range,
an unknown province, site or account), a missing or unusable file or folder, an
unreachable database (nothing listening on 127.0.0.1:1; PostgreSQL refusing the
password; a database that does not exist; an SQLite path under a regular file;
a MySQL URL) and an empty directory. Each must exit non-zero, name the problem
on the last line of stderr, and print no traceback. A subcommand added without
cases fails `test_every_subcommand_has_cases`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from diemcau.accounts.service import create_staff
from diemcau.cli import build_parser, main
from diemcau.directory.records import UnitRecord
from diemcau.directory.service import load_units
from diemcau.store import Database, migrate

REFUSED = "postgresql://diemcau:diemcau@127.0.0.1:1/diemcau"  # nothing listens on port 1
WRONG_PASSWORD = "postgres://diemcau:not-the-password@/diemcau_test?host=/var/run/postgresql"
NO_DATABASE = "postgresql+asyncpg://diemcau:diemcau@/diemcau_nope?host=/var/run/postgresql"
MYSQL = "mysql://root@127.0.0.1/diemcau"

TREE = (
    UnitRecord("VN", "Việt Nam", "country"),
    UnitRecord("01", "Thành phố Hà Nội", "province", "Thành phố", "VN", 21.03, 105.85),
    UnitRecord("00004", "Phường Ba Đình", "commune", "Phường", "01", 21.035, 105.834),
)
PASSWORD = "correct-horse-42"


@dataclass
class Ctx:
    """Paths and URLs the cases are built from."""

    tmp: Path
    loaded: str  # a store with a small directory and a staff account "ops"
    empty: str  # a migrated store without any site
    blocked: str = ""  # an SQLite URL under a regular file
    a_file: Path = field(default_factory=Path)
    codes: Path = field(default_factory=Path)  # a report CSV
    joins: Path = field(default_factory=Path)  # join codes, one a line
    busy_port: int = 0


@dataclass(frozen=True)
class Case:
    command: str
    problem: str
    argv: Callable[[Ctx], list[str]]
    says: str
    env: dict[str, str] = field(default_factory=dict)


def _missing(ctx: Ctx) -> str:
    return str(ctx.tmp / "missing.csv")


UNREACHABLE = "cannot reach PostgreSQL at 127.0.0.1:1: connection refused"
EMPTY = "is empty; load it first: diemcau directory load"
CASES: list[Case] = [
    # directory load
    Case("directory load", "unknown dataset", lambda c: ["directory", "load", "--db", c.empty,
         "--dataset", "vn-1999"], "invalid choice: 'vn-1999'"),
    Case("directory load", "missing file", lambda c: ["directory", "load", "--db", c.empty,
         "--csv", _missing(c)], "No such file or directory"),
    Case("directory load", "unreachable", lambda c: ["directory", "load", "--db", REFUSED,
         "--dataset", "south-19"], UNREACHABLE),
    Case("directory load", "unwritable sqlite", lambda c: ["directory", "load", "--db", c.blocked,
         "--dataset", "south-19"], "(a file is in the way)"),
    Case("directory load", "mysql url", lambda c: ["directory", "load", "--db", MYSQL,
         "--dataset", "south-19"], "unsupported database URL mysql://…; use sqlite:///"),
    Case("directory load", "not a url", lambda c: ["directory", "load", "--db", "x.db",
         "--dataset", "south-19"], "not a database URL: 'x.db' (for a file: sqlite:///x.db)"),
    # directory stats
    Case("directory stats", "unknown flag", lambda c: ["directory", "stats", "--jsn"],
         "unrecognized arguments: --jsn"),
    Case("directory stats", "unreachable", lambda c: ["directory", "stats", "--db", REFUSED],
         UNREACHABLE),
    Case("directory stats", "wrong password", lambda c: ["directory", "stats", "--db",
         WRONG_PASSWORD], "refused the login (password authentication failed"),
    Case("directory stats", "no such database", lambda c: ["directory", "stats", "--db",
         NO_DATABASE], "the database does not exist; create it"),
    Case("directory stats", "empty", lambda c: ["directory", "stats", "--db", c.empty], EMPTY),
    Case("directory stats", "never migrated", lambda c: ["directory", "stats", "--db",
         f"sqlite:///{c.tmp / 'fresh.db'}"], EMPTY),
    # directory search
    Case("directory search", "limit 0", lambda c: ["directory", "search", "--db", c.loaded,
         "--limit", "0", "ba dinh"], "0 is out of range: give between 1 and 1000"),
    Case("directory search", "unreachable", lambda c: ["directory", "search", "--db", REFUSED,
         "ba dinh"], UNREACHABLE),
    Case("directory search", "empty", lambda c: ["directory", "search", "--db", c.empty,
         "ba dinh"], EMPTY),
    # provision
    Case("provision", "unknown province", lambda c: ["provision", "--db", c.loaded, "--province",
         "99", "--out", str(c.tmp / "out")], "no province with code '99'"),
    Case("provision", "out under a file", lambda c: ["provision", "--db", c.loaded, "--out",
         str(c.a_file / "out")], "Not a directory"),
    Case("provision", "unreachable", lambda c: ["provision", "--db", REFUSED, "--out",
         str(c.tmp / "out")], UNREACHABLE),
    Case("provision", "empty", lambda c: ["provision", "--db", c.empty, "--out",
         str(c.tmp / "out")], EMPTY),
    # staff
    Case("staff add", "unknown role", lambda c: ["staff", "add", "newbie", "--role", "king", "--db",
         c.loaded], "invalid choice: 'king'"),
    Case("staff add", "weak password", lambda c: ["staff", "add", "newbie", "--role", "chair",
         "--password", "short", "--db", c.loaded], "password must have at least"),
    Case("staff add", "unreachable", lambda c: ["staff", "add", "newbie", "--role", "chair",
         "--password", PASSWORD, "--db", REFUSED], UNREACHABLE),
    Case("staff add", "empty", lambda c: ["staff", "add", "newbie", "--role", "province_officer",
         "--province", "01", "--password", PASSWORD, "--db", c.empty], EMPTY),
    Case("staff list", "unknown flag", lambda c: ["staff", "list", "--all"],
         "unrecognized arguments: --all"),
    Case("staff list", "unreachable", lambda c: ["staff", "list", "--db", REFUSED], UNREACHABLE),
    Case("staff disable", "unknown account", lambda c: ["staff", "disable", "nobody", "--db",
         c.loaded], "nobody"),
    Case("staff disable", "unreachable", lambda c: ["staff", "disable", "ops", "--db", REFUSED],
         UNREACHABLE),
    Case("staff enable", "unknown account", lambda c: ["staff", "enable", "nobody", "--db",
         c.loaded], "nobody"),
    Case("staff enable", "unreachable", lambda c: ["staff", "enable", "ops", "--db", REFUSED],
         UNREACHABLE),
    Case("staff logout", "unknown account", lambda c: ["staff", "logout", "nobody", "--db",
         c.loaded], "no staff account 'nobody'"),
    Case("staff logout", "unreachable", lambda c: ["staff", "logout", "ops", "--db", REFUSED],
         UNREACHABLE),
    # site
    Case("site rotate", "unknown site", lambda c: ["site", "rotate", "99999", "--db", c.loaded],
         "99999"),
    Case("site rotate", "unreachable", lambda c: ["site", "rotate", "00004", "--db", REFUSED],
         UNREACHABLE),
    Case("site rotate", "empty", lambda c: ["site", "rotate", "00004", "--db", c.empty], EMPTY),
    Case("site revoke", "unknown site", lambda c: ["site", "revoke", "99999", "--db", c.loaded],
         "99999"),
    Case("site revoke", "unreachable", lambda c: ["site", "revoke", "00004", "--db", REFUSED],
         UNREACHABLE),
    Case("site revoke", "empty", lambda c: ["site", "revoke", "00004", "--db", c.empty], EMPTY),
    # keys (bad keys: too short, a file that is missing, both a key and a key file)
    Case("keys status", "short token key", lambda c: ["keys", "status", "--db", c.loaded],
         "DIEMCAU_TOKEN_KEY line 1: a key needs at least 32 characters (it has 5)",
         env={"DIEMCAU_TOKEN_KEY": "short"}),
    Case("keys status", "missing site key file", lambda c: ["keys", "status", "--db", c.loaded],
         "DIEMCAU_SITE_KEY_FILE: cannot read",
         env={"DIEMCAU_SITE_KEY_FILE": "/nonexistent/site.keys"}),
    Case("keys status", "key and key file", lambda c: ["keys", "status", "--db", c.loaded],
         "set DIEMCAU_SITE_KEY or DIEMCAU_SITE_KEY_FILE, not both",
         env={"DIEMCAU_SITE_KEY": "k" * 32, "DIEMCAU_SITE_KEY_FILE": "/nonexistent/site.keys"}),
    Case("keys status", "unreachable", lambda c: ["keys", "status", "--db", REFUSED], UNREACHABLE),
    Case("keys new", "unknown flag", lambda c: ["keys", "new", "--bits", "8"],
         "unrecognized arguments: --bits 8"),
    # serve
    Case("serve", "short secret key", lambda c: ["serve", "--db", c.loaded], "DIEMCAU_SECRET_KEY:"
         " a key needs at least 32 characters (it has 6)", env={"DIEMCAU_SECRET_KEY": "secret"}),
    Case("serve", "port out of range", lambda c: ["serve", "--db", c.loaded, "--port", "70000"],
         "70000 is out of range: give between 1 and 65535"),
    Case("serve", "port taken", lambda c: ["serve", "--db", c.loaded, "--port",
         str(c.busy_port)], "Address already in use; stop the process that holds it"),
    Case("serve", "site port taken", lambda c: ["serve", "--db", c.loaded, "--port",
         str(c.busy_port - 1)], "for site sessions (DIEMCAU_PRESENCE_PORT"),
    Case("serve", "unreachable", lambda c: ["serve", "--db", REFUSED], UNREACHABLE),
    Case("serve", "unwritable sqlite", lambda c: ["serve", "--db", c.blocked],
         "(a file is in the way)"),
    Case("serve", "empty", lambda c: ["serve", "--db", c.empty], EMPTY),
    Case("serve", "redirect port out of range", lambda c: ["serve", "--db", c.loaded,
         "--http-redirect-port", "99999"], "99999 is out of range"),
    Case("serve", "missing certificate", lambda c: ["serve", "--db", c.loaded, "--port",
         str(c.busy_port + 20), "--tls-cert", _missing(c), "--tls-key", _missing(c)],
         "missing.csv: no such file"),
    # tls
    Case("tls lab-ca", "days out of range", lambda c: ["tls", "lab-ca", "--out",
         str(c.tmp / "ca"), "--server", "diemcau.example", "--days", "-5"],
         "-5 is out of range: give between 1 and 3650"),
    Case("tls lab-ca", "out under a file", lambda c: ["tls", "lab-ca", "--out",
         str(c.a_file / "ca"), "--server", "diemcau.example"], "Not a directory"),
    Case("tls check", "missing certificate", lambda c: ["tls", "check", "--cert", _missing(c),
         "--key", _missing(c)], "missing.csv: no such file"),
    Case("tls check", "not a certificate", lambda c: ["tls", "check", "--cert", str(c.a_file),
         "--key", str(c.a_file)], "not a PEM certificate"),
    # deploy
    Case("deploy render", "missing inventory", lambda c: ["deploy", "render", "--inventory",
         _missing(c), "--out", str(c.tmp / "rendered")], "cannot read it"),
    Case("deploy render", "not an inventory", lambda c: ["deploy", "render", "--inventory",
         str(c.a_file), "--out", str(c.tmp / "rendered")], "a-file"),
    # media plan
    Case("media plan", "capacity 0", lambda c: ["media", "plan", "--db", c.loaded, "--capacity",
         "0"], "0 is out of range: give 1 or more"),
    Case("media plan", "missing nodes file", lambda c: ["media", "plan", "--db", c.loaded,
         "--nodes", _missing(c)], "missing.csv: No such file or directory"),
    Case("media plan", "nodes file not JSON", lambda c: ["media", "plan", "--db", c.loaded,
         "--nodes", str(c.a_file)], "not valid JSON"),
    Case("media plan", "unreachable", lambda c: ["media", "plan", "--db", REFUSED], UNREACHABLE),
    Case("media plan", "empty", lambda c: ["media", "plan", "--db", c.empty], EMPTY),
    # media check
    Case("media check", "no inventory", lambda c: ["media", "check"],
         "give --inventory FILE or set DIEMCAU_INVENTORY", env={"DIEMCAU_INVENTORY": ""}),
    Case("media check", "missing inventory", lambda c: ["media", "check", "--inventory",
         _missing(c)], "cannot read it"),
    Case("media check", "not an inventory", lambda c: ["media", "check", "--inventory",
         str(c.a_file)], "not valid TOML"),
    Case("media check", "timeout 0", lambda c: ["media", "check", "--inventory", str(c.a_file),
         "--timeout", "0"], "0 is out of range: give 0.5 or more"),
    # sim
    Case("sim", "ftp url", lambda c: ["sim", "--url", "ftp://127.0.0.1/", "--codes",
         str(c.joins)], "--url must be ws://, wss://, http:// or https://"),
    Case("sim", "negative flaky", lambda c: ["sim", "--url", "http://127.0.0.1:1", "--codes",
         str(c.joins), "--flaky", "-1"], "-1 is out of range: give 0 or more"),
    Case("sim", "protocol 3", lambda c: ["sim", "--url", "http://127.0.0.1:1", "--codes",
         str(c.joins), "--protocol", "3"], "argument --protocol: invalid choice: 3"),
    Case("sim", "missing codes file", lambda c: ["sim", "--url", "http://127.0.0.1:1", "--codes",
         _missing(c)], "missing.csv: No such file or directory"),
    Case("sim", "server unreachable", lambda c: ["sim", "--url", "http://127.0.0.1:1", "--codes",
         str(c.joins)], "cannot find the site socket"),
    Case("sim", "unreachable", lambda c: ["sim", "--url", "http://127.0.0.1:1", "--db", REFUSED],
         UNREACHABLE),
    Case("sim", "empty", lambda c: ["sim", "--url", "http://127.0.0.1:1", "--db", c.empty],
         EMPTY),
    # command
    Case("command schemas", "missing folder", lambda c: ["command", "schemas", "--dir",
         str(c.tmp / "no-schemas")], "no such folder of schema files"),
    Case("command import", "unknown account", lambda c: ["command", "import", "--db", c.loaded,
         "--schema", "covid19", "--as", "nobody", str(c.codes)], "no active staff account"),
    Case("command import", "missing file", lambda c: ["command", "import", "--db", c.loaded,
         "--schema", "covid19", "--as", "ops", _missing(c)], "No such file or directory"),
    Case("command import", "unreachable", lambda c: ["command", "import", "--db", REFUSED,
         "--schema", "covid19", "--as", "ops", str(c.codes)], UNREACHABLE),
    Case("command import", "empty", lambda c: ["command", "import", "--db", c.empty, "--schema",
         "covid19", "--as", "ops", str(c.codes)], EMPTY),
    # demo
    Case("demo", "unknown dataset", lambda c: ["demo", "--dataset", "mars"],
         "invalid choice: 'mars'"),
    Case("demo", "data under a file", lambda c: ["demo", "--no-media", "--data",
         str(c.a_file / "demo")], "Not a directory"),
    Case("demo", "unreachable", lambda c: ["demo", "--no-media", "--data", str(c.tmp / "demo"),
         "--port", str(c.busy_port + 10)], UNREACHABLE, env={"DIEMCAU_DB": REFUSED}),
]  # fmt: skip


def _leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix.strip()
        return
    for name, child in subs[0].choices.items():
        yield from _leaf_commands(child, f"{prefix} {name}")


def test_every_subcommand_has_cases() -> None:
    commands = set(_leaf_commands(build_parser()))
    assert commands == {c.command for c in CASES}
    takes_db = {
        cmd
        for cmd in commands
        if any(a.dest == "db" for a in _parser_of(build_parser(), cmd.split())._actions)
    }
    for cmd in takes_db:
        assert any(c.command == cmd and c.says == UNREACHABLE for c in CASES), cmd


def _parser_of(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser:
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


async def _seed(loaded: str, empty: str) -> None:
    for url in (loaded, empty):
        await migrate(url)
    db = Database(loaded)
    try:
        await load_units(db, list(TREE), dataset="test")
        await create_staff(db, "ops", PASSWORD, "operator")
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    tmp = tmp_path_factory.mktemp("cli")
    c = Ctx(tmp, f"sqlite:///{tmp / 'loaded.db'}", f"sqlite:///{tmp / 'empty.db'}")
    asyncio.run(_seed(c.loaded, c.empty))
    c.a_file = tmp / "a-file"
    c.a_file.write_text("not JSON, not a folder\n")
    c.blocked = f"sqlite:///{c.a_file / 'x.db'}"
    c.codes = tmp / "codes.csv"
    c.codes.write_text("site_code,new_cases\n00004,1\n", encoding="utf-8")
    c.joins = tmp / "join-codes.txt"
    c.joins.write_text("00004:not-a-real-secret\n", encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        c.busy_port = busy.getsockname()[1]
        yield c


@pytest.mark.parametrize("case", CASES, ids=[f"{c.command}: {c.problem}" for c in CASES])
def test_bad_invocation_is_one_line(
    case: Case, ctx: Ctx, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIEMCAU_DB", raising=False)
    monkeypatch.setenv("DIEMCAU_DATA", str(ctx.tmp / "data"))
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    stdin = os.open(os.devnull, os.O_RDONLY)  # no terminal: nothing may wait for input
    saved = os.dup(0)
    os.dup2(stdin, 0)
    try:
        try:
            code = main(case.argv(ctx))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(stdin)
    out, err = capfd.readouterr()
    assert code != 0, (out, err)
    assert "Traceback" not in out + err and 'File "' not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, out
    assert case.says in lines[-1], err
    assert sum(case.says in line for line in lines) == 1, err
