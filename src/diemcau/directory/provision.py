"""Bulk provisioning: a run that gives sites fresh credentials through the sheets it writes.

`provision` gives each site of the directory (or of one province) a fresh random
secret, stores only its HMAC digest, and writes per province a CSV (and, if asked,
an XLSX workbook) and a printable A4 sheet with one card per site: name, join link,
join code and a QR code of the link. The secret is shown exactly once, in these
files; the store cannot recover it.

Join links put the join code in the URL fragment (``{base}/join#<code>:<secret>``):
browsers never send the fragment to the server, so the secret stays out of access
logs and proxies.

Speed: the whole country (3,356 sites) is one bulk UPDATE (executemany) in one
transaction; QR codes are the costly part (segno evaluates all eight masks, a few
milliseconds each), so large runs spread them over worker processes.

Safety: files are first written under temporary names; they replace the final
names only after the database commit, and are removed if anything fails, so a
failed run changes nothing. A run without ``rotate`` never overwrites an
existing sheet (its secrets are still valid): the new sheet gets a ``-2``, ``-3``
suffix instead.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Table, bindparam, select, update

from diemcau.accounts.errors import UnknownProvince
from diemcau.accounts.tokencache import forget_sites
from diemcau.directory.provision_cards import (
    Card,
    CardPlan,
    ProvinceSheet,
    SiteRow,
    UnitRow,
    join_link,
    plan_cards,
)
from diemcau.directory.provision_qr import ProgressCallback, qr_svg, render_qr
from diemcau.directory.provision_sheets import write_html, write_index
from diemcau.directory.provision_tables import csv_safe, write_csv, write_xlsx_sheet
from diemcau.errors import Conflict, Invalid
from diemcau.security import Key, KeyRing
from diemcau.store import Database
from diemcau.store.models import Site, Unit, utcnow
from diemcau.text import fold

__all__ = [
    "ProgressCallback",
    "ProvisionResult",
    "ProvinceSheet",
    "ProvisionConflict",
    "csv_safe",
    "join_link",
    "provision",
    "qr_svg",
    "slugify",
]


class ProvisionConflict(Conflict):
    """Another run changed these sites' credentials meanwhile; nothing was stored."""


@dataclass(frozen=True)
class ProvisionResult:
    """What a provisioning run did.

    Attributes:
        issued: sites that received a new credential (and appear in the sheets).
        kept: sites in scope that already had one and kept it (no ``rotate``).
        revoked: revoked sites in scope, left revoked (use ``site rotate`` per site).
        sheets: the files written, one pair per province with new credentials.
        index_path: the ``index.html`` listing every sheet in the folder.
        seconds: wall time of the run.
    """

    issued: int
    kept: int
    revoked: int
    sheets: list[ProvinceSheet] = field(default_factory=list)
    index_path: Path | None = None
    seconds: float = 0.0


def slugify(name: str) -> str:
    """A file-name-safe ASCII slug: "Thành phố Hồ Chí Minh" -> "thanh-pho-ho-chi-minh"."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")
    return slug[:60].rstrip("-") or "site"


def _check_base_url(base_url: str) -> None:
    """Refuse a base URL that is not plain http(s): it is printed into links and hrefs."""
    parts = urlsplit(base_url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or any(ch.isspace() or ch in "\"'<>" for ch in base_url)
    ):
        raise Invalid(
            f"base URL '{base_url}' must be an http:// or https:// address "
            "without spaces, quotes, query or fragment",
            code="bad_base_url",
        )


def _file_code(code: str) -> str:
    """A unit code made safe for a file name (imported codes may hold ``/`` or ``..``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", code).strip("_") or "unit"


def _free_name(out_dir: Path, stem: str, overwrite: bool, taken: set[str]) -> str:
    """`stem`, or `stem-2`, `stem-3` ... when an existing sheet must be kept."""
    candidate = stem
    index = 1
    while candidate in taken or (
        not overwrite
        and any((out_dir / f"{candidate}{ext}").exists() for ext in (".csv", ".html", ".xlsx"))
    ):
        index += 1
        candidate = f"{stem}-{index}"
    taken.add(candidate)
    return candidate


async def _read_scope(
    db: Database, province_code: str | None
) -> tuple[Sequence[UnitRow], Sequence[SiteRow]]:
    """Every unit (to describe where sites lie) and the sites in scope, in one session.

    Raises:
        UnknownProvince: `province_code` is not a province of the directory.
    """
    async with db.session() as s:
        province_id: int | None = None
        if province_code is not None:
            province_id = await s.scalar(
                select(Unit.id).where(Unit.code == province_code, Unit.level == "province")
            )
            if province_id is None:
                raise UnknownProvince(f"no province with code '{province_code}'")
        unit_rows = (
            await s.execute(
                select(Unit.id, Unit.code, Unit.name, Unit.level, Unit.unit_type, Unit.parent_id)
            )
        ).all()
        site_query = select(
            Site.id,
            Site.code,
            Site.name,
            Site.unit_id,
            Site.province_id,
            Site.secret_digest,
            Site.revoked,
            Site.credential_version,
        )
        if province_id is not None:
            site_query = site_query.where(Site.province_id == province_id)
        site_rows = (await s.execute(site_query)).all()
    return unit_rows, site_rows


def _write_sheets(
    out: Path,
    plan: CardPlan,
    issued_at: datetime,
    *,
    rotate: bool,
    xlsx: bool,
    temp_files: list[tuple[Path, Path]],
) -> list[ProvinceSheet]:
    """Each province's files under temporary names, listed in `temp_files` as written."""
    sheets: list[ProvinceSheet] = []
    taken: set[str] = set()
    for group_unit, cards in sorted(plan.groups.values(), key=lambda g: g[0].code):
        stem = _free_name(
            out,
            f"{_file_code(group_unit.code)}-{slugify(group_unit.name)}",
            overwrite=rotate,
            taken=taken,
        )
        csv_path, html_path = out / f"{stem}.csv", out / f"{stem}.html"
        csv_tmp, html_tmp = out / f".{stem}.csv.tmp", out / f".{stem}.html.tmp"
        temp_files += [(csv_tmp, csv_path), (html_tmp, html_path)]
        write_csv(csv_tmp, cards)
        write_html(html_tmp, group_unit.name, cards, issued_at)
        xlsx_path = out / f"{stem}.xlsx" if xlsx else None
        if xlsx_path is not None:
            xlsx_tmp = out / f".{stem}.xlsx.tmp"
            temp_files.append((xlsx_tmp, xlsx_path))
            write_xlsx_sheet(xlsx_tmp, group_unit.name, cards, issued_at)
        sheets.append(
            ProvinceSheet(
                group_unit.code, group_unit.name, len(cards), csv_path, html_path, xlsx_path
            )
        )
    return sheets


async def provision(
    db: Database,
    key: Key,
    base_url: str,
    out_dir: Path | str,
    province_code: str | None = None,
    rotate: bool = False,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    xlsx: bool = False,
) -> ProvisionResult:
    """Issue credentials and export the sheets.

    Args:
        db: the store.
        key: the site key ring (`InstanceKeys.site`); its first key makes the digests.
        base_url: public URL of the server, printed into join links.
        out_dir: folder for the CSV/HTML sheets and ``index.html`` (created).
        province_code: limit the run to one province's sites.
        rotate: replace every credential in scope (old join codes stop working);
            without it only sites that never had one are issued.
        progress: called with ``(done, total)`` while QR codes are made.
        workers: processes for QR codes (default: CPU count; 1 = inline).
        xlsx: also write each province's list as an XLSX workbook.

    Raises:
        UnknownProvince: `province_code` is not a province of the directory.
        diemcau.errors.Invalid: `base_url` is not a plain http(s) URL.
        ProvisionConflict: another writer changed a credential meanwhile.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    _check_base_url(base_url)
    unit_rows, site_rows = await _read_scope(db, province_code)
    plan = plan_cards(unit_rows, site_rows, key, base_url, rotate)
    all_cards = plan.cards
    await render_qr(all_cards, progress, workers)

    out.mkdir(parents=True, exist_ok=True)
    issued_at = utcnow()
    temp_files: list[tuple[Path, Path]] = []
    try:
        sheets = _write_sheets(
            out, plan, issued_at, rotate=rotate, xlsx=xlsx, temp_files=temp_files
        )
        if all_cards:
            ring = key if isinstance(key, KeyRing) else KeyRing([key])
            await _store_digests(db, all_cards, issued_at, ring.current_id)
        for tmp, final in temp_files:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in temp_files:
            tmp.unlink(missing_ok=True)
        raise
    index = write_index(out, sheets)
    return ProvisionResult(
        issued=len(all_cards),
        kept=plan.kept,
        revoked=plan.revoked,
        sheets=sheets,
        index_path=index,
        seconds=time.perf_counter() - started,
    )


async def _store_digests(
    db: Database, cards: Sequence[Card], issued_at: datetime, key_id: str
) -> None:
    """One executemany UPDATE in one transaction, guarded by the version we read."""
    table = Site.__table__
    assert isinstance(table, Table)
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.credential_version == bindparam("b_old_version"),
        )
        .values(
            secret_digest=bindparam("b_digest"),
            secret_key_id=key_id,
            credential_version=bindparam("b_version"),
            credential_issued_at=bindparam("b_issued_at"),
        )
    )
    params = [
        {
            "b_id": c.site_id,
            "b_old_version": c.version - 1,
            "b_digest": c.digest,
            "b_version": c.version,
            "b_issued_at": issued_at,
        }
        for c in cards
    ]
    async with db.session() as s:
        result = await s.execute(statement, params)
        rowcount = result.rowcount  # type: ignore[attr-defined]
        if db.engine.dialect.supports_sane_multi_rowcount and rowcount != len(params):
            raise ProvisionConflict("site credentials changed during provisioning; run it again")
    forget_sites(db.url)
