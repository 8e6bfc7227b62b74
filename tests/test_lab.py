"""The multi-host lab: hosts on a bridge, a routed LAN, a NAT and a TCP-443-only office.

Checked with real sockets between namespaces: who reaches whom, which source
address a relay sees (the NAT's), which traffic the tcp-only router drops, that
no namespace has a route off the lab, and that everything disappears when the
process that built the lab is killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from diemcau.lab.netns import Host, LabError
from diemcau.lab.network import BACKBONE_HOSTS, LANS, Lab
from diemcau.media.cluster import LocalCluster
from diemcau.media.isolation import (
    MEDIA_ADDR,
    MEDIA_IFACE,
    in_isolated_netns,
    restrict_aioice_to_media_addr,
)
from diemcau.media.janus_config import render_janus_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

# Listen on TCP 443 and 8443 and UDP 3478 and report the peer address of each contact.
_SERVER = """
import json, select, socket, sys
ip = sys.argv[1]
socks = []
for port in (443, 8443):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port)); s.listen(); socks.append(s)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((ip, 3478)); socks.append(u)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        if s.type == socket.SOCK_DGRAM:
            data, peer = s.recvfrom(100); s.sendto(data, peer); port = 3478
        else:
            c, peer = s.accept(); c.sendall(b"ok"); c.close(); port = s.getsockname()[1]
        print(json.dumps([port, peer[0]]), flush=True)
"""

_CLIENT = """
import socket, sys
ip, proto, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        s = socket.create_connection((ip, port), timeout=1.5); print(s.recv(2).decode())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
        s.sendto(b"ok", (ip, port)); print(s.recv(2).decode())
except OSError as exc:
    print("fail", type(exc).__name__)
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(control_here=True) as built:
        yield built


def _reach(host: Host, ip: str, proto: str, port: int) -> str:
    out = subprocess.run(
        host.command(sys.executable, "-c", _CLIENT, ip, proto, str(port)),
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout.strip()


def test_lans_reach_the_backbone_as_their_network_allows(lab: Lab) -> None:
    relay = lab.hosts["relay1"]
    server = subprocess.Popen(
        relay.command(sys.executable, "-c", _SERVER, lab.ip("relay1")),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        ip = lab.ip("relay1")
        seen: list[tuple[str, int, str]] = []

        def contact(lan: str, proto: str, port: int, ok: bool) -> None:
            got = _reach(lab.pc(lan), ip, proto, port)
            assert (got == "ok") is ok, (lan, proto, port, got)
            if ok:
                assert server.stdout is not None
                port_seen, peer = json.loads(server.stdout.readline())
                seen.append((lan, port_seen, peer))

        for lan in ("open", "nat"):
            contact(lan, "tcp", 443, True)
            contact(lan, "tcp", 8443, True)
            contact(lan, "udp", 3478, True)
        contact("tcp", "tcp", 443, True)
        contact("tcp", "tcp", 8443, False)
        contact("tcp", "udp", 3478, False)
        # The routed office is seen with its own address, the NATed ones as their router.
        assert {(lan, peer) for lan, _, peer in seen} == {
            ("open", lab.lan("open").pc_ip),
            ("nat", lab.lan("nat").wan_ip),
            ("tcp", lab.lan("tcp").wan_ip),
        }
        # A backbone host cannot open a connection into a NATed office.
        assert _reach(relay, lab.lan("nat").pc_ip, "tcp", 443).startswith("fail")
    finally:
        server.kill()
        server.wait()


def test_no_namespace_has_a_way_off_the_lab(lab: Lab) -> None:
    for name, host in lab.hosts.items():
        routes = host.run("ip", "-4", "route")
        if name.endswith("-pc"):
            lan = lab.lan(name[: -len("-pc")])
            assert f"default via {lan.gw_ip}" in routes, (name, routes)
        else:
            assert "default" not in routes, (name, routes)
        for line in host.run("ip", "-4", "-o", "addr").splitlines():
            addr = line.split()[3]
            assert addr.startswith(("127.", "198.51.100.", "203.0.113.", "100.64.")), (name, line)


def test_refuses_to_join_a_namespace_with_real_interfaces() -> None:
    lab = Lab(control_here=True)
    host = Host.new("probe")
    try:
        host.batch(["link add real0 type veth peer name real1"])
        code = (
            "import os, sys\n"
            "from diemcau.lab.network import Lab\n"
            "from diemcau.lab.netns import LabError\n"
            "try:\n    Lab(control_here=True).build()\nexcept LabError as e:\n    print(e)\n"
        )
        out = subprocess.run(
            host.command(sys.executable, "-c", code), capture_output=True, text=True, timeout=60
        )
        assert "loopback devices only" in out.stdout, out.stdout + out.stderr
    finally:
        host.close()
        lab.close()


def test_everything_goes_when_the_builder_is_killed() -> None:
    code = (
        "from diemcau.media.isolation import enter_isolated_netns\n"
        "enter_isolated_netns()\n"
        "from diemcau.lab.network import Lab\n"
        "lab = Lab(control_here=True).build()\n"
        "print(' '.join(str(h.pid) for h in lab.hosts.values() if h.holder), flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    # The builder starts in a namespace of its own (this one may hold a lab already).
    start = Host.new("start")
    try:
        proc = subprocess.Popen(
            start.command(sys.executable, "-c", code), stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) >= 11
        proc.kill()
        proc.wait()
    finally:
        start.close()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if os.path.exists(f"/proc/{p}")]


def test_lab_errors_name_the_host() -> None:
    host = Host.new("probe")
    try:
        with pytest.raises(LabError, match="probe: ip link set nosuch up"):
            host.run("ip", "link", "set", "nosuch", "up")
    finally:
        host.close()


def test_the_isolated_namespace_is_recognised_from_inside_and_not_elsewhere() -> None:
    # Tests run inside the private namespace (conftest); sysfs still shows the host's
    # interfaces, so the answer must come from the kernel for this namespace.
    assert in_isolated_netns()
    assert not os.path.exists("/sys/class/net/jlo0") or in_isolated_netns()
    host = Host.new("plain")
    try:
        code = "from diemcau.media.isolation import in_isolated_netns; print(in_isolated_netns())"
        out = host.run(sys.executable, "-c", code)
        assert out.strip() == "False"
    finally:
        host.close()


def test_local_janus_nodes_in_the_test_namespace_gather_on_the_media_interface_only(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(relays=[("r1", ("01",), 10)], base_dir=tmp_path)
    for proc in cluster.processes.values():
        assert proc.ice_enforce_list == MEDIA_IFACE and proc.nat_1_1 is None
        assert 'ice_enforce_list = "jlo0"' in render_janus_config(proc.janus_config())["janus.jcfg"]


def test_bots_gather_the_media_address_and_the_lab_addresses_only(lab: Lab) -> None:
    import aioice.ice

    restrict_aioice_to_media_addr()
    found = aioice.ice.get_host_addresses(True, True)
    # The control host of the lab is this namespace: its backbone addresses count.
    assert found[0] == MEDIA_ADDR
    assert set(found) == {MEDIA_ADDR, *BACKBONE_HOSTS["control"]}
    assert aioice.ice.get_host_addresses(False, True) == []


def test_a_host_behind_one_to_one_nat_is_reached_on_its_public_address_only() -> None:
    with Lab(lans=LANS[:1], nat_hosts=("relay2",)) as lab:
        relay = lab.hosts["relay2"]
        public, private = lab.ip("relay2"), lab.bind_ip("relay2")
        assert private.startswith("100.64.") and private != public
        addrs = relay.run("ip", "-4", "-o", "addr")
        assert private in addrs and public not in addrs
        server = subprocess.Popen(
            relay.command(sys.executable, "-c", _SERVER, private),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            # From the open office and from central: the public address leads to it and
            # the peer is seen as itself (DNAT only); the private one leads nowhere.
            for host, seen in (
                (lab.pc("open"), lab.lan("open").pc_ip),
                (lab.hosts["central"], lab.ip("central")),
            ):
                assert _reach(host, public, "tcp", 443) == "ok"
                assert json.loads(server.stdout.readline()) == [443, seen]
                assert _reach(host, public, "udp", 3478) == "ok"
                assert json.loads(server.stdout.readline()) == [3478, seen]
                assert _reach(host, private, "tcp", 443).startswith("fail")
        finally:
            server.kill()
            server.wait()
        # Its own traffic leaves with the public address (SNAT).
        central = subprocess.Popen(
            lab.hosts["central"].command(sys.executable, "-c", _SERVER, lab.ip("central")),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert central.stdout is not None and central.stdout.readline().strip() == "ready"
            assert _reach(relay, lab.ip("central"), "tcp", 8443) == "ok"
            assert json.loads(central.stdout.readline()) == [8443, public]
        finally:
            central.kill()
            central.wait()


def test_lab_postgres_serves_the_bridge_and_dies_with_its_starter() -> None:
    code = (
        "import asyncio, sys\n"
        "from diemcau.lab.netns import Host\n"
        "from diemcau.lab.postgres import LabPostgres\n"
        "host = Host.here('db')\n"
        "pg = LabPostgres(host, sys.argv[1])\n"
        "asyncio.run(pg.start())\n"
        "print(pg.proc.pid, pg.password, pg.folder, flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    with Lab(lans=()) as lab:
        relay = lab.hosts["relay1"]
        proc = subprocess.Popen(
            relay.command(sys.executable, "-c", code, lab.ip("relay1")),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            pid, password, folder = proc.stdout.readline().split()
            probe = (
                "import asyncio, asyncpg, sys\n"
                "async def main():\n"
                "    c = await asyncpg.connect(host=sys.argv[1], port=5432, user='diemcau',"
                " password=sys.argv[2], database='diemcau')\n"
                "    print(await c.fetchval('select current_user')); await c.close()\n"
                "asyncio.run(main())\n"
            )
            out = lab.hosts["central"].run(sys.executable, "-c", probe, lab.ip("relay1"), password)
            assert out.strip() == "diemcau"
        finally:
            proc.kill()
            proc.wait()
        deadline = time.monotonic() + 15
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{pid}")
        shutil.rmtree(folder, ignore_errors=True)
