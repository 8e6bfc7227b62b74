"""The inventory, what is rendered from it, and TURN REST credentials.

Bad inputs tried: a literal secret, an unset env reference, an unreadable
secret file, an unknown key, a bad address, two centrals, duplicate names,
invalid TOML, RTP ports inside the cascade's range or upside down, a
credential label with ':'; each names the entry and changes nothing on disk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

import pytest

from diemcau.deploy.inventory import Inventory, InventoryError
from diemcau.deploy.render import render_all
from diemcau.media.turn import TurnServer, ice_servers, turn_credentials

NODE = """
[[node]]
name = "{name}"
role = "{role}"
address = "{ip}"
cert = "/etc/diemcau/tls/{name}.pem"
key = "/etc/diemcau/tls/{name}-key.pem"
admin_secret = "file:{secrets}/a"
admin_key = "file:{secrets}/b"
token_secret = "env:DC_TEST_TOKEN"
"""

RELAY_01 = (
    '[[node]]\nname = "relay-01"\nrole = "relay"\naddress = "198.51.100.32"\n'
    'cert = "c"\nkey = "k"\nadmin_secret = "env:X"\nadmin_key = "env:X"\ntoken_secret = "env:X"\n'
)


def _write(tmp: Path, extra: str = "", central: str = "central") -> Path:
    secrets = tmp / "s"
    secrets.mkdir(exist_ok=True)
    (secrets / "a").write_text("admin-secret-1\n")
    (secrets / "b").write_text("admin-key-1\n")
    text = '[control]\naddress = "198.51.100.10"\n'
    text += NODE.format(name="central", role=central, ip="198.51.100.20", secrets=secrets)
    text += NODE.format(name="relay-79", role="relay", ip="198.51.100.31", secrets=secrets)
    text += 'provinces = ["79"]\nbind_address = "100.64.9.31"\n'
    text += (
        '[[turn]]\nname = "turn-1"\naddress = "198.51.100.40"\nsecret = "env:DC_TEST_TURN"\n'
        'cert = "/etc/t.pem"\nkey = "/etc/t-key.pem"\n'
    )
    path = tmp / "inventory.toml"
    path.write_text(text + extra)
    return path


def test_inventory_to_nodes_turn_and_rendered_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DC_TEST_TOKEN", "tok")
    monkeypatch.setenv("DC_TEST_TURN", "turn-secret")
    inv = Inventory.load(_write(tmp_path))
    central, relay = inv.janus_nodes()
    assert central.ws_url == "wss://198.51.100.20:443"
    assert central.admin_ws_url == "wss://198.51.100.20:7989"
    assert relay.provinces == ("79",) and relay.admin_key == "admin-key-1"
    assert relay.token_secret == "tok" and relay.rtp_host == "198.51.100.31"
    (turn,) = inv.turn_servers()
    assert turn.urls() == [
        "turn:198.51.100.40:3478?transport=udp",
        "turn:198.51.100.40:3478?transport=tcp",
        "turns:198.51.100.40:443?transport=tcp",
    ]
    files = render_all(inv, tmp_path / "out")
    by_name = {p.relative_to(tmp_path / "out").as_posix(): p.read_text() for p in files}
    ws = by_name["relay-79/etc/diemcau/janus-relay-79/janus.transport.websockets.jcfg"]
    assert "\tws = false" in ws and "wss_port = 443" in ws and 'wss_ip = "100.64.9.31"' in ws
    assert 'admin_ws_acl = "198.51.100.10"' in ws and "cert_pem" in ws
    janus = by_name["relay-79/etc/diemcau/janus-relay-79/janus.jcfg"]
    assert 'nat_1_1_mapping = "198.51.100.31"' in janus  # bound privately, public address
    assert 'token_auth_secret = "tok"' in janus
    assert "nat_1_1" not in by_name["central/etc/diemcau/janus-central/janus.jcfg"]
    turn_conf = by_name["turn-1/etc/diemcau/turn-turn-1.conf"]
    assert "static-auth-secret=turn-secret" in turn_conf and "tls-listening-port=443" in turn_conf
    assert "allowed-peer-ip=198.51.100.20" in turn_conf
    assert "denied-peer-ip=0.0.0.0-255.255.255.255" in turn_conf
    assert "relay-79/etc/systemd/system/diemcau-janus-relay-79.service" in by_name
    assert 'rtp_port_range = "61000-65000"' in janus  # outside the cascade's ports
    # The cascade's plain RTP ports take packets from the media nodes only (the NATed
    # relay's own private address included: it sends itself its floor feeds).
    nft = by_name["relay-79/etc/nftables.d/diemcau-janus-relay-79.nft"]
    assert "elements = { 198.51.100.20, 198.51.100.31, 100.64.9.31 }" in nft
    assert "udp dport 10000-60000 ip saddr != @media_nodes drop" in nft
    assert "table inet diemcau_janus_relay_79 {" in nft


@pytest.mark.parametrize(
    ("extra", "central", "error"),
    [
        ("", "relay", "exactly one node must have role central"),
        (
            '[[turn]]\nname = "central"\naddress = "198.51.100.41"\nsecret = "env:X"\n',
            "central",
            "duplicate names: central",
        ),
        ('colour = "red"\n', "central", "turn.0.colour: Extra inputs are not permitted"),
        (
            "[[turn]]\nname = 't2'\naddress = '198.51.100.400'\nsecret = 'env:X'\n",
            "central",
            "turn.1.address",
        ),
        (
            "[[turn]]\nname = 't3'\naddress = '198.51.100.41'\nsecret = 'hunter2'\n",
            "central",
            "turn.1.secret: Value error, must be an env:NAME or file:PATH reference",
        ),
        ("[[turn\n", "central", "not valid TOML"),
        (
            RELAY_01 + "rtp_ports = [20000, 40000]\n",
            "central",
            "node.2.rtp_ports: Value error, must lie outside 10000-60000",
        ),
        (
            RELAY_01 + "rtp_ports = [65000, 61000]\n",
            "central",
            "node.2.rtp_ports: Value error, must be [low, high] with 0 < low < high",
        ),
    ],
)
def test_bad_inventories_name_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, central: str, error: str
) -> None:
    monkeypatch.setenv("DC_TEST_TOKEN", "tok")
    with pytest.raises(InventoryError, match=re.escape(error)):
        Inventory.load(_write(tmp_path, extra, central))


def test_unresolvable_secrets_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DC_TEST_TOKEN", raising=False)
    inv = Inventory.load(_write(tmp_path))
    with pytest.raises(InventoryError, match="node central token_secret: environment variable"):
        inv.janus_nodes()
    monkeypatch.setenv("DC_TEST_TOKEN", "tok")
    (tmp_path / "s" / "a").unlink()
    with pytest.raises(InventoryError, match="node central admin_secret: cannot read"):
        inv.janus_nodes()
    assert not (tmp_path / "out").exists()


def test_turn_rest_credentials() -> None:
    user, password = turn_credentials("s3cret", "00004", 1_800_000_000)
    assert user == "1800000000:00004"
    want = base64.b64encode(hmac.new(b"s3cret", user.encode(), hashlib.sha1).digest()).decode()
    assert password == want
    with pytest.raises(ValueError, match="must not contain"):
        turn_credentials("s", "a:b", 1)
    servers = ice_servers([TurnServer("t", "198.51.100.40", "s3cret")], "00004", 1_800_000_000)
    assert servers[0]["username"] == user and servers[0]["credential"] == want
    assert servers[0]["urls"][-1] == "turns:198.51.100.40:443?transport=tcp"


def test_render_command_writes_files_or_names_the_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from diemcau.cli import main

    monkeypatch.setenv("DC_TEST_TOKEN", "tok")
    monkeypatch.setenv("DC_TEST_TURN", "t")
    inv = _write(tmp_path)
    assert main(["deploy", "render", "--inventory", str(inv), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o/central/etc/diemcau/janus-central/janus.jcfg").exists()
    monkeypatch.delenv("DC_TEST_TURN")
    assert main(["deploy", "render", "--inventory", str(inv), "--out", str(tmp_path / "p")]) == 2
    assert "turn turn-1 secret: environment variable DC_TEST_TURN" in capsys.readouterr().err


def test_a_standby_control_server_is_let_in_by_every_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[control] standby``: the standby of a pair drives the nodes too once it takes
    over (docs/reliability.md), so every node's Admin API accepts both addresses."""
    monkeypatch.setenv("DC_TEST_TOKEN", "tok")
    monkeypatch.setenv("DC_TEST_TURN", "t")
    path = _write(tmp_path)
    text = path.read_text()
    path.write_text(text.replace("[control]\n", '[control]\nstandby = "198.51.100.12"\n', 1))
    inv = Inventory.load(path)
    assert inv.control.addresses == ["198.51.100.10", "198.51.100.12"]
    files = render_all(inv, tmp_path / "out")
    for node in ("central", "relay-79"):
        ws = next(
            p.read_text()
            for p in files
            if p.name == "janus.transport.websockets.jcfg" and f"janus-{node}" in str(p)
        )
        assert 'admin_ws_acl = "198.51.100.10,198.51.100.12"' in ws
    # Bad input: a standby that is no address is named.
    path.write_text(text.replace("[control]\n", '[control]\nstandby = "cc2.local"\n', 1))
    with pytest.raises(InventoryError, match=re.escape("control.standby")):
        Inventory.load(path)
