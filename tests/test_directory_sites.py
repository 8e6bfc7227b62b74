"""The site read model answers a miss by reloading once, only when the table moved."""

from __future__ import annotations

from diemcau.directory.sites import SiteDirectory
from diemcau.store import Database, Site
from tests.test_command_support import seed_country


async def _add_site(db: Database, code: str, unit_id: int, province_id: int) -> int:
    async with db.session() as s:
        site = Site(
            code=code,
            name=f"Điểm cầu {code}",
            search_key=code.lower(),
            unit_id=unit_id,
            province_id=province_id,
            kind="commune",
        )
        s.add(site)
        await s.flush()
        return site.id


async def test_a_site_added_after_the_load_is_found_on_a_reloading_miss(db: Database) -> None:
    country = await seed_country(db)
    sites = SiteDirectory(db)
    a = await sites.find("A")
    assert a is not None
    loaded = sites.generation
    # Unknown codes and ids: with nothing moved, a reloading miss costs no reload.
    assert await sites.find("nope", reload_missing=True) is None
    assert await sites.get(10**6, reload_missing=True) is None
    assert sites.generation == loaded

    new_id = await _add_site(db, "Z", a.unit_id, country.provinces["P1"])
    # Without the flag the answer comes from memory only.
    assert await sites.find("Z") is None
    assert await sites.by_ids([new_id]) == {}
    found = await sites.by_codes(["A", "Z"], reload_missing=True)
    assert list(found) == ["A", "Z"] and found["Z"].id == new_id
    assert sites.generation == loaded + 1
    assert (await sites.by_ids([new_id, a.id], reload_missing=True)).keys() == {new_id, a.id}
    got = await sites.get(new_id, reload_missing=True)
    assert got is not None and got.province_id == country.provinces["P1"]
    assert sites.generation == loaded + 1  # already reloaded: no second load

    other = await _add_site(db, "W", a.unit_id, country.provinces["P1"])
    zw = await sites.find("W", reload_missing=True)
    assert zw is not None and zw.id == other
