"""Spool files: the collector's raw datagrams on disk, exactly as received.

The format is the contract in ``docs/architecture.md`` (the simulator writes the same files)::

    file   := magic "PPSPOOL1" record*
    record := u32 body_length | body | u32 crc32(body)                  (big endian)
    body   := u64 arrival_ns | u8 af (4 or 6) | 16 bytes source address (IPv4 in the first 4)
              | u16 source_port | u8 protocol (1 sflow5, 2 ipfix, 3 netflow9, 0 unknown) | datagram

Why this shape: a per-record length and CRC let a reader find the end of a torn write after
a crash and step over a damaged record without losing the good ones around it, and keeping
the datagram unchanged lets every later stage be replayed after a decoder fix.

Writers append to ``<name>.open`` and, when a file is rotated or the collector stops, flush,
fsync and rename it to ``<name>.spool``. Only ``.spool`` files are decoded. A writer holds an
exclusive ``flock`` on its ``.open`` file, so :func:`recover_open_files` can tell a file that
a crashed collector left behind from one a live collector is still writing.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import itertools
import mmap
import os
import re
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from peerpool.errors import InputError

MAGIC = b"PPSPOOL1"
OPEN_SUFFIX = ".open"
SPOOL_SUFFIX = ".spool"

PROTO_UNKNOWN = 0
PROTO_SFLOW5 = 1
PROTO_IPFIX = 2
PROTO_NETFLOW9 = 3
PROTOCOL_NAMES: dict[int, str] = {
    PROTO_UNKNOWN: "unknown",
    PROTO_SFLOW5: "sflow5",
    PROTO_IPFIX: "ipfix",
    PROTO_NETFLOW9: "netflow9",
}
PROTOCOL_IDS: dict[str, int] = {name: number for number, name in PROTOCOL_NAMES.items()}

_LENGTH = struct.Struct(">I")
_BODY_HEAD = struct.Struct(">QB16sHB")  # arrival_ns, af, address, port, protocol
BODY_HEAD_SIZE = _BODY_HEAD.size  # 28
MAX_DATAGRAM = 65535  # the largest UDP payload
MIN_BODY = BODY_HEAD_SIZE
MAX_BODY = BODY_HEAD_SIZE + MAX_DATAGRAM
RECORD_OVERHEAD = 4 + BODY_HEAD_SIZE + 4


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One datagram as the collector received it. ``offset`` is where its record starts in the file."""

    offset: int
    arrival_ns: int
    source_ip: str
    source_port: int
    protocol: int
    datagram: bytes


@dataclass(frozen=True, slots=True)
class SpoolDamage:
    """A stretch of a spool file that holds no valid record: ``length`` bytes from ``offset``."""

    offset: int
    length: int
    reason: str


@dataclass
class SpoolReadStats:
    """What a read found: records, and every damaged stretch with its offset."""

    records: int = 0
    datagram_bytes: int = 0
    damaged: list[SpoolDamage] = field(default_factory=list)
    torn_tail: SpoolDamage | None = None

    @property
    def damaged_bytes(self) -> int:
        tail = self.torn_tail.length if self.torn_tail else 0
        return sum(d.length for d in self.damaged) + tail


# --- encoding -------------------------------------------------------------------------------


def pack_address(ip: str) -> tuple[int, bytes]:
    """(af, 16-byte field) for an IPv4 or IPv6 address string."""
    if ":" in ip:
        return 6, socket.inet_pton(socket.AF_INET6, ip)
    return 4, socket.inet_pton(socket.AF_INET, ip) + bytes(12)


def unpack_address(af: int, raw: bytes) -> str:
    if af == 4:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def encode_record(
    datagram: bytes, arrival_ns: int, af: int, address16: bytes, port: int, protocol: int
) -> bytes:
    """One record, ready to append to a spool file."""
    if len(datagram) > MAX_DATAGRAM:
        raise ValueError(f"datagram of {len(datagram)} bytes is larger than a udp payload can be")
    body = _BODY_HEAD.pack(arrival_ns, af, address16, port, protocol) + datagram
    return b"".join((_LENGTH.pack(len(body)), body, _LENGTH.pack(zlib.crc32(body))))


# --- writing --------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9.]")
_file_numbers = itertools.count(1)  # one sequence for every writer of this process


def _safe_host(name: str) -> str:
    return _UNSAFE.sub("_", name)[:63] or "host"


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolWriter:
    """Appends records for one protocol to ``directory``, rotating every ``rotate_seconds``.

    Files open lazily on the first datagram, so an idle listener leaves no empty files.
    Rotation boundaries are multiples of ``rotate_seconds`` of the wall clock, so files of
    different listeners and collectors line up on the same minutes.
    """

    def __init__(
        self,
        directory: Path,
        protocol: int,
        *,
        rotate_seconds: float = 60.0,
        host: str | None = None,
        buffer_size: int = 1 << 20,
        clock_ns: Callable[[], int] = time.time_ns,
        durable: bool = True,
    ) -> None:
        if rotate_seconds <= 0:
            raise ValueError("rotate_seconds must be positive")
        self.directory = Path(directory)
        self.protocol = protocol
        self.rotate_ns = int(rotate_seconds * 1e9)
        self.host = _safe_host(host if host is not None else socket.gethostname())
        self.buffer_size = buffer_size
        self.clock_ns = clock_ns
        self.durable = durable
        self._fh: BinaryIO | None = None
        self._path: Path | None = None
        self._deadline_ns = 0
        self._address_cache: dict[str, tuple[int, bytes]] = {}
        self.closed_files: list[Path] = []
        self.records_in_file = 0
        self.records_written = 0
        self.bytes_written = 0

    @property
    def current_path(self) -> Path | None:
        return self._path

    def _open(self, now_ns: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        start_ns = now_ns - now_ns % self.rotate_ns
        stamp = time.strftime("%Y%m%dT%H%M", time.gmtime(start_ns // 1_000_000_000))
        while True:
            stem = f"{stamp}-{self.host}-{os.getpid()}-{next(_file_numbers):06d}"
            path = self.directory / (stem + OPEN_SUFFIX)
            if (self.directory / (stem + SPOOL_SUFFIX)).exists():
                continue  # a restarted collector with a recycled pid: never overwrite
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            break
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh = os.fdopen(fd, "wb", buffering=self.buffer_size)
        fh.write(MAGIC)
        self._fh, self._path = fh, path
        self._deadline_ns = start_ns + self.rotate_ns
        self.records_in_file = 0

    def write(self, datagram: bytes, arrival_ns: int, source_ip: str, source_port: int) -> None:
        """Append one datagram (unchanged) with its arrival time and source."""
        if self._fh is None or arrival_ns >= self._deadline_ns:
            if self._fh is not None:
                self.rotate()
            self._open(arrival_ns)
        packed = self._address_cache.get(source_ip)
        if packed is None:
            if len(self._address_cache) > 65536:
                self._address_cache.clear()
            packed = self._address_cache[source_ip] = pack_address(source_ip)
        record = encode_record(datagram, arrival_ns, packed[0], packed[1], source_port, self.protocol)
        assert self._fh is not None
        self._fh.write(record)
        self.records_in_file += 1
        self.records_written += 1
        self.bytes_written += len(datagram)

    def flush(self) -> None:
        """Hand buffered records to the kernel (they then survive a crash of this process)."""
        if self._fh is not None:
            self._fh.flush()

    def maybe_rotate(self, now_ns: int | None = None) -> Path | None:
        """Rotate if the current file's period is over; returns the closed ``.spool`` path."""
        now_ns = self.clock_ns() if now_ns is None else now_ns
        if self._fh is not None and now_ns >= self._deadline_ns:
            return self.rotate()
        return None

    def rotate(self) -> Path | None:
        """Flush, fsync and rename the current file to ``.spool``; the next datagram opens a new one."""
        fh, path = self._fh, self._path
        if fh is None or path is None:
            return None
        self._fh = self._path = None
        fh.flush()
        if self.durable:
            os.fsync(fh.fileno())
        final = path.with_suffix(SPOOL_SUFFIX)
        os.rename(path, final)
        if self.durable:
            fsync_directory(self.directory)
        fh.close()  # releases the flock only after the rename
        self.closed_files.append(final)
        return final

    def close(self) -> Path | None:
        return self.rotate()


# --- reading --------------------------------------------------------------------------------


def _valid_record_at(buf: mmap.mmap | bytes, pos: int, end: int) -> int:
    """Length of the whole record at ``pos`` if it is valid, else 0."""
    if pos + 4 + MIN_BODY + 4 > end:
        return 0
    length: int = _LENGTH.unpack_from(buf, pos)[0]
    if length < MIN_BODY or length > MAX_BODY or pos + 8 + length > end:
        return 0
    af = buf[pos + 12]
    proto = buf[pos + 4 + BODY_HEAD_SIZE - 1]
    if af not in (4, 6) or proto > PROTO_NETFLOW9:
        return 0
    (crc,) = _LENGTH.unpack_from(buf, pos + 4 + length)
    if zlib.crc32(buf[pos + 4 : pos + 4 + length]) != crc:
        return 0
    return 8 + length


def _describe_bad_record(buf: mmap.mmap | bytes, pos: int, end: int) -> tuple[str, bool]:
    """Why the record at ``pos`` is not valid, and whether it runs past the end of the file."""
    if pos + 4 > end:
        return "partial length field at end of file", True
    (length,) = _LENGTH.unpack_from(buf, pos)
    if length < MIN_BODY or length > MAX_BODY:
        return f"impossible record length {length}", False
    if pos + 8 + length > end:
        return f"record of {length} bytes runs past the end of the file", True
    af = buf[pos + 12]
    if af not in (4, 6):
        return f"bad address family {af}", False
    proto = buf[pos + 4 + BODY_HEAD_SIZE - 1]
    if proto > PROTO_NETFLOW9:
        return f"bad protocol number {proto}", False
    return "crc mismatch", False


def _next_valid(buf: mmap.mmap | bytes, start: int, end: int) -> int:
    """The first offset >= ``start`` where a valid record begins, or -1."""
    pos = start
    while pos + 4 + MIN_BODY + 4 <= end:
        if _valid_record_at(buf, pos, end):
            return pos
        pos += 1
    return -1


def check_spool_file(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is a readable spool file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC))
    except FileNotFoundError:
        raise InputError(f"{path}: no such spool file; check the path") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read spool file ({exc.strerror}); check its permissions") from exc
    if head != MAGIC:
        raise InputError(
            f"{path}: not a spool file (it does not start with {MAGIC.decode()}); "
            "give .spool files written by 'peerpool collect' or 'peerpool simulate'"
        )


def read_spool(path: Path | str, stats: SpoolReadStats | None = None) -> Iterator[SpoolRecord]:
    """Yield every valid record of a spool file in file order.

    A damaged record (impossible length, bad address family or protocol, CRC mismatch) is
    recorded in ``stats.damaged`` with its offset, and reading resumes at the next offset
    where a whole valid record starts. A record cut short by the end of the file (a torn
    write) is recorded in ``stats.torn_tail``. Nothing here raises on damaged content.
    """
    path = Path(path)
    stats = stats if stats is not None else SpoolReadStats()
    check_spool_file(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size <= len(MAGIC):
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            yield from _iter_records(buf, len(MAGIC), size, stats)


def _iter_records(buf: mmap.mmap, pos: int, end: int, stats: SpoolReadStats) -> Iterator[SpoolRecord]:
    unpack_len = _LENGTH.unpack_from
    unpack_head = _BODY_HEAD.unpack_from
    crc32 = zlib.crc32
    names: dict[bytes, str] = {}
    while pos < end:
        ok = False
        if pos + 4 + MIN_BODY + 4 <= end:
            (length,) = unpack_len(buf, pos)
            stop = pos + 4 + length
            if MIN_BODY <= length <= MAX_BODY and stop + 4 <= end:
                body = buf[pos + 4 : stop]
                if crc32(body) == unpack_len(buf, stop)[0]:
                    arrival_ns, af, raw, port, proto = unpack_head(body)
                    if af in (4, 6) and proto <= PROTO_NETFLOW9:
                        ok = True
                        key = raw if af == 6 else raw[:4]
                        ip = names.get(key)
                        if ip is None:
                            ip = names[key] = unpack_address(af, raw)
                        stats.records += 1
                        stats.datagram_bytes += length - BODY_HEAD_SIZE
                        yield SpoolRecord(pos, arrival_ns, ip, port, proto, body[BODY_HEAD_SIZE:])
                        pos = stop + 4
        if ok:
            continue
        reason, runs_past_end = _describe_bad_record(buf, pos, end)
        resume = _next_valid(buf, pos + 1, end)
        if resume < 0:
            damage = SpoolDamage(pos, end - pos, reason)
            if runs_past_end or reason.startswith("partial"):
                stats.torn_tail = damage
            else:
                stats.damaged.append(damage)
            return
        stats.damaged.append(SpoolDamage(pos, resume - pos, reason))
        pos = resume


def last_whole_record_end(path: Path) -> tuple[int, SpoolReadStats]:
    """The offset just past the last valid record (the magic's end if there is none)."""
    stats = SpoolReadStats()
    end = len(MAGIC)
    for record in read_spool(path, stats):
        end = record.offset + 8 + BODY_HEAD_SIZE + len(record.datagram)
    return end, stats


# --- crash recovery -------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovered:
    """What recovery did with one leftover ``.open`` file."""

    open_path: Path
    spool_path: Path | None  # None when the file held no whole record and was removed
    records: int
    truncated_bytes: int
    damaged: int


def recover_open_file(path: Path) -> Recovered | None:
    """Close a ``.open`` file a crashed writer left behind; None if a live writer holds it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live collector is still writing it
        size = os.fstat(fd).st_size
        with open(path, "rb") as probe:
            head = probe.read(len(MAGIC))
        if head != MAGIC or size <= len(MAGIC):
            # died before the first record reached the kernel: nothing to keep
            os.unlink(path)
            fsync_directory(path.parent)
            return Recovered(path, None, 0, size, 0)
        end, stats = last_whole_record_end(path)
        if stats.records == 0:
            os.unlink(path)
            fsync_directory(path.parent)
            return Recovered(path, None, 0, size, 0)
        if end < size:
            os.ftruncate(fd, end)
        os.fsync(fd)
        final = path.with_suffix(SPOOL_SUFFIX)
        os.rename(path, final)
        fsync_directory(path.parent)
        return Recovered(path, final, stats.records, size - end, len(stats.damaged))
    finally:
        os.close(fd)


def recover_open_files(spool_root: Path) -> list[Recovered]:
    """Recover every abandoned ``.open`` file under ``spool_root`` (one level of protocol folders)."""
    found: list[Recovered] = []
    if not spool_root.is_dir():
        return found
    candidates = sorted(spool_root.glob("*" + OPEN_SUFFIX)) + sorted(spool_root.glob("*/*" + OPEN_SUFFIX))
    for path in candidates:
        result = recover_open_file(path)
        if result is not None:
            found.append(result)
    return found


_NAME_TIME = re.compile(r"^(\d{8}T\d{4})-")


def spool_time(path: Path) -> dt.datetime | None:
    """The UTC minute a spool file starts at, from its name (``YYYYmmddTHHMM-...``), or None."""
    match = _NAME_TIME.match(path.name)
    if match is None:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=dt.UTC)


def files_in_interval(
    spool_root: Path, start: dt.datetime, end: dt.datetime
) -> tuple[list[Path], list[Path]]:
    """Spool files under ``spool_root`` whose name time is in [start, end): (closed, still open).

    This is how a scheduled run takes exactly the files of its data interval; a file still
    ``.open`` in the interval means the collector has not closed it yet (the run should retry).
    """
    closed: list[Path] = []
    still_open: list[Path] = []
    for path in sorted(spool_root.rglob("*")):
        if path.suffix not in (SPOOL_SUFFIX, OPEN_SUFFIX) or not path.is_file():
            continue
        when = spool_time(path)
        if when is None or not start <= when < end:
            continue
        (closed if path.suffix == SPOOL_SUFFIX else still_open).append(path)
    return closed, still_open
