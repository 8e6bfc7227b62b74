"""``diemcau command``: schema files are checked before use; a CSV import as a staff account."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from diemcau.accounts.service import create_staff
from diemcau.actors import Actor
from diemcau.cli import main
from diemcau.command.reports import ReportService
from diemcau.command.schemas import builtin_registry
from diemcau.store import Database
from tests.test_command_support import seed_country


def test_schemas_lists_presets_and_refuses_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["command", "schemas"]) == 0
    out = capsys.readouterr().out
    assert "covid19" in out and "disaster" in out
    # A schema file with a negative deadline is refused, naming the file and the field.
    bad = {
        "key": "x",
        "label_vi": "X",
        "label_en": "X",
        "deadline_hours": -1,
        "indicators": [{"key": "a", "type": "int", "label_vi": "A", "label_en": "A"}],
    }
    (tmp_path / "x.json").write_text(json.dumps(bad))
    assert main(["command", "schemas", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "x.json: deadline_hours" in err
    bad["deadline_hours"] = 3
    (tmp_path / "x.json").write_text(json.dumps(bad))
    assert main(["command", "schemas", "--dir", str(tmp_path), "--json"]) == 0
    keys = [s["key"] for s in json.loads(capsys.readouterr().out)]
    assert keys == ["covid19", "disaster", "x"]


async def test_import_cli(db: Database, sqlite_url: str, tmp_path: Path) -> None:
    c = await seed_country(db)
    await create_staff(db, "minh", "correct horse battery", "province_officer", province_code="P1")
    csv_path = tmp_path / "p1.csv"
    csv_path.write_text(
        "site_code,new_cases,under_treatment,deaths,zone_level\nA,3,4,0,green\nX,1,1,0,red\n"
    )
    args = [
        "command",
        "import",
        "--db",
        sqlite_url,
        "--schema",
        "covid19",
        "--period",
        "2026-11-25",
        "--as",
        "minh",
        str(csv_path),
    ]
    # X is in P2: the whole file is refused, nothing is written.
    assert await asyncio.to_thread(main, args) == 1
    reports = ReportService(db, builtin_registry(), lambda: 1.8e9)
    chair = Actor.for_staff("chair", "chair")
    assert await reports.list_reports(chair, "covid19") == []
    csv_path.write_text("site_code,new_cases,under_treatment,deaths,zone_level\nA,3,4,0,green\n")
    assert await asyncio.to_thread(main, args) == 0
    [rep] = await reports.list_reports(chair, "covid19")
    assert rep.site_id == c.sites["A"] and rep.source == "csv" and rep.submitted_by == "staff:minh"
