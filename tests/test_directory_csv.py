"""CSV trees: the accepted forms, and every refused input named by line with nothing written."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from diemcau.cli import main
from diemcau.directory.csv_import import CsvImportError, RowError, parse_csv
from diemcau.directory.records import UnitRecord

HEADER = "code,name,type,parent_code,lat,lon,site_names"
GOOD = "\n".join(
    [
        HEADER,
        "ORG,Tổng công ty Điện lực,Tổng công ty,,,,",
        "HCM,Công ty Điện lực Hồ Chí Minh,Công ty,ORG,10.7769,106.7009,",
        "HN,Công ty Điện lực Hà Nội,Công ty,ORG,21.0285,105.8542,Phòng họp A|Phòng họp B",
        "HCM-Q1,Điện lực Quận 1,Điện lực,HCM,10.78,106.70,",
        "HN-BD,Điện lực Ba Đình,Điện lực,HN,21.03,105.82,",
    ]
)


def _csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def test_good_file_gives_records_parents_first_with_inferred_levels() -> None:
    records = parse_csv(GOOD.encode())
    assert [(r.code, r.level) for r in records] == [
        ("ORG", "country"),
        ("HCM", "province"),
        ("HN", "province"),
        ("HCM-Q1", "commune"),
        ("HN-BD", "commune"),
    ]
    hn = records[2]
    assert hn == UnitRecord(
        code="HN",
        name="Công ty Điện lực Hà Nội",
        level="province",
        unit_type="Công ty",
        parent_code="ORG",
        lat=21.0285,
        lon=105.8542,
        site_names=("Phòng họp A", "Phòng họp B"),
    )
    assert records[0].lat is None and records[0].parent_code is None


def test_bom_semicolons_nfd_and_decimal_commas_give_the_same_records() -> None:
    plain = parse_csv(GOOD.encode())
    # Semicolon-delimited, NFD-decomposed Vietnamese, decimal commas, CRLF, UTF-8 BOM:
    # what a spreadsheet on a Vietnamese-locale Windows machine saves.
    lines = []
    for line in GOOD.split("\n"):
        cells = line.split(",")
        lat_lon = slice(4, 6)
        cells[lat_lon] = [c.replace(".", ",") for c in cells[lat_lon]]
        lines.append(";".join(cells))
    text = unicodedata.normalize("NFD", "\r\n".join(lines))
    assert "Hà Nội" not in text  # really decomposed
    assert parse_csv(b"\xef\xbb\xbf" + text.encode()) == plain


def test_level_column_overrides_inference_and_depth_rule_for_mixed_branches() -> None:
    inferred = parse_csv(
        _csv(
            "R,Root,,,,,",
            "P,Province,,R,,,",
            "D,District,,P,,,",
            "C,Commune,,D,,,",
            "ISLAND,Island district,,P,,,",
        )
    )
    # The deepest rows are communes; rows in between are districts, leaf or not.
    assert {r.code: r.level for r in inferred} == {
        "R": "country",
        "P": "province",
        "D": "district",
        "ISLAND": "district",
        "C": "commune",
    }
    explicit = parse_csv(
        "code;name;type;parent_code;level\nR;Root;;;\nP;Province;;R;\nS;Special;;P;commune\n"
    )
    assert {r.code: r.level for r in explicit} == {
        "R": "country",
        "P": "province",
        "S": "commune",
    }


# --- refused input --------------------------------------------------------------------
# Each case: file content, and the (line, reason fragment) pairs expected, in line order.
BAD: dict[str, tuple[bytes, list[tuple[int, str]]]] = {
    "missing_parent": (
        _csv("R,Root,,,,,", "A,A,,R,,,", "B,B,,NOPE,,,").encode(),
        [(4, "parent code 'NOPE' not in the file")],
    ),
    "duplicate_code": (
        _csv("R,Root,,,,,", "A,A,,R,,,", "B,B,,R,,,", "A,Again,,R,,,").encode(),
        [(5, "duplicate code 'A' (first on line 3)")],
    ),
    "cycle": (
        _csv("R,Root,,,,,", "A,A,,B,,,", "B,B,,A,,,", "C,C,,R,,,").encode(),
        [(3, "cycle: A -> B -> A"), (4, "cycle: A -> B -> A")],
    ),
    "self_parent_cycle": (
        _csv("R,Root,,,,,", "A,A,,A,,,").encode(),
        [(3, "cycle: A -> A")],
    ),
    "empty_name": (
        _csv("R,Root,,,,,", "A,  ,,R,,,").encode(),
        [(3, "empty name")],
    ),
    "empty_code": (
        _csv("R,Root,,,,,", ",A,,R,,,").encode(),
        [(3, "empty code")],
    ),
    "bad_code_characters": (
        _csv("R,Root,,,,,", "A B,A,,R,,,").encode(),
        [(3, "bad code 'A B'")],
    ),
    "reserved_chair_code": (
        _csv("R,Root,,,,,", "TW,Trung ương,,R,,,").encode(),
        [(3, "code 'TW' is reserved")],
    ),
    "non_numeric_coordinates": (
        _csv("R,Root,,,,,", "A,A,,R,abc,106.1,").encode(),
        [(3, "bad coordinates: lat 'abc' is not a number")],
    ),
    "out_of_range_coordinates": (
        _csv("R,Root,,,,,", "A,A,,R,10.5,200,", "B,B,,R,-91,10,").encode(),
        [(3, "bad coordinates: lon 200 is outside -180..180"), (4, "lat -91 is outside")],
    ),
    "non_finite_coordinates": (
        _csv("R,Root,,,,,", "A,A,,R,nan,10,").encode(),
        [(3, "bad coordinates: lat nan is outside")],
    ),
    "lat_without_lon": (
        _csv("R,Root,,,,,", "A,A,,R,10.5,,").encode(),
        [(3, "give both lat and lon, or neither")],
    ),
    "wrong_column_count": (
        _csv("R,Root,,,,,", "A,A,,R", "B,B,,R,,,,extra").encode(),
        [(3, "wrong column count: expected 7, got 4"), (4, "expected 7, got 8")],
    ),
    "unknown_header": (
        _csv("R,Root,,,,,,", header=HEADER + ",colour").encode(),
        [(1, "unknown column 'colour'")],
    ),
    "missing_required_column": (
        b"code,name,type\nR,Root,\n",
        [(1, "missing required column 'parent_code'")],
    ),
    "unknown_level": (
        b"code,name,type,parent_code,level\nR,Root,,,\nA,A,,R,village\n",
        [(3, "unknown level 'village'")],
    ),
    "second_root": (
        _csv("R,Root,,,,,", "A,A,,R,,,", "S,Second root,,,,,").encode(),
        [(4, "second root row (the root is 'R' on line 2)")],
    ),
    "site_code_collision": (
        _csv("R,Root,,,,,", "A,A,,R,,,Extra room", "A-2,A two,,R,,,").encode(),
        [(4, "site code 'A-2' collides with a site of unit 'A' on line 3")],
    ),
    "not_utf8": (
        _csv("R,Root,,,,,", "A,A,,R,,,").encode() + "B,Cà Mau,,R,,,\n".encode("latin-1"),
        [(4, "the file is not UTF-8 text")],
    ),
    # A quoted name spanning two lines: the next row's line number still matches the file.
    "line_numbers_after_multiline_field": (
        _csv("R,Root,,,,,", 'A,"Two\nlines",,R,,,', "B,,,R,,,").encode(),
        [(5, "empty name")],
    ),
    "header_only": (HEADER.encode() + b"\n", [(1, "no data rows")]),
    "empty_file": (b"", [(1, "missing header row")]),
    # Several bad rows in one file: every one is named, not just the first.
    "every_bad_row_named": (
        _csv(
            "R,Root,,,,,",
            "A,,,R,,,",
            "B,B,,R,x,y,",
            "C,C,,GONE,,,",
            "D,D,,R,1,2,",
            "D,D again,,R,,,",
            "E,E,,R",
        ).encode(),
        [
            (3, "empty name"),
            (4, "lat 'x' is not a number"),
            (4, "lon 'y' is not a number"),
            (5, "parent code 'GONE' not in the file"),
            (7, "duplicate code 'D' (first on line 6)"),
            (8, "wrong column count"),
        ],
    ),
}


@pytest.fixture(scope="module")
def loaded_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite store already holding the GOOD tree, shared by the refusal tests."""
    folder = tmp_path_factory.mktemp("csvdb")
    source = folder / "good.csv"
    source.write_text(GOOD, encoding="utf-8")
    path = folder / "d.db"
    assert main(["directory", "load", "--db", _url(path), "--csv", str(source)]) == 0
    yield path


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _snapshot(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as conn:
        units = list(conn.execute("SELECT * FROM units ORDER BY id"))
        sites = list(conn.execute("SELECT * FROM sites ORDER BY id"))
    return units, sites


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv_is_refused_whole_with_each_line_named(
    case: str, loaded_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, expected = BAD[case]
    with pytest.raises(CsvImportError) as refused:
        parse_csv(data)
    errors = refused.value.errors
    assert len(errors) == len(expected), errors
    for error, (line, fragment) in zip(errors, expected, strict=True):
        assert isinstance(error, RowError)
        assert error.line == line, errors
        assert fragment in error.reason, errors

    # Through the command: exit code 1, every line printed, nothing written.
    before = _snapshot(loaded_db)
    assert (len(before[0]), len(before[1])) == (5, 7)
    source = tmp_path / f"{case}.csv"
    source.write_bytes(data)
    capsys.readouterr()
    code = main(["directory", "load", "--db", _url(loaded_db), "--csv", str(source)])
    err = capsys.readouterr().err
    assert code == 1
    for line, fragment in expected:
        assert f"{source}:{line}: " in err and fragment in err
    assert _snapshot(loaded_db) == before


def test_refused_csv_on_a_fresh_database_creates_no_rows(tmp_path: Path) -> None:
    data, _ = BAD["cycle"]
    source = tmp_path / "cycle.csv"
    source.write_bytes(data)
    path = tmp_path / "fresh.db"
    assert main(["directory", "load", "--db", _url(path), "--csv", str(source)]) == 1
    # Validation runs before the store is even opened.
    assert not path.exists()
