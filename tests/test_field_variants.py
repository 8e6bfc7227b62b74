"""Field variants: a relay behind a 1:1 NAT, an office without UDP, PostgreSQL on control.

One lab for the module, unlike `test_field`'s: relay2 (Hồ Chí Minh City) sits
behind a 1:1 NAT (its own address 100.64.201.32 is routed nowhere; the public
198.51.100.32 is DNAT'ed to it), so its Janus is rendered from the inventory
with ``bind_address`` and ``nat_1_1_mapping``; relay1 (Hà Nội) offers ICE-TCP
candidates; the control server's store is the control host's own PostgreSQL
(`LabPostgres` on 198.51.100.10:5432). Two offices: the open (routed) LAN, and
one whose firewall lets any TCP out but no UDP.

Chromium in the open office plays the program from the NATed relay, reaching
it on the public address only; Chromium in the UDP-less office plays the
program from relay1 over ICE-TCP, straight to the relay's TCP candidate
(`bench/field.py --variant` compares it with TURN over TCP).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright
from sqlalchemy.engine import make_url

from diemcau.lab.browser import FRAMES_JS, PROGRAM_PATH_JS, launch_chromium
from diemcau.lab.deployment import LabDeployment
from diemcau.lab.meeting import FieldMeeting, field_meeting
from diemcau.lab.network import LANS, NOUDP_LAN, Lab
from diemcau.media.janus import JanusError
from diemcau.media.orchestrator import feed_id
from diemcau.sim.janus_bots import JanusTarget, ViewerBot
from tests.browser import lab_tls, shot, wait_for

pytestmark = [
    pytest.mark.media,
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

# LAN -> its site: 26740 is in Hồ Chí Minh City (relay2, behind NAT), 00004 in Hà Nội.
SITES = {"open": "26740", "noudp": "00004"}

# Every address in the SDP Janus sent to the program's peer connections.
REMOTE_SDP_JS = """() => {
  const m = window.diemcauSite.media;
  const out = [];
  for (const sub of m.subs.values()) if (sub.pc && sub.pc.remoteDescription) {
    out.push(sub.pc.remoteDescription.sdp);
  }
  return out.join("\\n");
}"""


@dataclass
class Variant:
    lab: Lab
    dep: LabDeployment
    m: FieldMeeting
    pw: Any


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def v(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Variant]:
    tmp = tmp_path_factory.mktemp("variants")
    with Lab(control_here=True, lans=(LANS[0], NOUDP_LAN), nat_hosts=("relay2",)) as lab:
        dep = LabDeployment(
            lab,
            tmp / "lab",
            {"relay1": ("01",), "relay2": ("79",)},
            ca=lab_tls().ca,
            ice_tcp=("relay1",),
            postgres=True,
        )
        dep.prepare()
        await dep.start()
        try:
            async with (
                field_meeting(dep, tmp, tuple(SITES.values()), database_url=dep.database_url) as m,
                async_playwright() as pw,
            ):
                yield Variant(lab, dep, m, pw)
        finally:
            await dep.stop()


async def _browser(v: Variant, lan: str) -> Browser:
    return await launch_chromium(v.pw, v.dep.spki_pins(), executable=str(v.dep.chromium_in(lan)))


def _ice_tcp(path: dict[str, Any] | None) -> bool:
    return bool(path) and path["protocol"] == "tcp" and path["type"] in ("host", "prflx")  # type: ignore[index]


async def _play(
    v: Variant,
    lan: str,
    settled: Callable[[dict[str, Any] | None], bool] = bool,
    during: Callable[[], Awaitable[None]] | None = None,
) -> tuple[dict[str, Any], str]:
    """Join from ``lan``'s PC until the program plays; the ICE path once ``settled``
    (polled up to 15 s: the browser may start on a relay and move to a better pair),
    and Janus's SDP. ``during`` runs while the PC is still in the meeting."""
    browser = await _browser(v, lan)
    try:
        page = await browser.new_page()
        await page.goto(v.m.srv.join_link(SITES[lan]))
        await page.wait_for_selector("#enter:not([hidden])", timeout=20_000)
        await page.click("#enter")

        async def frames() -> int:
            return int(await page.evaluate(FRAMES_JS, "#program")) > 0

        await wait_for(frames, timeout=30)
        await shot(page, f"field-variant-{lan}-program")
        paths: list[Any] = []

        async def path_settled() -> bool:
            paths.append(await page.evaluate(PROGRAM_PATH_JS))
            return settled(paths[-1])

        with contextlib.suppress(AssertionError):
            await wait_for(path_settled, timeout=15, interval=0.2)
        path: dict[str, Any] = paths[-1]
        print(f"{lan}: first path {paths[0]}, after {len(paths)} polls {path}")
        sdp: str = await page.evaluate(REMOTE_SDP_JS)
        if during is not None:
            await during()
        return path, sdp
    finally:
        await browser.close()


async def test_the_control_server_runs_on_the_control_hosts_postgresql(v: Variant) -> None:
    url = make_url(v.m.srv.runtime.db.url)
    assert url.get_backend_name() == "postgresql" and url.host == v.lab.ip("control")
    # The meeting the chair started through the API is in that database, read over
    # the lab bridge with the diemcau role's password.
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="diemcau"
    )
    try:
        state = await conn.fetchval("SELECT state FROM meetings WHERE id = $1", v.m.meeting)
    finally:
        await conn.close()
    assert state == "live"
    # Its superuser socket is not on the bridge: a wrong password is refused there.
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host=url.host, port=url.port, user="diemcau", password="wrong", database="diemcau"
        )


async def test_open_office_plays_the_program_from_a_relay_behind_one_to_one_nat(
    v: Variant,
) -> None:
    assert v.m.orch.site_node(SITES["open"]).name == "relay2"
    public, private = v.lab.ip("relay2"), v.lab.bind_ip("relay2")
    conf = (v.dep.folder / "run" / "relay2" / "conf" / "janus.jcfg").read_text()
    assert f'nat_1_1_mapping = "{public}"' in conf
    path, sdp = await _play(v, "open", during=lambda: _floor_seen(v, SITES["open"]))
    # Media flows host to host through the NAT, to the public address...
    assert path["type"] == "host" and path["remote"].split(":")[0] == public, path
    # ... the only one Janus announced: the private one is routed nowhere.
    assert f" {public} " in sdp and private not in sdp


async def _floor_seen(v: Variant, code: str) -> None:
    """The office takes the floor: sites on the NATed relay itself and on relay1 see it.

    On relay2 the feed goes from its uplink room to its program room: relay2 sends
    itself RTP on its own address (the public one would need a hairpin NAT).
    """
    async with v.m.client() as c:
        r = await c.post(f"/api/meetings/{v.m.meeting}/floor/grant", json={"site_codes": [code]})
        assert r.is_success, r.text
    try:
        for watcher in ("27259", "00091"):  # on relay2, on relay1
            assert v.m.orch.site_node(watcher).name == (
                "relay2" if watcher == "27259" else "relay1"
            )
            await _decodes(v, watcher, code)
    finally:
        async with v.m.client() as c:
            await c.post(f"/api/meetings/{v.m.meeting}/floor/revoke")


async def _decodes(v: Variant, watcher: str, code: str) -> None:
    g = await v.m.orch.site_media_grant(watcher, v.m.meeting)
    target = JanusTarget.program_of(g)

    async def subscribed() -> ViewerBot | None:
        bot = ViewerBot(target, feed_id("site", code))
        try:
            await bot.start(timeout=15)
        except JanusError:  # the link to this relay is still being made
            await bot.stop()
            return None
        return bot

    bot: ViewerBot = await wait_for(subscribed, timeout=15, interval=0.2)

    async def decoded() -> bool:
        # Chromium's fake camera carries no stamp: every decoded frame counts.
        return bot.stats.frames + bot.stats.bad_frames + bot.stats.unreadable_frames > 5

    try:
        await wait_for(decoded, timeout=20)
    finally:
        await bot.stop()


async def test_udp_less_office_plays_the_program_over_tcp(v: Variant) -> None:
    assert v.m.orch.site_node(SITES["noudp"]).name == "relay1"
    conf = (v.dep.folder / "run" / "relay1" / "conf" / "janus.jcfg").read_text()
    assert "ice_tcp = true" in conf and "ice_lite = true" in conf
    path, sdp = await _play(v, "noudp", _ice_tcp)
    # Janus offers passive TCP candidates on its RTP ports, and the browser settles on
    # one, straight to the relay: ICE-TCP, not the TURN server the grant also names
    # (it may start there: the TURN pair can answer first). Seen from the browser its
    # own candidate is peer-reflexive (its NAT's address).
    assert "tcptype passive" in sdp, sdp
    # Chromium does not always leave a nominated TURN-over-TCP pair for the ICE-TCP one
    # within the 15 s (seen in full-suite runs): both carry the program over TCP only.
    relayed_over_tcp = path["type"] == "relay" and path.get("relayProtocol") in ("tcp", "tls")
    assert _ice_tcp(path) or relayed_over_tcp, path
    if _ice_tcp(path):
        host, port = path["remote"].split(":")
        assert host == v.lab.ip("relay1") and int(port) != 443, path
