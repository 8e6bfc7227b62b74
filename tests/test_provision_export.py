"""Bulk provisioning (diemcau.directory.provision): credentials, CSV and printable sheets."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import zxingcpp
from sqlalchemy import select, text

from diemcau.accounts.service import UnknownProvince, authenticate_site, rotate_site
from diemcau.directory import provision as provision_module
from diemcau.directory import provision_qr
from diemcau.directory.provision import csv_safe, provision, qr_svg, slugify
from diemcau.errors import Invalid
from diemcau.security import site_secret_digest
from diemcau.store import Database, Site, Unit
from diemcau.text import fold
from tests.test_accounts_service import EVIL_NAME, KEY, make_tree

BASE = "https://hop.example.vn"
ALL_SITES = {"TW", "01", "00001", "00004", "79", "760", "26734", "26737"}


def _decode_svg_qr(svg: str) -> str:
    """Rasterise a segno SVG path (``M x y``, ``m dx dy``, ``h n`` runs) and decode it.

    This reads the QR code exactly as printed on the sheet, with an independent
    decoder (zxing-cpp), so a wrong or unreadable code fails the test.
    """
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))  # type: ignore[union-attr]
    path = re.search(r' d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    grid = np.full((size, size), 255, dtype=np.uint8)
    x = y = 0.0
    for op, a, b in re.findall(r"([A-Za-z])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        elif op == "h":
            grid[int(y), int(x) : int(x + float(a))] = 0
            x += float(a)
        else:
            raise AssertionError(f"unexpected SVG path command {op}")
    image = np.kron(grid, np.ones((4, 4), dtype=np.uint8))  # 4 px per module
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1
    return str(found[0].text)


def _decode_sheet(page: str) -> list[str]:
    return [_decode_svg_qr(svg) for svg in re.findall(r"<svg.*?</svg>", page)]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert all(len(r) == len(header) == 7 for r in body)
    keys = ["code", "name", "unit_type", "parents", "province", "link", "join"]
    return [dict(zip(keys, r, strict=True)) for r in body]


def _codes_in(out: Path) -> dict[str, str]:
    """Join codes by site code, from every CSV in `out`."""
    found: dict[str, str] = {}
    for path in sorted(out.glob("*.csv")):
        for row in _read_csv(path):
            code = row["code"].lstrip("'")
            found[code] = row["join"]
    return found


async def _digests(db: Database) -> dict[str, str | None]:
    async with db.session() as s:
        rows = (await s.execute(select(Site.code, Site.secret_digest))).all()
    return {code: digest for code, digest in rows}


async def test_whole_tree_writes_sheets_and_stores_only_digests(
    db: Database, tmp_path: Path
) -> None:
    await make_tree(db)
    seen: list[tuple[int, int]] = []
    out = tmp_path / "out"
    result = await provision(db, KEY, BASE + "/", out, progress=lambda d, t: seen.append((d, t)))

    assert (result.issued, result.kept, result.revoked) == (8, 0, 0)
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "01-thanh-pho-ha-noi.csv",
        "01-thanh-pho-ha-noi.html",
        "79-thanh-pho-ho-chi-minh.csv",
        "79-thanh-pho-ho-chi-minh.html",
        "VN-viet-nam.csv",
        "VN-viet-nam.html",
        "index.html",
    ]

    hcm = _read_csv(out / "79-thanh-pho-ho-chi-minh.csv")
    assert [r["code"] for r in hcm] == ["79", "760", "26734", "26737"]  # by depth, then code
    ben_nghe = hcm[2]
    assert ben_nghe["name"] == "Phường Bến Nghé"
    assert ben_nghe["unit_type"] == "Phường"
    assert ben_nghe["parents"] == "Quận 1, Thành phố Hồ Chí Minh"
    assert ben_nghe["province"] == "Thành phố Hồ Chí Minh"
    assert ben_nghe["link"] == f"{BASE}/join#{ben_nghe['join']}"
    assert ben_nghe["join"].startswith("26734:")
    # The formula-looking site name is neutralised in the CSV, kept in the store.
    assert hcm[3]["name"] == "'" + EVIL_NAME

    # Every exported join code logs its site in; only HMAC digests are stored.
    codes = _codes_in(out)
    assert set(codes) == ALL_SITES
    digests = await _digests(db)
    for site_code, code in codes.items():
        principal = await authenticate_site(db, KEY, code)
        assert principal is not None and principal.code == site_code
        secret = code.rsplit(":", 1)[1]
        assert len(secret) >= 27  # 160 bits in URL-safe base64
        assert digests[site_code] == site_secret_digest(KEY, secret)
    await db.dispose()  # flush the WAL so the file holds everything
    raw = Path(db.url.split("///", 1)[1]).read_bytes()
    for code in codes.values():
        assert code.rsplit(":", 1)[1].encode() not in raw

    page = (out / "79-thanh-pho-ho-chi-minh.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 4
    assert qr_svg(ben_nghe["link"]) in page
    # Every printed QR code scans to its site's join link, in card order.
    assert _decode_sheet(page) == [row["link"] for row in hcm]
    for label in ("Điểm cầu", "Đường dẫn tham gia", "Mã tham gia", "@page { size: A4"):
        assert label in page
    assert EVIL_NAME not in page  # the apostrophes are escaped
    assert "=cmd|&#x27; /C calc&#x27;!A0" in page
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "79-thanh-pho-ho-chi-minh.html" in index and "Thành phố Hà Nội" in index


async def test_province_scope_rerun_and_rotate(db: Database, tmp_path: Path) -> None:
    ids = await make_tree(db)
    out = tmp_path / "sheets"

    with pytest.raises(UnknownProvince):
        await provision(db, KEY, BASE, out, province_code="760")  # a district
    assert not out.exists()

    first = await provision(db, KEY, BASE, out, province_code="79")
    assert first.issued == 4 and [s.province_code for s in first.sheets] == ["79"]
    digests = await _digests(db)
    assert {c for c, d in digests.items() if d} == {"79", "760", "26734", "26737"}
    first_codes = _codes_in(out)
    first_csv = (out / "79-thanh-pho-ho-chi-minh.csv").read_bytes()

    # Re-running without rotate keeps every credential and every existing sheet.
    again = await provision(db, KEY, BASE, out, province_code="79")
    assert (again.issued, again.kept) == (0, 4) and again.sheets == []
    assert await _digests(db) == digests
    assert (out / "79-thanh-pho-ho-chi-minh.csv").read_bytes() == first_csv

    # A new site in the province and a revoked one: only the new one is issued,
    # into a second sheet that leaves the first untouched.
    async with db.session() as s:
        s.add(
            Site(
                code="26734-2",
                name="Nhà văn hoá Bến Nghé",
                search_key=fold("Nhà văn hoá Bến Nghé"),
                unit_id=ids["26734"],
                province_id=ids["79"],
                kind="commune",
            )
        )
        await s.execute(
            text("UPDATE sites SET revoked = :t, secret_digest = NULL WHERE code = '26737'"),
            {"t": True},
        )
    added = await provision(db, KEY, BASE, out, province_code="79")
    assert (added.issued, added.kept, added.revoked) == (1, 3, 1)
    assert added.sheets[0].csv_path.name == "79-thanh-pho-ho-chi-minh-2.csv"
    assert [r["code"] for r in _read_csv(added.sheets[0].csv_path)] == ["26734-2"]
    assert (out / "79-thanh-pho-ho-chi-minh.csv").read_bytes() == first_csv
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "79-thanh-pho-ho-chi-minh.html" in index and "79-thanh-pho-ho-chi-minh-2.html" in index

    # The whole country: the other province and the chair site get theirs now.
    country = await provision(db, KEY, BASE, out)
    assert country.issued == 4
    assert sorted(s.province_code for s in country.sheets) == ["01", "VN"]

    # Rotation replaces every credential in scope; old codes stop working,
    # revoked sites stay revoked.
    rotated = await provision(db, KEY, BASE, out, province_code="79", rotate=True)
    assert (rotated.issued, rotated.revoked) == (4, 1)
    assert await authenticate_site(db, KEY, first_codes["26734"]) is None
    new_codes = {r["code"]: r["join"] for r in _read_csv(rotated.sheets[0].csv_path)}
    assert rotated.sheets[0].csv_path.name == "79-thanh-pho-ho-chi-minh.csv"  # overwritten
    principal = await authenticate_site(db, KEY, new_codes["26734"])
    assert principal is not None and principal.credential_version == 2
    assert (await _digests(db))["26737"] is None
    async with db.session() as s:
        hanoi_unit = await s.get(Unit, ids["01"])
    assert hanoi_unit is not None


async def test_process_pool_path_and_both_stores(
    any_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The multi-process QR path (forced on for a small tree) on SQLite and PostgreSQL."""
    await make_tree(any_db)
    monkeypatch.setattr(provision_qr, "_POOL_THRESHOLD", 0)
    progress: list[int] = []
    result = await provision(
        any_db, KEY, BASE, tmp_path, workers=2, progress=lambda d, t: progress.append(d)
    )
    assert result.issued == 8 and progress[-1] == 8 and progress == sorted(progress)
    codes = _codes_in(tmp_path)
    assert set(codes) == ALL_SITES
    for code in codes.values():
        assert await authenticate_site(any_db, KEY, code) is not None
    for sheet in result.sheets:
        page = sheet.html_path.read_text(encoding="utf-8")
        assert _decode_sheet(page) == [r["link"] for r in _read_csv(sheet.csv_path)]
        assert not re.search(r"\.tmp$", " ".join(p.name for p in tmp_path.iterdir()))
    # A single-site rotation after provisioning invalidates only that sheet line.
    await rotate_site(any_db, KEY, "00001")
    assert await authenticate_site(any_db, KEY, codes["00001"]) is None
    assert await authenticate_site(any_db, KEY, codes["00004"]) is not None


async def test_failed_run_writes_nothing(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A credential changed by someone else mid-run: no digest stored, no file left."""
    await make_tree(db)
    original = provision_qr.render_qr

    async def render_then_rotate(*args: object, **kwargs: object) -> None:
        await original(*args, **kwargs)  # type: ignore[arg-type]
        await rotate_site(db, KEY, "00001")  # a concurrent single-site rotation

    monkeypatch.setattr(provision_module, "render_qr", render_then_rotate)
    out = tmp_path / "out"
    with pytest.raises(provision_module.ProvisionConflict):
        await provision(db, KEY, BASE, out)
    assert list(out.iterdir()) == []
    digests = await _digests(db)
    assert [code for code, digest in digests.items() if digest] == ["00001"]


@pytest.mark.parametrize(
    "base_url",
    ["javascript:alert(1)", "ftp://h", "http://", "http://h/a b", 'http://h/"x', "http://h/?q=1"],
)
async def test_bad_base_url_is_refused_before_anything(
    db: Database, tmp_path: Path, base_url: str
) -> None:
    await make_tree(db)
    with pytest.raises(Invalid):
        await provision(db, KEY, base_url, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not any((await _digests(db)).values())


async def test_odd_imported_codes_stay_inside_the_folder(db: Database, tmp_path: Path) -> None:
    """A province code with '/' and '..' and a site code with '#' and a space."""
    ids = await make_tree(db)
    async with db.session() as s:
        hanoi = await s.get(Unit, ids["01"])
        assert hanoi is not None
        hanoi.code = "../../x/01"
        ba_dinh = (await s.execute(select(Site).where(Site.code == "00001"))).scalar_one()
        ba_dinh.code = "A #1"
    out = tmp_path / "deep" / "out"
    result = await provision(db, KEY, BASE, out, province_code="../../x/01")
    assert [p.parent for p in (result.sheets[0].csv_path, result.sheets[0].html_path)] == [out] * 2
    assert result.sheets[0].csv_path.name == "x_01-thanh-pho-ha-noi.csv"
    rows = {r["code"]: r for r in _read_csv(result.sheets[0].csv_path)}
    link = rows["A #1"]["link"]
    assert link.startswith(f"{BASE}/join#A%20%231:")
    assert unquote(link.split("#", 1)[1]) == rows["A #1"]["join"]
    assert await authenticate_site(db, KEY, rows["A #1"]["join"]) is not None
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "diemcau.db" not in p.name]
    assert {p.parent for p in written} == {out} and len(written) == 3


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+49", "'+49"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Xã Tân Phú", "Xã Tân Phú"),
        ("", ""),
    ],
)
def test_csv_cells_that_look_like_formulas_are_neutralised(cell: str, expected: str) -> None:
    assert csv_safe(cell) == expected


def test_slugs_are_ascii_file_names() -> None:
    assert slugify("Thành phố Hồ Chí Minh") == "thanh-pho-ho-chi-minh"
    assert slugify("Tỉnh Bà Rịa - Vũng Tàu") == "tinh-ba-ria-vung-tau"
    assert slugify("../..") == "site"
