"""Every CSV/XLSX export served with hostile data, and the report CSV import fuzzed
(docs/security.md).

The payloads of `tests/spreadsheet_oracle.py` (formula prefixes, DDE, HYPERLINK,
control characters, BOMs, U+FFFE) are planted wherever an export reads text:
site and province names (as an old import could have left them), a meeting's
title and agenda, a conclusion, a directive's title, a report's free-text
indicator and note, a saved group's name, a staff account's display name, an
indicator schema's labels, and the audit log that records all of them. Then
every export of the OpenAPI spec (``.csv``/``.xlsx`` paths and every
``format=csv|xlsx`` table) is fetched as the admin and as the province officer
of 79: never a 5xx, every workbook opens with no formula cell and no cell a
spreadsheet would run, every CSV parses back with none either.

The report CSV import (``POST /api/command/reports/import``) gets Hypothesis-
drawn files: BOMs, semicolon and tab delimiters, unknown and missing columns,
CRLF and bare CR line ends, unbalanced quotes, NUL characters, invalid UTF-8,
cells past the csv module's 131,072-character field limit, formula-looking
site codes and values, numbers past 64 bits. Each is either imported (2xx) or
refused with 422 naming a line (or the file), and a refused file changes no
row of any table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from diemcau.audit import record_action
from diemcau.command.reports import MAX_NOTE
from diemcau.store.models import Site, Unit
from tests.fuzz_support import Live, fuzz_settings, live_world
from tests.presence_support import RawSite, eventually
from tests.route_table import ROUTES
from tests.spreadsheet_oracle import HOSTILE, csv_cells, dangerous, xlsx_cells
from tests.test_api_bad_input import changed as changed_tables
from tests.test_api_bad_input import snapshot
from tests.test_command_support import covid
from tests.test_fuzz_api import SPEC

EXAMPLES = 40
# Payloads a name can hold (no line breaks: names are collapsed to one line anyway).
NAMES = [h for h in HOSTILE if h.strip()]


# The live server's alert rules run on their own clock: a site session that closes
# raises (then clears) its offline alert a moment later, whatever the request under
# test did. A refused request would show in the tables it writes, never only there.
BACKGROUND_TABLES = {"command_alerts"}


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [t for t in changed_tables(before, after) if t not in BACKGROUND_TABLES]


def _exports() -> list[tuple[str, str | None]]:
    """(path, format) of every export of the spec (format None: fixed by the path)."""
    out: list[tuple[str, str | None]] = []
    for path, ops in SPEC["paths"].items():
        get = ops.get("get")
        if get is None:
            continue
        names = {p["name"] for p in get.get("parameters", [])}
        if path.endswith((".csv", ".xlsx")):
            out.append((path, None))
        elif "format" in names:
            out += [(path, "csv"), (path, "xlsx")]
    return sorted(out, key=lambda e: (e[0], e[1] or ""))


EXPORTS = _exports()


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def _ok(r: requests.Response) -> Any:
    assert r.status_code in (200, 201), (r.request.method, r.request.url, r.text[:300])
    return r.json()


def plant(live: Live) -> dict[str, Any]:
    """Hostile text everywhere an export reads it; returns the ids of what was made."""
    w, base = live.world, live.base_url
    chair, admin, ops = w.tokens["chair"], w.tokens["admin"], w.tokens["ops"]
    site = w.tokens["26734"]

    async def rename() -> None:
        async with w.runtime.db.session() as s:
            await s.execute(update(Site).where(Site.code == "26734").values(name=NAMES[10]))
            await s.execute(update(Site).where(Site.code == "26737").values(name=NAMES[15]))
            await s.execute(update(Unit).where(Unit.code == "79").values(name=NAMES[0]))
        w.runtime.sites.invalidate()

    live.run(rename())
    with _session() as s:
        invite = {"units": ["79"], "kinds": ["commune"]}
        meeting: dict[str, Any] = {"title": NAMES[1], "agenda": NAMES[12], "invite": invite}
        mid = _ok(s.post(base + "/api/meetings", json=meeting, headers=chair))["id"]
        _ok(s.post(base + f"/api/meetings/{mid}/start", headers=chair))
        cid = _ok(
            s.post(
                base + f"/api/meetings/{mid}/conclusions", json={"body": NAMES[13]}, headers=chair
            )
        )["id"]
        directive: dict[str, Any] = {
            "title": NAMES[11],
            "body": NAMES[14],
            "target": {"provinces": ["79"]},
        }
        did = _ok(s.post(base + "/api/command/directives", json=directive, headers=chair))["id"]
        _ok(s.post(base + f"/api/command/directives/{did}/escalate", headers=chair))
        report: dict[str, Any] = {
            "schema": "covid19",
            "values": covid(notes=NAMES[2]),
            "note": NAMES[3],
        }
        rid = _ok(s.post(base + "/api/command/reports", json=report, headers=site))["id"]
        patch: dict[str, Any] = {"values": {"notes": NAMES[4]}, "note": NAMES[5]}
        _ok(s.patch(base + f"/api/command/reports/{rid}", json=patch, headers=admin))
        group: dict[str, Any] = {"name": NAMES[6], "invite": {"units": ["79"]}}
        gid = _ok(s.post(base + "/api/site-groups", json=group, headers=ops))["id"]
        staff = {
            "username": "fuzz1",
            "password": "long enough pass",
            "role": "operator",
            "display_name": NAMES[7],
        }
        _ok(s.post(base + "/api/admin/staff", json=staff, headers=admin))
        schema = json.loads(
            (resources.files("diemcau.command") / "schemas" / "covid19.json").read_text("utf-8")
        )
        schema["key"] = "hostile"
        schema["label_vi"] = NAMES[8]
        for i, ind in enumerate(schema["indicators"]):
            ind["label_vi"] = NAMES[(9 + i) % len(NAMES)]
        r = s.post(base + "/api/admin/schemas", data=json.dumps(schema).encode(), headers=admin)
        _ok(r)

    async def audit() -> None:
        from diemcau.actors import Actor

        actor = Actor.for_staff("admin", "admin", None)
        await record_action(
            w.runtime.db, actor, "fuzz.hostile", target=NAMES[16], details={"x": NAMES[17]}
        )

    live.run(audit())
    return {
        "meeting_id": mid,
        "conclusion_id": cid,
        "directive_id": did,
        "report_id": rid,
        "group_id": gid,
    }


def export_url(path: str, fmt: str | None, ids: dict[str, Any]) -> str:
    """The route table's request for this export, aimed at the planted resources."""
    [route] = [r for r in ROUTES if r.method == "GET" and r.path == path]
    url = route.target(ids)
    url = url.replace("/api/admin/schemas/covid19", "/api/admin/schemas/hostile")
    url = re.sub(r"province_id=\d+&?", "", url).rstrip("?&")
    if fmt is not None:
        url += ("&" if "?" in url else "?") + f"format={fmt}"
    return url


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    db = tmp_path_factory.mktemp("fuzz-exports") / "diemcau.db"
    with live_world(f"sqlite+aiosqlite:///{db}") as world:
        yield world


def _refused(r: requests.Response) -> bool:
    """The officer refused Hà Nội's data: 403/404, or, for a site code out of its
    reach, the same 422 ``no_site`` as an unknown code (docs/security.md)."""
    if r.status_code in (403, 404):
        return True
    return r.status_code == 422 and r.json()["error"]["code"] == "no_site"


def test_every_export_with_hostile_data(live: Live) -> None:
    ids = {**live.world.ids, **plant(live)}
    assert len(EXPORTS) >= 20
    seen: list[str] = []
    failures: list[str] = []
    with _session() as s:
        for path, fmt in EXPORTS:
            url = export_url(path, fmt, ids)
            for who in ("admin", "hcm"):
                r = s.get(live.base_url + url, headers=live.world.tokens[who], timeout=60)
                what = f"{url} as {who}: {r.status_code}"
                if who == "hcm" and _refused(r):
                    continue
                if r.status_code != 200:
                    failures.append(f"{what} {r.text[:200]}")
                    continue
                is_csv = fmt == "csv" or path.endswith(".csv")
                try:
                    cells = list(csv_cells(r.content) if is_csv else xlsx_cells(r.content))
                except AssertionError as exc:
                    failures.append(f"{what}: {exc}")
                    continue
                seen += [str(v) for _, v in cells if isinstance(v, str)]
    assert not failures, "\n".join(failures)
    # The payloads did reach the files (else this test would prove nothing).
    neutralised = {t for t in seen if t.startswith("'") and dangerous(t[1:])}
    assert len(neutralised) >= 8, sorted(neutralised)
    assert any("=cmd|' /C calc'!A0" in t for t in seen)


# --- the report CSV import -------------------------------------------------------------

HEAD = [
    "site_code",
    "new_cases",
    "under_treatment",
    "recovered",
    "deaths",
    "vaccine_doses",
    "zone_level",
    "distancing_order",
    "notes",
]
_values = st.sampled_from(["5", "0", "-1", "1e400", str(2**64), "", "many"]) | st.sampled_from(
    HOSTILE
)


@st.composite
def report_files(draw: st.DrawFn) -> bytes:
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["26734", "26737", "00004", "99999", "=1+1", "", " 26734"]),
                st.lists(_values, min_size=5, max_size=5),
                st.sampled_from(["green", "red", "purple", "=1+1"]),
                st.sampled_from(["true", "false", "maybe"]),
                st.sampled_from(HOSTILE) | st.text(max_size=20),
            ),
            max_size=4,
        )
    )
    head = list(HEAD)
    how = draw(
        st.sampled_from(
            [
                "plain",
                "plain",
                "crlf",
                "cr",
                ";",
                "\t",
                "bom2",
                "unknown column",
                "no site_code",
                "quote",
                "nul",
                "bad utf8",
                "huge",
                "random",
            ]
        )
    )
    if how == "unknown column":
        head.append("mood")
    if how == "no site_code":
        head[0] = "code"

    def cell(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    lines = [",".join(head)]
    for code, nums, zone, dist, notes in rows:
        extra = [",5"] if how == "unknown column" else []
        lines.append(",".join([cell(code), *nums, zone, dist, cell(notes)]) + "".join(extra))
    text = "\n".join(lines) + "\n"
    if how == "crlf":
        text = text.replace("\n", "\r\n")
    elif how == "cr":
        text = text.replace("\n", "\r")
    elif how in (";", "\t"):
        text = text.replace(",", how)
    elif how == "bom2":
        text = "\ufeff\ufeff" + text
    elif how == "quote":
        text = text.replace('"', "", 1)
    elif how == "nul":
        text = text.replace("5", "5\x00", 1)
    elif how == "huge":
        text += f"26734,{'9' * 140_000},1,1,1,1,green,true,x\n"
    data = (("\ufeff" + text) if draw(st.booleans()) else text).encode()
    if how == "bad utf8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xc3\x28" + data[at:]
    elif how == "random":
        data = draw(st.binary(max_size=200))
    return data


def test_report_csv_import_fuzz(live: Live) -> None:
    w = live.world
    url = live.base_url + "/api/command/reports/import?schema=covid19&period=" + w.ids["period"]
    headers = {**w.tokens["admin"], "Content-Type": "text/csv"}
    outcomes: dict[int, int] = {}

    @fuzz_settings(EXAMPLES)
    @given(data=report_files())
    def one(data: bytes) -> None:
        before = live.run(snapshot(w))
        with _session() as s:
            r = s.post(url, data=data, headers=headers, timeout=60)
        outcomes[r.status_code] = outcomes.get(r.status_code, 0) + 1
        assert r.status_code in (200, 413, 422), (r.status_code, r.text[:300], data[:200])
        if r.status_code == 200:
            return
        message = r.json()["error"]["message"]
        assert re.match(r"^(line \d+: |csv: )", message), message
        assert changed(before, live.run(snapshot(w))) == [], (message, data[:200])

    one()
    assert outcomes.get(422, 0) > 0 and outcomes.get(200, 0) > 0, outcomes


def test_a_site_session_report_note_is_capped_like_http(live: Live) -> None:
    """Found (issue 12, item 7): a report filed on the site session took a note of any
    length (up to the 64 KiB frame), the HTTP API only 2,000 characters. Bad input: a
    note one character over, by both paths; nothing is stored."""
    w = live.world
    before = live.run(snapshot(w))
    body: dict[str, Any] = {"schema": "covid19", "values": covid(), "note": "n" * (MAX_NOTE + 1)}
    with _session() as s:
        r = s.post(live.base_url + "/api/command/reports", json=body, headers=w.tokens["26737"])
    assert r.status_code == 422 and "note" in r.text, r.text

    async def by_session() -> dict[str, Any]:
        site = RawSite(w.runtime.presence)
        await site.connect(join_code=w.join_codes["26737"])
        await site.send({"type": "req", "id": "n1", "kind": "report.submit", "body": body})
        await eventually(lambda: any(m.get("id") == "n1" for m in site.received), 10)
        await site.close()
        [reply] = [m for m in site.received if m.get("id") == "n1"]
        return reply

    reply = live.run(by_session())
    assert not reply["ok"] and reply["error"]["code"] == "bad_note", reply
    assert changed(before, live.run(snapshot(w))) == []


def test_report_import_refuses_malformed_csv_by_line(live: Live) -> None:
    """Found: the csv module's own refusals (a bare CR inside an unquoted cell, a cell
    past its 131,072-character limit) escaped as 500; and a quoted cell spanning lines
    shifted the line numbers named. A bare CR now ends a line, as in a file saved with
    old Mac line ends, so what follows it is a short line of its own. Bad inputs: each
    of those; nothing is stored. Then the same good line with CR line ends imports."""
    w = live.world
    url = live.base_url + "/api/command/reports/import?schema=covid19&period=" + w.ids["period"]
    headers = {**w.tokens["admin"], "Content-Type": "text/csv"}
    head = ",".join(HEAD) + "\n"
    good = "26734,5,5,5,5,5,green,true,ok\n"
    cases = {
        head + good + '26737,5,5,5,5,5,green,true,x"\ry\n': "line 4: expected 9 columns",
        head + good + "26737," + "9" * 140_000 + ",5,5,5,5,green,true,x\n": "line 3: malformed CSV",
        head + '26734,5,5,5,5,5,green,true,"two\nlines"\n26737,5,5,5,-1,5,green,true,x\n': (
            "line 4: deaths"
        ),
    }
    before = live.run(snapshot(w))
    with _session() as s:
        for body, says in cases.items():
            r = s.post(url, data=body.encode(), headers=headers, timeout=60)
            assert r.status_code == 422, (r.status_code, r.text[:300])
            assert r.json()["error"]["message"].startswith(says), r.text[:300]
    assert changed(before, live.run(snapshot(w))) == []
    with _session() as s:
        r = s.post(url, data=(head + good).replace("\n", "\r").encode(), headers=headers)
    assert r.status_code == 200, r.text[:300]
    assert sum(r.json().values()) == 1, r.json()
