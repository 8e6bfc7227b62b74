"""Which part each site of the demo plays: real media, left for a person, or simulated.

A dozen sites, spread over the relays, get real synthetic media; one invited site is
left unsimulated so the person running the demo can open its join link; every other
site runs on the control plane in the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Cast", "DemoSite", "cast_sites", "pick_media_sites"]


@dataclass(frozen=True)
class DemoSite:
    """A site of the demo with its join code (``code:secret``)."""

    site_id: int
    code: str
    name: str
    kind: str
    province: str
    join_code: str


@dataclass(frozen=True)
class Cast:
    """The sites by part: real media, the one left for a person, the simulated rest."""

    media: list[DemoSite]
    spare: DemoSite | None
    simulated: list[DemoSite]


def pick_media_sites(
    candidates: Sequence[DemoSite], assignment: Mapping[str, str], count: int
) -> list[DemoSite]:
    """Up to ``count`` sites spread round-robin over the relays they are planned on.

    One site per province first (so the program shows different places), then
    any; sites the plan did not place are skipped.
    """
    by_node: dict[str, list[DemoSite]] = {}
    seen: set[str] = set()
    for site in sorted(candidates, key=lambda s: (s.province, s.code)):
        node = assignment.get(site.code)
        if node is None or site.province in seen:
            continue
        seen.add(site.province)
        by_node.setdefault(node, []).append(site)
    queues = [by_node[n] for n in sorted(by_node)]
    picked: list[DemoSite] = []
    while len(picked) < count and any(queues):
        for q in queues:
            if q and len(picked) < count:
                picked.append(q.pop(0))
    return picked


def cast_sites(
    sites: Sequence[DemoSite],
    assignment: Mapping[str, str] | None,
    media_count: int,
    sim_limit: int = -1,
) -> Cast:
    """Give every site its part.

    Args:
        sites: every site with a credential, the chair's hall included.
        assignment: site code -> relay of the media plan, or None without media.
        media_count: how many sites get real media (`pick_media_sites`).
        sim_limit: at most this many simulated sites (-1: all).
    """
    candidates = [s for s in sites if s.kind != "chair"]
    media = pick_media_sites(candidates, assignment, media_count) if assignment else []
    chosen = {s.code for s in media}
    # A browser and a simulated session would take turns on the spare site.
    spare = next((s for s in candidates if s.code not in chosen), None)
    if spare is not None:
        chosen.add(spare.code)
    # Every other site, the chair's hall included (online, though not invited).
    simulated = [s for s in sites if s.code not in chosen]
    if sim_limit >= 0:
        simulated = simulated[:sim_limit]
    return Cast(media, spare, simulated)
