"""Every site's position for the dashboard map, as parallel arrays.

The map draws one point per site (3,355 for ``vn-2025``, 10,799 for ``vn-legacy``).
One JSON object per site would repeat every key thousands of times; parallel
arrays (``ids[i]``, ``codes[i]``, ``lat[i]`` ...) cost a third of the bytes and
let the browser fill typed arrays directly. Province names travel once, in their
own small table, and each site refers to its province by index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from diemcau.directory.sites import SiteDirectory
from diemcau.store.models import Unit

__all__ = ["SiteGeo", "site_geo"]


@dataclass
class SiteGeo:
    """Parallel arrays, one entry per site, ordered by site id.

    Attributes:
        ids: site ids (the presence hub and the staff stream speak in ids).
        codes: site codes.
        names: site names.
        kinds: "chair", "province", "district" or "commune".
        province: index into `provinces` (-1 for the chair site, which has none).
        lat: latitude in degrees (None when the unit has no coordinates).
        lon: longitude in degrees.
        provinces: ``[id, code, name]`` per province that holds at least one site.
    """

    ids: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    province: list[int] = field(default_factory=list)
    lat: list[float | None] = field(default_factory=list)
    lon: list[float | None] = field(default_factory=list)
    provinces: list[tuple[int, str, str]] = field(default_factory=list)


async def site_geo(sites: SiteDirectory, *, province_scope: int | None = None) -> SiteGeo:
    """Every site (or only one province's sites) with its unit's centroid.

    Args:
        sites: the directory's read model of sites (reloaded first if the table moved).
        province_scope: a province unit id to restrict the result to (province
            officers see only their own province); None for the whole country.

    Returns:
        The sites as parallel arrays, revoked ones included (they still stand on the
        map); one query for the provinces.
    """
    await sites.refresh_if_changed()
    prov_query = select(Unit.id, Unit.code, Unit.name).where(Unit.level == "province")
    if province_scope is not None:
        prov_query = prov_query.where(Unit.id == province_scope)
    async with sites.db.session() as session:
        prov_rows = (await session.execute(prov_query.order_by(Unit.code))).all()
    index = {int(pid): i for i, (pid, _c, _n) in enumerate(prov_rows)}
    geo = SiteGeo()
    geo.provinces = [(int(pid), str(code), str(name)) for pid, code, name in prov_rows]
    for site in await sites.all(include_revoked=True):
        if province_scope is not None and site.province_id != province_scope:
            continue
        geo.ids.append(site.id)
        geo.codes.append(site.code)
        geo.names.append(site.name)
        geo.kinds.append(site.kind)
        pid = site.province_id
        geo.province.append(index.get(pid, -1) if pid is not None else -1)
        geo.lat.append(None if site.lat is None else round(site.lat, 4))
        geo.lon.append(None if site.lon is None else round(site.lon, 4))
    return geo
