"""``peerpool asn build``: MRT RIB dumps (RFC 6396) to a pyasn IPASN database.

Why our own pass over the MRT records: pyasn's converter stops on the first prefix whose
only origin is a private or reserved AS (``assert origin``) or whose AS path is empty
(``IndexError``), even with ``--skip-on-error``, and it cannot say how much of a truncated
dump it read. Here every prefix that has no usable origin is skipped *and counted by reason*
(with examples), every other prefix is kept, and a truncated dump is detected and reported
with the number of complete records before the cut.

Origin rule (the same as pyasn's, so databases agree on every prefix both can convert):
take the first RIB entry of a prefix that has an AS path (pyasn: only the first entry); walk
the path segments from the last one back; in an AS_SEQUENCE the origin is the last AS that is
not private or reserved; in an AS_SET, the non-reserved members (one is written, as pyasn
does); AS_CONFED segments are skipped. A 2-byte TABLE_DUMP path that carries AS4_PATH is
merged per RFC 6793 first, so 4-byte origins are not reported as AS_TRANS (23456). Default
routes (0.0.0.0/0, ::/0) are dropped. The first dump given wins when a prefix repeats.

Output: the IPASN text format pyasn loads (``; comment`` lines, then ``prefix<TAB>asn``).
"""

from __future__ import annotations

import bz2
import contextlib
import os
import socket
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import click

from peerpool.errors import InputError

# RFC 6396 record types and subtypes
MRT_TABLE_DUMP = 12
MRT_TABLE_DUMP_V2 = 13
TD1_AFI_IPV4 = 1
TD1_AFI_IPV6 = 2
TD2_PEER_INDEX_TABLE = 1
TD2_RIB_IPV4_UNICAST = 2
TD2_RIB_IPV4_MULTICAST = 3
TD2_RIB_IPV6_UNICAST = 4
TD2_RIB_IPV6_MULTICAST = 5
TD2_RIB_GENERIC = 6
# RFC 8050 (ADD-PATH): entries carry a 4-byte path identifier
TD2_RIB_IPV4_UNICAST_ADDPATH = 8
TD2_RIB_IPV4_MULTICAST_ADDPATH = 9
TD2_RIB_IPV6_UNICAST_ADDPATH = 10
TD2_RIB_IPV6_MULTICAST_ADDPATH = 11

# RFC 4271 / RFC 6793 path attributes and segment types
ATTR_AS_PATH = 2
ATTR_AS4_PATH = 17
AS_SET = 1
AS_SEQUENCE = 2
AS_CONFED_SEQUENCE = 3
AS_CONFED_SET = 4
AS_TRANS = 23456

_MRT_HEADER = struct.Struct(">IHHI")
_CHUNK = 1 << 20

# skip reasons (stable words, used in the report and the tests)
EMPTY_AS_PATH = "empty as path"
NO_AS_PATH = "no as path attribute"
PRIVATE_ONLY_ORIGIN = "only private or reserved origin"
MALFORMED_RECORD = "malformed record"
MULTICAST = "multicast rib (not used for origin lookups)"
UNSUPPORTED = "unsupported mrt type or subtype"
DEFAULT_ROUTE = "default route"


def is_reserved_asn(asn: int) -> bool:
    """AS numbers that cannot be a public origin (IANA special-purpose AS numbers registry).

    0 (RFC 7607), 64496-64511 and 65536-65551 (documentation, RFC 5398), 64512-65534 and
    4200000000-4294967294 (private use, RFC 6996), 65535 and 4294967295 (RFC 7300),
    65552-131071 (reserved). Also everything from 1,000,000 up to the private range, which no
    registry has allocated (pyasn makes the same choice, so both give the same origins).
    """
    return asn == 0 or 64496 <= asn <= 131071 or asn >= 1_000_000


Segment = tuple[int, tuple[int, ...]]


def parse_as_path(data: bytes, asn_size: int) -> list[Segment]:
    """AS_PATH / AS4_PATH attribute value -> [(segment type, ASNs)]; raises ValueError if malformed."""
    segments: list[Segment] = []
    pos, end = 0, len(data)
    fmt = ">%dI" if asn_size == 4 else ">%dH"
    while pos < end:
        if pos + 2 > end:
            raise ValueError("as path segment header runs past the attribute")
        seg_type, count = data[pos], data[pos + 1]
        pos += 2
        stop = pos + count * asn_size
        if stop > end:
            raise ValueError("as path segment runs past the attribute")
        if seg_type not in (AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET):
            raise ValueError(f"unknown as path segment type {seg_type}")
        segments.append((seg_type, struct.unpack_from(fmt % count, data, pos)))
        pos = stop
    return segments


def _path_length(segments: Sequence[Segment]) -> int:
    """AS count as RFC 6793 section 4.2.3 counts it: a set counts 1, confederation segments 0."""
    n = 0
    for seg_type, asns in segments:
        if seg_type == AS_SEQUENCE:
            n += len(asns)
        elif seg_type == AS_SET:
            n += 1
    return n


def merge_as4_path(as_path: Sequence[Segment], as4_path: Sequence[Segment]) -> list[Segment]:
    """Reconstruct the 4-byte path from a 2-byte AS_PATH and AS4_PATH (RFC 6793 section 4.2.3)."""
    keep = _path_length(as_path) - _path_length(as4_path)
    if keep < 0:
        return list(as_path)  # AS4_PATH longer than AS_PATH: ignore it
    leading: list[Segment] = []
    for seg_type, asns in as_path:
        if keep <= 0:
            break
        if seg_type == AS_SEQUENCE:
            take = asns[:keep]
            leading.append((seg_type, take))
            keep -= len(take)
        elif seg_type == AS_SET:
            leading.append((seg_type, asns))
            keep -= 1
        else:
            leading.append((seg_type, asns))
    return leading + list(as4_path)


def origin_of(segments: list[Segment]) -> int | frozenset[int] | None:
    """The origin AS (or AS_SET members) of a path; None if it has no public origin."""
    for seg_type, asns in reversed(segments):
        if seg_type == AS_SEQUENCE:
            for asn in reversed(asns):
                if not is_reserved_asn(asn):
                    return asn
        elif seg_type == AS_SET:
            members = frozenset(a for a in asns if not is_reserved_asn(a))
            if members:
                return members
    return None


def choose_from_set(members: frozenset[int]) -> int:
    """One AS of an AS_SET origin: the one pyasn writes (first in Python's set order), for agreement."""
    return next(iter(set(members)))


def _attributes(data: bytes) -> dict[int, bytes]:
    """BGP path attributes (RFC 4271 section 4.3): type -> value; raises ValueError if malformed."""
    attrs: dict[int, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        if pos + 3 > end:
            raise ValueError("attribute header runs past the entry")
        flags, attr_type = data[pos], data[pos + 1]
        if flags & 0x10:
            if pos + 4 > end:
                raise ValueError("attribute header runs past the entry")
            length = (data[pos + 2] << 8) | data[pos + 3]
            pos += 4
        else:
            length = data[pos + 2]
            pos += 3
        if pos + length > end:
            raise ValueError(f"attribute {attr_type} runs past the entry")
        attrs.setdefault(attr_type, data[pos : pos + length])
        pos += length
    return attrs


def entry_origin(attr_data: bytes, asn_size: int) -> tuple[int | frozenset[int] | None, str]:
    """Origin from one RIB entry's attributes, or (None, reason)."""
    attrs = _attributes(attr_data)
    raw = attrs.get(ATTR_AS_PATH)
    if raw is None:
        return None, NO_AS_PATH
    segments = parse_as_path(raw, asn_size)
    if asn_size == 2 and ATTR_AS4_PATH in attrs:
        with contextlib.suppress(ValueError):  # RFC 7606: a malformed AS4_PATH is ignored
            segments = merge_as4_path(segments, parse_as_path(attrs[ATTR_AS4_PATH], 4))
    if not segments or all(not asns for _t, asns in segments):
        return None, EMPTY_AS_PATH
    origin = origin_of(segments)
    if origin is None:
        return None, PRIVATE_ONLY_ORIGIN
    return origin, ""


def _prefix_text(family: int, raw: bytes, length: int) -> str:
    size = 4 if family == socket.AF_INET else 16
    address = socket.inet_ntop(family, raw.ljust(size, bytes(1)))
    return f"{address}/{length}"


# --- reading dumps --------------------------------------------------------------------------


@dataclass
class DumpReport:
    """What converting one dump found."""

    path: Path
    records: int = 0
    rib_entries_examined: int = 0
    prefixes_new: int = 0
    prefixes_repeated: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    truncated: str = ""  # why the dump is incomplete, empty when it is whole
    bytes_read: int = 0

    def skip(self, reason: str, example: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 5:
            shown.append(example)


def _raw_chunks(path: Path) -> Iterator[bytes]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed by the with block below)
    except FileNotFoundError:
        raise InputError(f"{path}: no such mrt dump; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory; give mrt dump files") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read mrt dump ({exc.strerror})") from None
    with fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


class _Decompressed:
    """Decompressed bytes of a bz2, gzip (one or more streams) or plain file, chunk by chunk.

    Uses the decompressor objects directly: ``BZ2File``/``GzipFile`` throw away what they
    decompressed in the read call that hits a truncated end, and a truncated dump's last
    complete records are exactly what we want to keep. ``ended_early`` says why the input
    stopped before the end of its last stream ("" if it did not).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ended_early = ""

    def __iter__(self) -> Iterator[bytes]:
        chunks = _raw_chunks(self.path)
        first = next(chunks, b"")
        if first.startswith(b"BZh"):
            kind = "bz2"
        elif first.startswith(b"\x1f\x8b"):
            kind = "gzip"
        else:
            yield first
            yield from chunks
            return
        decompressor = _new_decompressor(kind)
        pending = first
        in_stream = True
        while True:
            try:
                out = decompressor.decompress(pending)
            except (OSError, ValueError, zlib.error) as exc:
                self.ended_early = f"the {kind} data is damaged ({exc})"
                return
            if out:
                yield out
            if decompressor.eof:
                rest = decompressor.unused_data
                in_stream = False
                if rest:
                    decompressor = _new_decompressor(kind)
                    pending, in_stream = rest, True
                    continue
            pending = next(chunks, b"")
            if not pending:
                break
            if not in_stream:
                decompressor = _new_decompressor(kind)
                in_stream = True
        if in_stream:
            self.ended_early = f"the {kind} stream ends before its end-of-stream marker"


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


def _new_decompressor(kind: str) -> _Decompressor:
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    return zlib.decompressobj(wbits=31)


def iter_mrt_records(path: Path, report: DumpReport) -> Iterator[tuple[int, int, bytes]]:
    """(type, subtype, body) of every whole MRT record; sets ``report.truncated`` if the dump is cut."""
    source = _Decompressed(path)
    buf = bytearray()
    pos = 0
    for chunk in source:
        report.bytes_read += len(chunk)
        del buf[:pos]
        pos = 0
        buf += chunk
        while pos + 12 <= len(buf):
            _ts, mrt_type, subtype, length = _MRT_HEADER.unpack_from(buf, pos)
            if pos + 12 + length > len(buf):
                break
            body = bytes(buf[pos + 12 : pos + 12 + length])
            pos += 12 + length
            report.records += 1
            yield mrt_type, subtype, body
    ended_early = source.ended_early
    leftover = len(buf) - pos
    if leftover:
        cut = f"the last record is cut off ({leftover} bytes of an incomplete record at the end)"
        ended_early = f"{ended_early}; {cut}" if ended_early else cut
    report.truncated = ended_early


def _rib_entries(body: bytes, pos: int, addpath: bool) -> Iterator[bytes]:
    """Attribute blocks of the RIB entries of a TABLE_DUMP_V2 RIB record, from ``pos`` (entry count)."""
    if pos + 2 > len(body):
        raise ValueError("entry count runs past the record")
    (count,) = struct.unpack_from(">H", body, pos)
    pos += 2
    head = 12 if addpath else 8  # peer index u16, originated u32, [path id u32], attribute length u16
    for _ in range(count):
        if pos + head > len(body):
            raise ValueError("rib entry header runs past the record")
        (attr_len,) = struct.unpack_from(">H", body, pos + head - 2)
        start = pos + head
        if start + attr_len > len(body):
            raise ValueError("rib entry attributes run past the record")
        yield body[start : start + attr_len]
        pos = start + attr_len


def _origin_from_entries(
    entries: Iterator[bytes], asn_size: int
) -> tuple[int | frozenset[int] | None, str, int]:
    """First entry with a usable origin; else the first entry's reason. Also the entries examined."""
    first_reason = ""
    examined = 0
    for attr_data in entries:
        examined += 1
        origin, reason = entry_origin(attr_data, asn_size)
        if origin is not None:
            return origin, "", examined
        first_reason = first_reason or reason
    return None, first_reason or EMPTY_AS_PATH, examined


_TD2_RIB = {
    TD2_RIB_IPV4_UNICAST: (socket.AF_INET, False),
    TD2_RIB_IPV6_UNICAST: (socket.AF_INET6, False),
    TD2_RIB_IPV4_UNICAST_ADDPATH: (socket.AF_INET, True),
    TD2_RIB_IPV6_UNICAST_ADDPATH: (socket.AF_INET6, True),
}
_TD2_MULTICAST = {
    TD2_RIB_IPV4_MULTICAST,
    TD2_RIB_IPV6_MULTICAST,
    TD2_RIB_IPV4_MULTICAST_ADDPATH,
    TD2_RIB_IPV6_MULTICAST_ADDPATH,
}


def _record_prefix_origin(
    mrt_type: int, subtype: int, body: bytes
) -> tuple[str | None, int | frozenset[int] | None, str, int]:
    """(prefix, origin, skip reason, entries examined) of one record; prefix None if not a prefix."""
    if mrt_type == MRT_TABLE_DUMP and subtype in (TD1_AFI_IPV4, TD1_AFI_IPV6):
        family, size = (socket.AF_INET, 4) if subtype == TD1_AFI_IPV4 else (socket.AF_INET6, 16)
        # view u16, seq u16, prefix, length u8, status u8, originated u32, peer ip, peer as u16, attr len u16
        need = 4 + size + 6 + size + 4
        if len(body) < need:
            return None, None, MALFORMED_RECORD, 0
        length = body[4 + size]
        if length > size * 8:
            return None, None, MALFORMED_RECORD, 0
        prefix = _prefix_text(family, body[4 : 4 + size], length)
        (attr_len,) = struct.unpack_from(">H", body, need - 2)
        if need + attr_len > len(body):
            return prefix, None, MALFORMED_RECORD, 0
        try:
            origin, reason = entry_origin(body[need : need + attr_len], 2)
        except ValueError:
            return prefix, None, MALFORMED_RECORD, 1
        return prefix, origin, reason, 1
    if mrt_type == MRT_TABLE_DUMP_V2:
        if subtype == TD2_PEER_INDEX_TABLE:
            return None, None, "", 0
        if subtype in _TD2_MULTICAST:
            return None, None, MULTICAST, 0
        if subtype in _TD2_RIB:
            family, addpath = _TD2_RIB[subtype]
            max_len = 32 if family == socket.AF_INET else 128
            if len(body) < 5:
                return None, None, MALFORMED_RECORD, 0
            length = body[4]
            octets = (length + 7) // 8
            if length > max_len or 5 + octets > len(body):
                return None, None, MALFORMED_RECORD, 0
            prefix = _prefix_text(family, body[5 : 5 + octets], length)
            try:
                origin, reason, examined = _origin_from_entries(_rib_entries(body, 5 + octets, addpath), 4)
            except ValueError:
                return prefix, None, MALFORMED_RECORD, 1
            return prefix, origin, reason, examined
    return None, None, UNSUPPORTED, 0


def read_dump(path: Path, prefixes: dict[str, int | frozenset[int]]) -> DumpReport:
    """Add the origins of one dump to ``prefixes`` (first occurrence wins); return its report.

    A prefix counts as skipped only if no record of the dump gave it an origin (TABLE_DUMP
    repeats a prefix once per peer; a later peer's path may have what the first one lacked).
    """
    report = DumpReport(path)
    failed: dict[str, str] = {}
    for mrt_type, subtype, body in iter_mrt_records(path, report):
        prefix, origin, reason, examined = _record_prefix_origin(mrt_type, subtype, body)
        report.rib_entries_examined += examined
        if prefix is None:
            if reason:
                report.skip(reason, f"mrt type {mrt_type} subtype {subtype}")
            continue
        if prefix in ("0.0.0.0/0", "::/0"):
            failed.setdefault(prefix, DEFAULT_ROUTE)
            continue
        if prefix in prefixes:
            report.prefixes_repeated += 1
            continue
        if origin is None:
            failed.setdefault(prefix, reason)
            continue
        prefixes[prefix] = origin
        report.prefixes_new += 1
        failed.pop(prefix, None)
    for prefix, reason in failed.items():
        report.skip(reason, prefix)
    return report


# --- writing --------------------------------------------------------------------------------


def write_ipasn(
    path: Path, prefixes: dict[str, int | frozenset[int]], sources: list[Path]
) -> tuple[int, int]:
    """Write the IPASN text file atomically; returns (v4, v6) prefix counts."""
    v6 = sum(1 for p in prefixes if ":" in p)
    v4 = len(prefixes) - v6
    lines = [
        "; IPASN database for pyasn, written by peerpool asn build\n",
        f"; sources       : {', '.join(s.name for s in sources)}\n",
        f"; written at    : {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n",
        f"; prefixes v4   : {v4}\n",
        f"; prefixes v6   : {v6}\n",
        ";\n",
    ]
    for prefix, origin in prefixes.items():
        asn = choose_from_set(origin) if isinstance(origin, frozenset) else origin
        lines.append(f"{prefix}\t{asn}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="ascii") as fh:
        fh.writelines(lines)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return v4, v6


@dataclass
class BuildResult:
    reports: list[DumpReport]
    v4: int
    v6: int
    out: Path


def build_database(ribs: list[Path], out: Path, *, allow_truncated: bool = False) -> BuildResult:
    """Convert MRT dumps into one IPASN file. A truncated dump is refused unless ``allow_truncated``."""
    prefixes: dict[str, int | frozenset[int]] = {}
    reports = []
    for rib in ribs:
        report = read_dump(rib, prefixes)
        if report.truncated and not allow_truncated:
            raise InputError(
                f"{rib}: the dump is truncated: {report.truncated}, after {report.records:,} complete mrt "
                f"records; download it again, or pass --allow-truncated to convert the "
                f"{report.prefixes_new:,} prefixes of the complete records (nothing was written)"
            )
        if report.records == 0:
            raise InputError(f"{rib}: holds no mrt record; give a TABLE_DUMP or TABLE_DUMP_V2 rib dump")
        reports.append(report)
    v4, v6 = write_ipasn(out, prefixes, ribs)
    return BuildResult(reports, v4, v6, out)


def format_report(result: BuildResult) -> str:
    out = []
    for r in result.reports:
        out.append(
            f"{r.path.name}: {r.records:,} mrt records, {r.prefixes_new:,} prefixes converted, "
            f"{r.prefixes_repeated:,} repeated"
        )
        if r.truncated:
            out.append(f"  warning: truncated dump ({r.truncated}); only its complete records were converted")
        for reason, count in sorted(r.skipped.items()):
            if count:
                shown = ", ".join(r.examples.get(reason, []))
                out.append(f"  skipped {count:,} ({reason}), e.g. {shown}")
    out.append(f"wrote {result.out}: {result.v4:,} ipv4 and {result.v6:,} ipv6 prefixes")
    return "\n".join(out)


# --- command line ---------------------------------------------------------------------------


@click.group(name="asn")
def asn() -> None:
    """IP-to-origin-AS database (pyasn format) from MRT RIB dumps."""


@asn.command(name="build")
@click.argument("ribs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="IPASN file to write."
)
@click.option(
    "--allow-truncated",
    is_flag=True,
    help="Convert the complete records of a truncated dump instead of refusing it.",
)
def build(ribs: tuple[Path, ...], out: Path, allow_truncated: bool) -> None:
    """Convert MRT RIB dumps (TABLE_DUMP / TABLE_DUMP_V2; bz2, gzip or plain) into an IPASN file.

    Prefixes whose AS path is empty or whose origin is only private/reserved ASes are skipped
    and counted (with examples); every other prefix is kept. Give IPv4 and IPv6 dumps together
    for one database that answers both.
    """
    result = build_database(list(ribs), out, allow_truncated=allow_truncated)
    click.echo(format_report(result))


@asn.command(name="lookup")
@click.argument("db", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("addresses", nargs=-1, required=True)
def lookup(db: Path, addresses: tuple[str, ...]) -> None:
    """Print the origin AS and matching prefix of each address."""
    import pyasn

    table = pyasn.pyasn(str(db))
    for address in addresses:
        try:
            origin, prefix = table.lookup(address)
        except ValueError:
            raise InputError(f"{address!r} is not an ip address") from None
        click.echo(f"{address}\t{origin if origin is not None else '-'}\t{prefix or '-'}")
