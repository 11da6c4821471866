"""IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) encoders for the border routers' sampled flows.

Both send the same records (one template for IPv4 and one for IPv6) and an options template
whose data record carries the sampling rate (IE 34 samplingInterval / v9 SAMPLING_INTERVAL with
IE 35 samplingAlgorithm = 2, random), re-sent with the templates every ten minutes.

Sequence numbers follow each RFC: the IPFIX header carries the number of data records
(options data records included) sent before the message in this observation domain; the
NetFlow v9 header carries the number of export packets sent before this one.
Byte and packet counts are those of the sampled packets (the collector multiplies by the rate).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TEMPLATE_V4 = 256
TEMPLATE_V6 = 257
TEMPLATE_OPTIONS = 258
SAMPLING_RANDOM = 2
MAX_MESSAGE = 1400
MOD32 = 1 << 32

# IANA IPFIX information elements (https://www.iana.org/assignments/ipfix/ipfix.xhtml)
IE_OCTET_DELTA = 1
IE_PACKET_DELTA = 2
IE_PROTOCOL = 4
IE_SRC_PORT = 7
IE_SRC_IPV4 = 8
IE_INGRESS_IF = 10
IE_DST_PORT = 11
IE_DST_IPV4 = 12
IE_EGRESS_IF = 14
IE_BGP_SRC_AS = 16
IE_BGP_DST_AS = 17
IE_LAST_SWITCHED = 21  # NetFlow v9 only (sysUptime ms)
IE_FIRST_SWITCHED = 22
IE_SRC_IPV6 = 27
IE_DST_IPV6 = 28
IE_SAMPLING_INTERVAL = 34
IE_SAMPLING_ALGORITHM = 35
IE_FLOW_START_MS = 152
IE_FLOW_END_MS = 153
IE_OBSERVATION_DOMAIN = 149
V9_SCOPE_SYSTEM = 1


@dataclass(frozen=True, slots=True)
class FlowRecord:
    ip_version: int
    src_ip: bytes
    dst_ip: bytes
    src_port: int
    dst_port: int
    protocol: int
    ingress_ifindex: int
    egress_ifindex: int
    octets: int
    packets: int
    start_ms: int
    end_ms: int
    src_as: int
    dst_as: int


def _fields(pairs: list[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack("!HH", ie, length) for ie, length in pairs)


def _set(set_id: int, payload: bytes, *, pad: bool = True) -> bytes:
    """A set / flowset: id, length (padding included) and the payload padded to 32 bits."""
    padding = (4 - (4 + len(payload)) % 4) % 4 if pad else 0
    return struct.pack("!HH", set_id, 4 + len(payload) + padding) + payload + bytes(padding)


# --- IPFIX -------------------------------------------------------------------------------------

_IPFIX_HEADER = struct.Struct("!HHIII")
_IPFIX_V4 = struct.Struct("!4s4sHHBIIQQQQII")
_IPFIX_V6 = struct.Struct("!16s16sHHBIIQQQQII")
_IPFIX_COMMON = [
    (IE_SRC_PORT, 2),
    (IE_DST_PORT, 2),
    (IE_PROTOCOL, 1),
    (IE_INGRESS_IF, 4),
    (IE_EGRESS_IF, 4),
    (IE_OCTET_DELTA, 8),
    (IE_PACKET_DELTA, 8),
    (IE_FLOW_START_MS, 8),
    (IE_FLOW_END_MS, 8),
    (IE_BGP_SRC_AS, 4),
    (IE_BGP_DST_AS, 4),
]
IPFIX_FIELDS_V4 = [(IE_SRC_IPV4, 4), (IE_DST_IPV4, 4), *_IPFIX_COMMON]
IPFIX_FIELDS_V6 = [(IE_SRC_IPV6, 16), (IE_DST_IPV6, 16), *_IPFIX_COMMON]


class IpfixExporter:
    """One IPFIX exporting process and observation domain."""

    def __init__(self, domain_id: int, sampling_interval: int) -> None:
        self.domain_id = domain_id
        self.sampling_interval = sampling_interval
        self.sequence = 0  # data records sent so far

    def _message(self, sets: list[bytes], export_s: int) -> bytes:
        body = b"".join(sets)
        return _IPFIX_HEADER.pack(10, 16 + len(body), export_s, self.sequence, self.domain_id) + body

    def templates(self, export_s: int) -> bytes:
        """Templates, the options template and its data record (the sampling rate)."""
        tpl = b"".join(
            struct.pack("!HH", tid, len(fields)) + _fields(fields)
            for tid, fields in ((TEMPLATE_V4, IPFIX_FIELDS_V4), (TEMPLATE_V6, IPFIX_FIELDS_V6))
        )
        template_set = _set(2, tpl)
        options_fields = [(IE_OBSERVATION_DOMAIN, 4), (IE_SAMPLING_INTERVAL, 4), (IE_SAMPLING_ALGORITHM, 1)]
        opt = struct.pack("!HHH", TEMPLATE_OPTIONS, len(options_fields), 1) + _fields(options_fields)
        options_set = _set(3, opt)
        record = struct.pack("!IIB", self.domain_id, self.sampling_interval, SAMPLING_RANDOM)
        data_set = _set(TEMPLATE_OPTIONS, record)
        message = self._message([template_set, options_set, data_set], export_s)
        self.sequence = (self.sequence + 1) % MOD32
        return message

    @staticmethod
    def record_size(record: FlowRecord) -> int:
        return _IPFIX_V4.size if record.ip_version == 4 else _IPFIX_V6.size

    def data(self, records: list[FlowRecord], export_s: int) -> bytes:
        sets = []
        for version, tid, fmt in ((4, TEMPLATE_V4, _IPFIX_V4), (6, TEMPLATE_V6, _IPFIX_V6)):
            rows = [
                fmt.pack(
                    r.src_ip,
                    r.dst_ip,
                    r.src_port,
                    r.dst_port,
                    r.protocol,
                    r.ingress_ifindex,
                    r.egress_ifindex,
                    r.octets,
                    r.packets,
                    r.start_ms,
                    r.end_ms,
                    r.src_as,
                    r.dst_as,
                )
                for r in records
                if r.ip_version == version
            ]
            if rows:
                sets.append(_set(tid, b"".join(rows), pad=False))
        message = self._message(sets, export_s)
        self.sequence = (self.sequence + len(records)) % MOD32
        return message

    @staticmethod
    def overhead(versions: set[int]) -> int:
        return 16 + 4 * len(versions)


# --- NetFlow v9 --------------------------------------------------------------------------------

_V9_HEADER = struct.Struct("!HHIIII")
_V9_V4 = struct.Struct("!QQBH4sIH4sIIIII")
_V9_V6 = struct.Struct("!QQBH16sIH16sIIIII")
_V9_TAIL = [
    (IE_EGRESS_IF, 4),
    (IE_BGP_SRC_AS, 4),
    (IE_BGP_DST_AS, 4),
    (IE_LAST_SWITCHED, 4),
    (IE_FIRST_SWITCHED, 4),
]
V9_FIELDS_V4 = [
    (IE_OCTET_DELTA, 8),
    (IE_PACKET_DELTA, 8),
    (IE_PROTOCOL, 1),
    (IE_SRC_PORT, 2),
    (IE_SRC_IPV4, 4),
    (IE_INGRESS_IF, 4),
    (IE_DST_PORT, 2),
    (IE_DST_IPV4, 4),
    *_V9_TAIL,
]
V9_FIELDS_V6 = [
    (IE_OCTET_DELTA, 8),
    (IE_PACKET_DELTA, 8),
    (IE_PROTOCOL, 1),
    (IE_SRC_PORT, 2),
    (IE_SRC_IPV6, 16),
    (IE_INGRESS_IF, 4),
    (IE_DST_PORT, 2),
    (IE_DST_IPV6, 16),
    *_V9_TAIL,
]


class NetflowV9Exporter:
    """One NetFlow v9 exporter (source id), with its router's sysUptime clock."""

    def __init__(self, source_id: int, sampling_interval: int, boot_ms: int, system_id: int) -> None:
        self.source_id = source_id
        self.sampling_interval = sampling_interval
        self.boot_ms = boot_ms
        self.system_id = system_id
        self.sequence = 0  # export packets sent so far

    def uptime(self, unix_ms: int) -> int:
        return (unix_ms - self.boot_ms) % MOD32

    def _packet(self, flowsets: list[bytes], count: int, export_ms: int) -> bytes:
        head = _V9_HEADER.pack(
            9, count, self.uptime(export_ms), export_ms // 1000, self.sequence, self.source_id
        )
        self.sequence = (self.sequence + 1) % MOD32
        return head + b"".join(flowsets)

    def templates(self, export_ms: int) -> bytes:
        tpl = b"".join(
            struct.pack("!HH", tid, len(fields)) + _fields(fields)
            for tid, fields in ((TEMPLATE_V4, V9_FIELDS_V4), (TEMPLATE_V6, V9_FIELDS_V6))
        )
        template_flowset = _set(0, tpl)
        scope = [(V9_SCOPE_SYSTEM, 4)]
        options = [(IE_SAMPLING_INTERVAL, 4), (IE_SAMPLING_ALGORITHM, 1)]
        opt = (
            struct.pack("!HHH", TEMPLATE_OPTIONS, 4 * len(scope), 4 * len(options))
            + _fields(scope)
            + _fields(options)
        )
        options_flowset = _set(1, opt)
        record = struct.pack("!IIB", self.system_id, self.sampling_interval, SAMPLING_RANDOM)
        data = _set(TEMPLATE_OPTIONS, record)
        return self._packet([template_flowset, options_flowset, data], 4, export_ms)

    @staticmethod
    def record_size(record: FlowRecord) -> int:
        return _V9_V4.size if record.ip_version == 4 else _V9_V6.size

    def data(self, records: list[FlowRecord], export_ms: int) -> bytes:
        flowsets = []
        for version, tid, fmt in ((4, TEMPLATE_V4, _V9_V4), (6, TEMPLATE_V6, _V9_V6)):
            rows = [
                fmt.pack(
                    r.octets,
                    r.packets,
                    r.protocol,
                    r.src_port,
                    r.src_ip,
                    r.ingress_ifindex,
                    r.dst_port,
                    r.dst_ip,
                    r.egress_ifindex,
                    r.src_as,
                    r.dst_as,
                    self.uptime(r.end_ms),
                    self.uptime(r.start_ms),
                )
                for r in records
                if r.ip_version == version
            ]
            if rows:
                flowsets.append(_set(tid, b"".join(rows)))
        return self._packet(flowsets, len(records), export_ms)

    @staticmethod
    def overhead(versions: set[int]) -> int:
        return 20 + 7 * len(versions)  # header, flowset headers and worst-case padding
