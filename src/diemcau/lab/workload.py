"""Simulated sites at work during a fault, and what each was told.

`SiteWorkload` runs a `Swarm` (the real protocol, resumes, several server URLs)
whose sites do what a commune does in a meeting: join the live meeting on every
(re)connection, file a situation report every few seconds and acknowledge every
directive they receive. A request whose reply never came (the connection died)
or that was answered "try again" (``unavailable``, ``busy``, ``internal``) is sent
again, with the same content, once the site is back.

The `Ledger` keeps what the sites were told: which filings and acknowledgements
the server confirmed, every message received per stream, and when each site first
had a request confirmed after a given moment (its recovery from a fault). The loss
count (`diemcau.lab.losses`) compares it with the store.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from diemcau.records import JsonObject
from diemcau.sim.sites import SimOptions, SimSite, Swarm

__all__ = ["Ledger", "SiteWorkload", "report_values"]

# Replies that mean "not done, send it again later".
RETRIABLE = frozenset({"unavailable", "busy", "internal"})


def report_values(number: int) -> JsonObject:
    """A valid COVID-19 situation report whose ``vaccine_doses`` carries `number`."""
    return {
        "new_cases": 3,
        "under_treatment": 10,
        "recovered": 1,
        "deaths": 0,
        "vaccine_doses": number,
        "zone_level": "yellow",
        "distancing_order": False,
    }


@dataclass
class _Pending:
    kind: str
    body: JsonObject
    # The report's number (``report.submit``) or the directive's id (``directive.ack``).
    subject: int = 0
    retry: bool = False  # answered "try again": send it again at the next round


@dataclass
class Ledger:
    """What the simulated sites were told (by site id)."""

    reports: dict[int, set[int]] = field(default_factory=dict)
    acks: set[tuple[int, int]] = field(default_factory=set)
    joined: set[int] = field(default_factory=set)
    seen: dict[int, dict[str, set[int]]] = field(default_factory=dict)
    directives_seen: dict[int, set[int]] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    confirmed_at: dict[int, list[float]] = field(default_factory=dict)
    # Per site, each stream's position at its first welcome: a fresh terminal is not
    # sent what came before (docs/protocol.md), so that is not lost.
    baseline: dict[int, dict[str, int]] = field(default_factory=dict)
    welcomed_at: dict[int, list[float]] = field(default_factory=dict)

    def recovered_after(self, moment: float, site_ids: Sequence[int]) -> list[float]:
        """Per site that recovered: seconds from `moment` to its first confirmed request."""
        out = []
        for sid in site_ids:
            later = [t for t in self.confirmed_at.get(sid, ()) if t > moment]
            if later:
                out.append(min(later) - moment)
        return out


class SiteWorkload:
    """Sites in a live meeting that file reports and acknowledge directives.

    Args:
        urls: the site-socket URLs of the control server(s), in the order to try them.
        join_codes: one per site.
        report_every_s: seconds between two filings of one site.
        seed: random seed (reconnect jitter, who files when).
    """

    def __init__(
        self,
        urls: Sequence[str],
        join_codes: Sequence[str],
        *,
        report_every_s: float = 2.0,
        seed: int = 7,
    ) -> None:
        self.ledger = Ledger()
        self.report_every_s = report_every_s
        self.swarm = Swarm(
            urls,
            join_codes,
            SimOptions(summary_s=0, reconnect_s=(0.3, 1.0), join_rate=200.0, seed=seed),
            out=None,
            on_message=self._on_message,
            on_online=self._on_online,
            on_reply=self._on_reply,
        )
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self._pending: dict[int, dict[str, _Pending]] = {}
        self._next_id = 0
        self._numbers: dict[int, int] = {}
        self.filing = asyncio.Event()  # set: sites file reports; clear: they pause

    @property
    def sites(self) -> list[SimSite]:
        return self.swarm.sites

    def online(self) -> int:
        return sum(1 for s in self.sites if s.state == "online")

    # --- requests ------------------------------------------------------------------------

    def _request(self, site: SimSite, kind: str, body: JsonObject, subject: int = 0) -> None:
        self._next_id += 1
        req_id = f"w{self._next_id}"
        self._pending.setdefault(site.index, {})[req_id] = _Pending(kind, body, subject)
        self.swarm.send(site, {"type": "req", "id": req_id, "kind": kind, "body": body})

    def _resend(self, site: SimSite, *, only_retry: bool) -> None:
        """Send again, under new ids, what the site was never told was done."""
        mine = self._pending.get(site.index, {})
        again = [p for p in mine.values() if p.retry or not only_retry]
        if not only_retry:
            mine.clear()
        else:
            for key in [k for k, p in mine.items() if p.retry]:
                del mine[key]
        for p in again:
            self._request(site, p.kind, p.body, p.subject)

    def _on_online(self, site: SimSite) -> None:
        self.ledger.baseline.setdefault(site.site_id, dict(site.seqs))
        self.ledger.welcomed_at.setdefault(site.site_id, []).append(time.monotonic())
        self._resend(site, only_retry=False)
        if not any(p.kind == "meeting.join" for p in self._pending.get(site.index, {}).values()):
            self._request(site, "meeting.join", {})

    def _on_reply(self, site: SimSite, reply: JsonObject) -> None:
        pending = self._pending.get(site.index, {}).get(str(reply.get("id")))
        if pending is None:
            return
        ledger = self.ledger
        if reply.get("ok"):
            del self._pending[site.index][str(reply["id"])]
            ledger.confirmed_at.setdefault(site.site_id, []).append(time.monotonic())
            if pending.kind == "report.submit":
                ledger.reports.setdefault(site.site_id, set()).add(pending.subject)
            elif pending.kind == "directive.ack":
                ledger.acks.add((site.site_id, pending.subject))
            elif pending.kind == "meeting.join":
                ledger.joined.add(site.site_id)
            return
        error = reply.get("error")
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        if code in RETRIABLE:
            pending.retry = True
            return
        del self._pending[site.index][str(reply["id"])]
        what = f"{pending.kind}:{code}"
        ledger.refused[what] = ledger.refused.get(what, 0) + 1

    def _on_message(self, site: SimSite, msg: JsonObject) -> None:
        seq = msg.get("seq")
        if not isinstance(seq, int):
            return
        stream = str(msg["stream"])
        self.ledger.seen.setdefault(site.site_id, {}).setdefault(stream, set()).add(seq)
        body = msg.get("body")
        if msg.get("kind") == "directive.issued" and isinstance(body, dict):
            directive = int(body["id"])
            self.ledger.directives_seen.setdefault(site.site_id, set()).add(directive)
            self._request(site, "directive.ack", {"id": directive}, directive)

    # --- running -------------------------------------------------------------------------

    def unanswered(self) -> int:
        """Requests not yet confirmed (sent, or waiting to be sent again)."""
        return sum(len(p) for p in self._pending.values())

    async def _file_reports(self) -> None:
        """Each online site files a report about every `report_every_s`, spread out."""
        tick = 0.1
        while True:
            await asyncio.sleep(tick)
            if not self.filing.is_set():
                continue
            share = tick / self.report_every_s
            for site in self.sites:
                if site.state != "online" or self.rng.random() >= share:
                    continue
                number = self._numbers.get(site.index, 0) + 1
                self._numbers[site.index] = number
                body: JsonObject = {"schema": "covid19", "values": report_values(number)}
                self._request(site, "report.submit", body, number)

    async def _retries(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for site in self.sites:
                if site.state == "online":
                    self._resend(site, only_retry=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; the sites then leave (``bye``)."""
        loops = [asyncio.create_task(self._file_reports()), asyncio.create_task(self._retries())]
        try:
            await self.swarm.run(stop=stop)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def settle(self, timeout: float) -> bool:
        """Stop filing, then wait until every request is confirmed (False: timed out)."""
        self.filing.clear()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.unanswered() == 0 and self.online() == len(self.sites):
                return True
            await asyncio.sleep(0.1)
        return False
