"""The directory service's one import surface (re-exported by `diemcau.directory`).

The national directory over the store, each concern in its own module:

* `directory.loading`: loading a tree of units and their sites, in bulk, by code;
* `directory.queries`: counts, a unit's children, one unit or site in detail;
* `directory.search`: finding units and sites by name or code.

Queries return the typed read models of `diemcau.directory.schemas`. Every query
takes ``province_scope``: the id of the province a caller (a province officer) is
limited to; a unit or site outside it raises `diemcau.errors.Forbidden`.
"""

from __future__ import annotations

from diemcau.directory.loading import ProgressFn, load_builtin, load_units
from diemcau.directory.queries import children, site_detail, stats, unit_detail
from diemcau.directory.search import search

__all__ = [
    "ProgressFn",
    "children",
    "load_builtin",
    "load_units",
    "search",
    "site_detail",
    "stats",
    "unit_detail",
]
