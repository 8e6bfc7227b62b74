"""The chair's feed in the demo: a bot holds it until a person opens the chair console.

The program's chair feed has one publisher id, so the demo's bot and a browser cannot
both hold it. The orchestrator lends the feed to the bot (`lend_chair_feed`); the bot
reads its grant from a file this module keeps fresh (room tokens live 10 minutes and
a republish needs a valid one). When a console asks for the chair's grant through the
API, the orchestrator ends the loan and calls back here, and the bot is told to leave
(docs/media.md, "API for the meetings layer").
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

from diemcau.demo.output import say
from diemcau.media.orchestrator import MediaOrchestrator
from diemcau.tasks import cancel_and_wait

__all__ = ["ChairStandIn"]

REFRESH_S = 120.0  # well inside the room tokens' 600 s


class ChairStandIn:
    """Supplies the demo's chair bot with a grant until a console claims the chair feed.

    Args:
        orch: the running media orchestrator.
        meeting_id: the live meeting whose program the bot publishes in.
        grant_file: where the bot reads its grant (JSON, replaced atomically).
        leave: tells the bot to leave (the demo signals its media child).
    """

    def __init__(
        self,
        orch: MediaOrchestrator,
        meeting_id: int,
        grant_file: Path,
        leave: Callable[[], None],
    ) -> None:
        self.orch = orch
        self.meeting_id = meeting_id
        self.grant_file = grant_file
        self._leave = leave
        self.holding = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Borrow the chair feed, write the bot's grant, keep it fresh."""
        self.holding = True
        self._write_grant()
        self._task = asyncio.create_task(self._refresh(), name="demo-chair-grant")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def _claimed(self) -> None:
        if not self.holding:
            return
        self.holding = False
        say("chair console opened: the chair bot hands the chair feed over")
        self._leave()

    def _write_grant(self) -> None:
        grant = self.orch.lend_chair_feed(self.meeting_id, self._claimed)
        tmp = self.grant_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(grant), encoding="utf-8")
        os.replace(tmp, self.grant_file)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            if not self.holding:
                return
            self._write_grant()
