"""Parse and validate a user's CSV tree of units into `UnitRecord` objects.

The format is documented in ``docs/directory.md``. Validation is all or nothing:
the whole file is checked, every bad row is reported with its line number and
reason, and `CsvImportError` is raised before anything touches the store
(docs/directory.md, "Refused files": a malformed row names its line).
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from diemcau.directory.records import CHAIR_SITE_CODE, UnitRecord, sites_for
from diemcau.store.models import LEVELS
from diemcau.text import nfc

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "CsvImportError",
    "RowError",
    "parse_csv",
    "read_csv_file",
]

REQUIRED_COLUMNS = ("code", "name", "type", "parent_code")
COLUMNS = (*REQUIRED_COLUMNS, "level", "lat", "lon", "site_names")

# Bounds follow the store's column sizes (units.code 32, name 200, unit_type 64;
# sites.name 240). A code is one token so it fits in join links and file names.
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_MAX_NAME = 200
_MAX_TYPE = 64
_MAX_SITE_NAME = 240
_SITE_SEPARATOR = "|"
# Control characters left after whitespace is collapsed: PostgreSQL refuses NUL in
# text, XLSX cannot hold the others; a name is never meant to carry them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class RowError:
    """One refused row: its 1-based line number in the file and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class CsvImportError(ValueError):
    """The file was refused; `errors` names every bad row, in line order."""

    def __init__(self, errors: Iterable[RowError]) -> None:
        self.errors = sorted(errors, key=lambda e: e.line)
        lines = "\n".join(str(e) for e in self.errors)
        super().__init__(f"CSV refused, {len(self.errors)} error(s):\n{lines}")


@dataclass(slots=True)
class _Row:
    line: int
    code: str
    name: str
    unit_type: str
    parent_code: str | None
    level: str | None
    lat: float | None
    lon: float | None
    site_names: tuple[str, ...]


def _delimiter(header_line: str) -> str:
    """Semicolon if the header has more semicolons than commas, else comma.

    Deciding on the header alone is deterministic, unlike `csv.Sniffer`, which
    guesses from sample rows and can pick a character that occurs in names.
    """
    return ";" if header_line.count(";") > header_line.count(",") else ","


def _coordinate(raw: str, axis: str, bound: float) -> tuple[float | None, str | None]:
    text = raw.strip()
    if not text:
        return None, None
    try:
        value = float(text.replace(",", ".", 1) if text.count(",") == 1 else text)
    except ValueError:
        return None, f"bad coordinates: {axis} {text!r} is not a number"
    if not math.isfinite(value) or not -bound <= value <= bound:
        return None, f"bad coordinates: {axis} {text} is outside -{bound:g}..{bound:g}"
    return value, None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvImportError([RowError(line, "the file is not UTF-8 text")]) from exc


def _header(cells: list[str], errors: list[RowError]) -> list[str]:
    names = [unicodedata.normalize("NFC", c).strip().lower() for c in cells]
    seen: set[str] = set()
    for name in names:
        if name not in COLUMNS:
            errors.append(
                RowError(1, f"unknown column {name!r}; known columns: {', '.join(COLUMNS)}")
            )
        elif name in seen:
            errors.append(RowError(1, f"column {name!r} appears twice"))
        seen.add(name)
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            errors.append(RowError(1, f"missing required column {name!r}"))
    return names


def _parse_row(line: int, cells: dict[str, str], errors: list[RowError]) -> _Row | None:
    bad: list[str] = []
    code = cells["code"].strip()
    if not code:
        bad.append("empty code")
    elif code == CHAIR_SITE_CODE:
        bad.append(f"code {CHAIR_SITE_CODE!r} is reserved for the central chair site")
    elif not _CODE.match(code):
        bad.append(
            f"bad code {code!r}: use 1-32 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    name = nfc(cells["name"])
    if not name:
        bad.append("empty name")
    elif len(name) > _MAX_NAME:
        bad.append(f"name longer than {_MAX_NAME} characters")
    unit_type = nfc(cells["type"])
    if len(unit_type) > _MAX_TYPE:
        bad.append(f"type longer than {_MAX_TYPE} characters")
    parent = cells["parent_code"].strip() or None
    level = cells.get("level", "").strip().lower() or None
    if level is not None and level not in LEVELS:
        bad.append(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
    lat, lat_err = _coordinate(cells.get("lat", ""), "lat", 90)
    lon, lon_err = _coordinate(cells.get("lon", ""), "lon", 180)
    bad.extend(e for e in (lat_err, lon_err) if e)
    if not lat_err and not lon_err and (lat is None) != (lon is None):
        bad.append("bad coordinates: give both lat and lon, or neither")
    site_names = tuple(
        n for n in (nfc(p) for p in cells.get("site_names", "").split(_SITE_SEPARATOR)) if n
    )
    if any(len(n) > _MAX_SITE_NAME for n in site_names):
        bad.append(f"a site name is longer than {_MAX_SITE_NAME} characters")
    for column, text in (("name", name), ("type", unit_type), ("site_names", "|".join(site_names))):
        control = _CONTROL.search(text)
        if control:
            bad.append(f"{column} holds a control character (U+{ord(control.group()):04X})")
    if bad:
        errors.extend(RowError(line, reason) for reason in bad)
        return None
    return _Row(line, code, name, unit_type, parent, level, lat, lon, site_names)


def _depths(rows: dict[str, _Row], refused: set[str], errors: list[RowError]) -> dict[str, int]:
    """Depth of every row reachable from a root; reports missing parents and cycles.

    A parent whose own row was refused (``refused``) is not reported again as
    missing on each of its children: its row already carries the real reason.
    """
    depth: dict[str, int] = {}
    doomed: set[str] = set()
    roots = [r for r in rows.values() if r.parent_code is None]
    for extra in roots[1:]:
        errors.append(
            RowError(
                extra.line,
                f"second root row (the root is {roots[0].code!r} on line {roots[0].line}); "
                "every other row needs a parent_code",
            )
        )
    for row in rows.values():
        parent = row.parent_code
        if parent is not None and parent not in rows and parent not in refused:
            errors.append(RowError(row.line, f"parent code {row.parent_code!r} not in the file"))
    for start in rows:
        chain: list[str] = []
        on_chain: set[str] = set()
        code: str | None = start
        while code is not None and code not in depth and code not in doomed:
            if code in on_chain:
                cycle = chain[chain.index(code) :]
                text = " -> ".join([*cycle, code])
                for member in cycle:
                    errors.append(RowError(rows[member].line, f"cycle: {text}"))
                doomed.update(chain)
                break
            current = rows.get(code)
            if current is None:
                # A missing parent, reported above; the rows below it are not placed.
                doomed.update(chain)
                break
            chain.append(code)
            on_chain.add(code)
            code = current.parent_code
        else:
            if code is not None and code in doomed:
                doomed.update(chain)
                continue
            base = -1 if code is None else depth[code]
            for offset, member in enumerate(reversed(chain), start=1):
                depth[member] = base + offset
    return depth


def _level(explicit: str | None, depth: int, max_depth: int) -> str:
    """The level of a row: the ``level`` cell if given, else inferred from depth.

    Depth 0 is the country, 1 a province, the deepest rows (when at least 2 deep)
    communes, and anything in between a district.
    """
    if explicit:
        return explicit
    if depth == 0:
        return "country"
    if depth == 1:
        return "province"
    return "commune" if depth == max_depth else "district"


def _check_site_codes(rows: Iterable[_Row]) -> list[RowError]:
    """Refuse rows whose extra-site codes (``<code>-2`` ...) collide with another site."""
    owner: dict[str, _Row] = {}
    errors: list[RowError] = []
    for row in rows:
        probe = UnitRecord(row.code, row.name, "", "", row.parent_code, site_names=row.site_names)
        for site in sites_for(probe):
            if site.code == CHAIR_SITE_CODE:
                continue  # a second root is reported as such
            first = owner.setdefault(site.code, row)
            if first is not row:
                errors.append(
                    RowError(
                        row.line,
                        f"site code {site.code!r} collides with a site of unit "
                        f"{first.code!r} on line {first.line}",
                    )
                )
    return errors


def parse_csv(data: bytes | str) -> list[UnitRecord]:
    """Validate a CSV tree and return its records, parents before children.

    Args:
        data: the file content; bytes are decoded as UTF-8 (a BOM is allowed).

    Raises:
        CsvImportError: naming every bad row; nothing has been written anywhere.
    """
    text = _decode(data) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    text = unicodedata.normalize("NFC", text)
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise CsvImportError([RowError(1, "missing header row")])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    errors: list[RowError] = []
    try:
        header = _header(next(reader), errors)
        if errors:
            raise CsvImportError(errors)
        rows: dict[str, _Row] = {}
        refused: set[str] = set()
        code_at = header.index("code")
        next_line = reader.line_num + 1
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                errors.append(
                    RowError(line, f"wrong column count: expected {len(header)}, got {len(cells)}")
                )
                if code_at < len(cells):
                    refused.add(cells[code_at].strip())
                continue
            row = _parse_row(line, dict(zip(header, cells, strict=True)), errors)
            if row is None:
                refused.add(cells[code_at].strip())
                continue
            if row.code in rows:
                first = rows[row.code].line
                errors.append(
                    RowError(line, f"duplicate code {row.code!r} (first on line {first})")
                )
                continue
            rows[row.code] = row
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, f"malformed CSV: {exc}"))
        raise CsvImportError(errors) from exc
    if not rows and not errors:
        raise CsvImportError([RowError(1, "the file has a header but no data rows")])
    depth = _depths(rows, refused, errors)
    errors.extend(_check_site_codes(sorted(rows.values(), key=lambda r: r.line)))
    if errors:
        raise CsvImportError(errors)
    max_depth = max(depth.values())
    ordered = sorted(rows.values(), key=lambda r: (depth[r.code], r.line))
    records = [
        UnitRecord(
            code=r.code,
            name=r.name,
            level=_level(r.level, depth[r.code], max_depth),
            unit_type=r.unit_type,
            parent_code=r.parent_code,
            lat=r.lat,
            lon=r.lon,
            site_names=r.site_names,
        )
        for r in ordered
    ]
    return records


def read_csv_file(path: Path) -> list[UnitRecord]:
    """Read and validate a CSV tree file (see `parse_csv`)."""
    return parse_csv(path.read_bytes())
