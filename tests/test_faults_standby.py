"""A standby control server takes over within 10 s, on the lab with PostgreSQL and Janus.

Two ``diemcau serve --lease`` processes share the control host's PostgreSQL: the
active on the control host, the standby on the standby host, both over TLS. Before
the fault the standby says so (health ``standby``; its API answers 503 ``standby``
naming the active server; its presence info lists both site sockets). 8 simulated
sites (trying the two addresses in order) file reports and acknowledge directives
while the chair issues directives and passes the floor; the active server is killed
(``kill -9``) after leaving orphans on the Janus nodes (a program room of no meeting,
a remote publisher nobody wants). Then:

- the standby serves and every site has a request confirmed within 10 s of the kill;
- nothing confirmed before or after is lost (a report filed before the kill is in the
  store, every message reaches every site, resumes included), attendance shows the gap;
- the media plane is re-declared: the live meeting's program rooms are on every node,
  the orphans are gone;
- the killed server, started again, comes up as the new standby.
"""

from __future__ import annotations

from pathlib import Path

from diemcau.lab.standby_faults import TAKEOVER_BOUND_S, standby_takeover


async def test_the_standby_takes_over_a_killed_active_server(tmp_path: Path) -> None:
    result = await standby_takeover(tmp_path, sites=8, media=True)
    explain = (
        f"failed={result.failed!r} lost={result.losses.lost} checked={result.losses.checked} "
        f"recovery={sorted(result.recovery_s)} details={result.losses.details} "
        f"notes={result.notes}"
    )
    assert not result.failed, explain
    assert result.losses.total == 0, explain
    for kind in ("reports", "acks", "directives", "messages", "attendance", "audit"):
        assert result.losses.checked.get(kind, 0) > 0, explain
    assert len(result.recovery_s) == 8, explain
    assert max(result.recovery_s) <= TAKEOVER_BOUND_S, explain
    assert "orphans gone" in result.notes and "back as standby" in result.notes, explain
