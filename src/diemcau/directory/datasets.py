"""Built-in administrative trees of Vietnam, read from the `vietnamadminunits` package.

The package ships one SQLite file, ``vietnamadminunits/data/dataset.db``, with two
tables (one row per commune-level unit, carrying its province and, for the legacy
table, its district):

- ``admin_units``: the two-level structure in force since 1 July 2025
  (34 provinces, 3,321 communes/wards/special zones);
- ``admin_units_legacy``: the three-level structure before it (63 provinces,
  696 districts, 10,035 communes).

The legacy table has 10,040 rows but only 10,035 commune codes: the other five
rows are the island districts that have no commune level at all (Bạch Long Vĩ,
Cồn Cỏ, Hoàng Sa, Lý Sơn, Côn Đảo). They carry a district but an empty commune
(no code, name, type or coordinates), so they yield the district and no commune.
``vn-legacy`` therefore holds 1 + 63 + 696 + 10,035 = 10,795 units.

We read the file with `sqlite3` rather than the package's Python API: one query
per table gives codes, names, types and centroids in a stable order, and the
package's own import cost (pandas) is avoided.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from importlib import resources
from pathlib import Path

from diemcau.directory.records import UnitRecord
from diemcau.text import nfc

__all__ = [
    "COUNTRY_CODE",
    "COUNTRY_NAME",
    "DATASETS",
    "SOUTH_19_PROVINCE_CODES",
    "UnitRecord",
    "dataset_path",
    "load_dataset",
]

COUNTRY_CODE = "VN"
COUNTRY_NAME = "Việt Nam"
COUNTRY_TYPE = "Quốc gia"

DATASETS = ("vn-2025", "vn-legacy", "south-19")

# The 19 southern provinces of the September 2021 COVID-19 case (legacy codes), in
# the order the issue lists them: Hồ Chí Minh, Bình Dương, Đồng Nai, Bà Rịa – Vũng
# Tàu, Tây Ninh, Bình Phước, Long An, Tiền Giang, Bến Tre, Vĩnh Long, Trà Vinh,
# Đồng Tháp, An Giang, Kiên Giang, Cần Thơ, Hậu Giang, Sóc Trăng, Bạc Liêu, Cà Mau.
SOUTH_19_PROVINCE_CODES = (
    "79",
    "74",
    "75",
    "77",
    "72",
    "70",
    "80",
    "82",
    "83",
    "86",
    "84",
    "87",
    "89",
    "91",
    "92",
    "93",
    "94",
    "95",
    "96",
)

_PROVINCE_TYPES = ("Thành phố", "Tỉnh")


def dataset_path() -> Path:
    """Where the installed `vietnamadminunits` keeps its SQLite data file."""
    path = Path(str(resources.files("vietnamadminunits").joinpath("data", "dataset.db")))
    if not path.is_file():
        raise FileNotFoundError(f"vietnamadminunits data file missing: {path}")
    return path


def _province_type(name: str) -> str:
    """The province kind from its name prefix ("Thành phố Hà Nội" -> "Thành phố")."""
    for prefix in _PROVINCE_TYPES:
        if name.startswith(prefix + " "):
            return prefix
    return ""


def _country() -> UnitRecord:
    return UnitRecord(code=COUNTRY_CODE, name=COUNTRY_NAME, level="country", unit_type=COUNTRY_TYPE)


def _rows(query: str, params: tuple[str, ...] = ()) -> list[tuple[object, ...]]:
    uri = dataset_path().as_uri() + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        return list(conn.execute(query, params))


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


def _province(code: str, name: object, lat: object, lon: object) -> UnitRecord:
    """A province under the country; its kind is read from its name."""
    text = nfc(str(name))
    return UnitRecord(
        code=code,
        name=text,
        level="province",
        unit_type=_province_type(text),
        parent_code=COUNTRY_CODE,
        lat=_float(lat),
        lon=_float(lon),
    )


def _below(
    level: str, parent: str, code: object, name: object, kind: object, lat: object, lon: object
) -> UnitRecord:
    """A district or commune of the dataset (columns code, name, type, lat, lon)."""
    return UnitRecord(
        code=str(code),
        name=nfc(str(name)),
        level=level,
        unit_type=nfc(str(kind or "")),
        parent_code=parent,
        lat=_float(lat),
        lon=_float(lon),
    )


def _vn_2025() -> list[UnitRecord]:
    rows = _rows(
        "SELECT provinceCode, province, provinceLat, provinceLon,"
        " wardCode, ward, wardType, wardLat, wardLon"
        " FROM admin_units ORDER BY provinceCode, wardCode"
    )
    provinces: list[UnitRecord] = []
    communes: list[UnitRecord] = []
    seen: set[str] = set()
    for pcode, pname, plat, plon, wcode, wname, wtype, wlat, wlon in rows:
        pcode_s = str(pcode)
        if pcode_s not in seen:
            seen.add(pcode_s)
            provinces.append(_province(pcode_s, pname, plat, plon))
        communes.append(_below("commune", pcode_s, wcode, wname, wtype, wlat, wlon))
    return [_country(), *provinces, *communes]


def _legacy(province_codes: tuple[str, ...] | None) -> list[UnitRecord]:
    query = (
        "SELECT provinceCode, province, provinceLat, provinceLon,"
        " districtCode, district, districtType, districtLat, districtLon,"
        " wardCode, ward, wardType, wardLat, wardLon"
        " FROM admin_units_legacy"
    )
    params: tuple[str, ...] = ()
    if province_codes is not None:
        query += f" WHERE provinceCode IN ({', '.join('?' * len(province_codes))})"
        params = province_codes
    query += " ORDER BY provinceCode, districtCode, wardCode"
    provinces: dict[str, UnitRecord] = {}
    districts: dict[str, UnitRecord] = {}
    communes: list[UnitRecord] = []
    for row in _rows(query, params):
        pcode, pname, plat, plon, dcode, dname, dtype, dlat, dlon = row[:9]
        wcode, wname, wtype, wlat, wlon = row[9:]
        pcode_s, dcode_s = str(pcode), str(dcode)
        if pcode_s not in provinces:
            provinces[pcode_s] = _province(pcode_s, pname, plat, plon)
        if dcode_s not in districts:
            districts[dcode_s] = _below("district", pcode_s, dcode_s, dname, dtype, dlat, dlon)
        if wcode is None:
            # An island district without a commune level (see the module docstring).
            continue
        communes.append(_below("commune", dcode_s, wcode, wname, wtype, wlat, wlon))
    return [_country(), *provinces.values(), *districts.values(), *communes]


def load_dataset(name: str) -> list[UnitRecord]:
    """The records of one built-in dataset, parents before children.

    Args:
        name: ``vn-2025``, ``vn-legacy`` or ``south-19``.

    Raises:
        ValueError: for any other name.
    """
    if name == "vn-2025":
        return _vn_2025()
    if name == "vn-legacy":
        return _legacy(None)
    if name == "south-19":
        return _legacy(SOUTH_19_PROVINCE_CODES)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
