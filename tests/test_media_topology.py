"""The relay planner: province first, capacity respected, sticky, explained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from diemcau.media.node import JanusNode
from diemcau.media.topology import SiteRef, plan_sites, propose_relays, reassign


def relay(name: str, provinces: tuple[str, ...], capacity: int) -> JanusNode:
    return JanusNode(
        name=name,
        role="relay",
        provinces=provinces,
        capacity=capacity,
        ws_url="ws://x.invalid",
        admin_ws_url="ws://x.invalid",
        admin_secret="a",
        admin_key="k",
        token_secret="t",
    )


def sites(province: str, n: int) -> list[SiteRef]:
    return [SiteRef(f"{province}-{i:04d}", province) for i in range(n)]


def test_sites_go_to_their_province_and_big_provinces_split() -> None:
    all_sites = sites("79", 300) + sites("01", 100)
    relays = [relay("r79a", ("79",), 200), relay("r79b", ("79",), 200), relay("r01", ("01",), 150)]
    plan = plan_sites(all_sites, relays)
    counts = plan.counts()
    assert counts == {"r79a": 150, "r79b": 150, "r01": 100}
    assert not plan.spilled and not plan.unassigned
    text = plan.explain()
    assert "r79a  (150/200 sites; serves 79)" in text
    assert "province 01: 100" in text


def test_capacity_is_respected_and_overflow_is_explained() -> None:
    # Bad input: a province with more sites than its relay holds, another with no relay.
    all_sites = sites("79", 120) + sites("02", 10)
    relays = [relay("r79", ("79",), 100), relay("r01", ("01",), 25)]
    plan = plan_sites(all_sites, relays)
    assert plan.counts() == {"r79": 100, "r01": 25}
    assert len(plan.unassigned) == 5
    assert len(plan.spilled) == 25
    text = plan.explain()
    assert "[spill]" in text and "unassigned" in text and "no relay serves" in text


def test_relay_down_moves_only_its_sites() -> None:
    all_sites = sites("79", 40) + sites("01", 10)
    r1, r2, r3 = relay("r79a", ("79",), 50), relay("r79b", ("79",), 50), relay("r01", ("01",), 50)
    plan = plan_sites(all_sites, [r1, r2, r3])
    before = plan.sites_on("r79a")
    new, moves = reassign(plan, all_sites, [r2, r3])
    assert {m.site for m in moves} == set(before)
    assert all(m.old == "r79a" and m.new == "r79b" for m in moves)
    assert new.counts() == {"r79b": 40, "r01": 10}
    # Coming back does not shuffle anyone (sticky).
    again, moves2 = reassign(new, all_sites, [r1, r2, r3])
    assert moves2 == [] and again.counts()["r79a"] == 0


def test_propose_relays_splits_by_capacity() -> None:
    relays = propose_relays(sites("79", 1100) + sites("01", 3), capacity=500)
    assert [r.name for r in relays] == ["relay-01", "relay-79-1", "relay-79-2", "relay-79-3"]


async def test_media_plan_command_prints_the_tree(tmp_path: Path, capsys: object) -> None:
    import asyncio

    from diemcau.cli import main
    from diemcau.store import Database, migrate
    from diemcau.store.models import Site, Unit

    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    await migrate(url)
    db = Database(url)
    async with db.session() as s:
        prov = Unit(code="79", name="HCM", search_key="hcm", level="province", depth=1)
        s.add(prov)
        await s.flush()
        for i in range(3):
            s.add(
                Site(
                    code=f"S{i}",
                    name=f"S{i}",
                    search_key=f"s{i}",
                    unit_id=prov.id,
                    province_id=prov.id,
                    kind="commune",
                )
            )
        s.add(
            Site(
                code="CHAIR",
                name="Chair",
                search_key="chair",
                unit_id=prov.id,
                province_id=prov.id,
                kind="chair",
            )
        )
    await db.dispose()
    code = await asyncio.to_thread(main, ["media", "plan", "--db", url])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert code == 0
    assert "media plan: 3 sites on 1 relays" in out
    assert "relay-79  (3/500 sites; serves 79)" in out
    # With declared nodes the plan uses them (here: one relay of capacity 2).
    import json

    node = {
        "ws_url": "ws://10.0.0.1:8188",
        "admin_ws_url": "ws://10.0.0.1:7188",
        "admin_secret": "s",
        "admin_key": "k",
        "token_secret": "t",
    }
    nodes = tmp_path / "nodes.json"
    nodes.write_text(
        json.dumps(
            [
                {"name": "central", "role": "central", **node},
                {"name": "hcm", "role": "relay", "provinces": ["79"], "capacity": 2, **node},
            ]
        )
    )
    code = await asyncio.to_thread(main, ["media", "plan", "--db", url, "--nodes", str(nodes)])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert code == 1  # one site cannot be placed
    assert "hcm  (2/2 sites; serves 79)" in out and "unassigned" in out
    # Bad input: a node file that is not a node list.
    nodes.write_text("[]")
    code = await asyncio.to_thread(main, ["media", "plan", "--db", url, "--nodes", str(nodes)])
    assert code == 2


def test_media_public_surface_is_pinned() -> None:
    import diemcau.media as media

    assert sorted(media.__all__) == [
        "JanusError",
        "JanusNode",
        "LocalCluster",
        "MediaError",
        "MediaOrchestrator",
        "MediaPlane",
        "Move",
        "NodeRegistry",
        "SiteRef",
        "start_media_plane",
    ]


def test_declared_nodes_load_and_bad_entries_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from diemcau.media.config import load_nodes

    base = {
        "ws_url": "ws://10.0.0.1:8188",
        "admin_ws_url": "ws://10.0.0.1:7188",
        "admin_secret": "s",
        "admin_key": "env:TEST_MEDIA_KEY",
        "token_secret": "t",
    }
    monkeypatch.setenv("TEST_MEDIA_KEY", "from-env")
    good: list[dict[str, Any]] = [
        {"name": "central", "role": "central", **base},
        {"name": "relay-79", "role": "relay", "provinces": ["79"], "capacity": 800, **base},
    ]
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps(good))
    nodes = load_nodes(path)
    assert [n.name for n in nodes] == ["central", "relay-79"]
    assert nodes[1].provinces == ("79",) and nodes[1].capacity == 800
    assert nodes[0].admin_key == "from-env"
    bad_cases = [
        ([{"name": "x", "role": "central"}], "missing ws_url"),  # missing fields
        ([{**good[0], "role": "edge"}], "role must be"),  # unknown role
        ([good[1]], "exactly one central"),  # no central
        ([good[0], good[0]], "duplicate"),  # same name twice
        ([{**good[0], "colour": 1}], "unknown keys colour"),  # typo'd key
        ([{**good[0], "capacity": 0}], "capacity"),  # bad capacity
        ([{**good[0], "admin_secret": "env:NOPE_NOT_SET"}], "NOPE_NOT_SET"),  # unset env
    ]
    for data, message in bad_cases:
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=message):
            load_nodes(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_nodes(path)
