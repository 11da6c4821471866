"""The sFlow v5 decoder against tshark, field by field, on every real sFlow capture.

Reference: tshark 4.0 JSON decodes stored beside the captures (``realdata/tshark/<path>.tshark.json``
and ``realdata/generated/pmacct-sfprobe.tshark.json.gz``) plus their counts in ``tshark/SUMMARY.json``
and ``generated/TSHARK_COUNTS.jsonl``. One test re-runs the installed tshark to show the stored files
are what it prints today.

tshark's JSON repeats keys (two ``vlan`` layers for QinQ, two ``ip.addr``), so it is loaded as lists of
(key, value) pairs, never as dicts, which would keep only the last duplicate.

Where the decoder and tshark disagree, the test says which is right and why:

* ``sflow_multiple_counter_30_pdus.pcap`` frames 12 and 18 (1-based) are hsflowd host counters (records
  2000-2006 of the sFlow host structures, https://sflow.org/sflow_host.txt). tshark 4.0 does not skip
  the unknown record 2001 by its length: it reads the record's body as the next record header and ends
  in "Malformed Packet". The XDR length fields tile the sample exactly (checked below by summing
  them), so skipping by length, as the decoder does, is right and tshark is wrong.
* Five frames of that file are NetFlow v5 sent to the sFlow port (a 16-bit version 5 followed by a
  record count): tshark does not call them sFlow and the decoder rejects them (version word 0x0005xxxx).
* ``malformed/sflow_print-segv.pcap`` (a fuzzed crash reproducer) has a UDP length of 16: 8 bytes of
  sFlow. tshark flags it malformed after the agent address type; the decoder raises ``DecodeError``.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.pcap import PcapStats, read_udp_datagrams
from ingest.sflow import decode_datagram
from ingest.sflow.decode import CounterSample, FlowSample, SflowDatagram
from peerpool.errors import DecodeError
from tests.conftest import require_tool

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
Pairs = list[tuple[str, Any]]

# every sFlow capture in realdata: (pcap, tshark reference, decode-as port or None)
SFLOW_CAPTURES = [
    *(
        (f"pcaps/akvorado/sflow/{name}.pcap", f"tshark/akvorado/sflow/{name}.tshark.json")
        for name in (
            "data-1140",
            "data-discard-interface",
            "data-encap-vxlan",
            "data-icmpv4",
            "data-icmpv6",
            "data-local-interface",
            "data-multiple-interfaces",
            "data-qinq",
            "data-sflow-expanded-sample",
            "data-sflow-ipv4-data",
            "data-sflow-raw-ipv4",
        )
    ),
    ("pcaps/tcpdump/sflow-print-v6.pcap", "tshark/tcpdump/sflow-print-v6.tshark.json"),
    (
        "pcaps/tcpdump/sflow_multiple_counter_30_pdus.pcap",
        "tshark/tcpdump/sflow_multiple_counter_30_pdus.tshark.json",
    ),
    (
        "pcaps/tcpdump/malformed/sflow_print-segv.pcap",
        "tshark/tcpdump/malformed/sflow_print-segv.tshark.json",
    ),
    ("generated/pmacct-sfprobe.pcap", "generated/pmacct-sfprobe.tshark.json.gz"),
]

GENERIC_FIELDS = {  # tshark field -> GenericInterfaceCounters attribute
    "sflow_245.ifindex": "if_index",
    "sflow_245.iftype": "if_type",
    "sflow_245.ifspeed": "if_speed",
    "sflow_245.ifdirection": "if_direction",
    "sflow_245.ifinoct": "in_octets",
    "sflow_245.ifinpkt": "in_ucast_pkts",
    "sflow_245.ifinmcast": "in_multicast_pkts",
    "sflow_245.ifinbcast": "in_broadcast_pkts",
    "sflow_245.ifindisc": "in_discards",
    "sflow_245.ifinerr": "in_errors",
    "sflow_245.ifinunk": "in_unknown_protos",
    "sflow_245.ifoutoct": "out_octets",
    "sflow_245.ifoutpkt": "out_ucast_pkts",
    "sflow_245.ifoutmcast": "out_multicast_pkts",
    "sflow_245.ifoutbcast": "out_broadcast_pkts",
    "sflow_245.ifoutdisc": "out_discards",
    "sflow_245.ifouterr": "out_errors",
    "sflow_245.ifpromisc": "promiscuous_mode",
}
ETHERNET_FIELDS = {
    "sflow_245.dot3StatsAlignmentErrors": "alignment_errors",
    "sflow_245.dot3StatsFCSErrors": "fcs_errors",
    "sflow_245.dot3StatsSingleCollisionFrames": "single_collision_frames",
    "sflow_245.dot3StatsMultipleCollisionFrames": "multiple_collision_frames",
    "sflow_245.dot3StatsSQETestErrors": "sqe_test_errors",
    "sflow_245.dot3StatsDeferredTransmissions": "deferred_transmissions",
    "sflow_245.dot3StatsLateCollisions": "late_collisions",
    "sflow_245.dot3StatsExcessiveCollisions": "excessive_collisions",
    "sflow_245.dot3StatsInternalMacTransmitErrors": "internal_mac_transmit_errors",
    "sflow_245.dot3StatsCarrierSenseErrors": "carrier_sense_errors",
    "sflow_245.dot3StatsFrameTooLongs": "frame_too_longs",
    "sflow_245.dot3StatsInternalMacReceiveErrors": "internal_mac_receive_errors",
    "sflow_245.dot3StatsSymbolErrors": "symbol_errors",
}
SPEC_FLOW_RECORDS = {1, 2, 3, 4, *range(1001, 1013)}
SPEC_COUNTER_RECORDS = {1, 2, 3, 4, 5, 1001}


# ---------------------------------------------------------------------------------------------
# tshark JSON helpers


def load_tshark(path: Path) -> list[Pairs]:
    """The ``layers`` of every packet, as (key, value) pair lists (duplicate keys kept)."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        packets = json.load(fh, object_pairs_hook=lambda pairs: pairs)
    return [first(first(packet, "_source"), "layers") for packet in packets]


def first(pairs: Pairs, key: str, default: Any = KeyError) -> Any:
    for k, v in pairs:
        if k == key:
            return v
    if default is KeyError:
        raise KeyError(key)
    return default


def every(pairs: Pairs, key: str) -> list[Any]:
    return [v for k, v in pairs if k == key]


def is_node(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], tuple)


def children_with(pairs: Pairs, marker: str) -> list[Pairs]:
    """Sub-trees (samples, records) identified by a field they contain."""
    return [v for _, v in pairs if is_node(v) and any(k == marker for k, _ in v)]


def ts_samples(sflow: Pairs) -> list[Pairs]:
    return children_with(sflow, "sflow_245.sampletype")


def ts_records(sample: Pairs) -> list[Pairs]:
    return [
        v
        for _, v in sample
        if is_node(v)
        and any(
            k
            in ("sflow_245.flow_record_format", "sflow_245.counters_record_format", "sflow.enterprise.length")
            for k, _ in v
        )
    ]


def record_format(record: Pairs) -> int:
    value = first(record, "sflow_245.flow_record_format", None)
    if value is None:
        value = first(record, "sflow_245.counters_record_format", None)
    enterprise = int(first(record, "sflow.enterprise", 0))
    return (enterprise << 12) | int(value) if value is not None else (enterprise << 12) | 0xFFF


def decode_all(path: Path) -> list[tuple[bytes, SflowDatagram | DecodeError]]:
    stats = PcapStats()
    out: list[tuple[bytes, SflowDatagram | DecodeError]] = []
    for datagram in read_udp_datagrams(path, stats):
        try:
            out.append((datagram.payload, decode_datagram(datagram.payload)))
        except DecodeError as exc:
            out.append((datagram.payload, exc))
    assert stats.frames == stats.udp_datagrams, f"{path}: frames that are not UDP: {stats.skipped}"
    return out


def capture_ids() -> list[str]:
    return [Path(p).name for p, _ in SFLOW_CAPTURES]


# ---------------------------------------------------------------------------------------------
# field-by-field comparison


def check_header_tree(ours: FlowSample, tree: Pairs, where: str) -> None:
    """Compare the parsed sampled header with tshark's dissection of the same bytes (outer layers)."""
    eth = first(tree, "eth", None)
    if eth is not None:
        assert ours.dst_mac == first(eth, "eth.dst"), where
        assert ours.src_mac == first(eth, "eth.src"), where
        ethertype = int(first(eth, "eth.type"), 16)
    else:
        assert ours.src_mac is None and ours.dst_mac is None, where
        ethertype = None
    vlans = every(tree, "vlan")
    expected_vlans = [int(first(v, "vlan.id")) for v in vlans]
    assert [v for v in (ours.vlan, ours.inner_vlan) if v is not None] == expected_vlans[:2], where
    if vlans:
        ethertype = int(first(vlans[-1], "vlan.etype"), 16)
    if eth is not None:
        assert ours.ethertype == ethertype, where
    ip = first(tree, "ip", None)
    ipv6 = first(tree, "ipv6", None)
    transport = None
    for name in ("tcp", "udp", "icmp", "icmpv6"):
        if first(tree, name, None) is not None:
            transport = name
            break
    if ip is not None:
        assert ours.ip_version == 4, where
        assert ours.src_ip == first(ip, "ip.src"), where
        assert ours.dst_ip == first(ip, "ip.dst"), where
        assert ours.ip_protocol == int(first(ip, "ip.proto")), where
        assert ours.tos == int(first(ip, "ip.dsfield"), 16), where
        assert ours.ip_length == int(first(ip, "ip.len")), where
    elif ipv6 is not None:
        assert ours.ip_version == 6, where
        assert ours.src_ip == first(ipv6, "ipv6.src"), where
        assert ours.dst_ip == first(ipv6, "ipv6.dst"), where
        assert ours.tos == int(first(ipv6, "ipv6.tclass"), 16), where
        assert ours.ip_length == int(first(ipv6, "ipv6.plen")) + 40, where
        upper = {"tcp": 6, "udp": 17, "icmpv6": 58}.get(transport or "", int(first(ipv6, "ipv6.nxt")))
        assert ours.ip_protocol == upper, where
    else:
        assert ours.ip_version is None and ours.src_ip is None, where
    if transport in ("tcp", "udp"):
        layer = first(tree, transport)
        assert ours.src_port == int(first(layer, f"{transport}.srcport")), where
        assert ours.dst_port == int(first(layer, f"{transport}.dstport")), where
    elif transport in ("icmp", "icmpv6"):
        layer = first(tree, transport)
        # NetFlow/IPFIX convention: dst_port = type * 256 + code, src_port = 0
        expected = int(first(layer, f"{transport}.type")) * 256 + int(first(layer, f"{transport}.code"))
        assert (ours.src_port, ours.dst_port) == (0, expected), where
    else:
        assert ours.src_port is None and ours.dst_port is None, where


def check_flow_sample(ours: FlowSample, ts: Pairs, where: str) -> Counter[int]:
    sample_type = int(first(ts, "sflow_245.sampletype"))
    assert ours.expanded == (sample_type == 3), where
    assert ours.sequence_number == int(first(ts, "sflow.flow_sample.sequence_number")), where
    assert ours.sampling_rate == int(first(ts, "sflow.flow_sample.sampling_rate")), where
    assert ours.sample_pool == int(first(ts, "sflow.flow_sample.sample_pool")), where
    assert ours.drops == int(first(ts, "sflow.flow_sample.dropped_packets")), where
    if ours.expanded:
        assert ours.source_id_type == int(first(ts, "sflow.flow_sample.source_id_type")), where
        assert ours.source_id_index == int(first(ts, "sflow.flow_sample.source_id_index")), where
        assert ours.input_format == int(first(ts, "sflow.flow_sample.input_interface_format")), where
        assert ours.input_value == int(first(ts, "sflow.flow_sample.input_interface_value")), where
        assert ours.output_format == int(first(ts, "sflow.flow_sample.output_interface.format")), where
        assert ours.output_value == int(first(ts, "sflow.flow_sample.output_interface_value")), where
    else:
        assert ours.source_id_type == int(first(ts, "sflow.flow_sample.source_id_class")), where
        assert ours.source_id_index == int(first(ts, "sflow.flow_sample.index")), where
        # tshark prints the compact input word whole (format bits included)
        assert (ours.input_format << 30) | ours.input_value == int(
            first(ts, "sflow.flow_sample.input_interface")
        ), where
        assert (ours.output_format << 30) | ours.output_value == int(
            first(ts, "sflow.flow_sample.output_interface"), 16
        ), where
        tree = first(ts, "sflow.flow_sample.output_interface_tree")
        assert ours.output_format == int(first(tree, "sflow.flow_sample.output_interface_format")), where
        assert ours.output_value == int(first(tree, "sflow.flow_sample.output_interface_value")), where
    # the ifindex columns: the value for format 0, nothing for "discarded" / "multiple"
    assert ours.input_ifindex == (ours.input_value if ours.input_format == 0 else None), where
    assert ours.output_ifindex == (ours.output_value if ours.output_format == 0 else None), where

    records = ts_records(ts)
    assert ours.record_count == len(records) == int(first(ts, "sflow.flow_sample.flow_record")), where
    formats: Counter[int] = Counter(record_format(r) for r in records)
    raw = [r for r in records if record_format(r) == 1]
    if raw:
        (header,) = raw
        assert ours.header_protocol == int(first(header, "sflow_245.header_protocol")), where
        assert ours.frame_length == int(first(header, "sflow_245.header.frame_length")), where
        assert ours.stripped == int(first(header, "sflow_245.header.payload_stripped")), where
        assert ours.header_length == int(first(header, "sflow_245.header.sampled_header_length")), where
        check_header_tree(ours, first(header, "sflow_245.header_tree"), where)
    else:
        assert ours.header_protocol is None, where
    switch = [r for r in records if record_format(r) == 1001]
    if switch:
        (ext,) = switch
        assert ours.src_vlan == int(first(ext, "sflow_245.vlan.in")), where
        assert ours.src_priority == int(first(ext, "sflow_245.pri.in")), where
        assert ours.dst_vlan == int(first(ext, "sflow_245.vlan.out")), where
        assert ours.dst_priority == int(first(ext, "sflow_245.pri.out")), where
    else:
        assert ours.src_vlan is None, where
    return formats


def check_counter_sample(ours: CounterSample, ts: Pairs, where: str) -> Counter[int]:
    sample_type = int(first(ts, "sflow_245.sampletype"))
    assert ours.expanded == (sample_type == 4), where
    assert ours.sequence_number == int(first(ts, "sflow.counters_sample.sequence_number")), where
    assert ours.source_id_type == int(first(ts, "sflow.counters_sample.source_id_type")), where
    assert ours.source_id_index == int(first(ts, "sflow.counters_sample.source_id_index")), where
    records = ts_records(ts)
    assert ours.record_count == len(records) == int(first(ts, "sflow.counters_sample.counters_records")), (
        where
    )
    formats: Counter[int] = Counter(record_format(r) for r in records)
    generic = [r for r in records if record_format(r) == 1]
    if generic:
        assert ours.generic is not None, where
        for field, attribute in GENERIC_FIELDS.items():
            assert getattr(ours.generic, attribute) == int(first(generic[0], field)), (where, field)
        assert ours.generic.admin_up == (first(generic[0], "sflow_245.ifadmin_status") == "1"), where
        assert ours.generic.oper_up == (first(generic[0], "sflow_245.ifoper_status") == "1"), where
    else:
        assert ours.generic is None, where
    ethernet = [r for r in records if record_format(r) == 2]
    if ethernet:
        assert ours.ethernet is not None, where
        for field, attribute in ETHERNET_FIELDS.items():
            assert getattr(ours.ethernet, attribute) == int(first(ethernet[0], field)), (where, field)
    else:
        assert ours.ethernet is None, where
    return formats


def check_datagram(ours: SflowDatagram, sflow: Pairs, where: str) -> Counter[str]:
    """Compare one datagram; return the counts the SUMMARY files hold."""
    assert ours.version == int(first(sflow, "sflow_245.version")), where
    agent = first(sflow, "sflow_245.agent", None) or first(sflow, "sflow_245.agent.v6")
    assert ours.agent_address == agent, where
    assert ours.sub_agent_id == int(first(sflow, "sflow_245.sub_agent_id")), where
    assert ours.sequence_number == int(first(sflow, "sflow_245.sequence_number")), where
    assert ours.uptime_ms == int(first(sflow, "sflow_245.sysuptime")), where
    samples = ts_samples(sflow)
    assert int(first(sflow, "sflow_245.numsamples")) == len(samples), where
    flows = [s for s in samples if first(s, "sflow_245.sampletype") in ("1", "3")]
    counters = [s for s in samples if first(s, "sflow_245.sampletype") in ("2", "4")]
    assert ours.unknown_samples == len(samples) - len(flows) - len(counters), where
    assert len(ours.flow_samples) == len(flows), where
    assert len(ours.counter_samples) == len(counters), where
    counts: Counter[str] = Counter(datagrams=1)
    formats: Counter[int] = Counter()
    for i, (mine, theirs) in enumerate(zip(ours.flow_samples, flows, strict=True)):
        formats += check_flow_sample(mine, theirs, f"{where} flow sample {i}")
        counts["expanded_flow_samples" if mine.expanded else "flow_samples"] += 1
        counts["flow_records"] += mine.record_count
    for i, (cmine, ctheirs) in enumerate(zip(ours.counter_samples, counters, strict=True)):
        formats += check_counter_sample(cmine, ctheirs, f"{where} counter sample {i}")
        counts["expanded_counter_samples" if cmine.expanded else "counter_samples"] += 1
        counts["counter_records"] += cmine.record_count
    decoded_formats = {1, 1001} if flows else {1, 2}
    spec = SPEC_FLOW_RECORDS if flows else SPEC_COUNTER_RECORDS
    # records the decoder skips are counted, split into "in the v5 spec" and "unknown"
    skipped = sum(n for f, n in formats.items() if f in spec and f not in decoded_formats | {2, 3, 4})
    unknown = sum(n for f, n in formats.items() if f not in spec)
    assert (ours.skipped_records, ours.unknown_records) == (skipped, unknown), where
    return counts


# ---------------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize(("pcap", "reference"), SFLOW_CAPTURES, ids=capture_ids())
def test_decoder_matches_tshark(pcap: str, reference: str) -> None:
    decoded = decode_all(REALDATA / pcap)
    # the stored decode lists the sFlow frames only (display filter "sflow"); match by frame number
    packets = {int(first(first(p, "frame"), "frame.number")): p for p in load_tshark(REALDATA / reference)}
    assert set(packets) <= set(range(1, len(decoded) + 1))
    totals: Counter[str] = Counter()
    malformed_sflow = 0
    for index, (payload, ours) in enumerate(decoded):
        where = f"{pcap} frame {index + 1}"
        layers = packets.get(index + 1)
        if layers is None or first(layers, "sflow", None) is None:
            # tshark does not see sFlow here (NetFlow v5 sent to port 6343): neither do we
            assert isinstance(ours, DecodeError), where
            assert payload[:2] == b"\x00\x05" and "not 5" in str(ours), where
            continue
        sflow = first(layers, "sflow")
        tshark_malformed = first(layers, "_ws.malformed", None) is not None
        if tshark_malformed:
            malformed_sflow += 1
            check_tshark_malformed(payload, ours, sflow, where)
            continue
        assert isinstance(ours, SflowDatagram), f"{where}: {ours}"
        totals += check_datagram(ours, sflow, where)
    expected = expected_counts(pcap)
    assert malformed_sflow == expected.pop("malformed_datagrams", 0)
    for key, value in expected.items():
        if key in ("datagrams", "counter_samples", "expanded_counter_samples", "counter_records") and (
            malformed_sflow
        ):
            continue  # checked in check_tshark_malformed, where the two decoders part ways
        assert totals[key] == value, f"{pcap}: {key}"


def expected_counts(pcap: str) -> dict[str, int]:
    """Counts from tshark/SUMMARY.json (generated/TSHARK_COUNTS.jsonl for the generated capture)."""
    keys = (
        "datagrams",
        "flow_samples",
        "expanded_flow_samples",
        "counter_samples",
        "expanded_counter_samples",
    )
    if pcap.startswith("generated/"):
        for line in (REALDATA / "generated" / "TSHARK_COUNTS.jsonl").read_text().splitlines():
            entry = json.loads(line)
            if entry["file"] == Path(pcap).name:
                sflow = entry["counts"]["sflow"]
                out = {k: sflow[k] for k in keys}
                out["flow_records"] = sum(sflow["flow_records"].values())
                out["malformed_datagrams"] = sflow["malformed"]
                return out
        raise AssertionError(f"{pcap} is not in TSHARK_COUNTS.jsonl")
    summary = json.loads((REALDATA / "tshark" / "SUMMARY.json").read_text())
    sflow = summary[pcap.removeprefix("pcaps/")]["sflow"]
    out = {k: sflow[k] for k in keys}
    out["flow_records"] = sflow["flow_records"]
    out["counter_records"] = sflow["counter_records"]
    out["malformed_datagrams"] = sflow["malformed_datagrams"]
    return out


def check_tshark_malformed(
    payload: bytes, ours: SflowDatagram | DecodeError, sflow: Pairs, where: str
) -> None:
    """Frames tshark flags as malformed: show who is right (see the module docstring)."""
    if len(payload) < 28:
        # sflow_print-segv: 8 bytes of sFlow; tshark stops after the address type, we raise
        assert isinstance(ours, DecodeError), where
        assert first(sflow, "sflow_245.version") == "5" and first(sflow, "sflow_245.agent", None) is None
        return
    # hsflowd host counters: walk the XDR length fields independently of the decoder
    assert isinstance(ours, SflowDatagram), f"{where}: {ours}"
    assert ours.sequence_number == int(first(sflow, "sflow_245.sequence_number")), where
    (version, address_type) = struct.unpack_from("!II", payload, 0)
    assert (version, address_type) == (5, 1)
    (n_samples,) = struct.unpack_from("!I", payload, 24)
    assert n_samples == 1
    sample_format, sample_length = struct.unpack_from("!II", payload, 28)
    assert sample_format == 2 and 36 + sample_length == len(payload), where
    (n_records,) = struct.unpack_from("!I", payload, 36 + 8)
    offset, formats = 36 + 12, []
    for _ in range(n_records):
        fmt, length = struct.unpack_from("!II", payload, offset)
        formats.append(fmt)
        offset += 8 + length
    assert offset == len(payload), f"{where}: the record lengths tile the sample exactly"
    assert all(2000 <= f <= 2006 for f in formats), formats  # host structures, none in the v5 spec
    (sample,) = ours.counter_samples
    (theirs,) = ts_samples(sflow)
    assert sample.sequence_number == int(first(theirs, "sflow.counters_sample.sequence_number"))
    assert sample.source_id_type == int(first(theirs, "sflow.counters_sample.source_id_type"))
    assert sample.source_id_index == int(first(theirs, "sflow.counters_sample.source_id_index"))
    assert sample.record_count == n_records == int(first(theirs, "sflow.counters_sample.counters_records"))
    assert (sample.generic, sample.ethernet) == (None, None)
    assert ours.unknown_records == n_records
    # tshark's reading: after the unknown 2001 it decodes garbage as a 100BaseVG / Ethernet record
    assert any(record_format(r) in (2, 4) for r in ts_records(theirs)), where


def test_counter_files_totals_with_tshark_misreads_accounted() -> None:
    """Totals of the counter-only capture: tshark's SUMMARY minus its misread frames plus ours."""
    pcap = "pcaps/tcpdump/sflow_multiple_counter_30_pdus.pcap"
    decoded = [d for _, d in decode_all(REALDATA / pcap)]
    packets = load_tshark(REALDATA / "tshark/tcpdump/sflow_multiple_counter_30_pdus.tshark.json")
    expected = expected_counts(pcap)
    ours_ok = [d for d in decoded if isinstance(d, SflowDatagram)]
    assert len(ours_ok) == expected["datagrams"] == len(packets) == 25
    assert sum(1 for d in decoded if isinstance(d, DecodeError)) == 5  # the NetFlow v5 frames
    tshark_misread = 0
    ours_in_misread = 0
    for layers in packets:
        if first(layers, "_ws.malformed", None) is not None:
            sflow = first(layers, "sflow")
            tshark_misread += sum(
                1
                for s in ts_samples(sflow)
                for r in ts_records(s)
                if first(r, "sflow_245.counters_record_format", None) is not None
            )
            ours = decoded[int(first(first(layers, "frame"), "frame.number")) - 1]
            assert isinstance(ours, SflowDatagram)
            ours_in_misread += sum(s.record_count for s in ours.counter_samples)
    ours_records = sum(s.record_count for d in ours_ok for s in d.counter_samples)
    assert ours_records == expected["counter_records"] - tshark_misread + ours_in_misread
    assert sum(len(d.counter_samples) for d in ours_ok) == (
        expected["counter_samples"] + expected["expanded_counter_samples"]
    )


def test_malformed_fuzzed_frame_never_crashes() -> None:
    """The fuzzed tcpdump reproducer: the 8-byte UDP payload and the whole IP payload behind it."""
    path = REALDATA / "pcaps/tcpdump/malformed/sflow_print-segv.pcap"
    (datagram,) = read_udp_datagrams(path)
    with pytest.raises(DecodeError) as info:
        decode_datagram(datagram.payload)
    assert info.value.protocol == "sflow5" and info.value.offset >= 0
    # the frame carries 868 more fuzzed bytes after what the UDP length admits: decode them too
    raw = path.read_bytes()
    (incl_len,) = struct.unpack_from("<I", raw, 24 + 8)
    frame = raw[24 + 16 : 24 + 16 + incl_len]
    body = frame[14 + 20 + 8 :]
    assert body[:8] == datagram.payload and len(body) > 800
    for end in (len(body), len(body) - 4, 100, 36):
        try:
            decode_datagram(body[:end])
        except DecodeError as exc:
            assert exc.offset >= 0


def test_sampled_ipv4_and_ethernet_records_fill_fields_without_raw_header() -> None:
    """data-sflow-ipv4-data has records 1, 2, 1001 and 3. Turn the raw header (1) into an unknown format:
    the fields must then come from the Ethernet frame (2) and IPv4 (3) records, as tshark shows them."""
    pcap = REALDATA / "pcaps/akvorado/sflow/data-sflow-ipv4-data.pcap"
    (datagram,) = read_udp_datagrams(pcap)
    data = bytearray(datagram.payload)
    # walk: 28-byte header (IPv4 agent), one expanded flow sample (8 + 44 bytes), then the records
    assert struct.unpack_from("!I", data, 28)[0] == 3
    offset = 28 + 8 + 44
    found = []
    for _ in range(struct.unpack_from("!I", data, 28 + 8 + 40)[0]):
        fmt, length = struct.unpack_from("!II", data, offset)
        found.append(fmt)
        if fmt == 1:
            struct.pack_into("!I", data, offset, 0x7FF)  # enterprise 0, format 2047: not in the spec
        offset += 8 + length
    assert found == [1, 2, 1001, 3]
    ours = decode_datagram(bytes(data))
    (sample,) = ours.flow_samples
    assert ours.unknown_records == 1
    (layers,) = load_tshark(REALDATA / "tshark/akvorado/sflow/data-sflow-ipv4-data.tshark.json")
    (theirs,) = ts_samples(first(layers, "sflow"))
    records = {record_format(r): r for r in ts_records(theirs)}
    eth, ip4 = records[2], records[3]
    assert sample.header_protocol is None
    assert sample.frame_length == int(first(eth, "sflow_245.ethernet.length"))
    assert sample.src_mac == first(eth, "sflow_245.ethernet.source_mac_address")
    assert sample.dst_mac == first(eth, "sflow_245.ethernet.destination_mac_address")
    assert sample.ethertype == int(first(eth, "sflow_245.ethernet.packet_type"))
    assert sample.ip_version == 4
    assert sample.src_ip == first(ip4, "sflow_245.ipv4_src")
    assert sample.dst_ip == first(ip4, "sflow_245.ipv4_dst")
    assert sample.ip_protocol == int(first(ip4, "sflow.ip_protocol"))
    assert sample.src_port == int(first(ip4, "sflow_245.ip.source_port"))
    assert sample.dst_port == int(first(ip4, "sflow.ip.destination_port"))
    assert sample.ip_length == int(first(ip4, "sflow_245.ip.length"))
    assert sample.vlan is None and sample.dst_vlan == int(first(records[1001], "sflow_245.vlan.out"))


# TCP conversation analysis of the sampled headers: its value depends on whether tshark ran one or two
# passes (-2) over the file, not on the sFlow bytes
ANALYSIS_FIELDS = {"tcp.completeness"}


def without_analysis(pairs: Pairs) -> Pairs:
    return [(k, without_analysis(v) if is_node(v) else v) for k, v in pairs if k not in ANALYSIS_FIELDS]


def iter_sflow_layers(packets: list[Pairs]) -> Iterator[Pairs]:
    for layers in packets:
        sflow = first(layers, "sflow", None)
        if sflow is not None:
            yield without_analysis(sflow)


@pytest.mark.parametrize(
    ("pcap", "reference", "decode_as"),
    [
        ("generated/pmacct-sfprobe.pcap", "generated/pmacct-sfprobe.tshark.json.gz", "udp.port==16343,sflow"),
        ("pcaps/akvorado/sflow/data-qinq.pcap", "tshark/akvorado/sflow/data-qinq.tshark.json", None),
    ],
    ids=["pmacct-sfprobe", "data-qinq"],
)
def test_stored_reference_matches_installed_tshark(pcap: str, reference: str, decode_as: str | None) -> None:
    """Run tshark now: its sFlow layers must equal the stored reference decode."""
    tshark = require_tool("tshark")
    command = [tshark, "-r", str(REALDATA / pcap), "-T", "json"]
    if decode_as:
        command += ["-d", decode_as]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    live = [
        first(first(p, "_source"), "layers") for p in json.loads(result.stdout, object_pairs_hook=lambda p: p)
    ]
    stored = load_tshark(REALDATA / reference)
    assert len(live) == len(stored)
    live_sflow = list(iter_sflow_layers(live))
    assert live_sflow == list(iter_sflow_layers(stored))
    assert len(live_sflow) == len(live)
