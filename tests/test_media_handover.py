"""The chair feed lent to a stand-in (the demo's bot) until a person's console claims it.

The orchestrator runs over nodes that are never reached: lending, claiming and the
program's start and stop only change what the orchestrator hands out.
"""

from __future__ import annotations

import pytest

from diemcau.media.node import JanusNode, NodeRegistry
from diemcau.media.orchestrator import MediaError, MediaOrchestrator, feed_id
from diemcau.media.topology import SiteRef


def _node(name: str, role: str) -> JanusNode:
    return JanusNode(
        name=name,
        role="central" if role == "central" else "relay",
        provinces=() if role == "central" else ("01",),
        ws_url=f"ws://{name}.invalid",
        admin_ws_url=f"ws://{name}.invalid",
        admin_secret="a",
        admin_key="k",
        token_secret="t",
    )


def _orchestrator() -> MediaOrchestrator:
    return MediaOrchestrator(
        [_node("central", "central"), _node("r1", "relay")],
        [SiteRef("A", "01")],
        registry=NodeRegistry(),
    )


async def test_console_claims_the_chair_feed_from_the_stand_in_once() -> None:
    orch = _orchestrator()
    claims: list[str] = []
    # Bad input: no program runs for the meeting: nothing to lend, nothing recorded.
    with pytest.raises(MediaError):
        orch.lend_chair_feed(5, lambda: claims.append("early"))
    started = await orch.start_program(5)
    # Starting the program hands out the chair's grant without ending any loan.
    lent = orch.lend_chair_feed(5, lambda: claims.append("first"))
    assert lent["publish"] == started["publish"]
    assert lent["publish"]["feed_id"] == feed_id("chair", "5")
    assert (await orch.start_program(5))["publish"] == lent["publish"] and claims == []
    # Lending again during the loan renews the grant; the newer callback counts.
    orch.lend_chair_feed(5, lambda: claims.append("second"))
    assert claims == []
    console = orch.chair_media_grant(5)
    assert console["publish"] == lent["publish"]
    assert claims == ["second"]
    orch.chair_media_grant(5)  # token renewals of the console claim nothing more
    assert claims == ["second"]


async def test_a_failing_stand_in_does_not_refuse_the_console() -> None:
    orch = _orchestrator()
    await orch.start_program(6)

    def broken() -> None:
        raise RuntimeError("the bot's process is gone")

    orch.lend_chair_feed(6, broken)
    assert orch.chair_media_grant(6)["publish"]["feed_id"] == feed_id("chair", "6")


async def test_stopping_the_program_ends_the_loan_silently() -> None:
    orch = _orchestrator()
    claims: list[int] = []
    await orch.start_program(7)
    orch.lend_chair_feed(7, lambda: claims.append(7))
    await orch.stop_program(7)
    await orch.start_program(7)
    orch.chair_media_grant(7)
    assert claims == []
