"""Which relay serves which site: a province-first, capacity-aware plan.

Every site goes to a healthy relay that serves its province (the least
loaded one when a big province has several), never beyond a relay's
capacity. When the province's relays are full or down, the site spills to
the relay with the most room left, and the plan says so. Assignments are
sticky: re-planning keeps a site where it is while its relay is healthy and
has room, so a relay failure moves only that relay's sites.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from diemcau.media.node import JanusNode

__all__ = ["Move", "Plan", "SiteRef", "plan_sites", "propose_relays", "reassign"]


@dataclass(frozen=True)
class SiteRef:
    """A site as the planner sees it: its code and its province's code.

    ``credential`` is the version of the site's credential (the directory's
    ``credential_version``), which its publish token carries, or None when it has
    no usable one (revoked): the media plane then grants it nothing (docs/media.md).
    The planner ignores it.
    """

    code: str
    province: str
    name: str = ""
    credential: int | None = 0


@dataclass(frozen=True)
class Move:
    """A site that must change relay (``new`` is None when no relay can take it)."""

    site: str
    old: str | None
    new: str | None


@dataclass
class Plan:
    """The result: site → relay, plus what could not be placed and why."""

    assignment: dict[str, str] = field(default_factory=dict)
    provinces: dict[str, str] = field(default_factory=dict)
    spilled: dict[str, str] = field(default_factory=dict)
    unassigned: list[str] = field(default_factory=list)
    nodes: dict[str, JanusNode] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {name: 0 for name in self.nodes}
        for node in self.assignment.values():
            out[node] = out.get(node, 0) + 1
        return out

    def sites_on(self, node: str) -> list[str]:
        return sorted(s for s, n in self.assignment.items() if n == node)

    def explain(self) -> str:
        """The plan as an indented tree: node → province → site count, then exceptions."""
        per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for site, node_name in self.assignment.items():
            per[node_name][self.provinces.get(site, "?")] += 1
        lines = [
            f"media plan: {len(self.assignment)} sites on {len(per)} relays"
            + (f", {len(self.unassigned)} unassigned" if self.unassigned else "")
        ]
        for name in sorted(self.nodes):
            node = self.nodes[name]
            if node.role != "relay":
                continue
            total = sum(per[name].values())
            serves = ",".join(node.provinces) or "-"
            lines.append(f"{name}  ({total}/{node.capacity} sites; serves {serves})")
            for prov in sorted(per[name]):
                mark = "" if prov in node.provinces else "  [spill]"
                lines.append(f"  province {prov}: {per[name][prov]}{mark}")
        if self.spilled:
            lines.append(f"{len(self.spilled)} sites outside their province's relays:")
            for site in sorted(self.spilled)[:20]:
                lines.append(f"  {site}: {self.spilled[site]}")
        if self.unassigned:
            lines.append("unassigned (no relay has room): " + ", ".join(self.unassigned[:20]))
        return "\n".join(lines)


def plan_sites(
    sites: Iterable[SiteRef],
    relays: Sequence[JanusNode],
    previous: Plan | None = None,
) -> Plan:
    """Assign every site to a relay; ``relays`` must be the healthy ones."""
    relays = [r for r in relays if r.role == "relay"]
    plan = Plan(nodes={r.name: r for r in relays})
    load: dict[str, int] = {r.name: 0 for r in relays}
    by_province: dict[str, list[JanusNode]] = defaultdict(list)
    for r in relays:
        for p in r.provinces:
            by_province[p].append(r)
    ordered = sorted(sites, key=lambda s: s.code)
    pending: list[SiteRef] = []
    # Keep sites where they are when that relay is still here and has room.
    for site in ordered:
        plan.provinces[site.code] = site.province
        old = previous.assignment.get(site.code) if previous else None
        if old in load and load[old] < plan.nodes[old].capacity:
            plan.assignment[site.code] = old
            load[old] += 1
            if site.province not in plan.nodes[old].provinces:
                plan.spilled[site.code] = f"kept on {old}"
        else:
            pending.append(site)
    # Home provinces first, so spilled sites never take a home site's place.
    spill: list[SiteRef] = []
    for site in pending:
        home = [r for r in by_province.get(site.province, []) if load[r.name] < r.capacity]
        if not home:
            spill.append(site)
            continue
        best = min(home, key=lambda r: (load[r.name] / max(r.capacity, 1), r.name))
        plan.assignment[site.code] = best.name
        load[best.name] += 1
    for site in spill:
        spare = [r for r in relays if load[r.name] < r.capacity]
        if not spare:
            plan.unassigned.append(site.code)
            continue
        best = max(spare, key=lambda r: (r.capacity - load[r.name], r.name))
        if site.province in by_province:
            why = "its province's relays are full or down"
        else:
            why = "no relay serves its province"
        plan.spilled[site.code] = f"on {best.name}: {why}"
        plan.assignment[site.code] = best.name
        load[best.name] += 1
    return plan


def reassign(
    plan: Plan, sites: Iterable[SiteRef], healthy_relays: Sequence[JanusNode]
) -> tuple[Plan, list[Move]]:
    """Re-plan after a relay went down (or came back); returns the new plan and moves."""
    new = plan_sites(sites, healthy_relays, previous=plan)
    moves = [
        Move(site, plan.assignment.get(site), new.assignment.get(site))
        for site in sorted(set(plan.assignment) | set(new.assignment))
        if plan.assignment.get(site) != new.assignment.get(site)
    ]
    return new, moves


def propose_relays(
    sites: Iterable[SiteRef], capacity: int = 500, *, template: JanusNode | None = None
) -> list[JanusNode]:
    """One relay per province, more for a province with more sites than ``capacity``.

    Used by ``diemcau media plan`` when no nodes are declared: the addresses are
    placeholders (``template`` supplies secrets and URLs when given).
    """
    per: dict[str, int] = defaultdict(int)
    for s in sites:
        per[s.province] += 1
    out: list[JanusNode] = []
    for prov in sorted(per):
        n = max(1, -(-per[prov] // capacity))
        for i in range(n):
            name = f"relay-{prov}" + (f"-{i + 1}" if n > 1 else "")
            out.append(
                JanusNode(
                    name=name,
                    role="relay",
                    provinces=(prov,),
                    capacity=capacity,
                    ws_url=template.ws_url if template else f"ws://{name}.invalid:8188",
                    admin_ws_url=template.admin_ws_url if template else f"ws://{name}.invalid:7188",
                    admin_secret=template.admin_secret if template else "",
                    admin_key=template.admin_key if template else "",
                    token_secret=template.token_secret if template else "",
                )
            )
    return out
