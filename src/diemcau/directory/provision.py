"""Bulk provisioning: a credential for every site, and the sheets that hand them out.

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

import asyncio
import csv
import html
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import segno
from sqlalchemy import Table, bindparam, select, update

from diemcau.accounts.service import UnknownProvince, join_code
from diemcau.accounts.service import join_link as service_join_link
from diemcau.accounts.tokencache import forget_sites
from diemcau.errors import Conflict, Invalid
from diemcau.security import Key, KeyRing, new_site_secret, site_secret_digest
from diemcau.spreadsheet import Column, Sheet, write_xlsx
from diemcau.store import Database
from diemcau.store.models import Site, Unit, utcnow
from diemcau.text import fold, spreadsheet_safe

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

ProgressCallback = Callable[[int, int], None]

# Below this many QR codes a process pool costs more to start than it saves.
_POOL_THRESHOLD = 200

CSV_HEADER = (
    "Mã điểm cầu (site code)",
    "Tên điểm cầu (site name)",
    "Loại đơn vị (unit type)",
    "Đơn vị cấp trên (parent units)",
    "Tỉnh/thành (province)",
    "Đường dẫn tham gia (join link)",
    "Mã tham gia (join code)",
)


class ProvisionConflict(Conflict):
    """Another run changed these sites' credentials meanwhile; nothing was stored."""


@dataclass(frozen=True)
class ProvinceSheet:
    """The files written for one province (or for the national level)."""

    province_code: str
    province_name: str
    sites: int
    csv_path: Path
    html_path: Path
    xlsx_path: Path | None = None


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


@dataclass
class _Card:
    code: str
    name: str
    unit_type: str
    parents: str
    province: str
    link: str
    join: str
    site_id: int
    digest: str
    version: int
    svg: str = ""


def csv_safe(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (OWASP CSV injection).

    A cell starting with ``= + - @`` (or tab / carriage return) gets a leading
    single quote, so Excel and LibreOffice show it as text.
    """
    return spreadsheet_safe(value)


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


def join_link(base_url: str, site_code: str, secret: str) -> str:
    """The join link of a site's secret (see `diemcau.accounts.service.join_link`)."""
    return service_join_link(base_url, join_code(site_code, secret))


def _file_code(code: str) -> str:
    """A unit code made safe for a file name (imported codes may hold ``/`` or ``..``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", code).strip("_") or "unit"


# One source for the QR options, used inline and passed to the worker processes.
_QR_MAKE: dict[str, Any] = {"error": "m", "boost_error": False, "micro": False}
_QR_SVG: dict[str, Any] = {"border": 4, "omitsize": True, "dark": "#000"}

# A QR worker: JSON-encoded links on stdin, one JSON-encoded SVG per line on stdout.
# It runs as ``python -c`` and imports only segno: unlike multiprocessing's
# "spawn", it never re-imports the caller's __main__, and unlike "fork" it does
# not copy the parent's database threads.
_WORKER = """
import json, sys
import segno
make_kw, svg_kw = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for line in sys.stdin:
    svg = segno.make(json.loads(line), **make_kw).svg_inline(**svg_kw)
    sys.stdout.write(json.dumps(svg) + "\\n")
sys.stdout.flush()
"""


def qr_svg(data: str) -> str:
    """An inline SVG QR code of `data` (error correction M, sized by CSS)."""
    svg: str = segno.make(data, **_QR_MAKE).svg_inline(**_QR_SVG)
    return svg


async def _render_inline(cards: Sequence[_Card], tick: Callable[[], None]) -> None:
    for index, card in enumerate(cards):
        card.svg = qr_svg(card.link)
        tick()
        if index % 50 == 49:
            await asyncio.sleep(0)  # let other tasks run


async def _render_worker(cards: Sequence[_Card], tick: Callable[[], None]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WORKER,
        json.dumps(_QR_MAKE),
        json.dumps(_QR_SVG),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 20,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def feed() -> None:
        # Fed concurrently with reading, so neither pipe can fill up and deadlock.
        stdin.write("".join(json.dumps(c.link) + "\n" for c in cards).encode())
        await stdin.drain()
        stdin.close()

    feeder = asyncio.create_task(feed())
    try:
        for card in cards:
            line = await stdout.readline()
            if not line:
                raise RuntimeError("QR worker stopped early")
            card.svg = json.loads(line)
            tick()
        await feeder
        if await proc.wait() != 0:
            raise RuntimeError(f"QR worker failed with exit code {proc.returncode}")
    finally:
        feeder.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _render_qr(
    cards: list[_Card], progress: ProgressCallback | None, workers: int | None
) -> None:
    """Fill in every card's QR code: inline for small runs, else in worker processes."""
    total = len(cards)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress and (done % 25 == 0 or done == total):
            progress(done, total)

    if progress:
        progress(0, total)
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    if total < _POOL_THRESHOLD or n_workers < 2:
        await _render_inline(cards, tick)
        return
    slices = [cards[i::n_workers] for i in range(n_workers)]
    tasks = [asyncio.create_task(_render_worker(part, tick)) for part in slices if part]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Tree:
    """Unit names and parents, loaded once, to describe where each site lies."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.units: dict[int, Any] = {row.id: row for row in rows}

    def parents(self, unit_id: int) -> str:
        """Names of the ancestors below the country, nearest first ("Quận 1, TP HCM")."""
        names: list[str] = []
        unit = self.units.get(unit_id)
        seen = 0
        while unit is not None and unit.parent_id is not None and seen < 64:
            unit = self.units.get(unit.parent_id)
            if unit is None or unit.level == "country":
                break
            names.append(unit.name)
            seen += 1
        return ", ".join(names)

    def root_of(self, unit_id: int) -> Any:
        unit = self.units[unit_id]
        seen = 0
        while unit.parent_id is not None and unit.parent_id in self.units and seen < 64:
            unit = self.units[unit.parent_id]
            seen += 1
        return unit


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


def _write_csv(path: Path, cards: Sequence[_Card]) -> None:
    # utf-8-sig: Excel opens Vietnamese text correctly only with a BOM.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for c in cards:
            writer.writerow(
                [
                    csv_safe(v)
                    for v in (c.code, c.name, c.unit_type, c.parents, c.province, c.link, c.join)
                ]
            )


# Vietnam's time (UTC+7) for the issue date in the workbook.
_VIETNAM = timezone(timedelta(hours=7))


def _write_xlsx(path: Path, title: str, cards: Sequence[_Card], issued_at: datetime) -> None:
    """The CSV's columns plus the issue time as a real date cell, for offices using Excel."""
    sheet = Sheet(
        title=title,
        columns=[
            *(Column(h) for h in CSV_HEADER[:5]),
            Column(CSV_HEADER[5], 60),
            Column(CSV_HEADER[6], 40),
            Column("Cấp lúc (issued at, UTC+07:00)", 20),
        ],
        rows=(
            (c.code, c.name, c.unit_type, c.parents, c.province, c.link, c.join, issued_at)
            for c in cards
        ),
        tz=_VIETNAM,
    )
    write_xlsx(path, sheet)


_SHEET_CSS = """
@page { size: A4; margin: 10mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans", "DejaVu Sans", Arial, sans-serif; margin: 0; color: #000; }
header { margin-bottom: 6mm; }
header h1 { font-size: 16pt; margin: 0 0 2mm; }
header p { font-size: 9pt; margin: 0; }
.cards { display: grid; grid-template-columns: 1fr 1fr; gap: 4mm; }
.card { border: 0.3mm solid #000; padding: 3mm; height: 64mm; display: flex; gap: 4mm;
        break-inside: avoid; page-break-inside: avoid; overflow: hidden; }
.qr { flex: 0 0 38mm; }
.qr svg { width: 38mm; height: 38mm; display: block; }
.info { flex: 1; min-width: 0; font-size: 9pt; }
.label { font-size: 7.5pt; color: #333; margin-top: 2mm; }
.name { font-size: 12pt; font-weight: bold; margin: 0; }
.mono { font-family: "DejaVu Sans Mono", monospace; word-break: break-all; font-size: 8pt; }
.en { color: #555; font-style: italic; }
@media screen { body { margin: 10mm auto; max-width: 190mm; } }
"""


def _write_html(path: Path, title: str, cards: Sequence[_Card], issued_at: datetime) -> None:
    esc = html.escape
    parts = [
        '<!DOCTYPE html>\n<html lang="vi"><head><meta charset="utf-8">',
        '<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">',
        f"<title>Điểm cầu — {esc(title)}</title><style>{_SHEET_CSS}</style></head><body>",
        f"<header><h1>Danh sách điểm cầu — {esc(title)}</h1>",
        f"<p>{len(cards)} điểm cầu · cấp lúc {esc(issued_at.strftime('%Y-%m-%d %H:%M UTC'))}"
        ' · <span class="en">site credentials, issued at the time shown</span></p>',
        "<p><strong>Giữ bí mật:</strong> mã tham gia cho phép đăng nhập với tư cách điểm cầu."
        ' <span class="en">Keep secret: a join code logs in as that site.</span></p>',
        '</header><main class="cards">',
    ]
    for c in cards:
        parts.append(
            f'<section class="card"><div class="qr">{c.svg}</div><div class="info">'
            f'<div class="label">Điểm cầu <span class="en">Site</span></div>'
            f'<p class="name">{esc(c.name)}</p>'
            f"<div>{esc(c.parents)}</div>"
            f'<div class="label">Đường dẫn tham gia <span class="en">Join link</span></div>'
            f'<div class="mono"><a href="{esc(c.link)}">{esc(c.link)}</a></div>'
            f'<div class="label">Mã tham gia <span class="en">Join code</span></div>'
            f'<div class="mono">{esc(c.join)}</div>'
            f'<div class="label">Mã điểm cầu <span class="en">Site code</span></div>'
            f'<div class="mono">{esc(c.code)}</div></div></section>'
        )
    parts.append("</main></body></html>\n")
    path.write_text("".join(parts), encoding="utf-8")


def _write_index(out_dir: Path, sheets: Sequence[ProvinceSheet]) -> Path:
    """List every sheet in the folder: this run's with names and counts, older ones by file."""
    esc = html.escape
    current = {s.html_path.name: s for s in sheets}
    rows = []
    for path in sorted(out_dir.glob("*.html")):
        if path.name == "index.html":
            continue
        sheet = current.get(path.name)
        if sheet is not None:
            label = f"{esc(sheet.province_name)} ({esc(sheet.province_code)})"
            count = str(sheet.sites)
        else:
            label, count = esc(path.stem), ""
        links = " ".join(
            f'<a href="{esc(path.with_suffix(ext).name)}">{ext[1:].upper()}</a>'
            for ext in (".csv", ".xlsx")
            if (out_dir / path.with_suffix(ext).name).exists()
        )
        rows.append(
            f'<tr><td><a href="{esc(path.name)}">{label}</a></td>'
            f"<td>{count}</td><td>{links}</td></tr>"
        )
    body = (
        '<!DOCTYPE html>\n<html lang="vi"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer"><title>Danh sách điểm cầu</title>'
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;"
        "text-align:left}</style></head><body>"
        "<h1>Danh sách điểm cầu <small>(site sheets)</small></h1><table>"
        "<tr><th>Tỉnh/thành (province)</th><th>Số điểm cầu (sites)</th>"
        "<th>Tệp (file)</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )
    index = out_dir / "index.html"
    index.write_text(body, encoding="utf-8")
    return index


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

    tree = _Tree(unit_rows)
    depth = {row.id: 0 for row in unit_rows}
    for uid in depth:
        unit, d = tree.units[uid], 0
        while unit.parent_id is not None and unit.parent_id in tree.units and d < 64:
            unit, d = tree.units[unit.parent_id], d + 1
        depth[uid] = d

    revoked = sum(1 for r in site_rows if r.revoked)
    targets = [r for r in site_rows if not r.revoked and (rotate or r.secret_digest is None)]
    kept = len(site_rows) - revoked - len(targets)
    targets.sort(key=lambda r: (depth.get(r.unit_id, 0), r.code))

    groups: dict[int, tuple[Any, list[_Card]]] = {}
    for row in targets:
        group_unit = (
            tree.units[row.province_id]
            if row.province_id is not None and row.province_id in tree.units
            else tree.root_of(row.unit_id)
        )
        unit = tree.units.get(row.unit_id)
        secret = new_site_secret()
        card = _Card(
            code=row.code,
            name=row.name,
            unit_type=unit.unit_type if unit is not None else "",
            parents=tree.parents(row.unit_id),
            province=group_unit.name,
            link=join_link(base_url, row.code, secret),
            join=join_code(row.code, secret),
            site_id=row.id,
            digest=site_secret_digest(key, secret),
            version=row.credential_version + 1,
        )
        groups.setdefault(group_unit.id, (group_unit, []))[1].append(card)

    all_cards = [card for _, cards in groups.values() for card in cards]
    await _render_qr(all_cards, progress, workers)

    out.mkdir(parents=True, exist_ok=True)
    issued_at = utcnow()
    sheets: list[ProvinceSheet] = []
    temp_files: list[tuple[Path, Path]] = []
    taken: set[str] = set()
    try:
        for group_unit, cards in sorted(groups.values(), key=lambda g: g[0].code):
            stem = _free_name(
                out,
                f"{_file_code(group_unit.code)}-{slugify(group_unit.name)}",
                overwrite=rotate,
                taken=taken,
            )
            csv_path, html_path = out / f"{stem}.csv", out / f"{stem}.html"
            csv_tmp, html_tmp = out / f".{stem}.csv.tmp", out / f".{stem}.html.tmp"
            temp_files += [(csv_tmp, csv_path), (html_tmp, html_path)]
            _write_csv(csv_tmp, cards)
            _write_html(html_tmp, group_unit.name, cards, issued_at)
            xlsx_path = out / f"{stem}.xlsx" if xlsx else None
            if xlsx_path is not None:
                xlsx_tmp = out / f".{stem}.xlsx.tmp"
                temp_files.append((xlsx_tmp, xlsx_path))
                _write_xlsx(xlsx_tmp, group_unit.name, cards, issued_at)
            sheets.append(
                ProvinceSheet(
                    group_unit.code, group_unit.name, len(cards), csv_path, html_path, xlsx_path
                )
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
    index = _write_index(out, sheets)
    return ProvisionResult(
        issued=len(all_cards),
        kept=kept,
        revoked=revoked,
        sheets=sheets,
        index_path=index,
        seconds=time.perf_counter() - started,
    )


async def _store_digests(
    db: Database, cards: Sequence[_Card], issued_at: datetime, key_id: str
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
