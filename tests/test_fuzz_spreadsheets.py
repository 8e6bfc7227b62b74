"""Spreadsheet writers and the directory CSV import, fuzzed (docs/security.md).

Hypothesis draws cells from the payloads of `tests/spreadsheet_oracle.py`
(formula prefixes, DDE, HYPERLINK, tab/CR/newline/space/full-width prefixes,
control characters, BOMs, U+FFFE, lone surrogates), any text, text past
Excel's 32,767-character cell limit, integers past 64 bits, non-finite floats,
dates and times with and without a zone. Every workbook must open in openpyxl
with no formula cell, no character XML cannot carry, no cell over the limit and
no cell a spreadsheet would run; every CSV must parse back, cell for cell, to
the text written (a neutralised cell only gains its leading quote).

The directory import (`parse_csv`) gets random bytes, invalid UTF-8, one and
two BOMs, semicolon, tab and pipe delimiters, bare CR line ends, unbalanced
quotes, NUL characters and cells past the csv module's field limit: it returns
records or raises `CsvImportError` naming lines of the file, never anything
else; and names that look like formulas are kept as they were written.
"""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diemcau.command.exports import Table, to_csv, to_xlsx
from diemcau.directory.csv_import import CsvImportError, parse_csv
from diemcau.spreadsheet import Column, Sheet, csv_bytes, xlsx_bytes
from diemcau.text import nfc
from tests.fuzz_support import fuzz_settings
from tests.spreadsheet_oracle import HOSTILE, csv_cells, dangerous, xlsx_cells

EXAMPLES = 80

_prefixed = st.builds(
    lambda p, t: p + t,
    st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", " ", "＝", "\u3000", "'"]),
    st.text(max_size=30),
)
texts = st.one_of(
    st.sampled_from(HOSTILE),
    _prefixed,
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None), max_size=20),
    st.integers(32_700, 33_000).map(lambda n: "=" + "x" * n),
    st.integers(32_700, 33_000).map(lambda n: "\x07" * n),
)
cells = st.one_of(
    texts,
    texts,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=7))])),
)


def _written(value: str) -> str:
    """What the CSV cell of a text value must read back as."""
    return "'" + value if dangerous(value) else value


@fuzz_settings(EXAMPLES)
@given(
    title=texts,
    headings=st.lists(texts, min_size=1, max_size=4),
    rows=st.lists(st.lists(cells, max_size=5), max_size=6),
)
def test_shared_writer_never_fails_and_never_writes_a_formula(
    title: str, headings: list[str], rows: list[list[Any]]
) -> None:
    sheet = Sheet(title=title, columns=[Column(h) for h in headings], rows=rows)
    assert list(xlsx_cells(xlsx_bytes(sheet)))
    sheet = Sheet(title=title, columns=[Column(h) for h in headings], rows=rows)
    parsed = [cell for _, cell in csv_cells(csv_bytes(sheet))]
    texts_in = [_written(h) for h in headings]
    texts_in += [_written(v) for r in rows for v in r if isinstance(v, str)]
    surrogate_free = [t for t in texts_in if not any("\ud800" <= c <= "\udfff" for c in t)]
    for t in surrogate_free:
        if "\r" not in t and "\x00" not in t:
            assert t in parsed, (t, parsed)


@fuzz_settings(EXAMPLES)
@given(
    rows=st.lists(
        st.lists(st.one_of(texts, st.integers(), st.floats(), st.none()), min_size=3, max_size=3),
        max_size=6,
    )
)
def test_command_exports_never_fail_and_never_write_a_formula(rows: list[list[Any]]) -> None:
    table = Table(keys=["period", "site_name", "value"], labels=["Kỳ", "Tên", "Giá trị"])
    table.rows = [list(r) for r in rows]
    csv_text = [c for _, c in csv_cells(to_csv(table))]
    assert csv_text[:3] == ["period", "site_name", "value"]
    refs = list(xlsx_cells(to_xlsx(table, "=evil")))
    assert refs


# --- the directory CSV import ----------------------------------------------------------

HEADER = "code,name,type,parent_code"


def _tree_line(code: str, name: str, parent: str) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    return f"{code},{quoted},Xã,{parent}"


@st.composite
def directory_files(draw: st.DrawFn) -> bytes:
    """A CSV tree, sometimes valid, with hostile names and broken framing."""
    names = draw(st.lists(texts, min_size=1, max_size=4))
    lines = [HEADER, _tree_line("VN", "Việt Nam", ""), _tree_line("01", "Hà Nội", "VN")]
    lines += [_tree_line(f"0000{i}", n, "01") for i, n in enumerate(names, start=1)]
    text = "\n".join(lines) + "\n"
    how = draw(
        st.sampled_from(
            [
                "as is",
                "crlf",
                "cr",
                "semicolon",
                "tab",
                "pipe",
                "bom2",
                "bad utf8",
                "nul",
                "quote",
                "huge",
                "random",
                "cut",
            ]
        )
    )
    if how == "crlf":
        text = text.replace("\n", "\r\n")
    elif how == "cr":
        text = text.replace("\n", "\r")
    elif how in ("semicolon", "tab", "pipe"):
        text = text.replace(",", {"semicolon": ";", "tab": "\t", "pipe": "|"}[how])
    elif how == "bom2":
        text = "\ufeff\ufeff" + text
    elif how == "nul":
        text = text.replace("Hà Nội", "Hà\x00Nội")
    elif how == "quote":
        text = text.replace('"Hà Nội"', '"Hà Nội')
    elif how == "huge":
        text += _tree_line("00099", "x" * 140_000, "01") + "\n"
    data = ("\ufeff" + text if draw(st.booleans()) else text).encode("utf-8", "surrogatepass")
    if how == "bad utf8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff\xfe" + data[at:]
    elif how == "random":
        data = draw(st.binary(max_size=300))
    elif how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    return data


@fuzz_settings(EXAMPLES * 2)
@given(data=directory_files())
def test_directory_import_refuses_by_line_or_keeps_names_verbatim(data: bytes) -> None:
    lines = data.count(b"\n") + data.count(b"\r") + 2
    try:
        records = parse_csv(data)
    except CsvImportError as exc:
        assert exc.errors, "a refusal names at least one line"
        for e in exc.errors:
            assert 1 <= e.line <= lines, (e, lines)
            assert e.reason
        return
    assert records[0].code == "VN"
    for r in records:
        assert r.name and len(r.name) <= 200
        assert "\x00" not in r.name


@pytest.mark.parametrize("name", [h for h in HOSTILE if h.strip("\x00\x07\x1b\r\n\t ")])
def test_directory_import_keeps_formula_looking_names(name: str) -> None:
    """Imports store what the file says; only exports neutralise (one place, one rule)."""
    text = "\n".join([HEADER, _tree_line("VN", "Việt Nam", ""), _tree_line("01", name, "VN")])
    try:
        records = parse_csv(text.encode())
    except CsvImportError as exc:  # a control character the import refuses, by line
        assert [e.line for e in exc.errors] == [3], exc.errors
        return
    assert records[1].name == nfc(name)


# --- what the fuzzing found, pinned -----------------------------------------------------


@pytest.mark.parametrize("value", ["\n=1+1", " =1+1", "\u3000@SUM(1)", "＝1+1", "\r\n+1"])
def test_formula_after_whitespace_or_full_width_is_neutralised(value: str) -> None:
    """Found: only a formula character first was neutralised; a line break, a space or
    an ideographic space before it, or its full-width form, went out as is."""
    sheet = Sheet(title="t", columns=[Column("a")], rows=[[value]])
    assert [c for _, c in csv_cells(csv_bytes(sheet))][1] == "'" + value
    assert [v for _, v in xlsx_cells(xlsx_bytes(sheet))][1].startswith("'")


def test_a_bare_carriage_return_cannot_start_a_cell_in_command_csv() -> None:
    """Found: the command exports wrote LF line ends, so a cell holding a bare CR was
    not quoted, and a spreadsheet began a new line there: "x\\r=2+2" gave a cell "=2+2"."""
    table = Table(keys=["site_name"], labels=["Tên"], rows=[["x\r=2+2"], ["\r=3+3"]])
    assert [c for _, c in csv_cells(to_csv(table))] == ["site_name", "x\r=2+2", "'\r=3+3"]


def test_a_huge_formula_cell_stays_within_excel_limit() -> None:
    """Found: the neutralising quote was added after the cut to 32,767 characters, so a
    long cell starting with "=" came out one character over Excel's limit."""
    sheet = Sheet(title="t", columns=[Column("a")], rows=[["=" + "x" * 40_000]])
    value = [v for _, v in xlsx_cells(xlsx_bytes(sheet))][1]
    assert len(value) == 32_767 and value.startswith("'=")


def test_xml_non_characters_are_escaped_in_xlsx() -> None:
    """U+FFFE and U+FFFF cannot be in an XLSX file; they are written as escapes."""
    sheet = Sheet(title="t", columns=[Column("a")], rows=[["a\ufffeb\uffff"]])
    assert [v for _, v in xlsx_cells(xlsx_bytes(sheet))][1] == "a\\ufffeb\\uffff"


def test_directory_import_refuses_a_nul_in_a_name_by_line() -> None:
    """Found: a NUL (or any control character) in a unit name was accepted, and
    PostgreSQL then refused the whole load with a database error."""
    text = "\n".join(
        [HEADER, _tree_line("VN", "Việt Nam", ""), _tree_line("01", "Hà\x00Nội", "VN")]
    )
    with pytest.raises(CsvImportError) as refused:
        parse_csv(text.encode())
    assert [str(e) for e in refused.value.errors] == [
        "line 3: name holds a control character (U+0000)"
    ]
