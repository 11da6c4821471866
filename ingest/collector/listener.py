"""One UDP listener: a non-blocking socket whose datagrams go unchanged into a spool writer.

Nothing on this path decodes: the receive loop only takes the datagram, its arrival time and
source address, and appends them to the spool. Arrival time is the kernel's receive timestamp
(``SO_TIMESTAMPNS``) when available, so a backlog in the socket buffer does not shift
datagrams into a later 5-minute interval.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.collector.procnet import socket_inode
from ingest.spool import PROTOCOL_IDS, SpoolWriter
from peerpool.errors import InputError

# Linux values (socket.h); Python's socket module does not export them.
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("@qq")
_ANC_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)

DEFAULT_PORTS = {"sflow5": 6343, "ipfix": 4739, "netflow9": 2055}


@dataclass(frozen=True)
class ListenerSpec:
    """Where to listen and which protocol the datagrams are stamped with in the spool."""

    protocol: str  # sflow5 | ipfix | netflow9
    host: str
    port: int

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}@{host}:{self.port}"


def parse_listen(protocol: str, text: str) -> ListenerSpec:
    """``HOST:PORT``, ``[V6]:PORT``, ``HOST`` or ``PORT`` -> spec.

    The host defaults to 127.0.0.1 (listening anywhere else is a deliberate choice) and the
    port to the protocol's registered port.
    """
    default_port = DEFAULT_PORTS[protocol]
    text = text.strip()
    host, port_text = "127.0.0.1", ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise InputError(f"--{protocol} {text!r}: missing ']' after the ipv6 address; write [::1]:6343")
        host, rest = text[1:close], text[close + 1 :]
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.isdigit():
        port_text = text
    elif text:
        host = text
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise InputError(
            f"--{protocol} {text!r}: port {port_text!r} is not a number; write HOST:PORT"
        ) from None
    if not 0 <= port <= 65535:
        raise InputError(f"--{protocol} {text!r}: port {port} is outside 0..65535")
    return ListenerSpec(protocol, host or "127.0.0.1", port)


@dataclass
class ListenerCounters:
    datagrams_received: int = 0
    bytes_received: int = 0
    datagrams_spooled: int = 0
    bytes_spooled: int = 0
    truncated: int = 0  # larger than the receive buffer (cannot happen with 64 KiB, counted anyway)
    errors: int = 0
    socket_drops: int = 0  # kernel drops for this socket (cumulative, from /proc/net/udp)


class Listener:
    """A bound UDP socket and the spool writer its datagrams go to."""

    def __init__(self, spec: ListenerSpec, spool_root: Path, *, rcvbuf: int, rotate_seconds: float) -> None:
        self.spec = spec
        family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.rcvbuf = _set_rcvbuf(sock, rcvbuf)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.kernel_timestamps = True
            except OSError:
                self.kernel_timestamps = False
            sock.bind((spec.host, spec.port))
        except OSError as exc:
            sock.close()
            raise InputError(
                f"cannot listen on {spec.label} ({exc.strerror}); choose a free port or address "
                f"with --{spec.protocol} HOST:PORT"
            ) from None
        sock.setblocking(False)
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.inode = socket_inode(sock)
        self.writer = SpoolWriter(
            spool_root / spec.protocol, PROTOCOL_IDS[spec.protocol], rotate_seconds=rotate_seconds
        )
        self.counters = ListenerCounters()

    @property
    def address(self) -> str:
        return f"{self.spec.host}:{self.port}"

    def drain(self, max_datagrams: int) -> int:
        """Receive up to ``max_datagrams`` waiting datagrams and spool them; returns how many."""
        sock, writer, counters = self.sock, self.writer, self.counters
        recvmsg = sock.recvmsg
        unpack = _TIMESPEC.unpack_from
        timestamps = self.kernel_timestamps
        got = 0
        while got < max_datagrams:
            try:
                data, ancdata, flags, addr = recvmsg(65536, _ANC_SIZE if timestamps else 0)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError:
                counters.errors += 1
                break
            arrival_ns = 0
            if ancdata:
                for level, kind, cdata in ancdata:
                    if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(cdata) >= 16:
                        sec, nsec = unpack(cdata)
                        arrival_ns = sec * 1_000_000_000 + nsec
            if not arrival_ns:
                arrival_ns = time.time_ns()
            got += 1
            counters.datagrams_received += 1
            counters.bytes_received += len(data)
            if flags & socket.MSG_TRUNC:
                counters.truncated += 1
            try:
                writer.write(data, arrival_ns, addr[0], addr[1])
            except OSError:
                counters.errors += 1
                continue
            counters.datagrams_spooled += 1
            counters.bytes_spooled += len(data)
        return got

    def close(self) -> Path | None:
        self.sock.close()
        return self.writer.close()


def _set_rcvbuf(sock: socket.socket, wanted: int) -> int:
    """Ask for a large receive buffer (beyond net.core.rmem_max when privileged); return what we got."""
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, wanted)
        except OSError:
            continue
        break
    # Linux reports twice the requested size (it accounts for bookkeeping overhead)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
