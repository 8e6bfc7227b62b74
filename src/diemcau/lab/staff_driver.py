"""The chair at work during a fault: directives issued and the floor passed over HTTP.

`StaffDriver` logs in as the chair and, every few seconds, issues a directive to
the workload's sites and gives the floor to one of them. A directive is issued
with a client id, so one whose answer was lost (the server died mid-request) is
sent again until the server confirms it, and the confirmation is kept; a floor
grant is not retried (the chair would simply grant again). What was confirmed is
what the store must hold afterwards (`diemcau.lab.losses`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

__all__ = ["StaffDriver", "StaffLedger"]


@dataclass
class StaffLedger:
    """What the server confirmed to the chair."""

    directives: list[int] = field(default_factory=list)
    floor_grants: int = 0
    refused: dict[str, int] = field(default_factory=dict)


class StaffDriver:
    """The chair's actions against the control server(s) at `bases`, in the order to try.

    Args:
        bases: the servers' base URLs (one, or a standby pair).
        password: the chair account's password.
        meeting_id: the live meeting whose floor is passed.
        site_codes: the sites directives are addressed to and the floor is given to.
        every_s: seconds between two rounds (a directive and a floor grant).
    """

    def __init__(
        self,
        bases: Sequence[str],
        password: str,
        meeting_id: int,
        site_codes: Sequence[str],
        *,
        every_s: float = 2.0,
    ) -> None:
        self.bases = list(bases)
        self.password = password
        self.meeting_id = meeting_id
        self.site_codes = list(site_codes)
        self.every_s = every_s
        self.ledger = StaffLedger()
        self._token = ""
        self._turn = 0

    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, body: object
    ) -> httpx.Response | None:
        """One request to whichever server answers (logging in again if needed)."""
        for base in self.bases:
            try:
                if not self._token:
                    r = await client.post(
                        f"{base}/api/auth/login",
                        json={"username": "chair", "password": self.password},
                    )
                    if r.status_code != 200:
                        continue
                    self._token = str(r.json()["token"])
                headers = {"Authorization": f"Bearer {self._token}"}
                r = await client.request(method, f"{base}{path}", json=body, headers=headers)
            except httpx.TransportError:
                continue
            if r.status_code == 401:
                self._token = ""
                continue
            if r.status_code == 503:  # a standby, or the store out of reach: next one
                continue
            return r
        return None

    def _refused(self, what: str) -> None:
        self.ledger.refused[what] = self.ledger.refused.get(what, 0) + 1

    async def issue(self, client: httpx.AsyncClient, title: str, *, attempts: int = 60) -> None:
        """Issue one directive; retried with its client id until confirmed."""
        body = {
            "title": title,
            "body": "Báo cáo tình hình trước 17 giờ.",
            "target": {"sites": self.site_codes},
            "client_id": secrets.token_hex(8),
        }
        for _ in range(attempts):
            r = await self._call(client, "POST", "/api/command/directives", body)
            if r is not None and r.status_code in (200, 201):
                self.ledger.directives.append(int(r.json()["id"]))
                return
            if r is not None and r.status_code < 500:
                self._refused(f"directive:{r.status_code}")
                return
            await asyncio.sleep(0.5)
        self._refused("directive:unconfirmed")

    async def grant(self, client: httpx.AsyncClient) -> None:
        """Give the floor to the next site (once; a refusal is counted, not retried)."""
        code = self.site_codes[self._turn % len(self.site_codes)]
        self._turn += 1
        r = await self._call(
            client,
            "POST",
            f"/api/meetings/{self.meeting_id}/floor/grant",
            {"site_codes": [code]},
        )
        if r is not None and r.status_code == 200:
            self.ledger.floor_grants += 1
        else:
            self._refused(f"floor:{r.status_code if r is not None else 'unreachable'}")

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every `every_s` until `stop` is set (the round in hand is finished)."""
        async with httpx.AsyncClient(timeout=10) as client:
            number = 0
            while not stop.is_set():
                number += 1
                await self.issue(client, f"Chỉ đạo số {number}")
                await self.grant(client)
                try:
                    await asyncio.wait_for(stop.wait(), self.every_s)
                except TimeoutError:
                    pass
