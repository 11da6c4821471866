"""NetFlow v9 / IPFIX decoder behaviour: state across restarts, pending data, withdrawal, sampling,
errors, and totals checked against independent sources.

Independent references used here:
* tshark's decodes of the akvorado template+data captures (``tshark/.../netflow-combined``), the
  reference for the restart and data-before-template tests;
* pmacct's nfacctd expected output (``pcaps/pmacct/<test>/output-flow-NN.json``);
* ``generated/synth.pcap`` itself: the packets pmacct nfprobe and softflowd turned into flows,
  summed per MAC pair / address pair with a few lines of frame parsing in this file;
* RFC 7011 / RFC 3954 layouts written out by hand, with expected values chosen in the test.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from ingest.netflow import NetflowDecodeError, NetflowDecoder, TemplateCache
from ingest.pcap import read_udp_datagrams
from peerpool.errors import DecodeError, InputError
from peerpool.lake import FLOWS
from tests.test_netflow_tshark import TsharkCapture, comparable, load_tshark, unmatched

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
AKVORADO = REALDATA / "pcaps" / "akvorado" / "netflow"
COMBINED_TSHARK = REALDATA / "tshark" / "akvorado" / "netflow-combined"

Row = dict[str, object]


def datagrams(pcap: Path) -> list[tuple[bytes, str, int]]:
    return [(d.payload, d.src_ip, d.timestamp_ns) for d in read_udp_datagrams(pcap)]


def decode_all(decoder: NetflowDecoder, items: list[tuple[bytes, str, int]]) -> list[Row]:
    rows: list[Row] = []
    for payload, exporter, received in items:
        rows.extend(decoder.decode(payload, exporter, received))
    return rows


def length_prefixed(path: Path) -> list[bytes]:
    """generated/*.datagrams.bin: repeated [4-byte big-endian length][datagram]."""
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("!I", data, offset)
        out.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    assert offset == len(data)
    return out


def as_int(value: object) -> int:
    assert isinstance(value, int)
    return value


# --- rows ----------------------------------------------------------------------------------------


def test_rows_carry_exactly_the_flows_columns() -> None:
    decoder = NetflowDecoder(TemplateCache())
    v9 = decode_all(decoder, datagrams(REALDATA / "generated" / "pmacct-nfprobe-v9.pcap"))
    ipfix = decode_all(decoder, datagrams(REALDATA / "generated" / "pmacct-nfprobe-v10.pcap"))
    for rows, protocol, domain in ((v9, "netflow9", 901), (ipfix, "ipfix", 1001)):
        assert len(rows) == 3000
        for row in rows:
            assert list(row) == FLOWS.names
            assert row["flow_protocol"] == protocol and row["observation_domain"] == domain
            assert row["sample_pool"] is None and row["src_member_id"] is None
            assert isinstance(row["received_at"], int) and isinstance(row["flow_start"], int)


# --- template persistence across a restart -------------------------------------------------------

RESTART_CASES = {
    "v9-template+data": (["template"], "data"),
    "v9-icmp": (["icmp-template"], "icmp-data"),
    "v9-samplingrate": (["samplingrate-template"], "samplingrate-data"),
    "v9-multiplesamplingrates": (
        [
            "multiplesamplingrates-template",
            "multiplesamplingrates-options-template",
            "multiplesamplingrates-options-data",
        ],
        "multiplesamplingrates-data",
    ),
    "v9-all-192.0.2.100": (["template", "options-template", "options-data"], "data"),
    "ipfix-datalink": (["datalink-template"], "datalink-data"),
    "ipfix-ethernet-over-mpls-with-control-word": (
        ["ethernet-over-mpls-with-control-word-template"],
        "ethernet-over-mpls-with-control-word-data",
    ),
    "ipfix-ipfixprobe-biflow": (["ipfixprobe-templates"], "ipfixprobe-data"),
    "ipfix-juniper-cpid": (["juniper-cpid-template"], "juniper-cpid-data"),
    "ipfix-srv6": (["ipfix-srv6-template"], "ipfix-srv6-data"),
}


@pytest.mark.parametrize("combined", sorted(RESTART_CASES))
def test_templates_survive_a_restart(combined: str, tmp_path: Path) -> None:
    """Templates (and options state) learnt before a restart decode data that arrives after it.

    The akvorado ``*-data.pcap`` files carry data sets only; tshark decodes them only in the
    merged ``netflow-combined`` capture, which is the reference for the rows.
    """
    template_files, data_file = RESTART_CASES[combined]
    before = NetflowDecoder(TemplateCache())
    for name in template_files:
        decode_all(before, datagrams(AKVORADO / f"{name}.pcap"))
    state = tmp_path / "state" / "templates.json"
    before.cache.save(state)
    assert [p.name for p in state.parent.iterdir()] == ["templates.json"]  # no temp file left

    data = datagrams(AKVORADO / f"{data_file}.pcap")
    cold = NetflowDecoder(TemplateCache())
    assert decode_all(cold, data) == [] and cold.cache.pending_count == 1  # the state is what matters

    after = NetflowDecoder(TemplateCache.load(state))
    rows = decode_all(after, data)
    tshark = TsharkCapture(load_tshark(COMBINED_TSHARK / f"{combined}.tshark.json"))
    data_times = {received for _, _, received in data}
    expected = [(t, r) for t, r in tshark.flows if t in data_times]
    assert len(rows) == len(expected)
    missing, extra = unmatched(expected, [(as_int(r["received_at"]), comparable(r)) for r in rows])
    assert not missing and not extra
    assert after.stats.unknown_sampling == (0 if "sampl" in combined or "all" in combined else len(rows))


def test_sampling_rates_survive_a_restart_per_sampler(tmp_path: Path) -> None:
    """Cisco with two samplers: the options data (sampler id -> 1 out of N) is saved with the templates."""
    before = NetflowDecoder(TemplateCache())
    for name in ("multiplesamplingrates-template", "multiplesamplingrates-options-template"):
        decode_all(before, datagrams(AKVORADO / f"{name}.pcap"))
    decode_all(before, datagrams(AKVORADO / "multiplesamplingrates-options-data.pcap"))
    before.cache.save(tmp_path / "t.json")
    after = NetflowDecoder(TemplateCache.load(tmp_path / "t.json"), sampling_overrides={"238.0.0.1": 7})
    rows = decode_all(after, datagrams(AKVORADO / "multiplesamplingrates-data.pcap"))
    tshark = load_tshark(COMBINED_TSHARK / "v9-multiplesamplingrates.tshark.json")
    rate_of_sampler = _sampler_rates(tshark)
    assert rate_of_sampler == {1: 2000, 2: 4000}
    samplers = _flow_sampler_ids(tshark)
    assert len(samplers) == len(rows) == 12
    for row, sampler in zip(rows, samplers, strict=True):
        assert row["sampling_rate"] == rate_of_sampler[sampler]  # options beat the override
        assert row["estimated_bytes"] == as_int(row["bytes"]) * rate_of_sampler[sampler]
        assert row["estimated_packets"] == as_int(row["packets"]) * rate_of_sampler[sampler]
    assert after.stats.unknown_sampling == 0


def _sampler_rates(doc: list[Any]) -> dict[int, int]:
    """sampler id -> FLOW_SAMPLER_RANDOM_INTERVAL, from tshark's decode of the options records."""
    rates = {}
    for flow in _tshark_flows(doc):
        if "cflow.sampler_random_interval" in flow:
            rates[int(flow["cflow.sampler_id"][0])] = int(flow["cflow.sampler_random_interval"][0])
    return rates


def _flow_sampler_ids(doc: list[Any]) -> list[int]:
    return [
        int(f["cflow.sampler_id"][0])
        for f in _tshark_flows(doc)
        if "cflow.sampler_id" in f and "cflow.octets" in f
    ]


def _tshark_flows(doc: list[Any]) -> list[dict[str, list[Any]]]:
    flows: list[dict[str, list[Any]]] = []
    for packet in doc:
        for cflow in packet["_source"][0]["layers"][0].get("cflow", []):
            for key, sets in cflow.items():
                if "Set" in key:
                    flows.extend(f for s in sets for k, fs in s.items() if k.startswith("Flow ") for f in fs)
    return flows


# --- data before template ------------------------------------------------------------------------


def test_data_before_template_is_held_then_released_with_its_arrival_time() -> None:
    decoder = NetflowDecoder(TemplateCache())
    ((data, exporter, data_time),) = datagrams(AKVORADO / "data.pcap")
    ((template, _, template_time),) = datagrams(AKVORADO / "template.pcap")
    assert decoder.decode(data, exporter, data_time) == []
    assert decoder.stats.pending == 1 and decoder.cache.pending_count == 1
    rows = decoder.decode(template, exporter, template_time)
    assert decoder.stats.pending_released == 1 and decoder.cache.pending_count == 0
    assert {r["received_at"] for r in rows} == {data_time}
    tshark = TsharkCapture(load_tshark(COMBINED_TSHARK / "v9-template+data.tshark.json"))
    assert len(rows) == len(tshark.flows) == 4
    missing, extra = unmatched(tshark.flows, [(as_int(r["received_at"]), comparable(r)) for r in rows])
    assert not missing and not extra


def test_data_set_before_its_template_in_the_same_datagram() -> None:
    """akvorado data+templates: the data set precedes its template; the same call returns it."""
    decoder = NetflowDecoder(TemplateCache())
    ((payload, exporter, received),) = datagrams(AKVORADO / "data+templates.pcap")
    rows = decoder.decode(payload, exporter, received)
    assert len(rows) == 21 and decoder.stats.pending == decoder.stats.pending_released == 1
    # the options data in the same datagram says 1 out of 100 (tshark: SAMPLING_INTERVAL 100)
    assert {r["sampling_rate"] for r in rows} == {100}


def test_pending_data_is_bounded_per_key_and_in_total() -> None:
    cache = TemplateCache(max_pending_per_key=3, max_pending_total=5)
    decoder = NetflowDecoder(cache)
    ((data, _, _),) = datagrams(AKVORADO / "data.pcap")
    ((template, _, _),) = datagrams(AKVORADO / "template.pcap")
    for t in (1, 2, 3, 4, 5):  # exporter A: the per-key bound keeps 3, 4, 5
        assert decoder.decode(data, "192.0.2.100", t) == []
    assert cache.pending_count == 3 and decoder.stats.pending_dropped == 2
    for t in (6, 7, 8):  # exporter B: the total bound (5) drops the oldest overall, A's t=3
        assert decoder.decode(data, "192.0.2.200", t) == []
    assert cache.pending_count == 5 and decoder.stats.pending_dropped == 3
    rows = decoder.decode(template, "192.0.2.100", 9)
    assert sorted(collections.Counter(r["received_at"] for r in rows).items()) == [(4, 4), (5, 4)]
    assert cache.pending_count == 3  # B's sets still wait for B's template
    for t in range(100, 1100):  # a flood of sets for unknown templates never exceeds the bound
        decoder.decode(data, f"198.51.100.{t % 250}", t)
        assert cache.pending_count <= 5
    assert decoder.stats.pending_dropped == 3 + 1000 - 2


def test_pending_data_is_bounded_in_bytes() -> None:
    ((data, exporter, _),) = datagrams(AKVORADO / "data.pcap")
    set_length = struct.unpack_from("!H", data, 22)[0] - 4
    cache = TemplateCache(max_pending_bytes=2 * set_length)
    decoder = NetflowDecoder(cache)
    for t in range(4):
        decoder.decode(data, exporter, t)
    assert cache.pending_count == 2 and cache.pending_bytes == 2 * set_length
    assert decoder.stats.pending_dropped == 2
    tiny = NetflowDecoder(TemplateCache(max_pending_bytes=set_length - 1))
    tiny.decode(data, exporter, 0)  # a set larger than the whole bound is dropped itself
    assert tiny.cache.pending_count == 0 and tiny.stats.pending_dropped == 1


def test_pending_data_survives_a_restart(tmp_path: Path) -> None:
    ((data, exporter, data_time),) = datagrams(AKVORADO / "data.pcap")
    ((template, _, template_time),) = datagrams(AKVORADO / "template.pcap")
    before = NetflowDecoder(TemplateCache())
    before.decode(data, exporter, data_time)
    before.cache.save(tmp_path / "t.json")
    after = NetflowDecoder(TemplateCache.load(tmp_path / "t.json"))
    rows = after.decode(template, exporter, template_time)
    assert len(rows) == 4 and {r["received_at"] for r in rows} == {data_time}


# --- IPFIX template withdrawal (RFC 7011 section 8.1) --------------------------------------------


def _ipfix_message(domain: int, *sets: tuple[int, bytes], export_time: int = 1_700_000_000) -> bytes:
    body = b"".join(struct.pack("!HH", set_id, 4 + len(content)) + content for set_id, content in sets)
    return struct.pack("!HHIII", 10, 16 + len(body), export_time, 1, domain) + body


def test_ipfix_template_withdrawal_and_withdraw_all() -> None:
    ((template, exporter, _),) = datagrams(AKVORADO / "datalink-template.pcap")
    ((data, _, data_time),) = datagrams(AKVORADO / "datalink-data.pcap")
    domain = struct.unpack_from("!I", template, 12)[0]
    template_id = struct.unpack_from("!H", template, 20)[0]
    decoder = NetflowDecoder(TemplateCache())
    decoder.decode(template, exporter, 0)
    assert len(decoder.decode(data, exporter, data_time)) == 1

    withdraw_one = _ipfix_message(domain, (2, struct.pack("!HH", template_id, 0)))
    assert decoder.decode(withdraw_one, exporter, 1) == []
    assert decoder.stats.withdrawn == 1 and len(decoder.cache) == 0
    assert decoder.decode(data, exporter, data_time) == [] and decoder.cache.pending_count == 1
    decoder.decode(withdraw_one, exporter, 2)
    assert decoder.stats.errors["withdrawal of unknown template"] == 1

    # withdraw-all (template id = set id 2) removes data templates, keeps the options template
    ((mpls, mpls_exporter, mpls_time),) = datagrams(AKVORADO / "mpls.pcap")
    mpls_domain = struct.unpack_from("!I", mpls, 12)[0]
    fresh = NetflowDecoder(TemplateCache())
    assert len(fresh.decode(mpls, mpls_exporter, mpls_time)) == 2
    assert len(fresh.cache) == 2
    fresh.decode(_ipfix_message(mpls_domain, (2, struct.pack("!HH", 2, 0))), mpls_exporter, 1)
    assert fresh.stats.withdrawn == 1
    (kept,) = [t for _, t in fresh.cache.templates()]
    assert kept.is_options


# --- sampling ------------------------------------------------------------------------------------


def _psamp_expected(doc: list[Any]) -> int:
    """Rate from tshark's decode of the PSAMP options record (RFC 5476 formulas, done here)."""
    (options,) = [f for f in _tshark_flows(doc) if "cflow.selector_algorithm" in f]
    algorithm = int(options["cflow.selector_algorithm"][0])
    if algorithm == 1:  # systematic count-based: take `interval`, skip `space`
        interval = int(options["cflow.sampling_packet_interval"][0])
        space = int(options["cflow.sampling_packet_space"][0])
        return (interval + space) // interval
    assert algorithm == 3  # random n-out-of-N
    return int(options["cflow.sampling_population"][0]) // int(options["cflow.sampling_size"][0])


@pytest.mark.parametrize(
    ("capture", "tshark_name", "rate"),
    [
        ("akvorado/netflow/mpls.pcap", "akvorado/netflow/mpls", 10),
        ("akvorado/netflow/physicalinterfaces.pcap", "akvorado/netflow/physicalinterfaces", 1000),
        (
            "pmacct/104-IPFIXv10-IPv6-CISCO-sampling_option/traffic-00.pcap",
            "pmacct/104-IPFIXv10-IPv6-CISCO-sampling_option/traffic-00",
            256,
        ),
    ],
)
def test_sampling_rate_from_ipfix_options_data(capture: str, tshark_name: str, rate: int) -> None:
    doc = load_tshark(REALDATA / "tshark" / f"{tshark_name}.tshark.json")
    assert _psamp_expected(doc) == rate
    decoder = NetflowDecoder(TemplateCache(), sampling_overrides={"10.127.100.7": 3, "10.4.2.60": 3})
    rows = decode_all(decoder, datagrams(REALDATA / "pcaps" / capture))
    assert rows and decoder.stats.unknown_sampling == 0
    for row in rows:
        assert row["sampling_rate"] == rate
        assert row["estimated_bytes"] == as_int(row["bytes"]) * rate


def test_sampling_rate_in_the_record_wins() -> None:
    """v9-samplingrate: SAMPLING_INTERVAL 2048 in every flow record (tshark), an override of 7 loses."""
    doc = load_tshark(COMBINED_TSHARK / "v9-samplingrate.tshark.json")
    in_record = {int(f["cflow.sampling_interval"][0]) for f in _tshark_flows(doc)}
    assert in_record == {2048}
    decoder = NetflowDecoder(TemplateCache(), sampling_overrides={"192.168.0.1": 7})
    rows = decode_all(
        decoder, datagrams(REALDATA / "pcaps" / "akvorado" / "netflow-combined" / "v9-samplingrate.pcap")
    )
    assert len(rows) == 6 and {r["sampling_rate"] for r in rows} == {2048}
    assert all(r["estimated_packets"] == as_int(r["packets"]) * 2048 for r in rows)


def test_override_applies_only_when_nothing_is_sent() -> None:
    """pmacct nfprobe sends no sampling information: rate 1 and counted, or the configured override."""
    items = [
        (d, "127.0.0.1", 0)
        for d in length_prefixed(REALDATA / "generated" / "pmacct-nfprobe-v9.datagrams.bin")
    ]
    plain = NetflowDecoder(TemplateCache())
    rows = decode_all(plain, items)
    assert {r["sampling_rate"] for r in rows} == {1} and plain.stats.unknown_sampling == 3000
    configured = NetflowDecoder(TemplateCache(), sampling_overrides={"127.0.0.1": 64})
    rows = decode_all(configured, items)
    assert configured.stats.unknown_sampling == 0
    assert {r["sampling_rate"] for r in rows} == {64}
    assert all(r["estimated_bytes"] == as_int(r["bytes"]) * 64 for r in rows)
    with pytest.raises(ValueError, match="positive integer"):
        NetflowDecoder(TemplateCache(), sampling_overrides={"127.0.0.1": 0})


def test_juniper_srx_options_with_zero_scope_length() -> None:
    """Juniper SRX: v9 options template whose scope field has length 0; SAMPLING_INTERVAL 1 applies."""
    decoder = NetflowDecoder(TemplateCache())
    pcap = (
        REALDATA
        / "pcaps"
        / "logstash-codec-netflow"
        / "juniper_srx_options_template_with_0_scope_field_length.pcap"
    )
    assert decode_all(decoder, datagrams(pcap)) == []  # its one data record is the options record
    assert decoder.stats.options_records == 1 and decoder.stats.sampling_updates == 1
    state = decoder.cache.peek_exporter_state("192.0.2.1", 142)
    assert state is not None and state.sampling == {None: 1}


# --- pmacct nfacctd expected output ---------------------------------------------------------------

PMACCT = REALDATA / "pcaps" / "pmacct"
PMACCT_OUTPUTS = sorted(str(p.relative_to(PMACCT)) for p in PMACCT.glob("*/output-flow-*.json"))


@pytest.mark.parametrize("output", PMACCT_OUTPUTS)
def test_matches_pmacct_nfacctd_output(output: str) -> None:
    """Bytes and packets per (source, destination, input interface) equal nfacctd's.

    nfacctd renormalises by the sampling rate, so its figures are compared with
    ``estimated_*``: test 104 carries 1:256 in PSAMP options data; test 102's second output was
    made with a sampling map of 1000 for the exporter (all its 1-packet flows read 1000 packets),
    the configured-override case here. Ports and protocol are left out of the key: for IP-in-IP
    flows nfacctd reports inner ports where the record (and tshark) says protocol 4, ports 0.
    For SRv6 / IP-in-IP tunnels (tests 500-502, lines with ``tunnel_ip_src``) nfacctd reports the
    inner header from its tunnel primitives where the record's IANA address fields (and tshark)
    hold the outer one: those lines are matched one to one on interface, bytes and packets.
    """
    test_dir = PMACCT / output.split("/")[0]
    sampling_map = output.startswith("102-") and output.endswith("output-flow-01.json")
    overrides = {"10.10.0.33": 1000} if sampling_map else {}
    rows: list[Row] = []
    for pcap in sorted(test_dir.glob("traffic-*.pcap")):
        rows.extend(
            decode_all(NetflowDecoder(TemplateCache(), sampling_overrides=overrides), datagrams(pcap))
        )
    lines = [json.loads(line) for line in (PMACCT / output).read_text().splitlines() if line.strip()]
    remaining = list(rows)
    tunnelled = [line for line in lines if line.get("tunnel_ip_src")]
    for line in tunnelled:
        match = next(
            r
            for r in remaining
            if (r["input_ifindex"], r["estimated_bytes"], r["estimated_packets"])
            == (line["iface_in"], line["bytes"], line["packets"])
        )
        remaining.remove(match)
    theirs: dict[tuple[Any, ...], list[int]] = collections.defaultdict(lambda: [0, 0])
    for line in lines:
        if not line.get("tunnel_ip_src"):
            key = (line["ip_src"], line["ip_dst"], line["iface_in"])
            theirs[key][0] += line["bytes"]
            theirs[key][1] += line["packets"]
    ours: dict[tuple[Any, ...], list[int]] = collections.defaultdict(lambda: [0, 0])
    for row in remaining:
        key = (row["src_ip"], row["dst_ip"], row["input_ifindex"])
        ours[key][0] += as_int(row["estimated_bytes"])
        ours[key][1] += as_int(row["estimated_packets"])
    assert theirs and dict(theirs) == dict(ours)
    assert len(tunnelled) == {"500": 4, "501": 0, "502": 4}.get(output[:3], 0)


# --- real exporters vs the packets they saw ---------------------------------------------------------


def _synth_totals() -> tuple[
    collections.Counter[tuple[str, str]], collections.Counter[tuple[bytes, bytes]], int
]:
    """Per MAC pair and per address pair: sum of IP total lengths of synth.pcap's frames."""
    data = (REALDATA / "generated" / "synth.pcap").read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1" and struct.unpack_from("<I", data, 20)[0] == 1  # Ethernet
    by_mac: collections.Counter[tuple[str, str]] = collections.Counter()
    by_ip: collections.Counter[tuple[bytes, bytes]] = collections.Counter()
    offset, frames = 24, 0
    while offset < len(data):
        incl = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        frames += 1
        dst_mac, src_mac = frame[0:6].hex(":"), frame[6:12].hex(":")
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == 0x0800:
            length = struct.unpack_from("!H", frame, 16)[0]  # IPv4 total length
            src, dst = frame[26:30], frame[30:34]
        else:
            assert ethertype == 0x86DD
            length = 40 + struct.unpack_from("!H", frame, 18)[0]  # IPv6 header + payload length
            src, dst = frame[22:38], frame[38:54]
        by_mac[(src_mac, dst_mac)] += length
        by_ip[(src, dst)] += length
    return by_mac, by_ip, frames


@pytest.mark.parametrize("name", ["pmacct-nfprobe-v9", "pmacct-nfprobe-v10", "softflowd-v9", "softflowd-v10"])
def test_exporter_totals_equal_the_packets_of_synth_pcap(name: str) -> None:
    """Exporters count IP total length (not the 14 Ethernet header bytes): totals match exactly.

    pmacct nfprobe exports MACs, so the check is per (src_mac, dst_mac) pair, the IXP matrix key.
    softflowd's templates carry no MAC fields (only addresses, ports, counters): its check is per
    address pair instead, and its rows have no MACs.
    """
    by_mac, by_ip, frames = _synth_totals()
    decoder = NetflowDecoder(TemplateCache())
    rows = decode_all(
        decoder,
        [(d, "127.0.0.1", 0) for d in length_prefixed(REALDATA / "generated" / f"{name}.datagrams.bin")],
    )
    assert not decoder.stats.errors
    assert sum(as_int(r["packets"]) for r in rows) == frames == 3000
    ours_ip: collections.Counter[tuple[bytes, bytes]] = collections.Counter()
    ours_mac: collections.Counter[tuple[str, str]] = collections.Counter()
    for row in rows:
        src = ipaddress.ip_address(str(row["src_ip"])).packed
        dst = ipaddress.ip_address(str(row["dst_ip"])).packed
        ours_ip[(src, dst)] += as_int(row["bytes"])
        if row["src_mac"] is not None:
            ours_mac[(str(row["src_mac"]), str(row["dst_mac"]))] += as_int(row["bytes"])
    assert ours_ip == by_ip
    if name.startswith("pmacct"):
        assert ours_mac == by_mac and len(by_mac) == 30
    else:
        assert not ours_mac


# --- a hand-built IPFIX message ------------------------------------------------------------------


def _hand_built() -> tuple[bytes, bytes, list[dict[str, object]]]:
    """Template 300 with MACs, VLAN, ethertype, an enterprise variable-length field, a 3-byte
    (reduced-size) octetDeltaCount, IPv6 addresses, a variable-length interfaceName, a start
    time and a zero-length field; two records (short and long variable-length forms), then padding.
    """
    fields = [
        (56, 6), (80, 6), (243, 2), (256, 2), (0x8000 | 12, 65535, 9), (1, 3), (2, 2),
        (27, 16), (28, 16), (82, 65535), (152, 8), (5, 0),
    ]  # fmt: skip
    spec = b"".join(
        struct.pack("!HH", f[0], f[1]) + (struct.pack("!I", f[2]) if len(f) == 3 else b"") for f in fields
    )
    template_set = struct.pack("!HH", 300, len(fields)) + spec
    record1 = (
        bytes.fromhex("02005e100001") + bytes.fromhex("02005e100002") + struct.pack("!HH", 100, 0x86DD)
        + b"\x03abc" + (100_000).to_bytes(3, "big") + struct.pack("!H", 70)
        + ipaddress.ip_address("2001:db8::1").packed + ipaddress.ip_address("2001:db8::2").packed
        + b"\xff\x01\x00" + b"x" * 256 + struct.pack("!Q", 1_700_000_000_123)
    )  # fmt: skip
    record2 = (
        bytes.fromhex("02005e100003") + bytes.fromhex("02005e100004") + struct.pack("!HH", 4094, 0x86DD)
        + b"\x00" + (0xFFFFFF).to_bytes(3, "big") + struct.pack("!H", 65535)
        + ipaddress.ip_address("2001:db8::3").packed + ipaddress.ip_address("2001:db8::4").packed
        + b"\x02e0" + struct.pack("!Q", 1_700_000_001_000)
    )  # fmt: skip
    common = {"flow_protocol": "ipfix", "observation_domain": 7, "sequence_number": 1, "ethertype": 0x86DD}
    expected = [
        {**common, "src_mac": "02:00:5e:10:00:01", "dst_mac": "02:00:5e:10:00:02", "vlan": 100,
         "bytes": 100_000, "packets": 70, "src_ip": "2001:db8::1", "dst_ip": "2001:db8::2",
         "ip_version": 6, "flow_start": 1_700_000_000_123_000_000, "flow_end": None},
        {**common, "src_mac": "02:00:5e:10:00:03", "dst_mac": "02:00:5e:10:00:04", "vlan": 4094,
         "bytes": 16_777_215, "packets": 65535, "src_ip": "2001:db8::3", "dst_ip": "2001:db8::4",
         "ip_version": 6, "flow_start": 1_700_000_001_000_000_000, "flow_end": None},
    ]  # fmt: skip
    return template_set, record1 + record2 + b"\x00\x00\x00", expected


def test_hand_built_ipfix_message() -> None:
    template_set, data_set, expected = _hand_built()
    message = _ipfix_message(7, (2, template_set), (300, data_set))
    decoder = NetflowDecoder(TemplateCache(), sampling_overrides={"192.0.2.9": 512})
    rows = decoder.decode(message, "192.0.2.9", 123)
    assert len(rows) == 2
    for row, want in zip(rows, expected, strict=True):
        assert {k: row[k] for k in want} == want
        assert row["received_at"] == 123 and row["exporter_address"] == "192.0.2.9"
        assert row["sampling_rate"] == 512 and row["estimated_bytes"] == as_int(want["bytes"]) * 512
        assert row["input_ifindex"] is None and row["src_port"] is None and row["ip_protocol"] is None
    assert not decoder.stats.errors


def test_variable_length_record_past_its_set_keeps_the_rest() -> None:
    """A record whose variable-length field runs past its set: that set's tail is lost, counted, and
    the rows decoded before it and in other sets come back on the error."""
    template_set, data_set, _ = _hand_built()
    decoder = NetflowDecoder(TemplateCache())
    decoder.decode(_ipfix_message(7, (2, template_set)), "192.0.2.9", 1)
    # 77 bytes (more than the 63-byte minimum record, so not padding) whose enterprise
    # variable-length field announces 200 bytes
    broken_record = bytes.fromhex("02005e100005") * 2 + struct.pack("!HH", 1, 0x86DD) + b"\xc8" + b"a" * 60
    damaged = _ipfix_message(7, (300, broken_record), (300, data_set))
    with pytest.raises(NetflowDecodeError) as caught:
        decoder.decode(damaged, "192.0.2.9", 2)
    error = caught.value
    assert error.kind == "record past set end" and error.offset == 20
    assert (
        "template 300" in str(error) and "exporter 192.0.2.9" in str(error) and str(error).startswith("ipfix")
    )
    assert [r["src_ip"] for r in error.records] == ["2001:db8::1", "2001:db8::3"]
    assert decoder.stats.errors["record past set end"] == 1


# --- framing errors --------------------------------------------------------------------------------


def test_framing_errors_name_protocol_exporter_and_offset() -> None:
    items = length_prefixed(REALDATA / "generated" / "softflowd-v9.datagrams.bin")
    decoder = NetflowDecoder(TemplateCache())
    decode_all(decoder, [(d, "127.0.0.1", 0) for d in items])
    # a datagram whose first flowset is data and is followed by more
    payload = next(
        d
        for d in items
        if struct.unpack_from("!H", d, 20)[0] >= 256 and struct.unpack_from("!H", d, 22)[0] + 20 < len(d)
    )
    first_set_length = struct.unpack_from("!H", payload, 22)[0]
    n_first = len(NetflowDecoder(decoder.cache).decode(payload[: 20 + first_set_length], "127.0.0.1", 0))
    assert n_first > 0

    truncated = payload[: 20 + first_set_length + 10]
    with pytest.raises(NetflowDecodeError) as caught:
        decoder.decode(truncated, "127.0.0.1", 0)
    assert caught.value.kind == "set past end" and caught.value.offset == 20 + first_set_length
    assert str(caught.value).startswith("netflow9, exporter 127.0.0.1, offset")
    assert len(caught.value.records) == n_first  # the complete set before the damage

    garbage = bytearray(payload)
    struct.pack_into("!HH", garbage, 20 + first_set_length, 300, 2)
    with pytest.raises(DecodeError, match="shorter than a set header"):
        decoder.decode(bytes(garbage), "127.0.0.1", 0)

    with pytest.raises(DecodeError, match="shorter than the 20-byte header"):
        decoder.decode(payload[:12], "127.0.0.1", 0)
    with pytest.raises(DecodeError, match="shorter than the 16-byte header"):
        decoder.decode(_ipfix_message(1)[:12], "127.0.0.1", 0)
    with pytest.raises(DecodeError, match="message length 40 exceeds the 20-byte datagram"):
        decoder.decode(struct.pack("!HHIII", 10, 40, 0, 0, 0) + b"\x00" * 4, "127.0.0.1", 0)
    with pytest.raises(DecodeError, match="neither netflow v9 nor ipfix"):
        decoder.decode(b"\x00\x63" + b"\x00" * 30, "127.0.0.1", 0)
    assert decoder.stats.errors["set past end"] == 1 and decoder.stats.errors["bad set length"] == 1


def test_zero_fill_after_the_last_set_is_padding() -> None:
    """Palo Alto pads v9 datagrams with zeros after the last flowset: not an error (counted)."""
    decoder = NetflowDecoder(TemplateCache())
    pcap = (
        REALDATA
        / "pcaps"
        / "logstash-codec-netflow"
        / "netflow_9_palo_alto_1_flowset_in_large_zero_filled_packet.pcap"
    )
    rows = decode_all(decoder, datagrams(pcap))
    assert len(rows) == 1 and decoder.stats.errors == {"zero padding after last set": 1}


# --- the cache file ------------------------------------------------------------------------------


def test_cache_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.json: cannot read the template cache"):
        TemplateCache.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json: the template cache is not valid json"):
        TemplateCache.load(bad)
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match=r"bad\.json: the template cache has an unexpected layout"):
        TemplateCache.load(bad)


def test_cache_save_replaces_atomically(tmp_path: Path) -> None:
    decoder = NetflowDecoder(TemplateCache())
    decode_all(decoder, datagrams(REALDATA / "generated" / "softflowd-v10.pcap"))
    path = tmp_path / "templates.json"
    path.write_text("old contents")
    decoder.cache.save(path)
    reloaded = TemplateCache.load(path)
    assert sorted(reloaded.template_keys()) == sorted(decoder.cache.template_keys())
    assert len(reloaded) == 5  # 4 data templates + 1 options template
    assert reloaded.to_json() == decoder.cache.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["templates.json"]


def test_template_and_exporter_state_budgets() -> None:
    """Hostile sources cannot grow the cache without bound: fields and exporter states are capped."""
    decoder = NetflowDecoder(TemplateCache(max_template_fields=50))
    fields = b"".join(struct.pack("!HH", 1, 4) for _ in range(20))
    for template_id in (256, 257, 258):  # 20 + 20 fit, the third would make 60 > 50
        decoder.decode(_ipfix_message(1, (2, struct.pack("!HH", template_id, 20) + fields)), "192.0.2.1", 0)
    assert len(decoder.cache) == 2 and decoder.stats.errors == {"template cache full": 1}
    decoder.decode(_ipfix_message(1, (2, struct.pack("!HH", 256, 0))), "192.0.2.1", 0)  # withdraw one
    decoder.decode(_ipfix_message(1, (2, struct.pack("!HH", 258, 20) + fields)), "192.0.2.1", 0)
    assert sorted(k[2] for k in decoder.cache.template_keys()) == [257, 258]

    ((payload, _, received),) = datagrams(AKVORADO / "data+templates.pcap")
    states = NetflowDecoder(TemplateCache(max_exporter_states=2))
    for exporter in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        states.decode(payload, exporter, received)
    source_id = struct.unpack_from("!I", payload, 16)[0]
    assert states.stats.errors == {"exporter state full": 1}
    assert states.cache.peek_exporter_state("192.0.2.2", source_id) is not None
    assert states.cache.peek_exporter_state("192.0.2.3", source_id) is None
    assert states.stats.unknown_sampling == 21  # the third exporter's flows: no rate known


# --- values the lake cannot hold -----------------------------------------------------------------


def test_values_past_the_lake_columns_are_left_out_and_counted() -> None:
    check_out_of_range_message()


def check_out_of_range_message() -> bytes:
    """Reduced-size encoding lets an exporter send numbers the lake's columns cannot hold (an int8
    ip_version, int16 ip_protocol, int32 vlan, int64 counters and ns times). Such a value becomes
    None in its row, the rest of the record is kept, and each one is counted; nothing raises.
    Expected values are worked out here from the bytes written."""
    big = 2**63  # one past the int64 maximum
    # ipVersion, protocol, dot1qVlanId, ingressInterface, octets, packets, flowStartMilliseconds,
    # flowEndDeltaMicroseconds, samplingInterval
    fields = [(60, 1), (4, 2), (243, 4), (10, 8), (1, 8), (2, 4), (152, 8), (159, 8), (34, 8)]
    template = struct.pack("!HH", 300, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
    in_range = (
        struct.pack("!BHI", 4, 6, 100) + struct.pack("!QQI", 7, 1000, 3)
        + struct.pack("!QQQ", 1_700_000_000_000, 5_000_000, 2)
    )  # fmt: skip
    outside = (
        struct.pack("!BHI", 200, 40_000, 2**31) + struct.pack("!QQI", big, big, 3)
        + struct.pack("!QQQ", 2**63 // 1_000_000 + 1, 2**62, big)
    )  # fmt: skip
    # fits every column, but bytes x in-record rate = 2**62 x 2 = 2**63 does not
    product = (
        struct.pack("!BHI", 6, 17, 1) + struct.pack("!QQI", 1, 2**62, 1)
        + struct.pack("!QQQ", 0, 0, 2)
    )  # fmt: skip
    export_s = 1_700_000_000
    message = _ipfix_message(1, (2, template), (300, in_range + outside + product), export_time=export_s)
    decoder = NetflowDecoder(TemplateCache())
    first, second, third = decoder.decode(message, "192.0.2.1", 5)
    assert {k: first[k] for k in ("ip_version", "ip_protocol", "vlan", "input_ifindex", "bytes")} == {
        "ip_version": 4, "ip_protocol": 6, "vlan": 100, "input_ifindex": 7, "bytes": 1000,
    }  # fmt: skip
    assert first["flow_start"] == 1_700_000_000_000 * 10**6
    assert first["flow_end"] == export_s * 10**9 - 5_000_000 * 1000
    assert first["sampling_rate"] == 2 and first["estimated_bytes"] == 2000
    left_out = ("ip_version", "ip_protocol", "vlan", "input_ifindex", "bytes", "estimated_bytes",
                "flow_start", "flow_end", "sampling_rate", "estimated_packets")  # fmt: skip
    assert all(second[k] is None for k in left_out), {k: second[k] for k in left_out}
    assert second["packets"] == 3  # the rest of the record is kept
    # 2**62 us before the export: below the int64 ns range
    assert export_s * 10**9 - 2**62 * 1000 < -(2**63)
    assert third["bytes"] == 2**62 and third["sampling_rate"] == 2 and third["estimated_bytes"] is None
    assert third["estimated_packets"] == 2
    # second: 8 fields (its estimated_* follow bytes and the rate, not counted again); third: 1
    assert decoder.stats.errors == {"value out of range": 8 + 1}
    return message


@pytest.mark.parametrize("pure", ["1", "0"])
def test_values_past_the_lake_are_counted_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pure: str
) -> None:
    """The same message in a spool file, on the row and on the column-wise path: the file is
    stored (three rows), and its summary says how many values were left out (9, as above)."""
    from ingest import spool as sp
    from ingest.pipeline import process_files

    message = check_out_of_range_message()
    monkeypatch.setenv("PEERPOOL_NETFLOW_PURE", pure)
    af, raw = sp.pack_address("192.0.2.1")
    spool = tmp_path / "20260101T0000-range-1-000001.spool"
    received = 1_767_225_600 * 10**9
    spool.write_bytes(sp.MAGIC + sp.encode_record(message, received, af, raw, 4739, sp.PROTO_IPFIX))
    summary = process_files([spool], tmp_path / "lake", retention_days=100_000)
    (file,) = summary.files
    assert (file.status, file.flow_records, file.quarantined) == ("processed", 3, 0)
    assert file.values_out_of_range == 9 == summary.total("values_out_of_range")


def test_arrival_times_and_rates_past_the_lake_are_refused(tmp_path: Path) -> None:
    ((payload, exporter, received),) = datagrams(AKVORADO / "data+templates.pcap")
    decoder = NetflowDecoder(TemplateCache())
    with pytest.raises(NetflowDecodeError, match=r"arrival time \d+ ns is outside") as caught:
        decoder.decode(payload, exporter, 2**63)
    assert caught.value.kind == "arrival time out of range" and caught.value.exporter == exporter
    # nothing of the refused datagram was learnt: the next one decodes as on a fresh decoder
    assert decoder.decode(payload, exporter, received) == NetflowDecoder(TemplateCache()).decode(
        payload, exporter, received
    )
    with pytest.raises(ValueError, match="positive integer"):
        NetflowDecoder(TemplateCache(), sampling_overrides={"192.0.2.1": 2**63})
    path = tmp_path / "t.json"
    decoder.cache.save(path)
    doc = json.loads(path.read_text())
    doc["exporters"][0]["sampling"][0]["rate"] = 2**63
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="unexpected layout"):
        TemplateCache.load(path)
