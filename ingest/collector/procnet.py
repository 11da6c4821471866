"""Kernel receive drops of our own UDP sockets, from ``/proc/net/udp`` and ``/proc/net/udp6``.

A datagram the kernel drops because the socket buffer was full never reaches the collector,
so the collector cannot count it itself; the kernel keeps a per-socket ``drops`` column.
Sockets are matched by inode (``fstat`` of the socket), which is exact even when several
processes listen on the same port with ``SO_REUSEPORT``.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

PROC_FILES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))


def socket_inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def read_drops(inodes: set[int], files: tuple[Path, ...] = PROC_FILES) -> dict[int, int]:
    """inode -> drops for every inode of ``inodes`` found (missing ones are absent)."""
    found: dict[int, int] = {}
    for path in files:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        if not lines:
            continue
        header = lines[0].split()
        try:
            inode_col = header.index("inode")
        except ValueError:
            continue
        # the header has more words than a row has fields before "inode" ("tx_queue rx_queue" and
        # "tr tm->when" are one field each in a row), so count from the right: ... inode ref pointer drops
        inode_from_right = len(header) - inode_col
        for line in lines[1:]:
            fields = line.split()
            if len(fields) < inode_from_right:
                continue
            try:
                inode = int(fields[-inode_from_right])
            except ValueError:
                continue
            if inode in inodes:
                with contextlib.suppress(ValueError):
                    found[inode] = int(fields[-1])
    return found
