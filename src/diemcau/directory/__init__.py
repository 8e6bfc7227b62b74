"""The national directory: administrative units, the sites bound to them, datasets, CSV.

Public surface (pinned by ``tests/test_directory_service.py``): the record type
every tree source produces, the built-in datasets, the CSV importer, and the
service functions that load and query the store.
"""

from diemcau.directory.csv_import import CsvImportError, RowError, parse_csv, read_csv_file
from diemcau.directory.datasets import DATASETS, SOUTH_19_PROVINCE_CODES, load_dataset
from diemcau.directory.records import CHAIR_SITE_CODE, UnitRecord
from diemcau.directory.schemas import (
    LoadResult,
    SearchHit,
    SiteDetail,
    SiteRef,
    UnitDetail,
    UnitNode,
    UnitRef,
)
from diemcau.directory.service import (
    children,
    load_builtin,
    load_units,
    search,
    site_detail,
    stats,
    unit_detail,
)

__all__ = [
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
