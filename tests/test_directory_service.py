"""The directory service on real stores: bulk loads, re-imports, counts, search, scope."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

import diemcau.directory
from diemcau.directory import service
from diemcau.directory.csv_import import parse_csv
from diemcau.directory.records import UnitRecord
from diemcau.errors import Conflict, Forbidden, Invalid, NotFound
from diemcau.store import Database, Site, Unit, migrate

LEGACY_STATS = {"country": 1, "province": 63, "district": 696, "commune": 10035, "sites": 10795}

CSV_TREE = (
    "code,name,type,parent_code,lat,lon,site_names\n"
    "ORG,Tổng công ty Điện lực,Tổng công ty,,,,\n"
    "HCM,Công ty Điện lực Hồ Chí Minh,Công ty,ORG,10.7769,106.7009,\n"
    "HN,Công ty Điện lực Hà Nội,Công ty,ORG,21.0285,105.8542,Phòng họp A|Phòng họp B\n"
    "HCM-Q1,Điện lực Quận 1,Điện lực,HCM,10.78,106.70,\n"
    "HN-BD,Điện lực Ba Đình,Điện lực,HN,21.03,105.82,\n"
)


def test_public_surface_is_pinned() -> None:
    assert sorted(diemcau.directory.__all__) == sorted(
        [
            "CHAIR_SITE_CODE",
            "DATASETS",
            "SOUTH_19_PROVINCE_CODES",
            "CsvImportError",
            "LoadResult",
            "RowError",
            "SearchHit",
            "SiteDetail",
            "SiteRef",
            "UnitDetail",
            "UnitNode",
            "UnitRecord",
            "UnitRef",
            "children",
            "load_builtin",
            "load_dataset",
            "load_units",
            "parse_csv",
            "read_csv_file",
            "search",
            "site_detail",
            "stats",
            "unit_detail",
        ]
    )


async def _rows(db: Database) -> tuple[list[Any], list[Any]]:
    """Every stored unit and site column, to prove a re-import changed nothing."""
    async with db.session() as s:
        units = [tuple(r) for r in (await s.execute(select(*Unit.__table__.c))).all()]
        sites = [tuple(r) for r in (await s.execute(select(*Site.__table__.c))).all()]
    return sorted(units), sorted(sites)


# --- vn-2025 on SQLite and PostgreSQL ------------------------------------------------------


async def test_vn_2025_loads_on_both_stores_and_reloading_changes_nothing(any_db: Database) -> None:
    first = await service.load_builtin(any_db, "vn-2025")
    assert (first.units_inserted, first.sites_inserted) == (3356, 3356)
    assert await service.stats(any_db) == {
        "country": 1,
        "province": 34,
        "commune": 3321,
        "sites": 3356,
    }
    before = await _rows(any_db)
    again = await service.load_builtin(any_db, "vn-2025")
    assert not again.changed
    assert (again.units_unchanged, again.sites_unchanged) == (3356, 3356)
    assert await _rows(any_db) == before

    (root,) = await service.children(any_db, None)
    assert (root.code, root.level, root.child_count, root.site_total) == ("VN", "country", 34, 3356)
    assert root.sites_by_kind == {"chair": 1, "province": 34, "commune": 3321}
    provinces = await service.children(any_db, "VN")
    assert len(provinces) == 34
    assert sum(p.sites_by_kind["commune"] for p in provinces) == 3321
    # A province unit lies in itself: its province_id is its own id.
    hcm = await service.unit_detail(any_db, "79")
    assert hcm.province is not None and hcm.province.id == hcm.id
    assert [s.code for s in hcm.sites] == ["79"]


# --- the whole legacy country, loaded once for this module ---------------------------------


@pytest.fixture(scope="module")
def legacy_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vn-legacy loaded into one SQLite file; tests below only read it (or prove no change)."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('legacy') / 'd.db'}"

    async def prepare() -> None:
        await migrate(url)
        db = Database(url)
        try:
            await service.load_builtin(db, "vn-legacy")
        finally:
            await db.dispose()

    asyncio.run(prepare())
    yield url


@pytest.fixture
async def legacy(legacy_url: str) -> AsyncIterator[Database]:
    db = Database(legacy_url)
    yield db
    await db.dispose()


async def test_vn_legacy_counts_every_level_and_site(legacy: Database) -> None:
    assert await service.stats(legacy) == LEGACY_STATS
    provinces = await service.children(legacy, "VN")
    assert len(provinces) == 63
    assert sum(p.site_total for p in provinces) == LEGACY_STATS["sites"] - 1  # all but the chair
    hcm = next(p for p in provinces if p.code == "79")
    assert (hcm.name, hcm.child_count) == ("Thành phố Hồ Chí Minh", 22)
    assert hcm.sites_by_kind == {"province": 1, "district": 22, "commune": 273}
    quan_1 = next(d for d in await service.children(legacy, "79") if d.name == "Quận 1")
    assert quan_1.child_count == quan_1.sites_by_kind["commune"] == 10


async def test_reloading_vn_legacy_changes_nothing(legacy: Database) -> None:
    before = await _rows(legacy)
    result = await service.load_builtin(legacy, "vn-legacy")
    assert not result.changed and result.units_unchanged == 10795
    assert await _rows(legacy) == before


async def test_mixing_vn_2025_into_a_legacy_database_is_refused(legacy: Database) -> None:
    # vn-2025 reuses legacy commune codes for other communes: merging would corrupt both.
    with pytest.raises(Conflict, match="cannot be mixed"):
        await service.load_builtin(legacy, "vn-2025")
    assert await service.stats(legacy) == LEGACY_STATS


@pytest.mark.parametrize(
    "query",
    ["phuong ben nghe", "Bến Nghé", "BẾN NGHÉ", "ben nghe", "Phường Bến Nghé", "ben ngh", "26740"],
)
async def test_search_ignores_diacritics_and_case(legacy: Database, query: str) -> None:
    hits = await service.search(legacy, query)
    assert hits, query
    top = hits[0]
    assert (top.type, top.code, top.name) == ("unit", "26740", "Phường Bến Nghé")
    assert (top.parent_name, top.province_name) == ("Quận 1", "Thành phố Hồ Chí Minh")


async def test_search_input_forms_and_edges(legacy: Database) -> None:
    nfd = unicodedata.normalize("NFD", "Bến Nghé")
    assert [h.code for h in await service.search(legacy, nfd)][:1] == ["26740"]
    # Words match at word starts: "uong" is inside every "phuong" but must not match them.
    hits = await service.search(legacy, "trung uong")
    assert "TW" in [h.code for h in hits if h.type == "site"]
    assert not [h for h in hits if h.name.startswith("Phường") and "ương" not in h.name.lower()]
    assert await service.search(legacy, "   ") == []
    assert await service.search(legacy, "%") == []
    assert await service.search(legacy, "_") == []
    assert len(await service.search(legacy, "phuong", limit=7)) == 7


async def test_province_scope_limits_every_query(legacy: Database) -> None:
    hcm = (await service.unit_detail(legacy, "79")).id
    hanoi = (await service.unit_detail(legacy, "01")).id

    assert [h.code for h in await service.search(legacy, "Bến Nghé", province_scope=hcm)] == [
        "26740"
    ]
    assert await service.search(legacy, "Bến Nghé", province_scope=hanoi) == []
    wards = await service.search(legacy, "phuong", limit=50, province_scope=hanoi)
    assert len(wards) == 50
    assert {h.province_name for h in wards} == {"Thành phố Hà Nội"}
    scoped = await service.search(legacy, "trung uong", province_scope=hanoi)
    assert "TW" not in [h.code for h in scoped]

    # The officer's tree starts at its province; above it only its own branch shows.
    assert [n.code for n in await service.children(legacy, None, province_scope=hcm)] == ["79"]
    assert [n.code for n in await service.children(legacy, "VN", province_scope=hcm)] == ["79"]
    assert len(await service.children(legacy, "79", province_scope=hcm)) == 22
    with pytest.raises(Forbidden):
        await service.children(legacy, "79", province_scope=hanoi)
    with pytest.raises(Forbidden):
        await service.unit_detail(legacy, "26740", province_scope=hanoi)
    # A site elsewhere reads like a missing one (no telling which codes exist there).
    with pytest.raises(NotFound, match="no site with code '26740' in your province"):
        await service.site_detail(legacy, "26740", province_scope=hanoi)
    with pytest.raises(NotFound, match="no site with code 'TW' in your province"):
        await service.site_detail(legacy, "TW", province_scope=hcm)
    assert await service.stats(legacy, province_scope=hcm) == {
        "province": 1,
        "district": 22,
        "commune": 273,
        "sites": 296,
    }


async def test_unit_and_site_detail(legacy: Database) -> None:
    ward = await service.unit_detail(legacy, "26740")
    assert [a.code for a in ward.ancestors] == ["VN", "79", "760"]
    assert ward.province is not None and ward.province.code == "79"
    assert (ward.level, ward.unit_type, ward.depth, ward.dataset) == (
        "commune",
        "Phường",
        3,
        "vn-legacy",
    )
    assert [(s.code, s.kind) for s in ward.sites] == [("26740", "commune")]
    assert ward.site_total == 1 and ward.child_count == 0

    chair = await service.site_detail(legacy, "TW")
    assert (chair.kind, chair.name, chair.unit.code, chair.province) == (
        "chair",
        "Điểm cầu Trung ương",
        "VN",
        None,
    )
    site = await service.site_detail(legacy, "26740")
    assert site.province is not None and site.province.code == "79"
    assert site.lat == ward.lat and not site.provisioned and not site.revoked
    assert site.created_at.tzinfo is not None
    with pytest.raises(NotFound):
        await service.unit_detail(legacy, "99999")
    with pytest.raises(NotFound):
        await service.site_detail(legacy, "nope")
    with pytest.raises(NotFound):
        await service.children(legacy, "nope")


# --- CSV trees through the loader -----------------------------------------------------------


async def test_csv_reimport_updates_by_code_and_keeps_credentials(any_db: Database) -> None:
    first = await service.load_units(any_db, parse_csv(CSV_TREE), dataset="csv")
    assert (first.units_inserted, first.sites_inserted) == (5, 7)
    assert await service.stats(any_db) == {"country": 1, "province": 2, "commune": 2, "sites": 7}
    hn = await service.unit_detail(any_db, "HN")
    assert [(s.code, s.name) for s in hn.sites] == [
        ("HN", "Công ty Điện lực Hà Nội"),
        ("HN-2", "Phòng họp A"),
        ("HN-3", "Phòng họp B"),
    ]
    chair = await service.site_detail(any_db, "TW")
    assert chair.unit.code == "ORG"
    hits = await service.search(any_db, "phong hop")
    assert [(h.type, h.code, h.unit_code) for h in hits] == [
        ("site", "HN-2", "HN"),
        ("site", "HN-3", "HN"),
    ]

    # A provisioned site keeps its credential through re-imports.
    async with any_db.session() as s:
        await s.execute(update(Site).where(Site.code == "HN").values(secret_digest="d" * 64))
    before = await _rows(any_db)
    same = await service.load_units(any_db, parse_csv(CSV_TREE), dataset="csv")
    assert not same.changed
    assert await _rows(any_db) == before

    # Rename HN, move its centroid, drop the HN-BD row: updated by code, HN-BD left alone.
    edited = CSV_TREE.replace(
        "Công ty Điện lực Hà Nội,Công ty,ORG,21.0285", "PC Hà Nội,PC,ORG,21.5"
    )
    edited = "\n".join(line for line in edited.split("\n") if not line.startswith("HN-BD"))
    result = await service.load_units(any_db, parse_csv(edited), dataset="csv")
    assert (result.units_inserted, result.units_updated, result.units_unchanged) == (0, 1, 3)
    assert (result.sites_inserted, result.sites_updated) == (0, 1)
    hn = await service.unit_detail(any_db, "HN")
    assert (hn.name, hn.unit_type, hn.lat, hn.child_count) == ("PC Hà Nội", "PC", 21.5, 1)
    site = await service.site_detail(any_db, "HN")
    assert site.name == "PC Hà Nội" and site.provisioned
    assert (await service.unit_detail(any_db, "HN-BD")).name == "Điện lực Ba Đình"
    assert (await service.search(any_db, "pc ha noi"))[0].code == "HN"


async def test_loader_refuses_inconsistent_records_and_writes_nothing(db: Database) -> None:
    root = UnitRecord("R", "Root", "country")
    child = UnitRecord("A", "A", "province", parent_code="R")
    with pytest.raises(Invalid, match="appears twice"):
        await service.load_units(db, [root, child, child], dataset="t")
    with pytest.raises(Invalid, match="unknown parent 'X'"):
        await service.load_units(
            db, [root, UnitRecord("B", "B", "province", parent_code="X")], dataset="t"
        )
    loop = [
        UnitRecord("C", "C", "province", parent_code="D"),
        UnitRecord("D", "D", "province", parent_code="C"),
    ]
    with pytest.raises(Invalid, match="cycle"):
        await service.load_units(db, [root, *loop], dataset="t")
    assert await service.stats(db) == {"sites": 0}

    await service.load_units(db, [root, child], dataset="t")
    # A stored unit may be the parent of a later load.
    more = await service.load_units(
        db, [UnitRecord("K", "K", "commune", parent_code="A")], dataset="t"
    )
    assert more.units_inserted == 1
    assert (await service.unit_detail(db, "K")).province is not None
    with pytest.raises(Conflict, match="already holds the tree rooted at 'R'"):
        await service.load_units(db, [UnitRecord("R2", "Other root", "country")], dataset="t")
    assert await service.stats(db) == {"country": 1, "province": 1, "commune": 1, "sites": 3}
