"""Decode one sFlow version 5 datagram into flow and counter samples.

Pure: bytes in, objects out; no I/O, clock or enrichment (the pipeline adds arrival time, exporter
address, member ids and builds lake rows). The only exception that leaves ``decode_datagram`` is
``SflowDecodeError``, a ``peerpool.errors.DecodeError`` that carries the byte offset where decoding
failed and ``partial``: the datagram with the samples decoded before the failure, so a caller may
keep what was sound.

Robustness: every length and count is checked against the bytes that are really there before it is
used. A count is never used to size anything; loops stop at the first element that does not fit,
so a datagram claiming 2**32 - 1 samples costs as much as its real length.

Field choices (the lake's column names where the meaning is the same, see ``peerpool/lake.py``):

* ``input_ifindex`` / ``output_ifindex`` are the interface value when its format is 0 (an ifIndex;
  0 means unknown and 0x3FFFFFFF "internal to the agent", both kept as they are) and ``None`` when
  the format says "discarded" (1) or "multiple interfaces" (2). The format and raw value are always
  in ``input_format``/``input_value`` and ``output_format``/``output_value`` (for a discarded packet
  ``output_value`` is the reason code, for "multiple" the number of interfaces, 0 = unknown).
  The compact form packs format and value in one word (top 2 bits format, low 30 bits value); the
  expanded form has them as two words.
* The compact ``source_id`` word is split into ``source_id_type`` (top 8 bits) and
  ``source_id_index`` (low 24 bits).
* Packet fields come from the raw packet header record (format 1, parsed by ``ingest.packet``).
  ``vlan`` is the outer 802.1Q tag *of the sampled header*; the extended switch record (1001) is in
  ``src_vlan``/``dst_vlan`` (the pipeline chooses which one becomes the lake's ``vlan``).
  Without a raw header, the sampled Ethernet (2), IPv4 (3) and IPv6 (4) records fill the fields
  (and any field the raw header left empty): MACs and ethertype from record 2; addresses, protocol,
  ports, TOS/priority and ``ip_length`` from record 3/4. ``frame_length`` is taken from the raw
  header, else from record 2's length, else from record 3/4's IP length (which lacks the layer-2
  header: an underestimate of about 18 bytes).
* Value bounds (``constants.MAX_*``, where the arithmetic is written out): a sampled IPv4/IPv6
  record's protocol must be 0..255 and its ports 0..65535, a sampled Ethernet record's type
  0..65535, and every length that can become the frame length (the raw header's ``frame_length``,
  records 2/3/4's ``length``) at most 2**24, so that frame length x sampling rate stays below 2**56.
  A value past its bound is a decode error of the datagram naming the record, the field, the value
  and the range (the pipeline quarantines it and keeps the samples before it): the lake's narrower
  columns and int64 sums cannot take it. The extended switch record's VLANs are not bounded here:
  agents put 0xFFFFFFFF and the like for "unknown", which the lake stores as a null VLAN
  (``ingest.matrix.valid_vlan``).
* ``FlowSample`` and ``CounterSample`` are named tuples (``__slots__ = ()``): immutable, the cheapest
  object CPython builds, with attribute access by name.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from ingest.packet import EMPTY_FIELDS, HeaderFields, ethernet_fields, ip_fields
from ingest.sflow import constants as c
from peerpool.errors import DecodeError

_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6
_ntop = socket.inet_ntop

_U32X2 = struct.Struct("!II")
_U32X3 = struct.Struct("!III")
_U32X4 = struct.Struct("!IIII")
_U32X6 = struct.Struct("!6I")
_FLOW = struct.Struct("!8I")  # flow_sample: seq, source_id, rate, pool, drops, input, output, n records
_FLOW_EXPANDED = struct.Struct("!11I")  # flow_sample_expanded: ... input/output as (format, value)
_COUNTERS_EXPANDED = struct.Struct("!IIII")  # seq, source_id_type, source_id_index, n records
_GENERIC = struct.Struct("!IIQIIQIIIIIIQIIIIII")  # if_counters, 88 bytes
_ETHERNET = struct.Struct("!13I")  # ethernet_counters, 52 bytes
_SAMPLED_ETHERNET = struct.Struct("!I6s2x6s2xI")  # length, src mac, dst mac (opaque[6] padded), type
_SAMPLED_IPV4 = struct.Struct("!II4s4sIIII")  # length, protocol, src, dst, sport, dport, flags, tos
_SAMPLED_IPV6 = struct.Struct("!II16s16sIIII")  # ... priority

_MASK30 = c.INTERFACE_VALUE_MASK
_MAX_FRAME_LENGTH = c.MAX_FRAME_LENGTH
_U32 = struct.Struct("!I")
_RECORD_NAMES = {
    c.FLOW_RAW_PACKET_HEADER: "sampled_header",
    c.FLOW_ETHERNET_FRAME: "sampled_ethernet",
    c.FLOW_IPV4: "sampled_ipv4",
    c.FLOW_IPV6: "sampled_ipv6",
}
# the bounded fields of the sampled records in wire order: (name, byte offset in the record, largest
# value); sampled_ipv4/6 hold two addresses of 4/16 bytes between the protocol and the ports
_SAMPLED_CHECKS: dict[int, tuple[tuple[str, int, int], ...]] = {
    c.FLOW_ETHERNET_FRAME: (("length", 0, _MAX_FRAME_LENGTH), ("type", 20, c.MAX_ETHERTYPE)),
    **{
        record_format: (
            ("length", 0, _MAX_FRAME_LENGTH),
            ("protocol", 4, c.MAX_IP_PROTOCOL),
            ("src_port", 8 + 2 * size, c.MAX_PORT),
            ("dst_port", 12 + 2 * size, c.MAX_PORT),
        )
        for record_format, size in ((c.FLOW_IPV4, 4), (c.FLOW_IPV6, 16))
    },
}
_KNOWN_FLOW_RECORDS = frozenset(
    (
        c.FLOW_EXTENDED_ROUTER,
        c.FLOW_EXTENDED_GATEWAY,
        c.FLOW_EXTENDED_USER,
        c.FLOW_EXTENDED_URL,
        c.FLOW_EXTENDED_MPLS,
        c.FLOW_EXTENDED_NAT,
        c.FLOW_EXTENDED_MPLS_TUNNEL,
        c.FLOW_EXTENDED_MPLS_VC,
        c.FLOW_EXTENDED_MPLS_FEC,
        c.FLOW_EXTENDED_MPLS_LVP_FEC,
        c.FLOW_EXTENDED_VLAN_TUNNEL,
    )
)
_KNOWN_COUNTER_RECORDS = frozenset(
    (c.COUNTERS_TOKEN_RING, c.COUNTERS_100BASEVG, c.COUNTERS_VLAN, c.COUNTERS_PROCESSOR)
)
_IP_HEADER_PROTOCOLS = frozenset((c.HEADER_PROTOCOL_IPV4, c.HEADER_PROTOCOL_IPV6))
_SAMPLED_SIZE = {
    c.FLOW_ETHERNET_FRAME: _SAMPLED_ETHERNET.size,
    c.FLOW_IPV4: _SAMPLED_IPV4.size,
    c.FLOW_IPV6: _SAMPLED_IPV6.size,
}


class GenericInterfaceCounters(NamedTuple):
    """if_counters (counter record 1), in the specification's order."""

    if_index: int
    if_type: int
    if_speed: int  # bits per second
    if_direction: int  # 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out
    if_status: int  # bit 0 ifAdminStatus up, bit 1 ifOperStatus up
    in_octets: int
    in_ucast_pkts: int
    in_multicast_pkts: int
    in_broadcast_pkts: int
    in_discards: int
    in_errors: int
    in_unknown_protos: int
    out_octets: int
    out_ucast_pkts: int
    out_multicast_pkts: int
    out_broadcast_pkts: int
    out_discards: int
    out_errors: int
    promiscuous_mode: int

    @property
    def admin_up(self) -> bool:
        return bool(self.if_status & c.IF_STATUS_ADMIN_UP)

    @property
    def oper_up(self) -> bool:
        return bool(self.if_status & c.IF_STATUS_OPER_UP)


class EthernetCounters(NamedTuple):
    """ethernet_counters (counter record 2): the 13 dot3Stats counters of RFC 2358."""

    alignment_errors: int
    fcs_errors: int
    single_collision_frames: int
    multiple_collision_frames: int
    sqe_test_errors: int
    deferred_transmissions: int
    late_collisions: int
    excessive_collisions: int
    internal_mac_transmit_errors: int
    carrier_sense_errors: int
    frame_too_longs: int
    internal_mac_receive_errors: int
    symbol_errors: int


class FlowSample(NamedTuple):
    """One flow sample (compact or expanded) with what its records said about the sampled packet."""

    expanded: bool
    sequence_number: int
    source_id_type: int
    source_id_index: int
    sampling_rate: int
    sample_pool: int
    drops: int
    input_format: int
    input_value: int
    input_ifindex: int | None  # input_value when input_format == 0, else None
    output_format: int
    output_value: int
    output_ifindex: int | None
    record_count: int
    # raw packet header (record 1)
    header_protocol: int | None
    frame_length: int | None
    stripped: int | None
    header_length: int | None
    # parsed sampled header (ingest.packet.PacketHeader fields), or records 2/3/4
    src_mac: str | None
    dst_mac: str | None
    vlan: int | None
    inner_vlan: int | None
    ethertype: int | None
    ip_version: int | None
    src_ip: str | None
    dst_ip: str | None
    ip_protocol: int | None
    src_port: int | None
    dst_port: int | None
    tos: int | None
    ip_length: int | None
    # extended switch (record 1001)
    src_vlan: int | None
    src_priority: int | None
    dst_vlan: int | None
    dst_priority: int | None


class CounterSample(NamedTuple):
    """One counter sample (compact or expanded) with its interface counters when present."""

    expanded: bool
    sequence_number: int
    source_id_type: int
    source_id_index: int
    record_count: int
    generic: GenericInterfaceCounters | None
    ethernet: EthernetCounters | None


class SflowDatagram:
    """A decoded datagram: header fields, samples, and counts of what was skipped."""

    __slots__ = (
        "agent_address",
        "counter_samples",
        "flow_samples",
        "sequence_number",
        "skipped_records",
        "sub_agent_id",
        "unknown_records",
        "unknown_samples",
        "uptime_ms",
        "version",
    )

    def __init__(
        self,
        version: int,
        agent_address: str,
        sub_agent_id: int,
        sequence_number: int,
        uptime_ms: int,
        flow_samples: list[FlowSample],
        counter_samples: list[CounterSample],
        unknown_samples: int = 0,
        unknown_records: int = 0,
        skipped_records: int = 0,
    ) -> None:
        self.version = version
        self.agent_address = agent_address
        self.sub_agent_id = sub_agent_id
        self.sequence_number = sequence_number
        self.uptime_ms = uptime_ms
        self.flow_samples = flow_samples
        self.counter_samples = counter_samples
        self.unknown_samples = unknown_samples  # samples of a format this decoder does not know
        self.unknown_records = unknown_records  # records outside the sFlow v5 specification
        self.skipped_records = skipped_records  # records of the specification this decoder skips

    def __repr__(self) -> str:
        return (
            f"SflowDatagram(agent={self.agent_address}, sub_agent_id={self.sub_agent_id}, "
            f"sequence_number={self.sequence_number}, flow_samples={len(self.flow_samples)}, "
            f"counter_samples={len(self.counter_samples)}, unknown_samples={self.unknown_samples}, "
            f"unknown_records={self.unknown_records}, skipped_records={self.skipped_records})"
        )


class SflowDecodeError(DecodeError):
    """The datagram is not valid sFlow v5. ``partial`` holds the samples decoded before the fault
    (``None`` when the datagram header itself was bad)."""

    def __init__(
        self, message: str, *, exporter: str = "", offset: int = -1, partial: SflowDatagram | None = None
    ) -> None:
        super().__init__(message, protocol=c.PROTOCOL_NAME, exporter=exporter, offset=offset)
        self.partial = partial


_ADVICE = "the datagram is truncated or corrupt; it cannot be decoded (check the exporter and the capture)"
_VALUE_ADVICE = (
    "the exporter sent a value this field cannot have, so the sample cannot be stored "
    "(check the exporter's sflow implementation)"
)


class _Malformed(Exception):
    """Internal: raised inside the sample loop, turned into SflowDecodeError with the partial result
    (``advice``: what the reader should do, after the message)."""

    def __init__(self, message: str, offset: int, advice: str = _ADVICE) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.advice = advice


_new_tuple = cast(Callable[[type[Any], tuple[Any, ...]], Any], tuple.__new__)


def decode_datagram(data: bytes) -> SflowDatagram:
    """Decode one sFlow v5 datagram (the UDP payload). Raises only ``SflowDecodeError``."""
    n = len(data)
    if n < 8:
        raise SflowDecodeError(
            f"datagram of {n} bytes is shorter than an sflow v5 header; {_ADVICE}", offset=0
        )
    version, address_type = _U32X2.unpack_from(data, 0)
    if version != c.SFLOW_VERSION_5:
        raise SflowDecodeError(
            f"datagram version field is {version}, not 5: not an sflow v5 datagram "
            "(check which protocol the exporter sends to this port)",
            offset=0,
        )
    if address_type == c.ADDRESS_TYPE_IP_V4:
        off = 12
        if n < off + 16:
            raise SflowDecodeError(f"datagram of {n} bytes ends inside its header; {_ADVICE}", offset=n)
        agent = _ntop(_AF_INET, data[8:12])
    elif address_type == c.ADDRESS_TYPE_IP_V6:
        off = 24
        if n < off + 16:
            raise SflowDecodeError(f"datagram of {n} bytes ends inside its header; {_ADVICE}", offset=n)
        agent = _ntop(_AF_INET6, data[8:24])
    else:
        raise SflowDecodeError(
            f"agent address type is {address_type} (expected 1 for ipv4 or 2 for ipv6); {_ADVICE}", offset=4
        )
    sub_agent_id, sequence_number, uptime_ms, n_samples = _U32X4.unpack_from(data, off)
    off += 16
    flows: list[FlowSample] = []
    counters: list[CounterSample] = []
    append_flow = flows.append
    unknown_samples = unknown_records = skipped_records = 0
    try:
        for index in range(n_samples):
            if off + 8 > n:
                raise _Malformed(f"datagram ends after {index} of the {n_samples} samples it announces", off)
            sample_format, sample_length = _U32X2.unpack_from(data, off)
            start = off + 8
            end = start + sample_length
            if end > n:
                raise _Malformed(
                    f"sample {index + 1} of {n_samples} is {sample_length} bytes long "
                    f"but only {n - start} bytes remain",
                    off + 4,
                )
            off = end
            if sample_format == c.SAMPLE_FLOW:
                if sample_length < 32:
                    raise _Malformed(f"flow sample {index + 1} is {sample_length} bytes, less than 32", start)
                seq, source_id, rate, pool, drops, inp, outp, n_records = _FLOW.unpack_from(data, start)
                expanded = False
                source_type = source_id >> 24
                source_index = source_id & 0xFFFFFF
                in_format = inp >> 30
                in_value = inp & _MASK30
                out_format = outp >> 30
                out_value = outp & _MASK30
                p = start + 32
            elif sample_format == c.SAMPLE_FLOW_EXPANDED:
                if sample_length < 44:
                    raise _Malformed(
                        f"expanded flow sample {index + 1} is {sample_length} bytes, less than 44", start
                    )
                (
                    seq,
                    source_type,
                    source_index,
                    rate,
                    pool,
                    drops,
                    in_format,
                    in_value,
                    out_format,
                    out_value,
                    n_records,
                ) = _FLOW_EXPANDED.unpack_from(data, start)
                expanded = True
                p = start + 44
            elif sample_format == c.SAMPLE_COUNTERS or sample_format == c.SAMPLE_COUNTERS_EXPANDED:
                counter_sample, unknown, skipped = _counter_sample(
                    data, start, end, sample_format == c.SAMPLE_COUNTERS_EXPANDED, index
                )
                counters.append(counter_sample)
                unknown_records += unknown
                skipped_records += skipped
                continue
            else:
                unknown_samples += 1
                continue

            # flow records
            header_protocol = frame_length = stripped = header_length = None
            src_vlan = src_priority = dst_vlan = dst_priority = None
            header: HeaderFields = EMPTY_FIELDS
            extra_at: list[tuple[int, int]] | None = None  # (format, offset) of records 2/3/4
            for r in range(n_records):
                # both common records (raw header, extended switch) start with 4 words after the
                # record header: read all six at once when they are there
                if p + 24 <= end:
                    record_format, record_length, w0, w1, w2, w3 = _U32X6.unpack_from(data, p)
                elif p + 8 <= end:
                    record_format, record_length = _U32X2.unpack_from(data, p)
                    w0 = w1 = w2 = w3 = 0  # unused: a record this short fails its size check below
                else:
                    raise _Malformed(
                        f"flow sample {index + 1} ends after {r} of the {n_records} records it announces", p
                    )
                rs = p + 8
                p = rs + record_length
                if p > end:
                    raise _Malformed(
                        f"flow record {r + 1} (format {record_format}) of sample {index + 1} is "
                        f"{record_length} bytes long but only {end - rs} bytes remain in the sample",
                        rs - 4,
                    )
                if record_format == c.FLOW_RAW_PACKET_HEADER:
                    if record_length < 16:
                        raise _Malformed(
                            f"raw packet header record is {record_length} bytes, not 16 or more", rs
                        )
                    header_protocol, frame_length, stripped, header_length = w0, w1, w2, w3
                    hs = rs + 16
                    he = hs + w3
                    if he > p:
                        raise _Malformed(
                            f"raw packet header claims {w3} header bytes "
                            f"but its record holds {record_length - 16}",
                            rs + 12,
                        )
                    if w1 > _MAX_FRAME_LENGTH:
                        raise _out_of_range(
                            index, r, record_format, "frame_length", w1, _MAX_FRAME_LENGTH, rs + 4
                        )
                    if w0 == c.HEADER_PROTOCOL_ETHERNET_ISO88023:
                        header = ethernet_fields(data, hs, he)
                    elif w0 in _IP_HEADER_PROTOCOLS:
                        header = (None, None, None, None, None, *ip_fields(data, hs, he))
                    else:
                        header = EMPTY_FIELDS
                elif record_format == c.FLOW_EXTENDED_SWITCH:
                    if record_length < 16:
                        raise _Malformed(
                            f"extended switch record is {record_length} bytes, not 16 or more", rs
                        )
                    src_vlan, src_priority, dst_vlan, dst_priority = w0, w1, w2, w3
                elif (
                    record_format == c.FLOW_ETHERNET_FRAME
                    or record_format == c.FLOW_IPV4
                    or record_format == c.FLOW_IPV6
                ):
                    need = _SAMPLED_SIZE[record_format]
                    if record_length < need:
                        raise _Malformed(
                            f"flow record format {record_format} is {record_length} bytes, "
                            f"not {need} or more",
                            rs,
                        )
                    _check_sampled_values(data, record_format, rs, index, r)
                    if extra_at is None:
                        extra_at = []
                    extra_at.append((record_format, rs))
                elif record_format in _KNOWN_FLOW_RECORDS:
                    skipped_records += 1
                else:
                    unknown_records += 1
            if extra_at is not None:
                header, frame_length = _merge_sampled_records(data, extra_at, header, frame_length)
            append_flow(
                _new_tuple(
                    FlowSample,
                    (
                        expanded,
                        seq,
                        source_type,
                        source_index,
                        rate,
                        pool,
                        drops,
                        in_format,
                        in_value,
                        in_value if in_format == 0 else None,
                        out_format,
                        out_value,
                        out_value if out_format == 0 else None,
                        n_records,
                        header_protocol,
                        frame_length,
                        stripped,
                        header_length,
                        *header,
                        src_vlan,
                        src_priority,
                        dst_vlan,
                        dst_priority,
                    ),
                )
            )
    except _Malformed as bad:
        partial = SflowDatagram(
            version,
            agent,
            sub_agent_id,
            sequence_number,
            uptime_ms,
            flows,
            counters,
            unknown_samples,
            unknown_records,
            skipped_records,
        )
        raise SflowDecodeError(
            f"datagram {sequence_number} of sub-agent {sub_agent_id}: {bad.message}; {bad.advice}",
            exporter=agent,
            offset=bad.offset,
            partial=partial,
        ) from None
    return SflowDatagram(
        version,
        agent,
        sub_agent_id,
        sequence_number,
        uptime_ms,
        flows,
        counters,
        unknown_samples,
        unknown_records,
        skipped_records,
    )


def _out_of_range(
    index: int, r: int, record_format: int, field: str, value: int, bound: int, offset: int
) -> _Malformed:
    """The error of a field whose value is past its bound (``constants.MAX_*``)."""
    return _Malformed(
        f"flow sample {index + 1}, record {r + 1} ({_RECORD_NAMES[record_format]}): "
        f"{field} {value} is outside 0..{bound}",
        offset,
        _VALUE_ADVICE,
    )


def _check_sampled_values(data: bytes, record_format: int, at: int, index: int, r: int) -> None:
    """Bounds of a sampled Ethernet / IPv4 / IPv6 record's 32-bit fields, in wire order: the length
    (it may become the frame length), then the EtherType, or the IP protocol and the two ports."""
    for field, at_offset, bound in _SAMPLED_CHECKS[record_format]:
        (value,) = _U32.unpack_from(data, at + at_offset)
        if value > bound:
            raise _out_of_range(index, r, record_format, field, value, bound, at + at_offset)


def _merge_sampled_records(
    data: bytes, records: list[tuple[int, int]], header: HeaderFields, frame_length: int | None
) -> tuple[HeaderFields, int | None]:
    """Fill what the raw header did not give from sampled Ethernet / IPv4 / IPv6 records."""
    fields: list[Any] = list(header)
    eth_length = ip_length = None
    for record_format, at in records:
        if record_format == c.FLOW_ETHERNET_FRAME:
            eth_length, src, dst, eth_type = _SAMPLED_ETHERNET.unpack_from(data, at)
            values: tuple[Any, ...] = (src.hex(":"), dst.hex(":"), None, None, eth_type)
            start = 0
        else:
            if record_format == c.FLOW_IPV4:
                length, proto, src, dst, sport, dport, _flags, tos = _SAMPLED_IPV4.unpack_from(data, at)
                version, family = 4, _AF_INET
            else:
                length, proto, src, dst, sport, dport, _flags, tos = _SAMPLED_IPV6.unpack_from(data, at)
                version, family = 6, _AF_INET6
            ip_length = length
            values = (version, _ntop(family, src), _ntop(family, dst), proto, sport, dport, tos, length)
            start = 5
        for i, value in enumerate(values):
            if fields[start + i] is None:
                fields[start + i] = value
    if frame_length is None:
        frame_length = eth_length if eth_length is not None else ip_length
    return cast(HeaderFields, tuple(fields)), frame_length


def _counter_sample(
    data: bytes, start: int, end: int, expanded: bool, index: int
) -> tuple[CounterSample, int, int]:
    """Decode one counters_sample / counters_sample_expanded; returns (sample, unknown, skipped)."""
    if expanded:
        if end - start < 16:
            raise _Malformed(
                f"expanded counter sample {index + 1} is {end - start} bytes, less than 16", start
            )
        seq, source_type, source_index, n_records = _COUNTERS_EXPANDED.unpack_from(data, start)
        p = start + 16
    else:
        if end - start < 12:
            raise _Malformed(f"counter sample {index + 1} is {end - start} bytes, less than 12", start)
        seq, source_id, n_records = _U32X3.unpack_from(data, start)
        source_type = source_id >> 24
        source_index = source_id & 0xFFFFFF
        p = start + 12
    generic = ethernet = None
    unknown = skipped = 0
    for r in range(n_records):
        if p + 8 > end:
            raise _Malformed(
                f"counter sample {index + 1} ends after {r} of the {n_records} records it announces", p
            )
        record_format, record_length = _U32X2.unpack_from(data, p)
        rs = p + 8
        p = rs + record_length
        if p > end:
            raise _Malformed(
                f"counter record {r + 1} (format {record_format}) of sample {index + 1} is "
                f"{record_length} bytes long but only {end - rs} bytes remain in the sample",
                rs - 4,
            )
        if record_format == c.COUNTERS_GENERIC_INTERFACE:
            if record_length < _GENERIC.size:
                raise _Malformed(
                    f"generic interface counters record is {record_length} bytes, less than {_GENERIC.size}",
                    rs,
                )
            generic = GenericInterfaceCounters._make(_GENERIC.unpack_from(data, rs))
        elif record_format == c.COUNTERS_ETHERNET_INTERFACE:
            if record_length < _ETHERNET.size:
                raise _Malformed(
                    f"ethernet counters record is {record_length} bytes, less than {_ETHERNET.size}",
                    rs,
                )
            ethernet = EthernetCounters._make(_ETHERNET.unpack_from(data, rs))
        elif record_format in _KNOWN_COUNTER_RECORDS:
            skipped += 1
        else:
            unknown += 1
    return (
        CounterSample(expanded, seq, source_type, source_index, n_records, generic, ethernet),
        unknown,
        skipped,
    )
