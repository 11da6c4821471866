"""The decode pipeline: real captures, enrichment, unknown MACs, quarantine, loss, idempotence, retention.

Independent references: tshark's decodes (realdata/tshark/SUMMARY.json and the per-capture JSON),
pyasn lookups, hand-made sFlow datagrams with hand-counted sequence gaps, and sums computed in
the tests from what went in. Configurations are built here from the model's dataclasses.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import struct
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pyasn
import pytest
from click.testing import CliRunner

from ingest import spool as sp
from ingest.enrich import Enricher
from ingest.loss import LossTracker
from ingest.pipeline import process_files
from peerpool.config.model import Exchange, Member, MemberPort, Site, SnmpSettings, Switch
from peerpool.errors import ConfigError, InputError, LakeError

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
SUMMARY = json.loads((REALDATA / "tshark" / "SUMMARY.json").read_text())
T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


# --- helpers -----------------------------------------------------------------------------------


def read_datagrams(path: Path) -> list[bytes]:
    """realdata/generated/*.datagrams.bin: [4-byte big-endian length][datagram], repeated."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("!I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def write_spool(
    path: Path, datagrams: list[bytes], protocol: int, source: str, start_ns: int, step_ns: int
) -> None:
    data = bytearray(sp.MAGIC)
    af, raw = sp.pack_address(source)
    for i, d in enumerate(datagrams):
        data += sp.encode_record(d, start_ns + i * step_ns, af, raw, 50000, protocol)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


def sql(lake: Path, query: str) -> list[tuple[Any, ...]]:
    """Run ``query`` with {table} placeholders replaced by the table's parquet glob."""
    tables = ["flows", "member_matrix", "port_counters", "flow_loss", "quarantine", "unknown_macs"]
    for t in tables:
        files = list((lake / t).rglob("*.parquet")) if (lake / t).exists() else []
        source = (
            f"read_parquet('{lake / t}/**/*.parquet', hive_partitioning=true)"
            if files
            else "(select null as x where false)"
        )
        query = query.replace("{" + t + "}", source)
    relation = duckdb.sql(query)
    assert relation is not None
    return relation.fetchall()


def tshark_pairs(path: Path) -> Any:
    """tshark -T json output keeping repeated keys (tshark repeats e.g. 'Counters sample, seq N')."""
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return json.loads(text, object_pairs_hook=lambda pairs: pairs)


def find_all(node: Any, key: str) -> list[Any]:
    found = []
    if isinstance(node, list):
        for item in node:
            if isinstance(item, tuple) and len(item) == 2:
                k, v = item
                if k == key:
                    found.append(v)
                found.extend(find_all(v, key))
            else:
                found.extend(find_all(item, key))
    return found


def lookup(pairs: Any, key: str) -> Any:
    for k, v in pairs:
        if k == key:
            return v
    raise KeyError(key)


def switch(id_: str, site: str, agent: str) -> Switch:
    return Switch(
        id=id_, site=site, management_address="127.0.0.1", snmp=SnmpSettings(), sflow_agent_address=agent
    )


def member(asn: int) -> Member:
    return Member(
        id=f"AS{asn}", asn=asn, name=f"net {asn}", billing_entity=f"net {asn}", joined=dt.date(2020, 1, 1)
    )


def port(
    sw: str, iface: str, ifindex: int, member_id: str, macs: tuple[str, ...], vlan: int = 100
) -> MemberPort:
    return MemberPort(
        id=f"{sw}:{iface}",
        switch=sw,
        interface=iface,
        ifindex=ifindex,
        speed_mbps=10000,
        vlan=vlan,
        member=member_id,
        macs=macs,
    )


def exchange(
    switches: tuple[Switch, ...], members: tuple[Member, ...], ports: tuple[MemberPort, ...]
) -> Exchange:
    return Exchange(
        name="test ix",
        sites=(Site("KTW", "Katowice"), Site("WAW", "Warszawa")),
        switches=switches,
        members=members,
        ports=ports,
        border_routers=(),
        transit_contracts=(),
        port_fees=(),
    )


# synth.pcap's six router MACs: four on configured ports (one member has two ports), two unknown
SYNTH_MACS = {
    "02:00:5e:10:00:01": ("AS64501", "ktw-sw1:et-1"),
    "02:00:5e:10:00:02": ("AS64502", "ktw-sw1:et-2"),
    "02:00:5e:10:00:03": ("AS64503", "ktw-sw1:et-3"),
    "02:00:5e:10:00:04": ("AS64503", "ktw-sw1:et-4"),
}


def synth_exchange(agent: str = "192.0.2.10") -> Exchange:
    ports = tuple(
        port("ktw-sw1", p.split(":")[1], 1000 + i, m, (mac,))
        for i, (mac, (m, p)) in enumerate(SYNTH_MACS.items())
    )
    return exchange(
        (switch("ktw-sw1", "KTW", agent),), tuple(member(a) for a in (64501, 64502, 64503)), ports
    )


# --- every real capture ------------------------------------------------------------------------

# Captures whose NetFlow/IPFIX record count differs from tshark's, for reasons the decoder's own
# tests establish (tests/test_netflow_tshark.py DISAGREEMENTS) and that tshark flags itself.
NETFLOW_DISAGREEMENTS = {
    "logstash-codec-netflow/netflow_9_h3c.pcap": "tshark stops at H3C's 2-byte element 43; 16 records",
    "logstash-codec-netflow/netflow_9_h3c_netstream_with_varstring.pcap": "same H3C element 43 length",
    "logstash-codec-netflow/netflow_9_invalid_01.pcap": "v9 header count says 2, the flowsets hold 6",
    "pmacct/112-IPFIXv10-CISCO-options-map-reassignment/traffic-00.pcap": "tshark: templates per session",
}
# Datagrams the pipeline must quarantine, and why.
EXPECTED_QUARANTINE = {
    "tcpdump/malformed/sflow_print-segv.pcap": (1, "fuzzed crash reproducer: 8 bytes, header cut"),
    "tcpdump/sflow_multiple_counter_30_pdus.pcap": (
        5,
        "5 of the 30 frames to port 6343 are not sFlow (MANIFEST)",
    ),
}


@pytest.mark.parametrize("capture", sorted(SUMMARY))
def test_every_real_capture(tmp_path: Path, capture: str) -> None:
    expected = SUMMARY[capture]
    result = process_files([REALDATA / "pcaps" / capture], tmp_path / "lake")
    f = result.files[0]
    assert f.status == "processed"
    sflow = expected.get("sflow", {})
    cflow = expected.get("cflow", {})
    if sflow.get("datagrams"):
        assert f.flow_samples == sflow["flow_samples"] + sflow["expanded_flow_samples"]
        assert f.counter_samples == sflow["counter_samples"] + sflow["expanded_counter_samples"]
        assert sql(tmp_path / "lake", "select count(*) from {flows}")[0][0] == f.flow_samples
        # port counters come from counter samples that carry interface counters (record 1)
        decoded = tshark_pairs(REALDATA / "tshark" / capture.replace(".pcap", ".tshark.json"))
        generic = len(find_all(decoded, "Generic interface counters"))
        assert sql(tmp_path / "lake", "select count(*) from {port_counters}")[0][0] == generic
    versions = set(cflow.get("versions", {}))
    if versions & {"9", "10"} and capture not in NETFLOW_DISAGREEMENTS:
        # tshark's two-pass count (templates may come after data) includes options data records
        assert f.flow_records + f.options_records == cflow.get("data_records", 0), capture
    if versions == {"5"}:
        # NetFlow v5 is out of scope: every datagram is quarantined with the reason
        assert f.quarantined == cflow["datagrams"]
        reasons = sql(tmp_path / "lake", "select distinct reason from {quarantine}")
        assert all("netflow v5 is not supported" in r[0] for r in reasons)
    else:
        assert f.quarantined == EXPECTED_QUARANTINE.get(capture, (0, ""))[0], capture
    assert sql(tmp_path / "lake", "select count(*) from {quarantine}")[0][0] == f.quarantined


# --- enrichment, matrix, unknown MACs ----------------------------------------------------------


def tshark_flow_samples(path: Path) -> list[dict[str, Any]]:
    """(src mac, dst mac, frame length, sampling rate) of every flow sample tshark decoded."""
    out = []
    for packet in tshark_pairs(path):
        layers = lookup(lookup(packet, "_source"), "layers")
        sflow = lookup(layers, "sflow")
        for key, sample in sflow:
            if not key.startswith("Flow sample"):
                continue
            header = lookup(sample, "Raw packet header")
            eth = lookup(lookup(header, "sflow_245.header_tree"), "eth")
            out.append(
                {
                    "src": lookup(eth, "eth.src"),
                    "dst": lookup(eth, "eth.dst"),
                    "length": int(lookup(header, "sflow_245.header.frame_length")),
                    "rate": int(lookup(sample, "sflow.flow_sample.sampling_rate")),
                }
            )
    return out


def test_enrichment_matrix_and_unknown_macs_against_tshark(tmp_path: Path) -> None:
    capture = REALDATA / "generated" / "pmacct-sfprobe.pcap"
    samples = tshark_flow_samples(REALDATA / "generated" / "pmacct-sfprobe.tshark.json.gz")
    assert len(samples) == 739
    lake = tmp_path / "lake"
    result = process_files([capture], lake, exchange=synth_exchange())
    f = result.files[0]
    assert f.flow_samples == f.matrix_samples == 739

    expected: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    unknown: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for s in samples:
        src = SYNTH_MACS.get(s["src"], (None, None))
        dst = SYNTH_MACS.get(s["dst"], (None, None))
        acc = expected[(src[0], dst[0], src[1], dst[1])]
        acc[0] += s["length"] * s["rate"]
        acc[1] += s["rate"]
        acc[2] += 1
        for mac, direction in ((s["src"], "src"), (s["dst"], "dst")):
            if mac not in SYNTH_MACS:
                unknown[(mac, direction)][0] += 1
                unknown[(mac, direction)][1] += s["length"] * s["rate"]
    got = sql(
        lake,
        "select src_member_id, dst_member_id, src_port_id, dst_port_id, sum(estimated_bytes), "
        "sum(estimated_packets), sum(sample_count) from {member_matrix} group by all",
    )
    assert {r[:4]: list(r[4:]) for r in got} == dict(expected)
    assert {r[0] for r in sql(lake, "select distinct site from {member_matrix}")} == {"KTW"}
    got_unknown = sql(
        lake,
        "select mac, direction, sum(sample_count), sum(estimated_bytes) from {unknown_macs} group by all",
    )
    assert {(r[0], r[1]): [r[2], r[3]] for r in got_unknown} == dict(unknown)
    assert {r[0] for r in got_unknown} == {"02:00:5e:10:00:05", "02:00:5e:10:00:06"}
    assert f.unknown_mac_samples == sum(v[0] for v in unknown.values())
    # flows keep every sample, unknown MACs with a null member (never dropped)
    rows = sql(lake, "select src_mac, src_member_id, src_port_id, count(*) from {flows} group by all")
    for mac, member_id, port_id, _n in rows:
        assert (member_id, port_id) == SYNTH_MACS.get(mac, (None, None))
    assert sum(r[3] for r in rows) == 739


def test_asn_enrichment_matches_pyasn(tmp_path: Path) -> None:
    db_path = REALDATA / "asn" / "ipasn6_20151101.dat.gz"
    lake = tmp_path / "lake"
    process_files([REALDATA / "generated" / "softflowd-v10.pcap"], lake, asn_db=db_path)
    db = pyasn.pyasn(str(db_path))
    rows = sql(lake, "select src_ip, dst_ip, src_asn, dst_asn from {flows}")
    assert len(rows) == 3000
    for src_ip, dst_ip, src_asn, dst_asn in rows:
        assert (src_asn, dst_asn) == (db.lookup(src_ip)[0], db.lookup(dst_ip)[0])
    # README section 5: 8.8.8.x -> AS15169 in this 2015 data, 2001:67c:2e8::/48 -> AS3333
    assert {r[2] for r in rows if r[0].startswith("8.8.8.")} == {15169}
    assert {r[2] for r in rows if r[0].startswith("2001:67c:2e8:22:")} == {3333}
    assert any(r[0].startswith("2001:67c:2e8:22:") for r in rows)


def test_vlan_matching_rules() -> None:
    """A tagged sample must match the port's VLAN; an untagged one matches a MAC on exactly one port."""
    ports = (
        port("sw", "a", 1, "AS1", ("02:00:00:00:00:01",), vlan=100),
        port("sw", "b", 2, "AS2", ("02:00:00:00:00:02",), vlan=100),
        port("sw", "c", 3, "AS2", ("02:00:00:00:00:02",), vlan=200),
    )
    enricher = Enricher(exchange((switch("sw", "KTW", "10.0.0.1"),), (member(1), member(2)), ports))
    assert enricher.port_for_mac("02:00:00:00:00:01", 100) is ports[0]
    assert enricher.port_for_mac("02:00:00:00:00:01", 200) is None  # wrong VLAN shows, not guessed
    assert enricher.port_for_mac("02:00:00:00:00:01", None) is ports[0]
    assert enricher.port_for_mac("02:00:00:00:00:01", 0) is ports[0]
    assert enricher.port_for_mac("02:00:00:00:00:02", 200) is ports[2]
    assert enricher.port_for_mac("02:00:00:00:00:02", None) is None  # on two VLANs: ambiguous


def test_sflow_counter_samples_to_port_counters(tmp_path: Path) -> None:
    capture = REALDATA / "pcaps" / "tcpdump" / "sflow-print-v6.pcap"
    ex = exchange(
        (switch("sw6", "WAW", "30::1:1:1"),),
        (member(64510),),
        (port("sw6", "et-0/0/1", 23001, "AS64510", ("02:00:00:00:aa:01",)),),
    )
    lake = tmp_path / "lake"
    process_files([capture], lake, exchange=ex)
    expected: Counter[tuple[int, int, int]] = Counter()
    for generic in find_all(
        tshark_pairs(REALDATA / "tshark" / "tcpdump" / "sflow-print-v6.tshark.json"),
        "Generic interface counters",
    ):
        expected[
            (
                int(lookup(generic, "sflow_245.ifindex")),
                int(lookup(generic, "sflow_245.ifinoct")),
                int(lookup(generic, "sflow_245.ifoutoct")),
            )
        ] += 1
    rows = sql(
        lake, "select ifindex, in_octets, out_octets, port_id, device_id, source, ok from {port_counters}"
    )
    assert Counter((r[0], r[1], r[2]) for r in rows) == expected
    for ifindex, _i, _o, port_id, device_id, source, ok in rows:
        assert port_id == ("sw6:et-0/0/1" if ifindex == 23001 else None)
        assert (device_id, source, ok) == ("sw6", "sflow", True)
    assert any(r[0] == 23001 for r in rows)


# --- quarantine --------------------------------------------------------------------------------


def sflow_sample_count(datagram: bytes) -> int:
    """num_samples from an sFlow v5 header with an IPv4 agent (RFC-less: sflow_version_5.txt)."""
    assert struct.unpack_from("!II", datagram, 0) == (5, 1)
    return int(struct.unpack_from("!I", datagram, 24)[0])


def test_corrupted_datagram_and_damaged_record_in_the_middle(tmp_path: Path) -> None:
    datagrams = read_datagrams(REALDATA / "generated" / "pmacct-sfprobe.datagrams.bin")
    total = sum(sflow_sample_count(d) for d in datagrams)
    assert total == 739
    victim, damaged = 50, 60
    # the 28-byte header and 12 bytes of its first sample: the sample's length field (at byte 32 =
    # 28 + its 4-byte format) announces more bytes than remain
    cut = datagrams[victim][:40]
    spool_file = tmp_path / "sflow5" / "20260101T0000-test-1-000001.spool"
    write_spool(
        spool_file,
        [*datagrams[:victim], cut, *datagrams[victim + 1 :]],
        sp.PROTO_SFLOW5,
        "192.0.2.10",
        T0,
        10**6,
    )
    # flip one byte inside the datagram of record `damaged` (its CRC no longer matches)
    records = list(sp.read_spool(spool_file))
    raw = bytearray(spool_file.read_bytes())
    damaged_offset = records[damaged].offset
    raw[damaged_offset + 4 + sp.BODY_HEAD_SIZE + 40] ^= 0xFF
    spool_file.write_bytes(bytes(raw))

    lake = tmp_path / "lake"
    f = process_files([spool_file], lake).files[0]
    assert f.quarantined == 1 and f.spool_damaged_records == 1
    lost = sflow_sample_count(datagrams[victim]) + sflow_sample_count(datagrams[damaged])
    assert f.flow_samples == total - lost
    assert sql(lake, "select count(*) from {flows}")[0][0] == total - lost
    rows = sql(
        lake, 'select flow_protocol, reason, "offset", datagram from {quarantine} order by flow_protocol'
    )
    assert len(rows) == 2
    sflow_row, spool_row = rows
    assert spool_row[0] == "spool" and spool_row[2] == damaged_offset and "crc mismatch" in spool_row[1]
    assert sflow_row[0] == "sflow5" and sflow_row[3] == cut
    assert f"spool record at byte {records[victim].offset}" in sflow_row[1]
    assert sflow_row[2] == 32 and "sample 1 of" in sflow_row[1]


# --- loss accounting ---------------------------------------------------------------------------


def sflow_datagram(agent: str, sub: int, seq: int, uptime: int, samples: list[tuple[int, int]]) -> bytes:
    """A minimal sFlow v5 datagram (IPv4 agent) with flow samples (source index, sample seq), no records."""
    body = b"".join(
        struct.pack("!II", 1, 32) + struct.pack("!8I", sseq, index, 512, sseq * 512, 0, index, 0, 0)
        for index, sseq in samples
    )
    a = bytes(int(x) for x in agent.split("."))
    return struct.pack("!II4sIIII", 5, 1, a, sub, seq, uptime, len(samples)) + body


def test_loss_hand_made_sequences_across_files(tmp_path: Path) -> None:
    """Datagram sequences 1,2,3 | 6,5,7 | (restart) 1,2 and sample sequences per source, by hand:

    file A: datagrams 1,2,3 (samples of source 7: 1..3)                    -> 0 missing
    file B: datagram 6 (gap 4,5 across the file boundary: 2 missing), then 5 arrives late
            (fills one: 1 missing), then 7. Source 7 samples: 6 (4,5 missing), 5 (late), 7.
            -> datagrams missing 1, samples missing 1
    file C: uptime went back, sequence restarts at 1, 2 -> a restart, nothing missing
    """
    agent = "192.0.2.77"
    up = 1_000_000
    a = [sflow_datagram(agent, 0, s, up + s, [(7, s)]) for s in (1, 2, 3)]
    b = [sflow_datagram(agent, 0, s, up + s, [(7, s)]) for s in (6, 5, 7)]
    c = [sflow_datagram(agent, 0, s, 500 + s, [(7, s)]) for s in (1, 2)]
    for name, dgs, start in (("A", a, T0), ("B", b, T0 + 10**9), ("C", c, T0 + 2 * 10**9)):
        write_spool(tmp_path / "spool" / f"2026010100{name}.spool", dgs, sp.PROTO_SFLOW5, agent, start, 10**6)
    lake = tmp_path / "lake"
    summary = process_files([tmp_path / "spool"], lake)
    by_file = {Path(f.path).stem[-1]: f for f in summary.files}
    assert (by_file["A"].datagrams_missing, by_file["A"].samples_missing) == (0, 0)
    assert (by_file["B"].datagrams_missing, by_file["B"].samples_missing) == (1, 1)
    assert (by_file["C"].datagrams_missing, by_file["C"].samples_missing) == (0, 0)
    assert by_file["C"].loss_restarts == 1
    rows = sql(
        lake,
        "select sum(datagrams_received), sum(datagrams_missing), sum(samples_received), sum(samples_missing) "
        "from {flow_loss} where exporter_address = '192.0.2.77'",
    )
    assert rows == [(8, 1, 8, 1)]


def test_loss_tracker_reorder_duplicate_and_wrap() -> None:
    tracker = LossTracker()
    tracker.begin_file()
    t = T0
    # sequence wraps from 2**32-2 to 1: 2**32-1 and 0 are the only numbers in between -> 0 missing after both
    for seq in (2**32 - 2, 2**32 - 1, 0, 1):
        tracker.netflow9_packet(t, "10.0.0.1", 5, seq, 10_000, 3)
    # 1 -> 4 skips 2 and 3; 3 then arrives late; 4 again is a duplicate
    for seq in (4, 3, 4):
        tracker.netflow9_packet(t, "10.0.0.1", 5, seq, 10_000, 3)
    rows, before = tracker.end_file()
    assert len(rows) == 1
    row = rows[0]
    assert (row["datagrams_received"], row["datagrams_missing"]) == (7, 1)
    assert row["samples_received"] == 21 and row["samples_missing"] is None  # v9 counts packets only
    assert tracker.events.late == 1 and tracker.events.duplicates == 1
    assert before == {"netflow9|10.0.0.1|5|d": None}


def test_loss_tracker_ipfix_records_both_numbering_conventions() -> None:
    """RFC 7011: sequence = records before this message (pmacct); softflowd counts this message's too."""
    tracker = LossTracker()
    tracker.begin_file()
    # exclusive: 0 (+2) 2 (+6) 8 (+6) then 20 instead of 14 -> 6 records missing
    for seq, n in ((0, 2), (2, 6), (8, 6), (20, 5)):
        tracker.ipfix_message(T0, "10.0.0.2", 1, seq, n)
    # inclusive: 21 (21 recs) 47 (26) 71 (24) then 120 with 25 recs: expected 96 -> 24 missing
    for seq, n in ((21, 21), (47, 26), (71, 24), (120, 25)):
        tracker.ipfix_message(T0, "10.0.0.3", 1, seq, n)
    rows, _ = tracker.end_file()
    missing = {
        r["exporter_address"]: (r["samples_received"], r["samples_missing"], r["datagrams_missing"])
        for r in rows
    }
    assert missing == {"10.0.0.2": (19, 6, None), "10.0.0.3": (96, 24, None)}


def test_loss_tracker_restart_is_not_four_billion_lost() -> None:
    tracker = LossTracker()
    tracker.begin_file()
    for seq in (1_000_000, 1_000_001, 7, 8):  # no uptime (IPFIX-like): back by ~1e6 -> restart
        tracker.ipfix_message(T0, "10.0.0.4", 0, seq, 1)
    # 4e9 -> 7 is 2**32 - 4e9 + 7 ahead modulo 2**32: far beyond any plausible loss, a resync
    for seq in (4_000_000_000, 4_000_000_001, 7, 8):
        tracker.ipfix_message(T0, "10.0.0.5", 0, seq, 1)
    rows, _ = tracker.end_file()
    assert [r["samples_missing"] for r in rows] == [0, 0]
    assert tracker.events.restarts == 1 and tracker.events.resyncs == 1


# --- idempotence, changed inputs, collisions, retention -----------------------------------------


def build_spool_dir(root: Path) -> Path:
    """Real exporter datagrams in spool files: sFlow split over 3 files, IPFIX and v9 over 2 each."""
    spool = root / "spool"
    gen = REALDATA / "generated"
    plan = [
        ("sflow5", gen / "pmacct-sfprobe.datagrams.bin", sp.PROTO_SFLOW5, "192.0.2.10", 3),
        ("ipfix", gen / "softflowd-v10.datagrams.bin", sp.PROTO_IPFIX, "127.0.0.1", 2),
        ("netflow9", gen / "pmacct-nfprobe-v9.datagrams.bin", sp.PROTO_NETFLOW9, "127.0.0.1", 2),
    ]
    for proto_dir, source, proto, address, parts in plan:
        datagrams = read_datagrams(source)
        size = -(-len(datagrams) // parts)
        for i in range(parts):
            chunk = datagrams[i * size : (i + 1) * size]
            name = f"20260101T00{i:02d}-test-{proto}-{i:06d}.spool"
            write_spool(spool / proto_dir / name, chunk, proto, address, T0 + i * 60 * 10**9, 10**7)
    return spool


SUMS = {
    "flows": "select count(*), sum(estimated_bytes), sum(estimated_packets) from {flows}",
    "member_matrix": "select count(*), sum(estimated_bytes), sum(sample_count) from {member_matrix}",
    "flow_loss": "select count(*), sum(datagrams_received), sum(datagrams_missing), sum(samples_missing) "
    "from {flow_loss}",
    "quarantine": "select count(*) from {quarantine}",
}


def table_sums(lake: Path) -> dict[str, Any]:
    return {name: sql(lake, q)[0] for name, q in SUMS.items()}


def test_processing_twice_is_processing_once(tmp_path: Path) -> None:
    spool = build_spool_dir(tmp_path)
    lake = tmp_path / "lake"
    first = process_files([spool], lake)
    assert [f.status for f in first.files] == ["processed"] * 7
    once = table_sums(lake)
    # independent totals: 739 sFlow samples, 3000 softflowd records, 3000 pmacct v9 records
    assert once["flows"][0] == 739 + 3000 + 3000
    assert once["member_matrix"][2] == 739
    parts_once = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))

    second = process_files([spool], lake)
    assert [f.status for f in second.files] == ["unchanged"] * 7
    assert table_sums(lake) == once

    forced = process_files([spool], lake, force=True)
    assert [f.status for f in forced.files] == ["processed"] * 7
    assert table_sums(lake) == once
    assert sorted(p.relative_to(lake) for p in lake.rglob("*.parquet")) == parts_once
    # the loss rows of the forced run equal the first run's (state before each file comes from the ledger)
    assert once["flow_loss"][2:] == (0, 0)


def test_changed_input_replaces_its_parts(tmp_path: Path) -> None:
    datagrams = read_datagrams(REALDATA / "generated" / "pmacct-sfprobe.datagrams.bin")
    f = tmp_path / "spool" / "20260101T0000-test-1-000001.spool"
    write_spool(f, datagrams, sp.PROTO_SFLOW5, "192.0.2.10", T0, 10**6)
    lake = tmp_path / "lake"
    process_files([f], lake)
    assert sql(lake, "select count(*) from {flows}")[0][0] == 739
    # the same file rewritten with its first 20 datagrams, 2 hours later (other partitions)
    write_spool(f, datagrams[:20], sp.PROTO_SFLOW5, "192.0.2.10", T0 + 7200 * 10**9, 10**6)
    result = process_files([f], lake)
    assert result.files[0].status == "processed" and result.files[0].parts_removed > 0
    expected = sum(sflow_sample_count(d) for d in datagrams[:20])
    assert sql(lake, "select count(*), min(hour) from {flows}")[0] == (expected, "02")
    assert sql(lake, "select sum(sample_count) from {member_matrix}")[0][0] == expected


def test_same_stem_with_other_content_is_refused(tmp_path: Path) -> None:
    datagrams = read_datagrams(REALDATA / "generated" / "pmacct-sfprobe.datagrams.bin")
    a = tmp_path / "a" / "20260101T0000-x-1-000001.spool"
    b = tmp_path / "b" / "20260101T0000-x-1-000001.spool"
    write_spool(a, datagrams[:5], sp.PROTO_SFLOW5, "192.0.2.10", T0, 10**6)
    write_spool(b, datagrams[5:9], sp.PROTO_SFLOW5, "192.0.2.10", T0, 10**6)
    lake = tmp_path / "lake"
    process_files([a], lake)
    with pytest.raises(LakeError, match="same part key"):
        process_files([b], lake)


def test_retention_is_relative_to_the_newest_data(tmp_path: Path) -> None:
    datagrams = read_datagrams(REALDATA / "generated" / "pmacct-sfprobe.datagrams.bin")[:10]
    old = tmp_path / "spool" / "20200101T0000-t-1-000001.spool"
    new = tmp_path / "spool" / "20200301T0000-t-1-000002.spool"
    jan1_2020 = 1_577_836_800 * 10**9
    write_spool(old, datagrams, sp.PROTO_SFLOW5, "192.0.2.10", jan1_2020, 10**6)
    lake = tmp_path / "lake"
    # data from 2020 only: nothing is removed although the wall clock is years later
    assert process_files([old], lake).retention_removed == []
    assert (lake / "flows" / "date=2020-01-01").is_dir()
    write_spool(new, datagrams, sp.PROTO_SFLOW5, "192.0.2.10", jan1_2020 + 60 * 86_400 * 10**9, 10**6)
    result = process_files([new], lake, retention_days=35)
    assert result.retention_removed == ["flows/date=2020-01-01"]
    assert not (lake / "flows" / "date=2020-01-01").exists()
    assert (lake / "flows" / "date=2020-03-01").is_dir()
    assert (lake / "member_matrix" / "date=2020-01-01").is_dir()  # the matrix is kept
    # a retention longer than the calendar keeps everything instead of failing
    assert process_files([new], lake, retention_days=10**9, force=True).retention_removed == []


# --- errors name the input and the fix -----------------------------------------------------------


def test_cli_errors(tmp_path: Path) -> None:
    from peerpool.cli import cli

    runner = CliRunner()
    lake = str(tmp_path / "lake")
    missing = runner.invoke(cli, ["decode", str(tmp_path / "nope.spool"), "--lake", lake])
    assert isinstance(missing.exception, InputError)
    assert "nope.spool: no such file or folder" in str(missing.exception)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    wrong = runner.invoke(cli, ["decode", str(text), "--lake", lake])
    assert isinstance(wrong.exception, InputError)
    assert "notes.txt: neither a spool file nor a pcap file" in str(wrong.exception)
    bad_config = tmp_path / "exchange.toml"
    bad_config.write_text("[exchange\nname = ")
    capture = str(REALDATA / "generated" / "pmacct-sfprobe.pcap")
    config = runner.invoke(cli, ["decode", capture, "--lake", lake, "--config", str(bad_config)])
    assert isinstance(config.exception, ConfigError)
    assert "exchange.toml" in str(config.exception)
    ok = runner.invoke(cli, ["decode", capture, "--lake", lake, "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert "sflow flow samples" in ok.output and "739" in ok.output


def test_directory_skips_open_files(tmp_path: Path) -> None:
    datagrams = read_datagrams(REALDATA / "generated" / "pmacct-sfprobe.datagrams.bin")[:3]
    write_spool(tmp_path / "s" / "sflow5" / "a.spool", datagrams, sp.PROTO_SFLOW5, "192.0.2.10", T0, 1)
    write_spool(tmp_path / "s" / "sflow5" / "b.open", datagrams, sp.PROTO_SFLOW5, "192.0.2.10", T0, 1)
    with tempfile.TemporaryDirectory() as lake:
        result = process_files([tmp_path / "s"], Path(lake))
    assert [Path(f.path).name for f in result.files] == ["a.spool"]
    assert result.still_open == [str(tmp_path / "s" / "sflow5" / "b.open")]


def test_border_router_sampling_override(tmp_path: Path) -> None:
    """pmacct nfprobe sends no sampling rate; the configured override scales its records."""
    from peerpool.config.model import BorderRouter

    router = BorderRouter(
        id="br1", site="KTW", management_address="127.0.0.1", flow_exporter_address="127.0.0.1",
        snmp=SnmpSettings(), ports=(), sampling_rate_override=100,
    )  # fmt: skip
    ex = Exchange(
        name="x", sites=(Site("KTW", "Katowice"),), switches=(), members=(), ports=(),
        border_routers=(router,), transit_contracts=(), port_fees=(),
    )  # fmt: skip
    lake = tmp_path / "lake"
    process_files([REALDATA / "generated" / "pmacct-nfprobe-v10.pcap"], lake, exchange=ex)
    rows = sql(
        lake,
        "select count(*), sum(bytes), sum(estimated_bytes), min(sampling_rate), max(sampling_rate) "
        "from {flows}",
    )
    count, raw_bytes, estimated, low, high = rows[0]
    assert count == 3000 and (low, high) == (100, 100)
    assert estimated == 100 * raw_bytes


def test_example_configuration_through_the_cli(tmp_path: Path) -> None:
    from peerpool.cli import cli

    example = Path(__file__).resolve().parents[1] / "examples" / "exchange.toml"
    capture = str(REALDATA / "generated" / "pmacct-sfprobe.pcap")
    result = CliRunner().invoke(
        cli, ["decode", capture, "--lake", str(tmp_path / "lake"), "--config", str(example)]
    )
    assert result.exit_code == 0, result.output
    # the example's switches have other agent addresses: sFlow from 192.0.2.10 is not an exchange switch's
    assert sql(tmp_path / "lake", "select count(*) from {flows}")[0][0] == 739
    assert not (tmp_path / "lake" / "member_matrix").exists()
