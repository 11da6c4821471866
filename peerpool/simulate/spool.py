"""Spool files exactly as the collector writes them (format in ``docs/architecture.md``).

Simulated datagrams go through the same decode path as collected ones, so the simulator
writes the same container: ``PPSPOOL1`` then records ``u32 length | body | u32 crc32(body)``
with ``body = u64 arrival_ns | u8 af | 16-byte source address | u16 source port | u8 protocol
| datagram``. One file per exporter and UTC hour, written as ``.open`` and renamed to
``.spool`` when complete, named ``<YYYYmmddTHHMM>-<exporter>-0-<seq>.spool`` (the exporter id
with characters outside ``[A-Za-z0-9.]`` replaced by ``_``, as the collector does with its host
name, so the name splits cleanly on ``-``; pid 0 marks a simulated file).
"""

from __future__ import annotations

import os
import re
import socket
import struct
import time
import zlib
from pathlib import Path
from typing import BinaryIO

MAGIC = b"PPSPOOL1"
PROTO_SFLOW5 = 1
PROTO_IPFIX = 2
PROTO_NETFLOW9 = 3
PROTOCOL_DIRS = {PROTO_SFLOW5: "sflow5", PROTO_IPFIX: "ipfix", PROTO_NETFLOW9: "netflow9"}
_BODY_HEAD = struct.Struct(">QB16sHB")
_U32 = struct.Struct(">I")
_HOUR_NS = 3600 * 1_000_000_000
_UNSAFE = re.compile(r"[^A-Za-z0-9.]")


def safe_exporter(name: str) -> str:
    return _UNSAFE.sub("_", name)


def encode_record(
    datagram: bytes, arrival_ns: int, source: tuple[int, bytes], port: int, protocol: int
) -> bytes:
    body = _BODY_HEAD.pack(arrival_ns, source[0], source[1], port, protocol) + datagram
    return _U32.pack(len(body)) + body + _U32.pack(zlib.crc32(body))


class HourlySpool:
    """Writes one exporter's datagrams (in arrival order) to hourly spool files."""

    def __init__(self, root: Path, protocol: int, exporter_id: str, source_ip: str, source_port: int) -> None:
        self.directory = root / PROTOCOL_DIRS[protocol]
        self.protocol = protocol
        self.exporter = safe_exporter(exporter_id)
        if ":" in source_ip:
            self.source = (6, socket.inet_pton(socket.AF_INET6, source_ip))
        else:
            self.source = (4, socket.inet_aton(source_ip) + bytes(12))
        self.source_port = source_port
        self.files: list[Path] = []
        self.datagrams = 0
        self.bytes = 0
        self._fh: BinaryIO | None = None
        self._path: Path | None = None
        self._hour_end = -1
        self._last_ns = -1
        self._seq = 0

    def write(self, datagram: bytes, arrival_ns: int) -> None:
        if arrival_ns < self._last_ns:
            raise ValueError(f"{self.exporter}: datagram at {arrival_ns} arrives before the previous one")
        self._last_ns = arrival_ns
        if self._fh is None or arrival_ns >= self._hour_end:
            self.close()
            hour_start = arrival_ns - arrival_ns % _HOUR_NS
            stamp = time.strftime("%Y%m%dT%H%M", time.gmtime(hour_start // 1_000_000_000))
            self.directory.mkdir(parents=True, exist_ok=True)
            self._path = self.directory / f"{stamp}-{self.exporter}-0-{self._seq:06d}.open"
            self._seq += 1
            self._fh = open(self._path, "wb")  # noqa: SIM115 (closed in close())
            self._fh.write(MAGIC)
            self._hour_end = hour_start + _HOUR_NS
        self._fh.write(encode_record(datagram, arrival_ns, self.source, self.source_port, self.protocol))
        self.datagrams += 1
        self.bytes += len(datagram)

    def close(self) -> None:
        if self._fh is None or self._path is None:
            return
        self._fh.close()
        final = self._path.with_suffix(".spool")
        os.replace(self._path, final)
        self.files.append(final)
        self._fh = None
        self._path = None
