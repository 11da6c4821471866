"""peerpool reference refresh: IX-F drift against the configuration, on a real simulated exchange."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pyasn
import pytest

from peerpool.config.load import load_exchange
from peerpool.refresh import ixf_drift
from tests.conftest import REPO

PEERPOOL = REPO / ".venvs" / "core" / "bin" / "peerpool"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "sim"
    args = ["simulate", "--members", "4", "--days", "1", "--seed", "9", "--out", str(out)]
    proc = subprocess.run([str(PEERPOOL), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_export_of_the_same_exchange_has_no_drift(sim: Path) -> None:
    drift = ixf_drift(load_exchange(sim / "exchange.toml"), sim / "ixf.json")
    assert drift.lines() == []


def test_drift_names_a_missing_member_and_a_changed_mac(sim: Path, tmp_path: Path) -> None:
    exchange = load_exchange(sim / "exchange.toml")
    document = json.loads((sim / "ixf.json").read_text())
    members = document["member_list"]
    dropped = members.pop()  # a member the export no longer lists
    # change the first MAC of the first remaining member in the export
    first = members[0]
    vlan = first["connection_list"][0]["vlan_list"][0]
    family = "ipv4" if "ipv4" in vlan else "ipv6"
    old_mac = vlan[family]["mac_addresses"][0]
    vlan[family]["mac_addresses"] = ["02:ff:ff:ff:ff:01"]
    changed = tmp_path / "ixf.json"
    changed.write_text(json.dumps(document))
    lines = ixf_drift(exchange, changed).lines()
    assert f"member AS{dropped['asnum']} is in the configuration but not in the IX-F export" in lines
    mac_lines = [line for line in lines if line.startswith(f"member AS{first['asnum']}: MACs")]
    assert len(mac_lines) == 1 and old_mac in mac_lines[0] and "02:ff:ff:ff:ff:01" in mac_lines[0]


def test_refresh_command_exports_reference_tables_and_builds_the_asn_database(
    sim: Path, tmp_path: Path
) -> None:
    lake, asn_db = tmp_path / "lake", tmp_path / "asn.dat"
    args = ["reference", "refresh", "--config", str(sim / "exchange.toml"), "--lake", str(lake)]
    args += ["--ixf", str(sim / "ixf.json"), "--rib", str(sim / "rib.mrt"), "--asn-db", str(asn_db)]
    proc = subprocess.run([str(PEERPOOL), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    exchange = load_exchange(sim / "exchange.toml")
    members = pq.read_table(lake / "reference" / "members.parquet").column("member_id").to_pylist()
    assert sorted(members) == sorted(m.id for m in exchange.members)
    db = pyasn.pyasn(str(asn_db))
    for member in exchange.members:
        for prefix in member.prefixes:
            address = prefix.split("/")[0]
            assert db.lookup(address)[0] == member.asn, (member.id, prefix)
