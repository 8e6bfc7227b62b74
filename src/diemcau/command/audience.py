"""Who a directive will reach, before it is issued: the compose form's live count.

The form names areas (the country, provinces, units), saved site groups and
explicit sites. `Audience` turns saved groups into explicit sites (a province
officer keeps only the members in its province: a group is a national list, an
officer directs its own communes) and counts the recipients per province with
the same resolution the issue uses (`targets.resolve_target`), so the preview
and the directive cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from diemcau.actors import Actor
from diemcau.command.ports import GroupSites
from diemcau.command.targets import Target, resolve_target
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Invalid
from diemcau.store import Database

__all__ = ["Audience", "AudiencePreview", "ProvinceCount"]

# Most sites one preview lists by name (the form shows a few, the count is exact).
SAMPLE = 20


@dataclass(frozen=True)
class ProvinceCount:
    province_id: int | None
    code: str
    name: str
    sites: int

    def public(self) -> dict[str, object]:
        return {
            "province_id": self.province_id,
            "code": self.code,
            "name": self.name,
            "sites": self.sites,
        }


@dataclass(frozen=True)
class AudiencePreview:
    total: int
    provinces: list[ProvinceCount]
    sample: list[dict[str, object]]

    def public(self) -> dict[str, object]:
        return {
            "total": self.total,
            "provinces": [p.public() for p in self.provinces],
            "sample": self.sample,
        }


class Audience:
    """Expands saved groups and counts a target's recipients.

    Args:
        db: the store (target resolution reads the unit tree).
        sites: the directory's read model of sites.
        group_sites: the members of a saved group (the meetings package owns groups).
    """

    def __init__(self, db: Database, sites: SiteDirectory, group_sites: GroupSites) -> None:
        self.db = db
        self.sites = sites
        self._group_sites = group_sites

    async def with_groups(self, actor: Actor, target: Target, groups: Iterable[int]) -> Target:
        """`target` with the members of `groups` added as explicit sites.

        A province officer keeps the members in its own province only; a group
        with none there is refused rather than silently reaching nobody.
        """
        wanted = sorted(set(groups))
        if not wanted:
            return target
        codes = set(target.sites)
        for group_id in wanted:
            members = await self.sites.by_ids(await self._group_sites(group_id))
            mine = [
                s
                for s in members.values()
                if s.kind != "chair"
                and not s.revoked
                and (actor.province_id is None or s.province_id == actor.province_id)
            ]
            if not mine:
                raise Invalid(
                    f"groups: group {group_id} has no site you may direct", code="empty_group"
                )
            codes.update(s.code for s in mine)
        return target.model_copy(update={"sites": sorted(codes)})

    async def preview(self, actor: Actor, target: Target) -> AudiencePreview:
        """The recipients `target` selects, counted per province (scope checked)."""
        async with self.db.session() as s:
            found = await resolve_target(s, self.sites, actor, target)
        infos = await self.sites.by_ids(sid for sid, _ in found)
        per: dict[int | None, ProvinceCount] = {}
        for sid, pid in found:
            info = infos.get(sid)
            prev = per.get(pid)
            per[pid] = ProvinceCount(
                pid,
                info.province_code if info else "",
                info.province_name if info else "",
                (prev.sites if prev else 0) + 1,
            )
        sample: list[dict[str, object]] = [
            {"code": i.code, "name": i.name, "province": i.province_name}
            for i in (infos[sid] for sid, _ in found[:SAMPLE] if sid in infos)
        ]
        provinces = sorted(per.values(), key=lambda p: (p.code == "", p.code))
        return AudiencePreview(len(found), provinces, sample)
