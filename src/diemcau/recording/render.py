"""Minutes as documents: a print-ready HTML page and a PDF, both Vietnamese first.

PDF decision: fpdf2 (pure Python, LGPL, maintained, Unicode TrueType fonts and
tables built in; no system libraries, unlike WeasyPrint's Pango and Cairo), with
DejaVu Sans from Debian's ``fonts-dejavu-core`` (installed by scripts/setup.sh),
which carries every precomposed Vietnamese letter. Text is NFC-normalised
first, so no shaping engine is needed. ``DIEMCAU_MINUTES_FONT_DIR`` points
elsewhere if the fonts live in another folder.
"""

from __future__ import annotations

import html
import os
import unicodedata
from pathlib import Path

from diemcau.recording.minutes import MinutesContent, ProvinceLine

__all__ = ["FontMissing", "minutes_html", "minutes_pdf"]

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

HEADINGS = {
    "title": "BIÊN BẢN CUỘC HỌP",
    "agenda": "Nội dung / Agenda",
    "chair": "Chủ trì / Chair",
    "time": "Thời gian / Time",
    "attendance": "Thành phần tham dự theo tỉnh / Attendance by province",
    "interventions": "Phát biểu tại các điểm cầu / Interventions",
    "conclusions": "Kết luận và tỷ lệ xác nhận / Conclusions and acknowledgement",
    "directives": "Chỉ đạo ban hành trong cuộc họp / Directives issued",
    "summary": "Tóm tắt nội dung / Summary",
    "conclusion_notes": "Kết luận của chủ trì / Chair's conclusions",
    "closing": "Ghi chú / Notes",
}
PROVINCE_COLS = (
    "Tỉnh, thành / Province",
    "Mời / Invited",
    "Có mặt / Present",
    "Muộn / Late",
    "Vắng / Absent",
)
INTERVENTION_COLS = (
    "Điểm cầu / Site",
    "Tỉnh / Province",
    "Bắt đầu / From",
    "Kết thúc / To",
    "Giây / Seconds",
)
CONCLUSION_COLS = ("#", "Kết luận / Conclusion", "Ban hành / Published", "Xác nhận / Acked")
DIRECTIVE_COLS = ("#", "Chỉ đạo / Directive", "Ban hành / Issued", "Xác nhận / Acked")


class FontMissing(RuntimeError):
    """The DejaVu fonts for the PDF are not installed."""


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _font_dir() -> Path:
    dirs = [Path(d) for d in os.environ.get("DIEMCAU_MINUTES_FONT_DIR", "").split(":") if d]
    for folder in [*dirs, *FONT_DIRS]:
        if all((folder / f).is_file() for f in FONT_FILES.values()):
            return folder
    raise FontMissing(
        "the minutes PDF needs DejaVu Sans: install Debian's fonts-dejavu-core "
        "(scripts/setup.sh does) or set DIEMCAU_MINUTES_FONT_DIR"
    )


def _pct(acked: int, invited: int) -> str:
    return f"{acked}/{invited} ({(100.0 * acked / invited) if invited else 0.0:.1f}%)"


def _province_rows(content: MinutesContent) -> list[ProvinceLine]:
    return [*content.provinces, content.totals]


# --- HTML ----------------------------------------------------------------------------

_CSS = """
@page { size: A4; margin: 18mm 15mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11pt; color: #111; }
h1 { text-align: center; font-size: 16pt; margin: 0 0 4mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
thead { display: table-header-group; }
th, td { border: 1px solid #777; padding: 1mm 2mm; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; }
tr.total td { font-weight: bold; }
.meta td { border: none; padding: 0.5mm 2mm 0.5mm 0; }
.text { white-space: pre-wrap; }
"""


def _table(
    cols: tuple[str, ...], rows: list[list[str]], numeric: set[int], total: bool = False
) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="total"' if total and i == len(rows) - 1 else ""
        cells = "".join(
            f"<td{' class=n' if j in numeric else ''}>{html.escape(v)}</td>"
            for j, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _rows(content: MinutesContent) -> dict[str, list[list[str]]]:
    return {
        "attendance": [
            [p.province, str(p.invited), str(p.present), str(p.late), str(p.absent)]
            for p in _province_rows(content)
        ],
        "interventions": [
            [
                f"{i.site_code} {i.site_name}",
                i.province,
                i.started_at,
                i.ended_at or "",
                "" if i.seconds is None else f"{i.seconds:.0f}",
            ]
            for i in content.interventions
        ],
        "conclusions": [
            [str(n), c.body, c.published_at, _pct(c.acked, c.invited)]
            for n, c in enumerate(content.conclusions, 1)
        ],
        "directives": [
            [
                str(n),
                f"{d.title} ({d.priority}; {d.issued_by})",
                d.issued_at,
                _pct(d.acknowledged, d.recipients),
            ]
            for n, d in enumerate(content.directives, 1)
        ],
    }


def minutes_html(content: MinutesContent, *, draft: bool = False) -> str:
    """The minutes as one self-contained, print-ready HTML page."""
    esc = html.escape
    rows = _rows(content)
    parts = [
        "<!doctype html>",
        '<html lang="vi"><head><meta charset="utf-8">',
        f"<title>{esc(HEADINGS['title'])} — {esc(_nfc(content.title))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(HEADINGS['title'])}{' (DỰ THẢO / DRAFT)' if draft else ''}</h1>",
        f"<h1>{esc(_nfc(content.title))}</h1>",
        '<table class="meta">',
        f"<tr><td><b>{esc(HEADINGS['chair'])}:</b></td><td>{esc(_nfc(content.chair))}</td></tr>",
        f"<tr><td><b>{esc(HEADINGS['time'])}:</b></td><td>{esc(content.started_at or '')} – "
        f"{esc(content.ended_at or '')} (UTC+07:00)</td></tr></table>",
        f"<h2>{esc(HEADINGS['agenda'])}</h2><div class=text>{esc(_nfc(content.agenda))}</div>",
        f"<h2>{esc(HEADINGS['attendance'])}</h2>",
        _table(PROVINCE_COLS, rows["attendance"], {1, 2, 3, 4}, total=True),
        f"<h2>{esc(HEADINGS['interventions'])}</h2>",
        _table(INTERVENTION_COLS, rows["interventions"], {4}),
        f"<h2>{esc(HEADINGS['conclusions'])}</h2>",
        _table(CONCLUSION_COLS, rows["conclusions"], {0, 3}),
        f"<h2>{esc(HEADINGS['directives'])}</h2>",
        _table(DIRECTIVE_COLS, rows["directives"], {0, 3}),
    ]
    for key in ("summary", "conclusion_notes", "closing"):
        text = content.texts.get(key, "")
        if text:
            parts.append(f"<h2>{esc(HEADINGS[key])}</h2><div class=text>{esc(_nfc(text))}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --- PDF -----------------------------------------------------------------------------


def minutes_pdf(content: MinutesContent, *, draft: bool = False) -> bytes:
    """The minutes as an A4 PDF (DejaVu Sans; tables repeat their headings on new pages).

    fpdf2 is loaded on the first PDF, not with the server: importing it costs the
    control server ~30 MB of resident memory (docs/performance.md).
    """
    from diemcau.recording.render_pdf import minutes_pdf as render

    return render(content, draft=draft)
