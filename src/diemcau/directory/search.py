"""Finding units and sites by name or code, without regard to case or diacritics.

Names are compared through their `diemcau.text.fold` keys (docs/directory.md, "Search").
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, case, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from diemcau.directory.schemas import SearchHit
from diemcau.store import Database
from diemcau.store.models import Site, Unit
from diemcau.text import fold

__all__ = ["search"]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rank(column: InstrumentedAttribute[str], key: str) -> ColumnElement[int]:
    """0 exact name, 1 type + exact name ("phuong ben nghe" for "ben nghe"), 2 prefix, 3 other."""
    k = _escape_like(key)
    return case(
        (column == key, 0),
        (column.like(f"% {k}", escape="\\"), 1),
        (column.like(f"{k}%", escape="\\"), 2),
        else_=3,
    )


def _word_prefix_terms(
    column: InstrumentedAttribute[str], tokens: list[str]
) -> list[ColumnElement[bool]]:
    """One condition per token: some word of the key starts with it.

    Word starts, not substrings: "uong" must not match every "phuong".
    """
    terms = []
    for token in tokens:
        t = _escape_like(token)
        terms.append(or_(column.like(f"{t}%", escape="\\"), column.like(f"% {t}%", escape="\\")))
    return terms


def _unit_query(
    raw: str, key: str, tokens: list[str], limit: int, province_scope: int | None
) -> Select[Unit, str, str]:
    """Units whose code is `raw` or whose name words start with every token, best first."""
    parent = aliased(Unit)
    province = aliased(Unit)
    query = (
        select(Unit, parent.name, province.name)
        .outerjoin(parent, parent.id == Unit.parent_id)
        .outerjoin(province, province.id == Unit.province_id)
        .where(or_(Unit.code == raw, and_(*_word_prefix_terms(Unit.search_key, tokens))))
        .order_by(
            Unit.code != raw, _rank(Unit.search_key, key), Unit.depth, Unit.search_key, Unit.code
        )
        .limit(limit)
    )
    if province_scope is not None:
        query = query.where(Unit.province_id == province_scope)
    return query


def _site_query(
    raw: str, key: str, tokens: list[str], limit: int, province_scope: int | None
) -> Select[Site, Unit, str, str]:
    """Sites matched like units, except those named as their unit (the unit already hit)."""
    parent = aliased(Unit)
    province = aliased(Unit)
    site_unit = aliased(Unit)
    query = (
        select(Site, site_unit, parent.name, province.name)
        .join(site_unit, site_unit.id == Site.unit_id)
        .outerjoin(parent, parent.id == site_unit.parent_id)
        .outerjoin(province, province.id == Site.province_id)
        .where(
            or_(
                Site.code == raw,
                and_(
                    *_word_prefix_terms(Site.search_key, tokens),
                    Site.search_key != site_unit.search_key,
                ),
            )
        )
        .order_by(Site.code != raw, _rank(Site.search_key, key), Site.search_key, Site.code)
        .limit(limit)
    )
    if province_scope is not None:
        query = query.where(Site.province_id == province_scope)
    return query


async def search(
    db: Database, query: str, *, limit: int = 20, province_scope: int | None = None
) -> list[SearchHit]:
    """Units and sites with a name word starting with each word of ``query``, or its code.

    Matching ignores case and diacritics (``phuong ben nghe`` and ``Bến Nghé`` both
    find Phường Bến Nghé): names are compared through their `diemcau.text.fold` keys.
    A code match ranks first, then exact names, names that are a unit type plus the
    query, names starting with the query, others; then shallower units first. Unit
    hits come before site hits; at most ``limit`` hits in all.
    """
    key = fold(query)
    tokens = key.split()
    if not tokens or limit <= 0:
        return []
    raw = query.strip()
    unit_q = _unit_query(raw, key, tokens, limit, province_scope)
    site_q = _site_query(raw, key, tokens, limit, province_scope)
    hits: list[SearchHit] = []
    async with db.session() as session:
        for unit, parent_name, province_name in (await session.execute(unit_q)).all():
            hits.append(
                SearchHit(
                    type="unit",
                    id=unit.id,
                    code=unit.code,
                    name=unit.name,
                    level=unit.level,
                    unit_type=unit.unit_type,
                    unit_code=unit.code,
                    parent_name=parent_name,
                    province_name=province_name,
                )
            )
        if len(hits) < limit:
            rows = (await session.execute(site_q.limit(limit - len(hits)))).all()
            for site, unit, parent_name, province_name in rows:
                hits.append(
                    SearchHit(
                        type="site",
                        id=site.id,
                        code=site.code,
                        name=site.name,
                        level=site.kind,
                        unit_type=unit.unit_type,
                        unit_code=unit.code,
                        parent_name=unit.name if parent_name is None else parent_name,
                        province_name=province_name,
                    )
                )
    return hits
