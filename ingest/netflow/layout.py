"""Compiled record layouts: one per template, turning a data set into FLOWS rows quickly.

A data template is compiled once into

* a ``struct.Struct`` that unpacks only the fields peerpool uses and skips the others as pad
  bytes (fixed-length templates), or a field walker for templates with variable-length fields;
* a converter, generated as Python source for exactly this template, that turns the unpacked
  tuples into FLOWS dicts.

Generating the converter (the technique ``dataclasses`` and ``namedtuple`` use) removes the
per-field dispatch from the hot path: decoding a record is one C-level unpack, one copy of a
per-set dict and one store per field the template carries. The generated source contains only
tuple indices, integer constants and FLOWS column names; nothing from the wire except integers
derived from template lengths ever reaches it.

Field rules (RFC 7011 section 6.2 "reduced-size encoding"; RFC 3954): an unsigned field may be
sent in fewer bytes than its natural size and is read as a big-endian unsigned of the given
length; an address or MAC field of the wrong length, or a used element sent with variable
length, is unusable and left out (counted by the decoder); fields of length 0 contribute nothing.

Value range: every row must fit the lake's columns (``peerpool.lake.FLOWS``: ``ip_version`` is an
int8, ``vlan`` an int32, counters int64, ...). A value that does not (an 8-byte counter past
2**63 - 1, an ipVersion of 200, bytes x sampling rate past 2**63 - 1, a millisecond time past the
year 2262) is left out of its row (None) and counted by the decoder as "value out of range"; the
rest of the record is kept. The check is generated only where the field's length allows such a
value, so the common templates pay nothing for it.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from ingest.netflow import elements as ie
from ingest.netflow.templates import Template, TemplateField
from peerpool.lake import FLOWS, TS

FLOW_COLUMNS: Final[tuple[str, ...]] = tuple(FLOWS.names)

_UINT: Final = "uint"
_IPV4: Final = "ipv4"
_IPV6: Final = "ipv6"
_MAC: Final = "mac"

# Elements the converters use, by kind. Everything else is skipped by its length.
USED_ELEMENTS: Final[dict[int, str]] = {
    **{
        e: _UINT
        for e in (
            ie.OCTET_DELTA_COUNT,
            ie.PACKET_DELTA_COUNT,
            ie.PROTOCOL_IDENTIFIER,
            ie.SOURCE_TRANSPORT_PORT,
            ie.INGRESS_INTERFACE,
            ie.DESTINATION_TRANSPORT_PORT,
            ie.EGRESS_INTERFACE,
            ie.FLOW_END_SYS_UP_TIME,
            ie.FLOW_START_SYS_UP_TIME,
            ie.POST_OCTET_DELTA_COUNT,
            ie.POST_PACKET_DELTA_COUNT,
            ie.SAMPLING_INTERVAL,
            ie.SAMPLER_ID,
            ie.SAMPLER_RANDOM_INTERVAL,
            ie.VLAN_ID,
            ie.IP_VERSION,
            ie.FLOW_START_SECONDS,
            ie.FLOW_END_SECONDS,
            ie.FLOW_START_MILLISECONDS,
            ie.FLOW_END_MILLISECONDS,
            ie.FLOW_START_MICROSECONDS,
            ie.FLOW_END_MICROSECONDS,
            ie.FLOW_START_NANOSECONDS,
            ie.FLOW_END_NANOSECONDS,
            ie.FLOW_START_DELTA_MICROSECONDS,
            ie.FLOW_END_DELTA_MICROSECONDS,
            ie.SYSTEM_INIT_TIME_MILLISECONDS,
            ie.DOT1Q_VLAN_ID,
            ie.INGRESS_PHYSICAL_INTERFACE,
            ie.EGRESS_PHYSICAL_INTERFACE,
            ie.ETHERNET_TYPE,
            ie.SELECTOR_ID,
            ie.SELECTOR_ALGORITHM,
            ie.SAMPLING_PACKET_INTERVAL,
            ie.SAMPLING_PACKET_SPACE,
            ie.SAMPLING_SIZE,
            ie.SAMPLING_POPULATION,
        )
    },
    ie.SOURCE_IPV4_ADDRESS: _IPV4,
    ie.DESTINATION_IPV4_ADDRESS: _IPV4,
    ie.SOURCE_IPV6_ADDRESS: _IPV6,
    ie.DESTINATION_IPV6_ADDRESS: _IPV6,
    ie.SOURCE_MAC_ADDRESS: _MAC,
    ie.POST_DESTINATION_MAC_ADDRESS: _MAC,
    ie.DESTINATION_MAC_ADDRESS: _MAC,
    ie.POST_SOURCE_MAC_ADDRESS: _MAC,
}

_FIXED_LENGTH: Final = {_IPV4: 4, _IPV6: 16, _MAC: 6}
_UINT_CODES: Final = {1: "B", 2: "H", 4: "I", 8: "Q"}
_MAX_UINT_LENGTH: Final = 8

# Candidates per column, best first (IANA semantics: the "post" elements describe the packet as
# it leaves the device; the pre-forwarding ones are preferred, the post ones used when alone,
# as in the Ubiquiti and pmacct nfprobe egress templates).
SRC_MAC = (ie.SOURCE_MAC_ADDRESS, ie.POST_SOURCE_MAC_ADDRESS)
DST_MAC = (ie.DESTINATION_MAC_ADDRESS, ie.POST_DESTINATION_MAC_ADDRESS)
VLAN = (ie.DOT1Q_VLAN_ID, ie.VLAN_ID)
INPUT = (ie.INGRESS_INTERFACE, ie.INGRESS_PHYSICAL_INTERFACE)
OUTPUT = (ie.EGRESS_INTERFACE, ie.EGRESS_PHYSICAL_INTERFACE)
# Only delta counters are billed from: a total count (85/86) is a running total since the flow
# started and would count a long flow again at every export.
BYTES = (ie.OCTET_DELTA_COUNT, ie.POST_OCTET_DELTA_COUNT)
PACKETS = (ie.PACKET_DELTA_COUNT, ie.POST_PACKET_DELTA_COUNT)

_MS_NS: Final = 1_000_000
_S_NS: Final = 1_000_000_000
INT64_MAX: Final = (1 << 63) - 1
INT64_MIN: Final = -(1 << 63)


def _lake_max(name: str) -> int:
    """The largest value the lake's integer column ``name`` holds (timestamps: int64 ns)."""
    field = FLOWS.field(name)
    if pa.types.is_integer(field.type):
        return int((1 << (field.type.bit_width - 1)) - 1)
    return INT64_MAX


# the largest value each integer column of the lake can hold, by column
LAKE_MAX: Final[dict[str, int]] = {
    name: _lake_max(name)
    for name in FLOW_COLUMNS
    if pa.types.is_integer(FLOWS.field(name).type) or FLOWS.field(name).type == TS
}


def uint_max(length: int) -> int:
    """The largest unsigned value of ``length`` bytes."""
    return (1 << (8 * length)) - 1


def ntp_to_ns(value: int) -> int:
    """IPFIX dateTimeMicro/Nanoseconds (NTP: 32-bit seconds since 1900, 32-bit fraction) to Unix ns."""
    seconds = value >> 32
    fraction = value & 0xFFFFFFFF
    return (seconds - ie.NTP_UNIX_OFFSET_S) * _S_NS + ((fraction * _S_NS) >> 32)


def _uint(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _ratio(numerator: int, denominator: int) -> int:
    if denominator <= 0 or numerator <= 0:
        return 0
    return (2 * numerator + denominator) // (2 * denominator)


_GLOBALS: Final[dict[str, Any]] = {
    "__builtins__": {},
    "_len": len,
    "_ntoa": socket.inet_ntoa,
    "_ntop": socket.inet_ntop,
    "_AF6": socket.AF_INET6,
    "_fb": _uint,
    "_ntp": ntp_to_ns,
    "_ratio": _ratio,
}

# Signature of a generated converter: unpacked tuples, the output list and the per-set context.
Converter = Callable[..., int]
CONVERTER_ARGS: Final = (
    "rows",
    "out",  # the list the rows are appended to; the converter returns how many it appended
    "received_at",
    "exporter",
    "domain",
    "seq",
    "ref_ms",  # export time, ms since the epoch
    "ref_up",  # exporter uptime (ms, mod 2**32) at ref_ms; None when unknown (IPFIX without init time)
    "set_rate",
    "resolver",  # RateResolver: fallback() and lookup(selector, sampler) for per-record rates,
    # out_of_range() for a value the lake cannot hold
)


@dataclass(frozen=True, slots=True)
class Slot:
    """A used field: its position in the template and in the unpacked tuple."""

    element: int
    kind: str
    length: int
    index: int  # position in the unpacked tuple


@dataclass(frozen=True, slots=True)
class RecordLayout:
    """How to read the records of one data template."""

    template: Template
    protocol: str  # "netflow9" / "ipfix"
    slots: dict[int, Slot]
    positions: tuple[Slot | None, ...]  # per template field: the slot it fills, if any
    unusable: tuple[TemplateField, ...]  # used elements with a length peerpool cannot read
    fixed: struct.Struct | None  # None when the template has variable-length fields
    record_length: int  # fixed length, or the minimum length of a variable-length record
    rate_mode: str  # "set": one rate per set; "record": computed per record
    converter: Converter
    source: str  # the generated converter's source, for debugging and tests

    def rows(self, body: bytes | memoryview) -> tuple[Iterator[tuple[Any, ...]], bool]:
        """Unpacked tuples for the records of a data set body; the flag says a record overran it."""
        if self.fixed is not None:
            size = self.record_length
            if size == 0:
                return iter(()), False
            count = len(body) // size
            return self.fixed.iter_unpack(body[: count * size]), False
        tuples: list[tuple[Any, ...]] = []
        overran = _walk(
            self.template.fields, self.positions, len(self.slots), self.record_length, body, tuples
        )
        return iter(tuples), overran


def _walk(
    fields: tuple[TemplateField, ...],
    slot_of: tuple[Slot | None, ...],
    width: int,
    min_length: int,
    body: bytes | memoryview,
    out: list[tuple[Any, ...]],
) -> bool:
    """Read variable-length records into tuples shaped like the fixed-length unpacker's.

    Returns True when a record ran past the end of the set (the rest of the set is dropped).
    Trailing bytes shorter than the minimum record length are padding (RFC 7011 section 3.3.1).
    """
    end = len(body)
    pos = 0
    if min_length <= 0:
        return False
    while end - pos >= min_length:
        values: list[Any] = [None] * width
        for i, f in enumerate(fields):
            length = f.length
            if length == ie.VARIABLE_LENGTH:
                if pos >= end:
                    return True
                length = body[pos]
                pos += 1
                if length == 255:
                    if pos + 2 > end:
                        return True
                    length = (body[pos] << 8) | body[pos + 1]
                    pos += 2
            if pos + length > end:
                return True
            slot = slot_of[i]
            if slot is not None:
                raw = bytes(body[pos : pos + length])
                if slot.kind == _UINT and length in _UINT_CODES:
                    values[slot.index] = int.from_bytes(raw, "big")
                else:
                    values[slot.index] = raw
            pos += length
        out.append(tuple(values))
    return False


def _slot_positions(fields: tuple[TemplateField, ...], slots: dict[int, Slot]) -> tuple[Slot | None, ...]:
    """For each template position, the slot it fills (the first occurrence of a used element)."""
    taken: set[int] = set()
    result: list[Slot | None] = []
    for f in fields:
        slot = slots.get(f.element) if f.enterprise == 0 else None
        if slot is not None and slot.element not in taken and f.length == slot.length:
            taken.add(slot.element)
            result.append(slot)
        else:
            result.append(None)
    return tuple(result)


def _choose_slots(template: Template) -> tuple[dict[int, Slot], tuple[TemplateField, ...]]:
    slots: dict[int, Slot] = {}
    unusable: list[TemplateField] = []
    fields = template.fields[template.scope_count :] if template.version == 9 else template.fields
    for f in fields:
        if f.enterprise != 0:
            continue
        kind = USED_ELEMENTS.get(f.element)
        if kind is None or f.element in slots:
            continue
        if f.length == ie.VARIABLE_LENGTH:
            unusable.append(f)
            continue
        ok = 1 <= f.length <= _MAX_UINT_LENGTH if kind == _UINT else f.length == _FIXED_LENGTH[kind]
        if not ok:
            if f.length != 0:
                unusable.append(f)
            continue
        slots[f.element] = Slot(f.element, kind, f.length, len(slots))
    return slots, tuple(unusable)


def _struct_format(template: Template, slots: dict[int, Slot]) -> str:
    slot_at = _slot_positions(template.fields, slots)
    parts = ["!"]
    for f, slot in zip(template.fields, slot_at, strict=True):
        if slot is None:
            if f.length:
                parts.append(f"{f.length}x")
        elif slot.kind == _UINT and f.length in _UINT_CODES:
            parts.append(_UINT_CODES[f.length])
        else:
            parts.append(f"{f.length}s")
    return "".join(parts)


class _Source:
    """Builds the expression for each column from the slots of one template."""

    def __init__(self, slots: dict[int, Slot], version: int) -> None:
        self.slots = slots
        self.version = version

    def has(self, element: int) -> bool:
        return element in self.slots

    def raw(self, element: int) -> str:
        return f"t[{self.slots[element].index}]"

    def uint(self, element: int) -> str:
        slot = self.slots[element]
        if slot.length in _UINT_CODES:
            return f"t[{slot.index}]"
        return f"_fb(t[{slot.index}])"

    def first_uint(self, candidates: tuple[int, ...]) -> str | None:
        for element in candidates:
            if self.has(element):
                return self.uint(element)
        return None

    def column_uint(self, candidates: tuple[int, ...], column: str) -> str | None:
        """``first_uint``, left out (``oor()``) when the value does not fit the lake column."""
        for element in candidates:
            if self.has(element):
                return bounded(self.uint(element), 0, uint_max(self.slots[element].length), column)
        return None

    def may_exceed(self, element: int, column: str) -> bool:
        """True when the element's field can carry a value the lake column cannot hold."""
        return element in self.slots and uint_max(self.slots[element].length) > LAKE_MAX[column]

    def mac(self, candidates: tuple[int, ...]) -> str:
        for element in candidates:
            if self.has(element):
                return f"{self.raw(element)}.hex(':')"
        return "None"

    def is_v6(self) -> str | None:
        """Expression true when the record is IPv6; None when fixed by the template."""
        v4 = self.has(ie.SOURCE_IPV4_ADDRESS) or self.has(ie.DESTINATION_IPV4_ADDRESS)
        v6 = self.has(ie.SOURCE_IPV6_ADDRESS) or self.has(ie.DESTINATION_IPV6_ADDRESS)
        if not (v4 and v6):
            return None
        if self.has(ie.IP_VERSION):
            return f"({self.uint(ie.IP_VERSION)} == 6)"
        v4_element = (
            ie.SOURCE_IPV4_ADDRESS if self.has(ie.SOURCE_IPV4_ADDRESS) else ie.DESTINATION_IPV4_ADDRESS
        )
        return f"({self.raw(v4_element)} == b'\\x00\\x00\\x00\\x00')"

    def address(self, v4_element: int, v6_element: int) -> str:
        v4 = f"_ntoa({self.raw(v4_element)})" if self.has(v4_element) else "None"
        v6 = f"_ntop(_AF6, {self.raw(v6_element)})" if self.has(v6_element) else "None"
        choice = self.is_v6()
        if choice is None:
            return v6 if v4 == "None" else v4
        return f"({v6} if {choice} else {v4})"

    def ip_version(self) -> str:
        if self.has(ie.IP_VERSION):
            return self.column_uint((ie.IP_VERSION,), "ip_version") or "None"
        choice = self.is_v6()
        if choice is not None:
            return f"(6 if {choice} else 4)"
        if self.has(ie.SOURCE_IPV4_ADDRESS) or self.has(ie.DESTINATION_IPV4_ADDRESS):
            return "4"
        if self.has(ie.SOURCE_IPV6_ADDRESS) or self.has(ie.DESTINATION_IPV6_ADDRESS):
            return "6"
        return "None"

    def time(self, ntp_ns: int, ntp_us: int, ms: int, s: int, uptime: int, delta_us: int) -> str:
        """Nanoseconds since the epoch. NTP and uptime based times always fit an int64; the
        others are checked when the field is long enough to leave it."""
        if self.has(ntp_ns):
            return f"_ntp({self.uint(ntp_ns)})"
        if self.has(ntp_us):
            return f"_ntp({self.uint(ntp_us)})"
        if self.has(ms):
            top = uint_max(self.slots[ms].length) * _MS_NS
            return bounded(f"{self.uint(ms)} * {_MS_NS}", 0, top, "flow_start")
        if self.has(s):
            top = uint_max(self.slots[s].length) * _S_NS
            return bounded(f"{self.uint(s)} * {_S_NS}", 0, top, "flow_start")
        if self.has(uptime):
            # *SysUpTime fields count ms of exporter uptime. The set supplies a reference pair
            # (ref_ms wall clock, ref_up uptime at that moment): for NetFlow v9 the header's unix
            # secs and sysUpTime (RFC 3954 section 5.1), for IPFIX the export time and
            # export time - systemInitTimeMilliseconds (from options data, or from the record).
            # The difference is taken as a signed 32-bit value, so a wrap of the 32-bit uptime
            # between flow start and export does not throw the time 49 days off.
            # ms = ref_ms - signed32(ref_up - v) = ref_ms + 2**31 - ((ref_up + 2**31 - v) mod 2**32);
            # the prologue computes _up = ref_up + 2**31 and _base = (ref_ms + 2**31) ns once per set.
            v = self.uint(uptime)
            if self.version == 9:
                return f"_base - ((_up - {v}) & 0xFFFFFFFF) * {_MS_NS}"
            if self.has(ie.SYSTEM_INIT_TIME_MILLISECONDS):
                init = self.uint(ie.SYSTEM_INIT_TIME_MILLISECONDS)
                return (
                    f"(_base - ((ref_ms - {init} + 0x80000000 - {v}) & 0xFFFFFFFF) * {_MS_NS} if {init} "
                    f"else None if _up is None else _base - ((_up - {v}) & 0xFFFFFFFF) * {_MS_NS})"
                )
            return f"(None if _up is None else _base - ((_up - {v}) & 0xFFFFFFFF) * {_MS_NS})"
        if self.has(delta_us):
            low = -uint_max(self.slots[delta_us].length) * 1000
            return bounded(f"ref_ms * {_MS_NS} - {self.uint(delta_us)} * 1000", low, 0, "flow_start")
        return "None"

    def in_record_rate(self) -> str | None:
        """Expression of a rate carried by the flow record itself (0 when the fields say nothing)."""
        if self.has(ie.SAMPLING_POPULATION) and self.has(ie.SAMPLING_SIZE):
            return f"_ratio({self.uint(ie.SAMPLING_POPULATION)}, {self.uint(ie.SAMPLING_SIZE)})"
        if self.has(ie.SAMPLING_PACKET_INTERVAL):
            interval = self.uint(ie.SAMPLING_PACKET_INTERVAL)
            if self.has(ie.SAMPLING_PACKET_SPACE):
                return f"_ratio({interval} + {self.uint(ie.SAMPLING_PACKET_SPACE)}, {interval})"
            return interval
        if self.has(ie.SAMPLER_RANDOM_INTERVAL):
            return self.uint(ie.SAMPLER_RANDOM_INTERVAL)
        if self.has(ie.SAMPLING_INTERVAL):
            return self.uint(ie.SAMPLING_INTERVAL)
        return None

    def sampler_lookup(self) -> str | None:
        selector = self.uint(ie.SELECTOR_ID) if self.has(ie.SELECTOR_ID) else None
        sampler = self.uint(ie.SAMPLER_ID) if self.has(ie.SAMPLER_ID) else None
        if selector is None and sampler is None:
            return None
        return f"resolver.lookup({selector}, {sampler})"


def bounded(expr: str, low: int, high: int, column: str) -> str:
    """``expr``, or ``oor()`` (None, counted) when its value can leave the lake column's range.

    ``low`` and ``high`` bound what ``expr`` can evaluate to; only the sides that can be crossed
    are tested, so a field that always fits costs nothing.
    """
    top = LAKE_MAX[column]
    below, above = low < -top - 1, high > top
    if not (below or above):
        return expr
    test = (
        f"{-top - 1 if below else ''}{' <= ' if below else ''}(_v := {expr}){f' <= {top}' if above else ''}"
    )
    return f"(_v if {test} else oor())"


def _is_literal(expr: str) -> bool:
    """True for expressions that are constants of the template (None, numbers, quoted strings)."""
    return expr == "None" or expr.isdigit() or expr.startswith("'")


def _converter_source(src: _Source, protocol: str) -> tuple[str, str]:
    """Source of the converter for one template, and its rate mode ("set" or "record").

    Columns that are the same for every record of a set (arrival time, exporter, sequence, the
    set's sampling rate, absent fields) go into one dict built per set; each record then costs a
    ``dict.copy()`` plus one store per field the template carries (measured about 5x faster than
    a 33-entry dict display per record on CPython 3.11).
    """
    in_record = src.in_record_rate()
    lookup = src.sampler_lookup()
    statements: list[str] = []
    rate_nullable = False  # an in-record rate past the lake's int64 is left out
    if in_record is None and lookup is None:
        rate_mode = "set"
        rate = "set_rate"  # from options data or the override: both within the lake's range
    else:
        rate_mode = "record"
        fallback = lookup if lookup is not None else "resolver.fallback()"
        if in_record is not None:
            statements.append(f"_r = ({in_record}) or {fallback}")
            statements.append(f"if _r > {LAKE_MAX['sampling_rate']}: _r = oor()")
            rate_nullable = True
        else:
            statements.append(f"_r = {fallback}")
        rate = "_r"

    columns: dict[str, str] = {name: "None" for name in FLOW_COLUMNS}
    columns.update(
        {
            "received_at": "received_at",
            "flow_protocol": repr(protocol),
            "exporter_address": "exporter",
            "observation_domain": "domain",
            "sequence_number": "seq",
            "sampling_rate": rate,
            "input_ifindex": src.column_uint(INPUT, "input_ifindex") or "None",
            "output_ifindex": src.column_uint(OUTPUT, "output_ifindex") or "None",
            "src_mac": src.mac(SRC_MAC),
            "dst_mac": src.mac(DST_MAC),
            "vlan": src.column_uint(VLAN, "vlan") or "None",
            "ethertype": src.column_uint((ie.ETHERNET_TYPE,), "ethertype") or "None",
            "ip_version": src.ip_version(),
            "src_ip": src.address(ie.SOURCE_IPV4_ADDRESS, ie.SOURCE_IPV6_ADDRESS),
            "dst_ip": src.address(ie.DESTINATION_IPV4_ADDRESS, ie.DESTINATION_IPV6_ADDRESS),
            "ip_protocol": src.column_uint((ie.PROTOCOL_IDENTIFIER,), "ip_protocol") or "None",
            "src_port": src.column_uint((ie.SOURCE_TRANSPORT_PORT,), "src_port") or "None",
            "dst_port": src.column_uint((ie.DESTINATION_TRANSPORT_PORT,), "dst_port") or "None",
            "flow_start": src.time(
                ie.FLOW_START_NANOSECONDS,
                ie.FLOW_START_MICROSECONDS,
                ie.FLOW_START_MILLISECONDS,
                ie.FLOW_START_SECONDS,
                ie.FLOW_START_SYS_UP_TIME,
                ie.FLOW_START_DELTA_MICROSECONDS,
            ),
            "flow_end": src.time(
                ie.FLOW_END_NANOSECONDS,
                ie.FLOW_END_MICROSECONDS,
                ie.FLOW_END_MILLISECONDS,
                ie.FLOW_END_SECONDS,
                ie.FLOW_END_SYS_UP_TIME,
                ie.FLOW_END_DELTA_MICROSECONDS,
            ),
        }
    )
    per_record = {name for name, expr in columns.items() if "t[" in expr or expr == "_r"}
    for column, name, candidates in (("bytes", "_b", BYTES), ("packets", "_p", PACKETS)):
        expr = src.column_uint(candidates, column)
        if expr is None:
            continue
        statements.append(f"{name} = {expr}")
        columns[column] = name
        # bytes x rate can pass the int64 however short the field: always checked
        estimated = bounded(f"{name} * {rate}", 0, INT64_MAX + 1, f"estimated_{column}")
        element = next(e for e in candidates if src.has(e))
        unknown = [f"{name} is None"] if src.may_exceed(element, column) else []
        if rate_nullable:
            unknown.append("_r is None")
        if unknown:
            estimated = f"(None if {' or '.join(unknown)} else {estimated})"
        columns[f"estimated_{column}"] = estimated
        per_record.update((column, f"estimated_{column}"))

    # Per template: a constant dict (protocol, absent fields); per set: a copy with the set's
    # values stored; per record: a copy of that with the record's values stored.
    per_set = [n for n in FLOW_COLUMNS if n not in per_record and not _is_literal(columns[n])]
    constant = ", ".join(
        f"{name!r}: {'None' if name in per_record or name in per_set else columns[name]}"
        for name in FLOW_COLUMNS
    )
    lines = [
        f"_CONSTANT = {{{constant}}}",
        f"def convert({', '.join(CONVERTER_ARGS)}):",
        "    base = _CONSTANT.copy()",
        *(f"    base[{name!r}] = {columns[name]}" for name in per_set),
        "    if ref_up is None:",
        "        _up = None",
        "    else:",
        "        _up = ref_up + 0x80000000",
        f"    _base = (ref_ms + 0x80000000) * {_MS_NS}",
        "    oor = resolver.out_of_range",
        "    copy = base.copy",
        "    start = _len(out)",
        "    append = out.append",
        "    for t in rows:",
        *(f"        {statement}" for statement in statements),
        "        d = copy()",
        *(f"        d[{name!r}] = {columns[name]}" for name in FLOW_COLUMNS if name in per_record),
        "        append(d)",
        "    return _len(out) - start",
    ]
    return "\n".join(lines) + "\n", rate_mode


def compile_layout(template: Template) -> RecordLayout:
    """Compile a data template into its record layout (see the module docstring)."""
    slots, unusable = _choose_slots(template)
    protocol = "netflow9" if template.version == 9 else "ipfix"
    src = _Source(slots, template.version)
    source, rate_mode = _converter_source(src, protocol)
    namespace: dict[str, Any] = dict(_GLOBALS)
    exec(compile(source, f"<netflow template {template.template_id}>", "exec"), namespace)
    converter: Converter = namespace["convert"]
    if template.has_variable_length:
        fixed = None
        record_length = sum(1 if f.length == ie.VARIABLE_LENGTH else f.length for f in template.fields)
    else:
        fixed = struct.Struct(_struct_format(template, slots))
        record_length = fixed.size
    return RecordLayout(
        template=template,
        protocol=protocol,
        slots=slots,
        positions=_slot_positions(template.fields, slots),
        unusable=unusable,
        fixed=fixed,
        record_length=record_length,
        rate_mode=rate_mode,
        converter=converter,
        source=source,
    )
