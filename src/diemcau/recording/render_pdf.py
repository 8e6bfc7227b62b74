"""The minutes as a PDF with fpdf2, loaded only when a PDF is made (see `render.minutes_pdf`)."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.fonts import FontFace

from diemcau.recording.minutes import MinutesContent
from diemcau.recording.render import (
    CONCLUSION_COLS,
    DIRECTIVE_COLS,
    FONT_FILES,
    HEADINGS,
    INTERVENTION_COLS,
    PROVINCE_COLS,
    _font_dir,
    _nfc,
    _rows,
)

__all__ = ["minutes_pdf"]


class _Minutes(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", "", 8)
        self.cell(0, 6, f"Trang / Page {self.page_no()}/{{nb}}", align="C")


def _pdf_table(
    pdf: FPDF, cols: tuple[str, ...], rows: list[list[str]], widths: tuple[int, ...]
) -> None:
    if not rows:
        pdf.set_font("DejaVu", "", 9)
        pdf.cell(0, 6, "—", new_x="LMARGIN", new_y="NEXT")
        return
    pdf.set_font("DejaVu", "", 8.5)
    heading = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
    with pdf.table(
        col_widths=widths, headings_style=heading, line_height=5, text_align="LEFT"
    ) as table:
        for row in [list(cols), *rows]:
            r = table.row()
            for value in row:
                r.cell(_nfc(value))


def minutes_pdf(content: MinutesContent, *, draft: bool = False) -> bytes:
    """The minutes as an A4 PDF (DejaVu Sans; tables repeat their headings on new pages)."""
    folder = _font_dir()
    pdf = _Minutes(format="A4")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=16)
    for style, name in FONT_FILES.items():
        pdf.add_font("DejaVu", style, str(folder / name))
    pdf.set_title(_nfc(f"{HEADINGS['title']} — {content.title}"))
    pdf.set_creator("diemcau")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    title = HEADINGS["title"] + (" (DỰ THẢO / DRAFT)" if draft else "")
    pdf.multi_cell(0, 8, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 8, _nfc(content.title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(
        0, 6, f"{HEADINGS['chair']}: {_nfc(content.chair)}", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.multi_cell(
        0,
        6,
        f"{HEADINGS['time']}: {content.started_at or ''} – {content.ended_at or ''} (UTC+07:00)",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    rows = _rows(content)

    def heading(key: str) -> None:
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 11)
        pdf.multi_cell(0, 7, HEADINGS[key], new_x="LMARGIN", new_y="NEXT")

    def text(value: str) -> None:
        pdf.set_font("DejaVu", "", 10)
        pdf.multi_cell(0, 5.5, _nfc(value) or "—", new_x="LMARGIN", new_y="NEXT")

    heading("agenda")
    text(content.agenda)
    heading("attendance")
    _pdf_table(pdf, PROVINCE_COLS, rows["attendance"], (70, 25, 25, 25, 25))
    heading("interventions")
    _pdf_table(pdf, INTERVENTION_COLS, rows["interventions"], (55, 40, 33, 33, 19))
    heading("conclusions")
    _pdf_table(pdf, CONCLUSION_COLS, rows["conclusions"], (8, 100, 36, 36))
    heading("directives")
    _pdf_table(pdf, DIRECTIVE_COLS, rows["directives"], (8, 100, 36, 36))
    for key in ("summary", "conclusion_notes", "closing"):
        if content.texts.get(key):
            heading(key)
            text(content.texts[key])
    return bytes(pdf.output())
