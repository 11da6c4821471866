"""IX-F member export import against the real exports in ../shared/realdata/ixf.

Member and port counts are computed here from the JSON with the standard ``json`` module
(one port per interface per VLAN of a connection, as documented in docs/configuration.md);
field values were read by eye from the files; which files break the schema and how is
from realdata/MANIFEST.md section 4 (checked there with jsonschema).
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from peerpool.cli import cli
from peerpool.config.ixf import exchange_members_from_ixf
from peerpool.config.load import load_exchange
from peerpool.errors import ConfigError, InputError

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
IXF = REALDATA / "ixf" / "arouteserver"
EXPORTS = sorted((IXF / "euroix_data").glob("*.json")) + sorted((IXF / "ixf-member-export").glob("*.json"))
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "exchange.toml"


def export(name: str) -> Path:
    matches = [p for p in EXPORTS if p.name == name]
    assert matches, f"{name} missing from {IXF}"
    return matches[0]


def counted_with_json(path: Path) -> tuple[int, int]:
    """(distinct member ASNs, ports) counted straight from the JSON."""
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    asns = {m["asnum"] for m in data["member_list"]}
    ports = 0
    for m in data["member_list"]:
        for c in m.get("connection_list", []):
            flat: list[dict[str, Any]] = []
            for v in c.get("vlan_list", []):
                flat += v if isinstance(v, list) else [v]  # IXP Manager 0.5 nests a list
            links = len(c.get("if_list", []))
            vlans = len({v.get("vlan_id") for v in flat})
            if links or vlans:
                ports += max(links, 1) * max(vlans, 1)
    return len(asns), ports


def test_the_real_exports_are_all_here() -> None:
    assert len(EXPORTS) == 9, [p.name for p in EXPORTS]


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_every_real_export_imports_with_the_counts_of_the_json(path: Path) -> None:
    result = exchange_members_from_ixf(path)
    members, ports = counted_with_json(path)
    assert len(result.members) == members
    assert len(result.ports) == ports
    assert {p.member for p in result.ports} <= {m.id for m in result.members}
    assert {p.switch for p in result.ports} <= {s.id for s in result.switches}


def test_official_example_values() -> None:
    result = exchange_members_from_ixf(export("official_more_complex_example.json"))
    (netflix,) = result.members
    assert (netflix.id, netflix.asn, netflix.name, netflix.joined) == (
        "AS2906",
        2906,
        "Netflix",
        dt.date(2009, 2, 4),
    )
    assert [s.id for s in result.switches] == ["PXC-TC5-144", "PXC-GLO-146"]
    assert (result.switches[0].colo, result.switches[0].city) == ("Telecity 5", "Amsterdam")
    a, b = result.ports
    assert (a.switch, a.speed_mbps, a.ipv4, a.ipv6) == (
        "PXC-TC5-144",
        10000,
        ("195.69.146.250",),
        ("2001:7f8:1::a500:2906:2",),
    )
    assert a.connected == dt.date(2009, 2, 4) and a.macs == ("00:0a:95:9d:68:16",)
    assert (b.switch, b.ipv4) == ("PXC-GLO-146", ("195.69.147.250",))
    # the same MAC on two non-bundled ports of one VLAN would flap; kept on the first port, said so
    assert b.macs == ()
    assert (
        "mac 00:0a:95:9d:68:16 of AS2906 is on ports 'PXC-TC5-144:ixf-as2906-c1' and "
        "'PXC-GLO-146:ixf-as2906-c2' "
        "in vlan 1; kept on 'PXC-TC5-144:ixf-as2906-c1' only (give both ports one bundle if they are one lag)"
    ) in result.warnings
    # the spec's example writes mac_address, the schema says mac_addresses
    assert (
        "member_list[0].connection_list[0].vlan_list[0].ipv4.mac_address is not a schema "
        "key (mac_addresses); "
        "read as such"
    ) in result.warnings
    # vlan_id 0 is the IXP's own id, not an 802.1Q tag
    assert a.vlan == 1
    assert (
        "member_list[0].connection_list[0].vlan_list vlan_id 0 is not an 802.1q tag; "
        "vlan set to 1, set the real tag"
    ) in result.warnings


def test_v07_export_is_valid_and_has_macs() -> None:
    result = exchange_members_from_ixf(export("skip_routeserver_07.json"))
    assert result.version == "0.7"
    assert result.timestamp == dt.datetime(2020, 3, 14, 11, 15, 41, tzinfo=dt.UTC)
    # valid against its schema (MANIFEST): the only warning is the placeholder notice
    assert len(result.warnings) == 1 and result.warnings[0].startswith(
        "ix-f has no ifindex or interface names"
    )
    pch = next(p for p in result.ports if p.member == "AS42")
    assert (pch.id, pch.speed_mbps, pch.vlan) == ("tdcSUPRnetNexus:ixf-as42-c1", 1000, 1)
    assert pch.macs == ("00:3a:7d:68:5a:61",)
    assert (pch.ipv4, pch.ipv6) == (("206.53.201.22",), ("2001:504:60::2a",))
    assert result.members[1].name == "DNS-OARC-112" and result.members[1].joined == dt.date(2019, 5, 23)


def test_qcix_10_null_url_and_a_lag() -> None:
    result = exchange_members_from_ixf(export("skip_routeserver_10.json"))
    assert result.version == "1.0"
    assert "member_list[17].url is null" in result.warnings
    assert result.members[17].name == "South Front Networks" and result.members[17].joined == dt.date(
        2019, 12, 31
    )
    google = [p for p in result.ports if p.member == "AS36040"]
    # four 10G interfaces on switch 2 ("Davenport QCIX Switch") in one connection: one bundle
    assert [p.interface for p in google] == [f"ixf-as36040-c1-l{n}" for n in (1, 2, 3, 4)]
    assert {(p.switch, p.speed_mbps, p.bundle, p.ipv4) for p in google} == {
        ("Davenport-QCIX-Switch", 10000, "as36040-c1", ("206.83.43.19",))
    }
    assert len({p.ifindex for p in result.ports if p.switch == "Davenport-QCIX-Switch"}) == len(
        [p for p in result.ports if p.switch == "Davenport-QCIX-Switch"]
    )


def test_inex_05_without_timestamp() -> None:
    result = exchange_members_from_ixf(export("ixpmanager_workaround.json"))
    assert result.version == "0.5" and result.timestamp is None
    assert result.warnings[:2] == [
        "version 0.5 has no published schema; checked against 0.6",
        "timestamp is missing",
    ]
    assert (
        "member_list[0].connection_list[0].vlan_list[0] is an array inside vlan_list "
        "(ixp manager 0.5 output); "
        "its entries were read as vlan entries"
    ) in result.warnings
    (as112,) = result.members
    assert (as112.id, as112.name) == ("AS112", "AS112 Reverse DNS")
    assert [(p.switch, p.vlan, p.ipv4, p.ipv6, p.speed_mbps) for p in result.ports] == [
        ("ixf-switch-51", 2, ("185.6.36.6",), ("2001:7f8:18::6",), 1000),
        ("ixf-switch-21", 3, ("194.88.240.6",), ("2001:7f8:18:12::6",), 1000),
    ]


def test_routeserver_only_fragment() -> None:
    result = exchange_members_from_ixf(export("routeserver_only.json"))
    assert "timestamp is missing" in result.warnings
    assert "ixp_list[0].shortname is missing" in result.warnings
    assert (
        "member_list[0].connection_list[0].if_list is missing; one port on switch 'ixf-switch-unknown' "
        "at a placeholder 1000 mbps"
    ) in result.warnings
    assert [(p.switch, p.ipv4, p.ipv6) for p in result.ports] == [
        ("ixf-switch-unknown", ("1.1.1.1",), ("1:1:1:1::",)),
        ("ixf-switch-unknown", ("1.1.1.2",), ("1:1:1:2::",)),
    ]
    assert result.placeholders["port:ixf-switch-unknown:ixf-as1-c1"] == [
        "interface",
        "ifindex",
        "switch",
        "connected",
        "speed_mbps",
        "vlan",
    ]


# --- refused files ------------------------------------------------------------------------------
def test_not_json_is_refused_with_its_position(tmp_path: Path) -> None:
    bad = tmp_path / "members.json"
    bad.write_text('{"version": "1.0",\n "member_list": [}', "utf-8")
    with pytest.raises(InputError) as info:
        exchange_members_from_ixf(bad)
    assert str(info.value) == (
        f"{bad}: not json (expecting value at line 2, column 18); give an ix-f member export (.json)"
    )


def test_no_member_list_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "members.json"
    bad.write_text(
        json.dumps({"version": "1.0", "timestamp": "2020-01-01T00:00:00Z", "ixp_list": []}), "utf-8"
    )
    with pytest.raises(ConfigError) as info:
        exchange_members_from_ixf(bad)
    assert (
        str(info.value) == f"{bad}: no member_list array; this is not an ix-f member export (or an empty one)"
    )


def test_members_without_asn_are_all_listed(tmp_path: Path) -> None:
    data = json.loads(export("skip_routeserver_07.json").read_text("utf-8"))
    del data["member_list"][1]["asnum"]
    data["member_list"][4]["asnum"] = "AS5"
    bad = tmp_path / "members.json"
    bad.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ConfigError) as info:
        exchange_members_from_ixf(bad)
    assert str(info.value).splitlines() == [
        f"{bad}: 2 member entries cannot be imported; fix the export:",
        f"{bad}: member_list[1].asnum is missing; every member needs its asn",
        f"{bad}: member_list[4].asnum is 'AS5', not an as number; every member needs its asn",
    ]


def test_unsupported_version_and_missing_file(tmp_path: Path) -> None:
    data = json.loads(export("skip_routeserver_07.json").read_text("utf-8"))
    data["version"] = "2.0"
    bad = tmp_path / "members.json"
    bad.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ConfigError, match=r"ix-f version '2\.0' is not supported"):
        exchange_members_from_ixf(bad)
    with pytest.raises(InputError, match="ix-f export not found"):
        exchange_members_from_ixf(tmp_path / "absent.json")


def test_a_mac_claimed_by_two_members_is_dropped_from_both(tmp_path: Path) -> None:
    data = json.loads(export("skip_routeserver_07.json").read_text("utf-8"))
    # give AS112 (member 1) the MAC of AS42 (member 0), read above: 00:3a:7d:68:5a:61
    data["member_list"][1]["connection_list"][0]["vlan_list"][0]["ipv4"]["mac_addresses"] = [
        "00:3A:7D:68:5A:61"
    ]
    path = tmp_path / "members.json"
    path.write_text(json.dumps(data), "utf-8")
    result = exchange_members_from_ixf(path)
    owners = [p.member for p in result.ports if "00:3a:7d:68:5a:61" in p.macs]
    assert owners == []
    assert "mac 00:3a:7d:68:5a:61 is listed for AS112, AS42; dropped from all of them" in result.warnings
    # AS112 keeps its own other MAC (from its ipv6 entry)
    assert next(p for p in result.ports if p.member == "AS112").macs == ("3e:b0:4a:ed:93:20",)


# --- peerpool config from-ixf -----------------------------------------------------------------------
@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_from_ixf_writes_a_file_that_check_accepts(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "exchange.toml"
    result = CliRunner().invoke(cli, ["config", "from-ixf", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stderr
    check = CliRunner().invoke(cli, ["config", "check", str(out)])
    assert check.exit_code == 0, check.output
    members, ports = counted_with_json(path)
    ex = load_exchange(out)
    assert (len(ex.members), len(ex.ports)) == (members, ports)
    text = out.read_text("utf-8")
    assert text.startswith(f"# Generated by 'peerpool config from-ixf' from {path.name}")
    if ports:  # placeholders are marked where they are
        assert "# TODO placeholders (ix-f has none): interface, ifindex" in text
        assert "monthly_fee is 0.00, set the real fee" in text


def test_from_ixf_prints_the_warnings_grouped() -> None:
    result = CliRunner().invoke(cli, ["config", "from-ixf", str(export("bcix.json"))])
    assert result.exit_code == 0
    bcix = export("bcix.json")
    assert (
        f"warning: {bcix}: member_list[0].name is missing; member named 'AS15169' (and 80 more like it)"
    ) in result.stderr.splitlines()
    # without --out the file goes to stdout and is TOML
    assert len(tomllib.loads(result.stdout)["members"]) == 81


def test_from_ixf_merges_into_a_base(tmp_path: Path) -> None:
    out = tmp_path / "merged.toml"
    path = export("skip_routeserver_07.json")
    result = CliRunner().invoke(
        cli, ["config", "from-ixf", str(path), "--base", str(EXAMPLE), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    merged, base = load_exchange(out), load_exchange(EXAMPLE)
    assert merged.transit_contracts == base.transit_contracts and merged.border_routers == base.border_routers
    assert merged.members[:2] == base.members and merged.ports[:2] == base.ports
    assert len(merged.members) == 2 + 23
    assert [s.id for s in merged.switches] == ["ktw-sw1", "waw-sw1", "tdcSUPRnetNexus"]
    assert "2 member(s) of the base are not in the export and were kept: AS64500, AS64501" in result.stderr
    # the base already prices 1000 and 10000 Mbps ports: no invented fee
    assert merged.port_fees == base.port_fees


def test_from_ixf_refuses_to_overwrite_and_reports_bad_exports(tmp_path: Path) -> None:
    out = tmp_path / "exchange.toml"
    out.write_text("keep me", "utf-8")
    result = CliRunner().invoke(cli, ["config", "from-ixf", str(export("gr-ix.json")), "--out", str(out)])
    assert result.exit_code == 3 and "already exists; choose another --out or pass --force" in result.stderr
    assert out.read_text("utf-8") == "keep me"
    bad = tmp_path / "bad.json"
    bad.write_text("<html>", "utf-8")
    result = CliRunner().invoke(cli, ["config", "from-ixf", str(bad)])
    assert result.exit_code == 3 and f"error: {bad}: not json" in result.stderr


def test_without_the_schemas_validation_is_skipped_and_said(tmp_path: Path) -> None:
    result = exchange_members_from_ixf(export("skip_routeserver_10.json"), schema_dir=tmp_path)
    assert result.warnings[0] == (
        f"schema validation skipped: {tmp_path}/ixp-member-list-1.0.schema.json not found "
        "(set PEERPOOL_IXF_SCHEMAS to the folder of the euro-ix schemas)"
    )
    assert "member_list[17].url is null" not in result.warnings  # that finding comes from the schema
    assert len(result.members) == 19
