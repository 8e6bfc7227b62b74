"""Invitations by area on the real legacy data (south-19: provinces → districts → communes),
resolved on the directory's read model and checked against counts computed independently
from the tables."""

from __future__ import annotations

from sqlalchemy import func, select

from diemcau.directory.service import load_builtin
from diemcau.directory.sites import SiteDirectory
from diemcau.meetings import Invitations, InviteSpec
from diemcau.store import Database
from diemcau.store.models import Site, Unit


async def test_invitations_by_area_on_south_19(db: Database) -> None:
    await load_builtin(db, "south-19")
    invitations = Invitations(db, SiteDirectory(db))
    resolve = invitations.resolve
    async with db.session() as s:
        all_sites = set((await s.scalars(select(Site.id).where(Site.kind != "chair"))).all())
        everyone = await resolve(InviteSpec(everyone=True))
        assert set(everyone) == all_sites and len(everyone) > 2000

        # A province: every site whose province is it (province, district and commune sites).
        prov = await s.scalar(
            select(Unit).where(Unit.level == "province").order_by(Unit.code).limit(1)
        )
        assert prov is not None
        in_prov = set((await s.scalars(select(Site.id).where(Site.province_id == prov.id))).all())
        assert set(await resolve(InviteSpec(unit_ids=(prov.id,)))) == in_prov

        # A district: its own site and the sites of its communes, nothing else.
        district = await s.scalar(
            select(Unit)
            .where(Unit.level == "district", Unit.province_id == prov.id)
            .order_by(Unit.code)
            .limit(1)
        )
        assert district is not None
        communes = select(Unit.id).where(Unit.parent_id == district.id)
        expected = set(
            (
                await s.scalars(
                    select(Site.id).where(
                        (Site.unit_id == district.id) | Site.unit_id.in_(communes)
                    )
                )
            ).all()
        )
        got = await resolve(InviteSpec(unit_ids=(district.id,)))
        assert set(got) == expected and len(expected) > 1
        only_communes = await resolve(InviteSpec(unit_ids=(district.id,), kinds=("commune",)))
        assert set(only_communes) == expected - {
            sid
            for sid in (await s.scalars(select(Site.id).where(Site.unit_id == district.id))).all()
        }
        n_communes = await s.scalar(
            select(func.count()).select_from(Site).where(Site.kind == "commune")
        )
        communes_everywhere = await resolve(InviteSpec(everyone=True, kinds=("commune",)))
        assert len(communes_everywhere) == n_communes
