"""Built-in datasets: counts checked against the package's own SQLite file and known figures."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections import Counter
from contextlib import closing

import pytest

from diemcau.directory.datasets import (
    SOUTH_19_PROVINCE_CODES,
    dataset_path,
    load_dataset,
)
from diemcau.directory.records import UnitRecord
from diemcau.text import fold

# The list of the 19 southern provinces of September 2021.
SOUTH_19_NAMES = (
    "Hồ Chí Minh, Bình Dương, Đồng Nai, Bà Rịa - Vũng Tàu, Tây Ninh, Bình Phước, Long An, "
    "Tiền Giang, Bến Tre, Vĩnh Long, Trà Vinh, Đồng Tháp, An Giang, Kiên Giang, Cần Thơ, "
    "Hậu Giang, Sóc Trăng, Bạc Liêu, Cà Mau"
).split(", ")


def _query(sql: str, params: tuple[str, ...] = ()) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(dataset_path().as_uri() + "?mode=ro", uri=True)) as conn:
        return list(conn.execute(sql, params))


def _levels(records: list[UnitRecord]) -> Counter[str]:
    return Counter(r.level for r in records)


def _check_tree(records: list[UnitRecord]) -> None:
    codes = [r.code for r in records]
    assert len(codes) == len(set(codes)), "unit codes must be unique"
    seen: set[str] = set()
    for record in records:
        # Parents come before children, and every parent exists.
        assert record.parent_code is None or record.parent_code in seen, record
        seen.add(record.code)
        assert record.name == unicodedata.normalize("NFC", record.name)
        assert record.name.strip() and record.unit_type
    assert records[0] == UnitRecord("VN", "Việt Nam", "country", "Quốc gia")


def test_vn_2025_has_34_provinces_and_3321_communes() -> None:
    records = load_dataset("vn-2025")
    (provinces, communes) = _query(
        "SELECT count(DISTINCT provinceCode), count(DISTINCT wardCode) FROM admin_units"
    )[0]
    assert (provinces, communes) == (34, 3321)
    assert _levels(records) == {"country": 1, "province": 34, "commune": 3321}
    _check_tree(records)
    by_code = {r.code: r for r in records}
    hanoi = by_code["01"]
    assert (hanoi.name, hanoi.unit_type, hanoi.parent_code) == (
        "Thành phố Hà Nội",
        "Thành phố",
        "VN",
    )
    assert {r.unit_type for r in records if r.level == "province"} == {"Thành phố", "Tỉnh"}
    assert {r.unit_type for r in records if r.level == "commune"} == {"Phường", "Xã", "Đặc khu"}
    assert all(r.lat is not None and r.lon is not None for r in records if r.level != "country")
    # Every commune hangs directly under a province (two levels since 1 July 2025).
    communes = [r for r in records if r.level == "commune"]
    assert all(by_code[str(r.parent_code)].level == "province" for r in communes)


def test_vn_legacy_has_63_provinces_696_districts_and_every_commune() -> None:
    records = load_dataset("vn-legacy")
    provinces, districts, rows, communes = _query(
        "SELECT count(DISTINCT provinceCode), count(DISTINCT districtCode), count(*),"
        " count(DISTINCT wardCode) FROM admin_units_legacy"
    )[0]
    assert (provinces, districts, rows, communes) == (63, 696, 10040, 10035)
    assert _levels(records) == {"country": 1, "province": 63, "district": 696, "commune": 10035}
    _check_tree(records)
    # The 5 rows beyond the 10,035 commune codes are island districts without communes:
    # they must appear as districts with no commune child, not as nameless communes.
    islands = _query(
        "SELECT districtCode FROM admin_units_legacy WHERE wardCode IS NULL ORDER BY districtCode"
    )
    island_codes = {str(code) for (code,) in islands}
    by_code = {r.code: r for r in records}
    assert {by_code[c].name for c in island_codes} == {
        "Huyện Bạch Long Vĩ",
        "Huyện Cồn Cỏ",
        "Huyện Hoàng Sa",
        "Huyện Lý Sơn",
        "Huyện Côn Đảo",
    }
    assert not [r for r in records if r.parent_code in island_codes]
    ben_nghe = by_code["26740"]
    assert (ben_nghe.name, ben_nghe.unit_type, ben_nghe.level) == (
        "Phường Bến Nghé",
        "Phường",
        "commune",
    )
    assert by_code[str(ben_nghe.parent_code)].name == "Quận 1"
    assert ben_nghe.lat == pytest.approx(10.78, abs=0.05)
    assert {r.unit_type for r in records if r.level == "district"} == {
        "Quận",
        "Huyện",
        "Thị xã",
        "Thành phố",
    }


def test_south_19_is_the_legacy_tree_of_the_19_southern_provinces() -> None:
    records = load_dataset("south-19")
    _check_tree(records)
    provinces = [r for r in records if r.level == "province"]
    assert len(provinces) == 19 == len(SOUTH_19_PROVINCE_CODES)
    # Names, not just codes: each listed province is present (diacritics and the
    # "Tỉnh"/"Thành phố" prefix aside).
    folded = {fold(p.name).removeprefix("tinh ").removeprefix("thanh pho ") for p in provinces}
    assert folded == {fold(name) for name in SOUTH_19_NAMES}
    marks = ",".join("?" * len(SOUTH_19_PROVINCE_CODES))
    districts, communes = _query(
        f"SELECT count(DISTINCT districtCode), count(DISTINCT wardCode) FROM admin_units_legacy"
        f" WHERE provinceCode IN ({marks})",
        SOUTH_19_PROVINCE_CODES,
    )[0]
    levels = _levels(records)
    assert (levels["district"], levels["commune"]) == (districts, communes)
    # Known figures: 203 districts, 2,375 communes in the package's legacy data
    # (2,594 communes in 2021, before the 2023-2025 mergers).
    assert (levels["district"], levels["commune"]) == (203, 2375)
    legacy = {r.code: r for r in load_dataset("vn-legacy")}
    assert all(legacy[r.code] == r for r in records)


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("vn-1975")
