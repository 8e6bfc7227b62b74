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
from sqlalchemy.orm import aliased

from diemcau.store import Database
from diemcau.store.models import Site, Unit

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


async def site_geo(db: Database, *, province_scope: int | None = None) -> SiteGeo:
    """Read every site (or only one province's sites) with its unit's centroid.

    Args:
        db: the store.
        province_scope: a province unit id to restrict the result to (province
            officers see only their own province); None for the whole country.

    Returns:
        The sites as parallel arrays; one query for the sites, one for the provinces.
    """
    province_unit = aliased(Unit)
    query = (
        select(Site.id, Site.code, Site.name, Site.kind, Site.province_id, Unit.lat, Unit.lon)
        .join(Unit, Unit.id == Site.unit_id)
        .order_by(Site.id)
    )
    prov_query = select(province_unit.id, province_unit.code, province_unit.name).where(
        province_unit.level == "province"
    )
    if province_scope is not None:
        query = query.where(Site.province_id == province_scope)
        prov_query = prov_query.where(province_unit.id == province_scope)
    geo = SiteGeo()
    async with db.session() as session:
        rows = (await session.execute(query)).all()
        prov_rows = (await session.execute(prov_query.order_by(province_unit.code))).all()
    index = {int(pid): i for i, (pid, _c, _n) in enumerate(prov_rows)}
    geo.provinces = [(int(pid), str(code), str(name)) for pid, code, name in prov_rows]
    for sid, code, name, kind, province_id, lat, lon in rows:
        geo.ids.append(int(sid))
        geo.codes.append(str(code))
        geo.names.append(str(name))
        geo.kinds.append(str(kind))
        geo.province.append(index.get(province_id, -1) if province_id is not None else -1)
        geo.lat.append(None if lat is None else round(float(lat), 4))
        geo.lon.append(None if lon is None else round(float(lon), 4))
    return geo
