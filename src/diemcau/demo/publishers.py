"""The demo's media publishers: a site's (or the chair's) bot kept publishing on its node.

A site's bot gets its grant as a site terminal does, over HTTP: log in with the join code
(POST /api/auth/site-login), then GET /api/site/media. It republishes when its peer
connection fails, e.g. because its relay died: the new grant names the relay the site
moved to. The chair's bot reads the grant the server side lends it (`diemcau.demo.chair`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from diemcau.media.grants import ChairGrant, SiteGrant
from diemcau.sim.janus_bots import JanusTarget, PublisherBot

__all__ = ["GrantFetch", "chair_grant_reader", "keep_publishing", "site_grant_fetcher"]

GrantFetch = Callable[[], Awaitable[SiteGrant | ChairGrant]]
RETRY_S = 2.0


def _log(msg: str) -> None:
    print(f"[media] {msg}", file=sys.stderr, flush=True)


def site_grant_fetcher(client: httpx.AsyncClient, join_code: str) -> GrantFetch:
    """Fetch a site's media grant through the API, as its terminal does."""

    async def fetch() -> SiteGrant:
        resp = await client.post("/api/auth/site-login", json={"join_code": join_code})
        resp.raise_for_status()
        token = resp.json()["token"]
        resp = await client.get("/api/site/media", headers={"Authorization": f"Bearer {token}"})
        resp.raise_for_status()
        grant: SiteGrant = resp.json()
        return grant

    return fetch


def chair_grant_reader(path: Path) -> GrantFetch:
    """Read the chair's grant from the file the server side keeps fresh."""

    async def fetch() -> ChairGrant:
        grant: ChairGrant = json.loads(path.read_text(encoding="utf-8"))
        return grant

    return fetch


async def keep_publishing(label: str, fetch: GrantFetch, stop: asyncio.Event) -> None:
    """Publish as ``label`` until ``stop``; republish when the PC fails or the node moves."""
    bot: PublisherBot | None = None
    while not stop.is_set():
        try:
            if bot is None or bot.pc.connectionState in ("failed", "closed"):
                if bot is not None:
                    await bot.stop()
                    bot = None
                grant = await fetch()
                target = JanusTarget.publish_of(grant)
                bot = PublisherBot(target, grant["publish"]["feed_id"], label)
                await bot.start()
                _log(f"{label} publishing on {grant.get('node', '')}")
        except Exception as exc:
            _log(f"{label}: {exc!r}; retrying")
            if bot is not None:
                await bot.stop()
                bot = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RETRY_S)
    if bot is not None:
        await bot.stop()
    _log(f"{label} left")
