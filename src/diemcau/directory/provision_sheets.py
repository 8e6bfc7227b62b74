"""The printable HTML pages of a provisioning run: a sheet of cards per province, the index.

Each card shows a site's name, where it lies, its join link, its join code and a QR
code of the link. The pages ask browsers to send no referrer and robots not to index
them: they carry secrets.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from diemcau.directory.provision_cards import Card, ProvinceSheet

__all__ = ["write_html", "write_index"]

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


def write_html(path: Path, title: str, cards: Sequence[Card], issued_at: datetime) -> None:
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


def write_index(out_dir: Path, sheets: Sequence[ProvinceSheet]) -> Path:
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
