"""The shared actor type and the directory's read model of sites."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from diemcau.actors import Actor
from diemcau.directory import load_builtin
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Forbidden
from diemcau.store import Database, Site


def test_staff_scope_and_site_limits() -> None:
    officer = Actor.for_staff("lan", "province_officer", 7, user_id=3)
    chair = Actor.for_staff("chu", "chair", 7, user_id=1)
    site = Actor.for_site(42, "79-26740", province_id=7)
    assert officer.label == "staff:lan" and officer.scoped and officer.province_id == 7
    assert chair.province_id is None and not chair.scoped
    assert site.label == "site:79-26740" and not site.staff and site.province_id is None
    assert Actor.system().label == "system" and Actor.system().staff
    assert officer.may_touch(1, 7) and not officer.may_touch(1, 8)
    assert site.may_touch(42, 9) and not site.may_touch(43, 7)
    assert site.may_see_province(7) and not site.may_see_province(None)
    assert chair.may_see_province(None) and not officer.may_see_province(None)
    assert officer.scope() == 7 and chair.scope(5) == 5
    with pytest.raises(Forbidden):
        officer.scope(8)
    with pytest.raises(Forbidden):
        site.require_staff("issue directives")
    with pytest.raises(Forbidden):
        officer.require_role("start a meeting", "admin", "chair")
    chair.require_role("start a meeting", "admin", "chair")
    with pytest.raises(Forbidden):
        site.check_site(43, 7)


async def test_site_directory_reads_and_notices_changes(db: Database) -> None:
    await load_builtin(db, "south-19")
    sites = SiteDirectory(db)
    every = await sites.all()
    assert len(every) > 2000
    chair = await sites.find("TW")
    assert chair is not None and chair.kind == "chair" and chair.province_id is None
    commune = next(s for s in every if s.kind == "commune")
    assert commune.province_code and commune.province_name and commune.lat is not None
    assert (await sites.by_ids([commune.id, -1])) == {commune.id: commune}
    assert commune in await sites.in_province(commune.province_id or 0)
    assert sites.peek(commune.id) == commune
    assert not await sites.refresh_if_changed()

    async with db.session() as s, s.begin():
        await s.execute(update(Site).where(Site.id == commune.id).values(revoked=True))
    assert await sites.refresh_if_changed()
    assert commune.id not in {s.id for s in await sites.all()}
    revoked = await sites.get(commune.id)
    assert revoked is not None and revoked.revoked
