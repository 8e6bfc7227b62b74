"""The lab's network: backbone hosts, a bridge, three commune LANs behind routers.

Addresses come only from documentation ranges and the shared address space,
and exist only inside namespaces the lab creates::

    backbone 198.51.100.0/24 (bridge lab0 in the "switch" namespace)
      control  .10 (HTTPS app) .11 (site sessions)     central .20
      standby  .12 (HTTPS app) .13 (site sessions)
      relay1   .31   relay2 .32   turn .40
      open-gw  .50 -> open LAN  203.0.113.0/26   (routed, no NAT)
      nat-gw   .51 -> nat LAN   100.64.1.0/24    (masquerade)
      tcp-gw   .52 -> tcp LAN   100.64.2.0/24    (masquerade; drops all UDP and
                                                  every TCP port but 443)
      noudp-gw .53 -> noudp LAN 100.64.3.0/24    (masquerade; drops all UDP; not
                                                  built unless asked, `NOUDP_LAN`)

A backbone host may sit behind a 1:1 NAT instead (``Lab(nat_hosts=...)``), as
a relay in a data centre whose public address is mapped to a private one: its
router ``<host>-gw`` holds the public address on the bridge and DNATs it to
the host's private address in 100.64.200+i.0/24 (SNAT on the way out). That
private address is routed nowhere else, so only the public one is reachable.

Each commune LAN has one PC (``<lan>-pc`` at .10 of its subnet) whose default
route is its router. A LAN built ``emulated`` joins router and PC through a
link emulator instead of a veth (`diemcau.lab.linkemu`), so `Lab.shape` can give
it a commune's weak link: loss, delay and jitter, and a bandwidth cap (``tbf``).
Backbone hosts route 203.0.113.0/26 to the open router and have no route to
the NATed LANs (as on the Internet). No namespace has a default route off the
lab.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field

from diemcau.lab.linkemu import Impairment, LinkEmulator
from diemcau.lab.netns import Host, LabError

__all__ = ["BACKBONE", "LANS", "NOUDP_LAN", "Lab", "LanPlan"]

BACKBONE = "198.51.100"
BACKBONE_HOSTS: dict[str, list[str]] = {
    "control": [f"{BACKBONE}.10", f"{BACKBONE}.11"],
    # The standby control server of a pair (HTTPS app, site sessions).
    "standby": [f"{BACKBONE}.12", f"{BACKBONE}.13"],
    "central": [f"{BACKBONE}.20"],
    "relay1": [f"{BACKBONE}.31"],
    "relay2": [f"{BACKBONE}.32"],
    "turn": [f"{BACKBONE}.40"],
}
OPEN_NET = "203.0.113.0/26"


@dataclass(frozen=True)
class LanPlan:
    """One commune LAN: its router's backbone address and the LAN subnet."""

    name: str
    wan_ip: str
    prefix: str  # e.g. "100.64.1" (a /24) or "203.0.113" (a /26)
    plen: int
    nat: bool
    tcp443_only: bool
    no_udp: bool = False

    @property
    def gw_ip(self) -> str:
        return f"{self.prefix}.1"

    @property
    def pc_ip(self) -> str:
        return f"{self.prefix}.10"


LANS: tuple[LanPlan, ...] = (
    LanPlan("open", f"{BACKBONE}.50", "203.0.113", 26, nat=False, tcp443_only=False),
    LanPlan("nat", f"{BACKBONE}.51", "100.64.1", 24, nat=True, tcp443_only=False),
    LanPlan("tcp", f"{BACKBONE}.52", "100.64.2", 24, nat=True, tcp443_only=True),
)
# An office whose firewall lets any TCP out but no UDP (ICE-TCP or TURN over TCP).
NOUDP_LAN = LanPlan(
    "noudp", f"{BACKBONE}.53", "100.64.3", 24, nat=True, tcp443_only=False, no_udp=True
)


def _router_rules(lan: LanPlan) -> str:
    rules = ""
    if lan.nat:
        rules += (
            "table ip labnat {\n"
            " chain post { type nat hook postrouting priority srcnat; "
            'oifname "wan" masquerade; }\n}\n'
        )
    if lan.tcp443_only or lan.no_udp:
        tcp = '  iifname "lan" meta l4proto tcp tcp dport != 443 drop;\n' if lan.tcp443_only else ""
        rules += (
            "table inet labfw {\n"
            " chain lanout { type filter hook forward priority filter; policy accept;\n"
            f'  iifname "lan" meta l4proto udp drop;\n{tcp}'
            "  }\n}\n"
        )
    return rules


def _one_to_one_rules(public: str, private: str) -> str:
    """A 1:1 NAT: the public address is the private host's, both ways."""
    return (
        "table ip lab11 {\n"
        " chain pre { type nat hook prerouting priority dstnat; "
        f'iifname "wan" ip daddr {public} dnat to {private}; }}\n'
        " chain post { type nat hook postrouting priority srcnat; "
        f'oifname "wan" ip saddr {private} snat to {public}; }}\n}}\n'
    )


@dataclass
class Lab:
    """Build and tear down the lab; hosts by name after `build`.

    Args:
        control_here: use this process's own (private) namespace as the control
            host, so an in-process server is reachable at 198.51.100.10/.11.
            Refused unless the process is already in a private namespace.
        lans: which commune LANs to build.
        nat_hosts: backbone hosts to put behind a 1:1 NAT (``relay2``...).
        emulated: LANs whose router-PC link is a link emulator (`shape`).
    """

    control_here: bool = False
    lans: tuple[LanPlan, ...] = LANS
    nat_hosts: tuple[str, ...] = ()
    emulated: tuple[str, ...] = ()
    hosts: dict[str, Host] = field(default_factory=dict)
    links: dict[str, LinkEmulator] = field(default_factory=dict)

    def ip(self, host: str) -> str:
        """The (first) backbone address of a backbone host (its public one)."""
        return BACKBONE_HOSTS[host][0]

    def bind_ip(self, host: str) -> str:
        """The address the host's own interface carries (private behind a 1:1 NAT)."""
        if host in self.nat_hosts:
            index = self.nat_hosts.index(host)
            return f"100.64.{200 + index}.{self.ip(host).rsplit('.', 1)[1]}"
        return self.ip(host)

    def lan(self, name: str) -> LanPlan:
        return next(lan for lan in self.lans if lan.name == name)

    def pc(self, lan: str) -> Host:
        """The commune PC of a LAN."""
        return self.hosts[f"{lan}-pc"]

    def build(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _open_route(self) -> list[str]:
        """The backbone's route to the routed office (none when the lab has no open LAN)."""
        lan = next((lan for lan in self.lans if lan.name == "open"), None)
        return [f"route add {OPEN_NET} via {lan.wan_ip}"] if lan else []

    def _link(self, switch: Host, host: Host, port: str) -> None:
        """A veth from ``host`` (``eth0``) to the bridge (``port``)."""
        switch.batch(
            [
                f"link add {port} type veth peer name eth0-{host.name[:8]} netns {host.pid}",
                f"link set {port} master lab0",
                f"link set {port} up",
            ]
        )
        host.run("ip", "link", "set", f"eth0-{host.name[:8]}", "name", "eth0")

    def _build(self) -> None:
        for name in self.nat_hosts:
            if len(BACKBONE_HOSTS.get(name, ())) != 1:
                raise LabError(f"{name}: only a backbone host with one address can sit behind NAT")
        switch = self.hosts["switch"] = Host.new("switch")
        switch.batch(["link add lab0 type bridge", "link set lab0 up"])
        for name, ips in BACKBONE_HOSTS.items():
            if name in self.nat_hosts:
                self._build_behind_nat(switch, name)
                continue
            if name == "control" and self.control_here:
                # Only a namespace holding nothing but loopback devices may join the lab:
                # a real interface here would route the lab to the outside world.
                present = {n for _, n in socket.if_nameindex()}
                if not present <= {"lo", "jlo0"}:
                    raise LabError(
                        "control_here needs a private namespace with loopback devices only"
                        f" (found {', '.join(sorted(present))}); enter one first"
                    )
                host = Host.here(name)
            else:
                host = Host.new(name)
            self.hosts[name] = host
            self._link(switch, host, f"p-{name}")
            host.batch([f"addr add {ip}/24 dev eth0" for ip in ips] + ["link set eth0 up"])
            host.batch(self._open_route())
        for lan in self.lans:
            self._build_lan(switch, lan)

    def _build_behind_nat(self, switch: Host, name: str) -> None:
        """``name`` on a private link behind ``<name>-gw``, which holds its public address."""
        public, private = self.ip(name), self.bind_ip(name)
        gw_ip = private.rsplit(".", 1)[0] + ".1"
        gw = self.hosts[f"{name}-gw"] = Host.new(f"{name}-gw")
        host = self.hosts[name] = Host.new(name)
        self._link(switch, gw, f"p-{name}")
        gw.run("ip", "link", "set", "eth0", "name", "wan")
        gw.batch(
            [
                f"addr add {public}/24 dev wan",
                "link set wan up",
                f"link add lan type veth peer name eth0 netns {host.pid}",
                f"addr add {gw_ip}/24 dev lan",
                "link set lan up",
                *self._open_route(),
            ]
        )
        gw.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        gw.nft(_one_to_one_rules(public, private))
        routes = [f"route add {BACKBONE}.0/24 via {gw_ip}"]
        if any(lan.name == "open" for lan in self.lans):
            routes.append(f"route add {OPEN_NET} via {gw_ip}")
        host.batch([f"addr add {private}/24 dev eth0", "link set eth0 up", *routes])

    def _build_lan(self, switch: Host, lan: LanPlan) -> None:
        gw = self.hosts[f"{lan.name}-gw"] = Host.new(f"{lan.name}-gw")
        pc = self.hosts[f"{lan.name}-pc"] = Host.new(f"{lan.name}-pc")
        self._link(switch, gw, f"p-{lan.name}")
        gw.run("ip", "link", "set", "eth0", "name", "wan")
        if lan.name in self.emulated:
            link = self.links[lan.name] = LinkEmulator(gw.netns, pc.netns)
            link.start()  # creates "lan" in the router and "eth0" in the PC
        else:
            gw.batch([f"link add lan type veth peer name eth0 netns {pc.pid}"])
        gw.batch(
            [
                f"addr add {lan.wan_ip}/24 dev wan",
                "link set wan up",
                f"addr add {lan.gw_ip}/{lan.plen} dev lan",
                "link set lan up",
            ]
        )
        gw.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        rules = _router_rules(lan)
        if rules:
            gw.nft(rules)
        pc.batch(
            [
                f"addr add {lan.pc_ip}/{lan.plen} dev eth0",
                "link set eth0 up",
                f"route add default via {lan.gw_ip}",
            ]
        )

    def shape(
        self,
        lan: str,
        *,
        loss_pct: float = 0.0,
        delay_ms: float = 0.0,
        jitter_ms: float = 0.0,
        rate_kbps: int | None = None,
    ) -> dict[str, dict[str, int]]:
        """Give an emulated LAN's link these impairments, both ways (none: a clean link).

        Loss, delay and jitter apply to each direction (so the round trip gains twice
        the delay); ``rate_kbps`` caps each direction with ``tbf`` (a 400 ms queue,
        then drops, as a congested DSL line). Returns the emulator's counters so far.
        Raises `LabError` for a LAN built without an emulator, `ValueError` for
        impossible figures (nothing changes then).
        """
        link = self.links.get(lan)
        if link is None:
            raise LabError(f"{lan}: not an emulated LAN (Lab(emulated=...))")
        if rate_kbps is not None and not 8 <= rate_kbps <= 10_000_000:
            raise ValueError(f"rate_kbps must be within 8-10000000, not {rate_kbps}")
        imp = Impairment(loss_pct, delay_ms, jitter_ms)
        # The tbf is changed in place, never removed: removing a qdisc drops what it
        # holds, a burst of loss the link itself would not cause. "No cap" is 10 Gbit/s.
        rate = rate_kbps if rate_kbps is not None else 10_000_000
        burst = max(2000, rate * 1000 // 8 // 50)  # 20 ms of traffic
        for host, dev in ((self.hosts[f"{lan}-gw"], "lan"), (self.pc(lan), "eth0")):
            host.run(
                "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
                "rate", f"{rate}kbit", "burst", str(burst), "latency", "400ms",
            )  # fmt: skip
        return link.set(imp, imp)

    def close(self) -> None:
        """Kill every holder (by PID); the kernel removes namespaces, veths and routes."""
        control = self.hosts.get("control")
        if control is not None and control.holder is None:
            # Our own namespace stays: remove the one interface the lab added to it.
            with contextlib.suppress(LabError):
                control.run("ip", "link", "del", "eth0", check=False)
        for link in self.links.values():
            link.stop()
        self.links.clear()
        for host in reversed(list(self.hosts.values())):
            host.close()
        self.hosts.clear()

    def __enter__(self) -> Lab:
        return self.build()

    def __exit__(self, *exc: object) -> None:
        self.close()
