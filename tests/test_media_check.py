"""``diemcau media check`` against the lab: all green, then the right rows FAIL when broken.

The lab deployment (central, two relays, coturn; configured from its inventory
file) is checked by the real command, run as a separate process on the
control host, as an operator runs it. Then the deployment is broken three
ways at once: relay2 stopped, relay1's ``admin_secret`` and ``admin_key``
wrong in the inventory's secret files, the TURN secret wrong; exactly the rows
that depend on those fail, with a one-line reason, and the command exits 1.
Bad inputs tried: no inventory given, an inventory with a literal secret, a
missing file: exit 2 with one line on stderr and no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from diemcau.deploy.inventory import Inventory
from diemcau.lab.deployment import LabDeployment
from diemcau.lab.network import Lab
from diemcau.media.control import NodeControl
from tests.browser import wait_for

pytestmark = [
    pytest.mark.media,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

ROWS = (
    {
        (node, check)
        for node in ("central", "relay1", "relay2")
        for check in ("api", "admin", "admin_key")
    }
    | {("relay1", "cascade"), ("relay2", "cascade")}
    | {("turn", f"turn {t}") for t in ("udp", "tcp", "tls")}
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(control_here=True, lans=()) as built:
        yield built


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dep(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LabDeployment]:
    deployment = LabDeployment(lab, tmp_path_factory.mktemp("check"), {"relay2": ("79",)})
    deployment.prepare()
    await deployment.start()
    try:
        yield deployment
    finally:
        await deployment.stop()


def _check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diemcau.cli", "media", "check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _rows(stdout: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(node, check) -> (ok/FAIL, detail) from the printed table."""
    out = {}
    for line in stdout.splitlines()[1:-1]:
        node, check_a, *rest = line.split()
        check = f"{check_a} {rest.pop(0)}" if check_a == "turn" else check_a
        result, detail = rest[0], " ".join(rest[1:-1])
        out[(node, check)] = (result, detail)
    return out


async def _leftovers(dep: LabDeployment) -> list[str]:
    """Rooms and Janus sessions the check may have left on the nodes."""
    found = []
    for node in dep.nodes():
        proc = dep.janus[node.name].proc
        if proc is None or proc.poll() is not None:
            continue
        ctl = NodeControl(node)
        try:
            found += [f"room {r} on {node.name}" for r in await ctl.rooms()]
        finally:
            await ctl.close()
        admin = await node.connect_admin()
        try:
            found += [f"session {s} on {node.name}" for s in await admin.list_sessions()]
        finally:
            await admin.close()
    return found


async def test_a_healthy_deployment_is_all_green_and_left_clean(dep: LabDeployment) -> None:
    done = _check(env={"DIEMCAU_INVENTORY": str(dep.inventory_file)})
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert set(rows) == ROWS
    assert all(result == "ok" for result, _ in rows.values()), done.stdout
    assert "first frame decoded" in rows[("relay2", "cascade")][1]
    assert rows[("turn", "turn tls")][1].startswith(f"{dep.lab.ip('turn')}:443 relays at")
    assert done.stdout.splitlines()[-1] == f"{len(ROWS)} ok, 0 failed"

    async def clean() -> bool:
        return not await _leftovers(dep)

    await wait_for(clean, timeout=10)


async def test_a_broken_deployment_fails_exactly_the_rows_it_should(dep: LabDeployment) -> None:
    secrets = dep.folder / "secrets"
    saved = {p: p.read_text() for p in secrets.iterdir()}
    relay2 = dep.janus["relay2"]
    await relay2.stop()
    try:
        for name in ("relay1-admin-secret", "relay1-admin-key", "turn-secret"):
            (secrets / name).write_text("wrong-" + name + "\n")
        done = _check("--inventory", str(dep.inventory_file), "--timeout", "5")
        assert done.returncode == 1, done.stdout + done.stderr
        rows = _rows(done.stdout)
        failed = {key for key, (result, _) in rows.items() if result == "FAIL"}
        assert failed == {
            ("relay1", "admin"),
            ("relay1", "admin_key"),
            ("relay1", "cascade"),
            ("relay2", "api"),
            ("relay2", "admin"),
            ("relay2", "admin_key"),
            ("relay2", "cascade"),
            ("turn", "turn udp"),
            ("turn", "turn tcp"),
            ("turn", "turn tls"),
        }, done.stdout
        assert rows[("relay1", "admin")][1].endswith(
            "Unauthorized request (wrong or missing secret/token)"
        )
        assert "wrong admin_key" in rows[("relay1", "admin_key")][1]
        assert rows[("relay2", "api")][1] == "connection refused"
        assert "401" in rows[("turn", "turn udp")][1]
        assert "Traceback" not in done.stdout + done.stderr
        assert done.stdout.splitlines()[-1] == f"{len(ROWS) - 10} ok, 10 failed"
    finally:
        for path, text in saved.items():
            path.write_text(text)
        await relay2.start()


async def test_bad_inventories_get_one_line_and_exit_2(tmp_path: Path, dep: LabDeployment) -> None:
    env = {"DIEMCAU_INVENTORY": ""}
    missing = _check(env=env)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: give --inventory FILE or set DIEMCAU_INVENTORY"
    literal = tmp_path / "literal.toml"
    literal.write_text(
        dep.inventory_file.read_text().replace(
            f'"file:{dep.folder / "secrets" / "turn-secret"}"', '"hunter2"'
        )
    )
    bad = _check("--inventory", str(literal), env=env)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "turn.0.secret" in bad.stderr, bad.stderr
    assert "literal secret" in bad.stderr
    gone = _check("--inventory", str(tmp_path / "nope.toml"), env=env)
    assert gone.returncode == 2 and "cannot read it" in gone.stderr
    # Nothing was changed by the failed runs: the inventory still loads as before.
    assert Inventory.load(dep.inventory_file).turn[0].name == "turn"


_ECHO = """
import socket, sys
socks = []
for port in sys.argv[2:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(port)))
    socks.append(s)
print("ready", flush=True)
import select
while True:
    for s in select.select(socks, [], [])[0]:
        data, peer = s.recvfrom(100); s.sendto(data, peer)
"""

_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0)
s.sendto(b"rtp?", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recv(10).decode())
except OSError:
    print("dropped")
"""


async def test_cascade_ports_take_packets_from_media_nodes_only(dep: LabDeployment) -> None:
    # The rendered firewall is loaded on every node: a remote publisher's port
    # (10000-60000) answers central, not the TURN host (a relay for anyone on the
    # Internet); the node's own ICE ports stay open to everyone.
    lab = dep.lab
    relay = lab.hosts["relay1"]
    ice_port = dep.inventory.node[1].rtp_ports[1] if dep.inventory else 0
    assert ice_port > 60000
    echo = subprocess.Popen(
        relay.command(sys.executable, "-c", _ECHO, lab.ip("relay1"), "15000", str(ice_port)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"

        def send(host: str, port: int) -> str:
            cmd = lab.hosts[host].command(sys.executable, "-c", _SEND, lab.ip("relay1"), str(port))
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()

        assert send("central", 15000) == "rtp?"
        assert send("relay2", 15000) == "rtp?"
        assert send("turn", 15000) == "dropped"
        assert send("turn", ice_port) == "rtp?"
    finally:
        echo.kill()
        echo.wait()
