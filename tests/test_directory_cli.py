"""``diemcau directory load | stats | search`` through `diemcau.cli.main`, as checks run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diemcau.cli import main


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_load_south_19_then_stats_json_and_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _url(tmp_path / "d.db")
    assert main(["directory", "load", "--db", url, "--dataset", "south-19"]) == 0
    out, err = capsys.readouterr()
    assert "sites +2598" in out
    assert "units: 2598/2598" in err  # progress goes to stderr

    assert main(["directory", "stats", "--db", url, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object on one line
    assert json.loads(out) == {
        "country": 1,
        "province": 19,
        "district": 203,
        "commune": 2375,
        "sites": 2598,
    }

    # Loading the same dataset again is a no-op.
    assert main(["directory", "load", "--db", url, "--dataset", "south-19"]) == 0
    assert "units +0 ~0 =2598, sites +0 ~0 =2598" in capsys.readouterr().out

    assert main(["directory", "search", "--db", url, "phuong ben nghe"]) == 0
    assert "26740  Phường Bến Nghé  (Quận 1, Thành phố Hồ Chí Minh)" in capsys.readouterr().out
    assert main(["directory", "search", "--db", url, "--json", "Bến Nghé"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["code"] == "26740" and hits[0]["type"] == "unit"


def test_stats_on_a_database_never_loaded_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["directory", "stats", "--db", _url(tmp_path / "none.db"), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "is empty; load it first: diemcau directory load --db" in captured.err


def test_db_defaults_to_the_embedded_store_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DIEMCAU_DATA", str(tmp_path / "var"))
    monkeypatch.delenv("DIEMCAU_DB", raising=False)
    source = tmp_path / "tree.csv"
    source.write_text("code;name;type;parent_code\nR;Gốc;;\nA;Nhánh A;;R\n", encoding="utf-8")
    assert main(["directory", "load", "--csv", str(source)]) == 0
    assert (tmp_path / "var" / "diemcau.db").is_file()
    capsys.readouterr()
    assert main(["directory", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"country": 1, "province": 1, "sites": 2}


def test_loading_another_tree_into_the_same_database_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _url(tmp_path / "d.db")
    source = tmp_path / "tree.csv"
    source.write_text("code,name,type,parent_code\nR,Root,,\n", encoding="utf-8")
    assert main(["directory", "load", "--db", url, "--csv", str(source)]) == 0
    other = tmp_path / "other.csv"
    other.write_text("code,name,type,parent_code\nQ,Other root,,\n", encoding="utf-8")
    assert main(["directory", "load", "--db", url, "--csv", str(other)]) == 1
    assert "already holds the tree rooted at 'R'" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["directory", "stats", "--db", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"country": 1, "sites": 1}


def test_unreadable_csv_path_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.csv"
    assert main(["directory", "load", "--db", _url(tmp_path / "d.db"), "--csv", str(missing)]) == 2
    assert "cannot read" in capsys.readouterr().err
