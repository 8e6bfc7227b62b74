"""A local media cluster: one central and N relay Janus processes on this host.

Used by the embedded demo, the tests and the benchmark. In isolated mode
(inside the private namespace of `diemcau.media.isolation`) ICE is pinned to
the media interface; otherwise Janus gathers the host's interfaces.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from diemcau.media.isolation import MEDIA_IFACE, in_isolated_netns
from diemcau.media.node import JanusNode, LocalJanusProcess
from diemcau.media.supervise import JanusSupervisor
from diemcau.tls.certs import ServerFiles

__all__ = ["LocalCluster"]


@dataclass
class LocalCluster:
    """Central + relays started side by side with distinct ports and RTP ranges.

    Args:
        relays: ``(name, provinces, capacity)`` for each relay.
        base_dir: where configs and logs go (a temporary folder by default).
        isolated: pin ICE to the namespace's media interface (default: when present).
        ice_enforce_list: outside isolated mode, the only interfaces Janus may
            gather on (e.g. ``"eth0"``); unset lets Janus use every interface.
        nat_1_1: a public address Janus puts in its host candidates.
        tls: certificate and key (naming 127.0.0.1) for the browsers' ``wss://``.
        supervise: restart a node that dies, about a second later, as the field's
            systemd units do (`JanusSupervisor`); off, a killed node stays down.
    """

    relays: Sequence[tuple[str, tuple[str, ...], int]] = ()
    base_dir: Path | None = None
    isolated: bool | None = None
    ice_enforce_list: str | None = None
    nat_1_1: str | None = None
    tls: ServerFiles | None = None
    supervise: bool = False
    processes: dict[str, LocalJanusProcess] = field(default_factory=dict, init=False)
    supervisor: JanusSupervisor | None = field(default=None, init=False)
    _own_dir: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="diemcau-janus-"))
            self._own_dir = True
        iso = in_isolated_netns() if self.isolated is None else self.isolated
        enforce = MEDIA_IFACE if iso else self.ice_enforce_list
        self.processes["central"] = LocalJanusProcess.create(
            "central", "central", self.base_dir, index=0, ice_enforce_list=enforce, tls=self.tls
        )
        for i, (name, provinces, capacity) in enumerate(self.relays, start=1):
            self.processes[name] = LocalJanusProcess.create(
                name,
                "relay",
                self.base_dir,
                index=i,
                provinces=provinces,
                capacity=capacity,
                ice_enforce_list=enforce,
                tls=self.tls,
            )

        for p in self.processes.values():
            p.nat_1_1 = None if iso else self.nat_1_1

    @property
    def central(self) -> LocalJanusProcess:
        return self.processes["central"]

    def nodes(self) -> list[JanusNode]:
        return [p.node for p in self.processes.values()]

    async def start(self) -> None:
        try:
            for p in self.processes.values():
                await p.start()
        except BaseException:
            await self.stop()
            raise
        if self.supervise:
            self.supervisor = JanusSupervisor(self.processes.values)
            self.supervisor.start()

    async def stop(self) -> None:
        """Stop every process (by PID) and remove generated files."""
        if self.supervisor is not None:
            await self.supervisor.stop()
            self.supervisor = None
        for p in self.processes.values():
            await p.stop()
        if self._own_dir and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
