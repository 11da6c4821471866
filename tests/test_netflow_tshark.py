"""The NetFlow v9 / IPFIX decoder against tshark, record by record, on every real capture.

Reference: the tshark 4.0.17 two-pass (``tshark -2 -T json``) decodes stored beside the captures
in ``realdata/tshark/`` and ``realdata/generated/`` (made with the decode-as ports listed in
``tshark/SUMMARY.json``: 2100, 8096, 9991, 9992, 14739, 14740). Two-pass matters: a data set that
arrives before its template (akvorado ``data+templates``, logstash ``*_data_before_template``) is
decoded by ``tshark -2`` in place, and by peerpool when the template arrives (held as pending).
Records are therefore compared as a multiset per capture frame time, which is the arrival time
peerpool gives every record (released pending records keep their own arrival time).

Per capture the test checks: template and options template counts, data record counts (flow
records plus options records), the data sets still lacking a template at the end, and for every
flow record addresses, ports, protocol, octets, packets, interface indexes, MACs, VLAN, IP
version, flow start/end and an in-record sampling interval.

Every comparison runs on both decoding paths: the reference row converters (``decode``) and the
column-wise path the pipeline uses by default (``decode_into`` + ``ColumnarBatch``).

Where peerpool and tshark disagree the test says which is right and why (``DISAGREEMENTS``);
three of those are settled by running tshark live on a corrected copy of the capture.

NetFlow v5 is out of scope for peerpool: v5 captures are refused with an explicit, counted
"v5 is not supported" error (``test_netflow_v5_captures_are_refused``).
"""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import json
import re
import struct
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingest.netflow import NetflowDecodeError, NetflowDecoder, TemplateCache
from ingest.netflow.columnar import ColumnarBatch
from ingest.pcap import PcapStats, read_udp_datagrams
from peerpool.errors import DecodeError
from tests.conftest import require_tool

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
SUMMARY: dict[str, Any] = json.loads((REALDATA / "tshark" / "SUMMARY.json").read_text())

Json = dict[str, list[Any]]


def _flow_captures(versions: set[str]) -> list[str]:
    return sorted(
        name
        for name, entry in SUMMARY.items()
        if entry.get("cflow")
        and set(entry["cflow"].get("versions", {})) <= versions
        and set(entry["cflow"].get("versions", {}))
    )


V9_IPFIX = _flow_captures({"9", "10"})
V5 = _flow_captures({"5"})
GENERATED = ["pmacct-nfprobe-v9", "pmacct-nfprobe-v10", "softflowd-v9", "softflowd-v10"]
# the reference row converters, and the column-wise path the pipeline uses by default
PATHS = ["reference", "columnar"]

# Captures where tshark's decode is not the truth, with the reason. The check used instead is
# named in each entry and implemented in the tests below.
DISAGREEMENTS = {
    "logstash-codec-netflow/netflow_9_h3c.pcap": (
        "H3C sends IPV4_ROUTER_SC (43) in 2 bytes; tshark expects an IPv4 address, marks the record "
        "malformed and abandons the datagram after the first record. The template's field lengths "
        "frame the records (RFC 3954 section 5.2), element 43 is not used by peerpool, so peerpool "
        "decodes all 16: tshark's first record must be among them, and the record count must equal "
        "the flowset length divided by the record length computed from tshark's own template."
    ),
    "logstash-codec-netflow/netflow_9_h3c_netstream_with_varstring.pcap": (
        "same H3C IPV4_ROUTER_SC length as above, plus a VRFname sent with IPFIX variable-length "
        "encoding inside NetFlow v9; tshark's only record must equal peerpool's."
    ),
    "logstash-codec-netflow/netflow_9_invalid_01.pcap": (
        "the v9 header count says 2 records but the datagram holds 6 (2 templates, an options "
        "template, an options record, 2 flows); tshark stops counting at 2, peerpool frames by the "
        "flowset lengths. RFC 3954 calls count informational; a live tshark run on a copy with "
        "the count corrected to 6 decodes the same 2 flows as peerpool."
    ),
    "pmacct/112-IPFIXv10-CISCO-options-map-reassignment/traffic-00.pcap": (
        "the capture holds two transport sessions of one router: template 347 goes from UDP port "
        "61853 to collector address 2a02:a90:4007::2:20, its data from port 65156 to "
        "2a02:a90:4007::2:2. tshark scopes templates by transport session (addresses and ports), "
        "peerpool by exporter address and observation domain, as pmacct and akvorado do (pmacct's "
        "expected output for this test contains these flows). A live tshark run on a copy that "
        "puts every datagram in one session decodes the same 9 flows as peerpool."
    ),
}

# --- tshark JSON helpers -------------------------------------------------------------------------


def _keep_duplicates(pairs: list[tuple[str, Any]]) -> Json:
    """tshark -T json repeats keys (a field present twice in a template): keep every value."""
    out: Json = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def load_tshark(path: Path | str) -> list[Json]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        doc: list[Json] = json.load(fh, object_pairs_hook=_keep_duplicates)
    return doc


def parse_tshark_json(text: str) -> list[Json]:
    doc: list[Json] = json.loads(text, object_pairs_hook=_keep_duplicates)
    return doc


def first(obj: Json, key: str) -> Any:
    values = obj.get(key)
    return values[0] if values else None


def _abstime_ns(text: str) -> int:
    """tshark absolute time 'Nov 14, 2023 22:13:20.005000000 UTC' to Unix ns."""
    stamp, _, _zone = text.rpartition(" ")
    whole, _, fraction = stamp.partition(".")
    when = dt.datetime.strptime(" ".join(whole.split()), "%b %d, %Y %H:%M:%S").replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def _seconds_ns(text: str) -> int:
    return int(Decimal(text) * 1_000_000_000)


_SET_KEY = re.compile(r"^(?:Flow)?Set \d+ \[id=(\d+)\]")
_TEMPLATE_KEY = re.compile(r"^Template \(Id = (\d+), Count = (\d+)\)")
_OPTIONS_TEMPLATE_KEY = re.compile(r"^Options Template \(Id = (\d+)\)")

# FLOWS column -> tshark fields, in the same preference order as the IANA semantics peerpool uses.
TSHARK_FIELDS = {
    "src_ip": ("cflow.srcaddr", "cflow.srcaddrv6"),
    "dst_ip": ("cflow.dstaddr", "cflow.dstaddrv6"),
    "src_port": ("cflow.srcport",),
    "dst_port": ("cflow.dstport",),
    "ip_protocol": ("cflow.protocol",),
    "bytes": ("cflow.octets", "cflow.post_octets"),
    "packets": ("cflow.packets", "cflow.post_packets"),
    "input_ifindex": ("cflow.inputint", "cflow.ingress_physical_interface"),
    "output_ifindex": ("cflow.outputint", "cflow.egress_physical_interface"),
    "src_mac": ("cflow.srcmac", "cflow.post_srcmac"),
    "dst_mac": ("cflow.dstmac", "cflow.post_dstmac"),
    "vlan": ("cflow.dot1q_vlan_id", "cflow.vlanid"),
}
INTEGER_COLUMNS = {
    "src_port",
    "dst_port",
    "ip_protocol",
    "bytes",
    "packets",
    "input_ifindex",
    "output_ifindex",
    "vlan",
}
COMPARED = (*TSHARK_FIELDS, "ip_version", "flow_start", "flow_end", "in_record_rate")


class TsharkCapture:
    """What tshark decoded in one capture: counts and normalised flow records."""

    def __init__(self, doc: list[Json]) -> None:
        self.templates = 0
        self.options_templates = 0
        self.data_records = 0  # flow + options records, as tshark counts "(N flows)"
        self.no_template_sets = 0
        self.options_ids: set[tuple[int, int]] = set()
        self.flows: list[tuple[int, dict[str, Any]]] = []  # (frame time ns, normalised record)
        self.template_lengths: dict[tuple[int, int], int] = {}  # (domain, id) -> record length
        self.header_counts: list[int] = []  # NetFlow v9 header "count" per datagram
        system_init: dict[int, int] = {}
        for packet in doc:
            layers = first(first(packet, "_source"), "layers")
            frame_ns = _seconds_ns(first(first(layers, "frame"), "frame.time_epoch"))
            for cflow in layers.get("cflow", []):
                self._datagram(cflow, frame_ns, system_init)

    def _datagram(self, cflow: Json, frame_ns: int, system_init: dict[int, int]) -> None:
        version = int(first(cflow, "cflow.version"))
        domain = int(first(cflow, "cflow.source_id") or first(cflow, "cflow.od_id") or 0)
        if version == 9:
            export_ns = int(first(first(cflow, "cflow.timestamp_tree"), "cflow.unix_secs")) * 10**9
            uptime_ns: int | None = _seconds_ns(first(cflow, "cflow.sysuptime"))
            self.header_counts.append(int(first(cflow, "cflow.count")))
        else:
            export_ns = int(first(first(cflow, "cflow.timestamp_tree"), "cflow.exporttime")) * 10**9
            uptime_ns = None
        for key, sets in cflow.items():
            match = _SET_KEY.match(key)
            if not match:
                continue
            for flowset in sets:
                set_id = int(match.group(1))
                self._templates(flowset, domain)
                if any("no template found" in k for k in flowset):
                    self.no_template_sets += 1
                flows = [f for k, fs in flowset.items() if k.startswith("Flow ") for f in fs]
                self.data_records += len(flows)
                for flow in flows:
                    if (domain, set_id) in self.options_ids:
                        init = first(flow, "cflow.sys_init_time")
                        if init is not None:
                            system_init[domain] = _abstime_ns(init)
                        continue
                    record = self._normalise(flow, version, export_ns, uptime_ns, system_init.get(domain))
                    self.flows.append((frame_ns, record))

    def _templates(self, flowset: Json, domain: int) -> None:
        for key, values in flowset.items():
            template = _TEMPLATE_KEY.match(key)
            options = _OPTIONS_TEMPLATE_KEY.match(key)
            if template:
                self.templates += len(values)
                for value in values:
                    lengths = [
                        int(first(f, "cflow.template_field_length"))
                        for k, fs in value.items()
                        if k.startswith("Field (")
                        for f in fs
                    ]
                    self.template_lengths[(domain, int(template.group(1)))] = sum(lengths)
            elif options:
                self.options_templates += len(values)
                self.options_ids.add((domain, int(options.group(1))))

    @staticmethod
    def _normalise(
        flow: Json, version: int, export_ns: int, uptime_ns: int | None, init_ns: int | None
    ) -> dict[str, Any]:
        flow = dict(flow)
        # A template with both IPv4 and IPv6 address fields (Procera) fills one family with zeros.
        for v4, v6 in (("cflow.srcaddr", "cflow.srcaddrv6"), ("cflow.dstaddr", "cflow.dstaddrv6")):
            if v4 in flow and v6 in flow and first(flow, v4) == "0.0.0.0":
                del flow[v4]
        record: dict[str, Any] = {}
        for column, fields in TSHARK_FIELDS.items():
            value = next((first(flow, f) for f in fields if f in flow), None)
            record[column] = int(value) if value is not None and column in INTEGER_COLUMNS else value
        declared = first(flow, "cflow.ip_version")
        if declared is not None:
            record["ip_version"] = int(declared)
        elif record["src_ip"] is not None:
            record["ip_version"] = 6 if ":" in record["src_ip"] else 4
        else:
            record["ip_version"] = None
        tree = first(flow, "cflow.timedelta_tree") or {}
        record_init = first(flow, "cflow.sys_init_time")
        if record_init is not None:
            init_ns = _abstime_ns(record_init)
        for column, absolute, relative in (
            ("flow_start", "cflow.abstimestart", "cflow.timestart"),
            ("flow_end", "cflow.abstimeend", "cflow.timeend"),
        ):
            # with both ends tshark nests the times in timedelta_tree, with one it puts it in the flow
            absolute_text = first(tree, absolute) or first(flow, absolute)
            absolute_ns = _abstime_ns(absolute_text) if absolute_text is not None else None
            relative_text = first(tree, relative) or first(flow, relative)
            if absolute_ns == 0 and (first(tree, "cflow.timestart") or first(tree, "cflow.timeend")):
                # tshark prints a *SysUpTime of 0 next to a relative end as the epoch itself (a
                # display quirk, logstash ipfix.pcap): it is the relative value 0.
                absolute_ns, relative_text = None, "0"
            if absolute_ns is not None:
                record[column] = absolute_ns
            elif relative_text is not None:
                since_boot_ns = _seconds_ns(relative_text)
                # The uptime counters are 32-bit ms and wrap every 49.7 days: the expected time is
                # the value congruent (mod 2**32 ms) to the RFC formula that lies within 24.8 days
                # of the export. It differs from the bare formula only where the uptimes are more
                # than 24.8 days apart (softflowd replaying a pcap offline: 41 days).
                if version == 9:
                    # RFC 3954 section 5.1: unix secs - (sysUpTime - *_SWITCHED)
                    assert uptime_ns is not None
                    record[column] = ("uptime", export_ns - (uptime_ns - since_boot_ns), export_ns)
                elif init_ns is not None:
                    # IPFIX: systemInitTimeMilliseconds + flow*SysUpTime
                    record[column] = ("uptime", init_ns + since_boot_ns, export_ns)
                else:
                    record[column] = None
            else:
                record[column] = None
        interval = first(flow, "cflow.sampling_interval")
        record["in_record_rate"] = int(interval) if interval is not None and int(interval) > 0 else None
        return record


def comparable(record: dict[str, object]) -> dict[str, Any]:
    out = {column: record[column] for column in (*TSHARK_FIELDS, "ip_version", "flow_start", "flow_end")}
    out["in_record_rate"] = record["sampling_rate"]
    return out


def _matches(theirs: dict[str, Any], ours: dict[str, Any]) -> bool:
    for column in COMPARED:
        expected, actual = theirs[column], ours[column]
        if column == "in_record_rate":
            if expected is not None and actual != expected:
                return False
            continue
        if isinstance(expected, tuple):  # IPFIX uptime: congruent mod 2**32 ms, near export time
            _, candidate_ns, export_ns = expected
            if not isinstance(actual, int):
                return False
            wrap = 2**32 * 1_000_000
            if (actual - candidate_ns) % wrap or abs(actual - export_ns) > wrap // 2:
                return False
            continue
        if expected != actual:
            return False
    return True


def unmatched(
    theirs: list[tuple[int, dict[str, Any]]], ours: list[tuple[int, dict[str, Any]]]
) -> tuple[list[Any], list[Any]]:
    """Pair records with equal frame time and equal compared fields; return what stays unpaired."""
    by_time: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for t, record in ours:
        by_time[t].append(record)
    missing = []
    for t, expected in theirs:
        candidates = by_time.get(t, [])
        hit = next((i for i, rec in enumerate(candidates) if _matches(expected, rec)), None)
        if hit is None:
            missing.append((t, expected))
        else:
            candidates.pop(hit)
    extra = [(t, rec) for t, recs in by_time.items() for rec in recs]
    return missing, extra


def decode_capture(
    pcap: Path, decoder: NetflowDecoder | None = None, path: str = "reference"
) -> tuple[NetflowDecoder, list[Any]]:
    """Decode every datagram: ``path`` "reference" to row dicts (``decode``), "columnar" into a
    ``ColumnarBatch`` (``decode_into``, what the pipeline uses by default) read back as rows."""
    decoder = decoder or NetflowDecoder(TemplateCache())
    batch = ColumnarBatch(decoder.stats)
    rows: list[dict[str, Any]] = []
    for datagram in read_udp_datagrams(pcap, PcapStats()):
        try:
            if path == "columnar":
                decoder.decode_into(batch, datagram.payload, datagram.src_ip, datagram.timestamp_ns)
            else:
                rows.extend(decoder.decode(datagram.payload, datagram.src_ip, datagram.timestamp_ns))
        except NetflowDecodeError as exc:  # pragma: no cover - a failure path, reported below
            raise AssertionError(f"{pcap}: {exc}") from exc
    if path == "columnar":
        rows = batch.table().to_pylist()
    return decoder, [(int(str(r["received_at"])), comparable(r)) for r in rows]


# --- the comparisons -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("capture", [c for c in V9_IPFIX if c not in DISAGREEMENTS])
def test_capture_matches_tshark(capture: str, path: str) -> None:
    tshark = TsharkCapture(load_tshark(REALDATA / "tshark" / capture.replace(".pcap", ".tshark.json")))
    decoder, records = decode_capture(REALDATA / "pcaps" / capture, path=path)
    stats = decoder.stats
    assert stats.errors.get("unsupported version", 0) == 0
    assert stats.templates == tshark.templates
    assert stats.options_templates == tshark.options_templates
    assert stats.data_records + stats.options_records == tshark.data_records
    assert stats.data_records == len(tshark.flows)
    assert decoder.cache.pending_count == tshark.no_template_sets
    missing, extra = unmatched(tshark.flows, records)
    assert not missing and not extra, f"tshark only: {missing[:3]}\npeerpool only: {extra[:3]}"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", GENERATED)
def test_generated_exporter_capture_matches_tshark(name: str, path: str) -> None:
    """pmacct nfprobe and softflowd output for synth.pcap: 3000 flows each, all fields equal."""
    tshark = TsharkCapture(load_tshark(REALDATA / "generated" / f"{name}.tshark.json.gz"))
    decoder, records = decode_capture(REALDATA / "generated" / f"{name}.pcap", path=path)
    counts = next(
        json.loads(line)["counts"]["cflow"]
        for line in (REALDATA / "generated" / "TSHARK_COUNTS.jsonl").read_text().splitlines()
        if json.loads(line)["file"] == f"{name}.pcap"
    )
    assert decoder.stats.templates == tshark.templates == counts["templates"]
    assert decoder.stats.options_templates == tshark.options_templates == counts.get("options_templates", 0)
    assert decoder.stats.data_records + decoder.stats.options_records == counts["data_records"]
    assert decoder.stats.data_records == 3000
    assert not decoder.stats.errors
    missing, extra = unmatched(tshark.flows, records)
    assert not missing and not extra, f"tshark only: {missing[:3]}\npeerpool only: {extra[:3]}"


@pytest.mark.parametrize("path", PATHS)
def test_h3c_record_framing_beats_tshark_abort(path: str) -> None:
    capture = "logstash-codec-netflow/netflow_9_h3c.pcap"
    tshark = TsharkCapture(load_tshark(REALDATA / "tshark" / capture.replace(".pcap", ".tshark.json")))
    decoder, records = decode_capture(REALDATA / "pcaps" / capture, path=path)
    assert len(tshark.flows) == 1  # tshark gave up after the malformed first record
    missing, _extra = unmatched(tshark.flows, records)
    assert not missing
    # independent counts: the exporter's own v9 header count (records in the datagram, as tshark
    # read it) and the datagram size framed by tshark's template (80-byte records, 84-byte sets)
    assert tshark.header_counts == [1, 16]
    assert tshark.template_lengths[(2816, 3281)] == 80
    payloads = [d.payload for d in read_udp_datagrams(REALDATA / "pcaps" / capture)]
    assert (len(payloads[1]) - 20) // (4 + 80) == 16
    assert decoder.stats.data_records == 16
    assert all(r["ip_version"] == 4 and r["bytes"] is not None for _, r in records)


@pytest.mark.parametrize("path", PATHS)
def test_h3c_varstring_in_netflow9(path: str) -> None:
    capture = "logstash-codec-netflow/netflow_9_h3c_netstream_with_varstring.pcap"
    tshark = TsharkCapture(load_tshark(REALDATA / "tshark" / capture.replace(".pcap", ".tshark.json")))
    decoder, records = decode_capture(REALDATA / "pcaps" / capture, path=path)
    missing, extra = unmatched(tshark.flows, records)
    assert not missing and not extra
    assert decoder.stats.data_records == 1 and not decoder.stats.errors


@pytest.mark.parametrize("capture", V5)
def test_netflow_v5_captures_are_refused(capture: str) -> None:
    """Out of scope: every v5 datagram gets a DecodeError saying so, and is counted."""
    decoder = NetflowDecoder(TemplateCache())
    datagrams = list(read_udp_datagrams(REALDATA / "pcaps" / capture))
    for datagram in datagrams:
        with pytest.raises(DecodeError, match="netflow v5 is not supported"):
            decoder.decode(datagram.payload, datagram.src_ip, datagram.timestamp_ns)
    assert decoder.stats.errors == {"unsupported version": len(datagrams)}
    assert SUMMARY[capture]["cflow"]["versions"] == {"5": len(datagrams)}


def test_every_flow_capture_is_covered() -> None:
    """The parametrisations above cover every NetFlow/IPFIX capture of the shared set, v5 counted apart."""
    on_disk = {
        str(p.relative_to(REALDATA / "pcaps"))
        for sub in ("akvorado/netflow", "akvorado/netflow-combined", "pmacct", "logstash-codec-netflow")
        for p in (REALDATA / "pcaps" / sub).rglob("*.pcap")
    }
    assert on_disk == set(V9_IPFIX) | set(V5)
    assert len(V5) == 6  # akvorado nfv5 + 5 logstash v5 captures: "v5 is not supported"
    assert len(V9_IPFIX) == 98


# --- live tshark runs on corrected copies ----------------------------------------------------------


def _pcap_frames(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, length, link type) of each frame body in a little-endian microsecond pcap."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    linktype = struct.unpack_from("<I", data, 20)[0]
    offset = 24
    while offset + 16 <= len(data):
        incl = struct.unpack_from("<I", data, offset + 8)[0]
        yield offset + 16, incl, linktype
        offset += 16 + incl


def _udp_offset(frame: bytes, linktype: int) -> int:
    """Offset of the UDP header in an Ethernet (1) or Linux cooked (113) frame with IPv4/IPv6."""
    ip = {1: 14, 113: 16}[linktype]
    ethertype = struct.unpack_from("!H", frame, ip - 2)[0]
    if ethertype == 0x0800:
        assert frame[ip + 9] == 17
        return ip + (frame[ip] & 0x0F) * 4
    assert ethertype == 0x86DD and frame[ip + 6] == 17
    return ip + 40


def _tshark_live(pcap: Path, port: int) -> list[Json]:
    tshark = require_tool("tshark")
    result = subprocess.run(
        [tshark, "-2", "-n", "-r", str(pcap), "-d", f"udp.port=={port},cflow", "-T", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return parse_tshark_json(result.stdout)


def test_live_tshark_in_one_session_agrees_on_template_347(tmp_path: Path) -> None:
    """pmacct 112: put every datagram in the first one's UDP session, let tshark decode it live."""
    capture = "pmacct/112-IPFIXv10-CISCO-options-map-reassignment/traffic-00.pcap"
    data = bytearray((REALDATA / "pcaps" / capture).read_bytes())
    session: tuple[bytes, int] | None = None
    for offset, _length, linktype in _pcap_frames(bytes(data)):
        udp = offset + _udp_offset(bytes(data[offset : offset + 64]), linktype)
        destination = slice(udp - 16, udp)  # IPv6 destination address, just before the UDP header
        if session is None:
            session = (bytes(data[destination]), struct.unpack_from("!H", data, udp)[0])
        data[destination] = session[0]
        struct.pack_into("!H", data, udp, session[1])
    fixed = tmp_path / "one-session.pcap"
    fixed.write_bytes(bytes(data))
    tshark = TsharkCapture(_tshark_live(fixed, 9991))
    decoder, records = decode_capture(REALDATA / "pcaps" / capture)
    assert len(tshark.flows) == 9  # tshark now finds template 347
    missing, extra = unmatched(tshark.flows, records)
    assert not missing and not extra, f"tshark only: {missing[:3]}\npeerpool only: {extra[:3]}"
    assert tshark.no_template_sets == decoder.cache.pending_count == 4  # 313/341/342/348 never sent
    assert decoder.stats.data_records + decoder.stats.options_records == tshark.data_records == 85


def test_live_tshark_with_corrected_v9_count_agrees(tmp_path: Path) -> None:
    """logstash netflow_9_invalid_01: set the v9 header count to the 6 records the datagram holds."""
    capture = "logstash-codec-netflow/netflow_9_invalid_01.pcap"
    data = bytearray((REALDATA / "pcaps" / capture).read_bytes())
    (offset, _length, linktype), *_ = list(_pcap_frames(bytes(data)))
    payload = offset + _udp_offset(bytes(data[offset : offset + 64]), linktype) + 8
    assert struct.unpack_from("!HH", data, payload) == (9, 2)
    struct.pack_into("!H", data, payload + 2, 6)
    fixed = tmp_path / "count6.pcap"
    fixed.write_bytes(bytes(data))
    tshark = TsharkCapture(_tshark_live(fixed, 2055))
    decoder, records = decode_capture(REALDATA / "pcaps" / capture)
    assert (tshark.templates, tshark.options_templates, tshark.data_records) == (2, 1, 3)
    assert len(tshark.flows) == decoder.stats.data_records == 2
    missing, extra = unmatched(tshark.flows, records)
    assert not missing and not extra
    # the options record (interface scope, SAMPLING_INTERVAL 100) was applied to the exporter
    assert {r["in_record_rate"] for _, r in records} == {100}
