"""The collector's receive loop: listeners, rotation, counters, clean stop.

One thread with a ``selectors`` loop serves every listener. A flow collector's work per
datagram is a ``recvmsg`` and a buffered write, so one thread keeps up with many hundred
thousand datagrams per second; asyncio's per-datagram callbacks would only add overhead, and
threads would contend for the GIL on the same work. Decoding happens later, from the spool.

On start, ``.open`` files a crashed collector left behind are truncated to their last whole
record and closed. On SIGTERM/SIGINT (or when a ``max_seconds``/``max_datagrams`` bound is
reached) every listener's file is flushed, fsynced and renamed to ``.spool``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ingest.collector.listener import Listener, ListenerSpec
from ingest.collector.procnet import read_drops
from ingest.spool import Recovered, recover_open_files

log = logging.getLogger("peerpool.collector")

STATS_FILE = "_stats.json"


@dataclass(frozen=True)
class CollectorSettings:
    spool: Path
    listeners: tuple[ListenerSpec, ...]
    rotate_seconds: float = 60.0
    stats_seconds: float = 10.0
    rcvbuf_bytes: int = 32 << 20
    max_seconds: float | None = None
    max_datagrams: int | None = None
    drain_batch: int = 512


class Collector:
    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.listeners: list[Listener] = []
        self.recovered: list[Recovered] = []
        self.stop_reason = ""
        self.started_ns = time.time_ns()
        self._stop_requested = ""
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        spool = self.settings.spool
        spool.mkdir(parents=True, exist_ok=True)
        self.recovered = recover_open_files(spool)
        for r in self.recovered:
            if r.spool_path is None:
                log.warning("recovered %s: no whole record, removed", r.open_path)
            else:
                log.warning(
                    "recovered %s: %d records kept, %d torn bytes cut, %d damaged records",
                    r.spool_path,
                    r.records,
                    r.truncated_bytes,
                    r.damaged,
                )
        try:
            for spec in self.settings.listeners:
                listener = Listener(
                    spec,
                    spool,
                    rcvbuf=self.settings.rcvbuf_bytes,
                    rotate_seconds=self.settings.rotate_seconds,
                )
                self.listeners.append(listener)
                log.info(
                    "listening for %s on %s (receive buffer %d bytes)",
                    spec.protocol,
                    listener.address,
                    listener.rcvbuf,
                )
        except Exception:
            for listener in self.listeners:
                listener.close()
            raise
        self.write_stats()

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop (safe from a signal handler)."""
        self._stop_requested = reason
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def close(self) -> None:
        for listener in self.listeners:
            closed = listener.close()
            if closed is not None:
                log.info("closed %s", closed)
        self.write_stats()
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> str:
        """Serve until asked to stop or a bound is reached; returns why it stopped."""
        settings = self.settings
        selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        for listener in self.listeners:
            selector.register(listener.sock, selectors.EVENT_READ, listener)
        deadline = time.monotonic() + settings.max_seconds if settings.max_seconds else None
        next_stats = time.monotonic() + settings.stats_seconds
        batch = settings.drain_batch
        limit = settings.max_datagrams
        received = 0
        try:
            while not self._stop_requested:
                timeout = 0.25
                if deadline is not None:
                    timeout = max(0.0, min(timeout, deadline - time.monotonic()))
                for key, _events in selector.select(timeout):
                    listener = key.data
                    if listener is None:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(64)
                        continue
                    want = batch if limit is None else min(batch, limit - received)
                    if want > 0:
                        received += listener.drain(want)
                for listener in self.listeners:
                    listener.writer.flush()
                now_mono = time.monotonic()
                now_ns = time.time_ns()
                for listener in self.listeners:
                    closed = listener.writer.maybe_rotate(now_ns)
                    if closed is not None:
                        log.debug("rotated %s", closed)
                if now_mono >= next_stats:
                    next_stats = now_mono + settings.stats_seconds
                    self.write_stats()
                    self.log_counters()
                if limit is not None and received >= limit:
                    self._stop_requested = f"received {received} datagrams (--max-datagrams)"
                elif deadline is not None and now_mono >= deadline:
                    self._stop_requested = f"ran {settings.max_seconds:g} s (--max-seconds)"
        finally:
            selector.close()
        self.stop_reason = self._stop_requested
        return self.stop_reason

    # --- counters -------------------------------------------------------------------------

    def refresh_drops(self) -> None:
        drops = read_drops({listener.inode for listener in self.listeners})
        for listener in self.listeners:
            if listener.inode in drops:
                listener.counters.socket_drops = drops[listener.inode]

    def stats(self) -> dict[str, Any]:
        self.refresh_drops()
        return {
            "pid": os.getpid(),
            "started_ns": self.started_ns,
            "updated_ns": time.time_ns(),
            "spool": str(self.settings.spool),
            "rotate_seconds": self.settings.rotate_seconds,
            "stop_reason": self.stop_reason,
            "recovered": [
                {
                    "open_path": str(r.open_path),
                    "spool_path": str(r.spool_path) if r.spool_path else None,
                    "records": r.records,
                    "truncated_bytes": r.truncated_bytes,
                    "damaged": r.damaged,
                }
                for r in self.recovered
            ],
            "listeners": [
                {
                    "protocol": listener.spec.protocol,
                    "host": listener.spec.host,
                    "port": listener.port,
                    "rcvbuf_bytes": listener.rcvbuf,
                    "kernel_timestamps": listener.kernel_timestamps,
                    "files_closed": len(listener.writer.closed_files),
                    "open_file": str(listener.writer.current_path) if listener.writer.current_path else None,
                    **asdict(listener.counters),
                }
                for listener in self.listeners
            ],
        }

    def write_stats(self) -> None:
        """Write ``SPOOL/_stats.json`` atomically (readers never see half a file)."""
        path = self.settings.spool / STATS_FILE
        tmp = path.with_name(f".{STATS_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.stats(), indent=1) + "\n")
        os.replace(tmp, path)

    def log_counters(self) -> None:
        for listener in self.listeners:
            c = listener.counters
            log.info(
                "%s on %s: received %d datagrams (%d bytes), spooled %d (%d bytes), drops %d, errors %d",
                listener.spec.protocol,
                listener.address,
                c.datagrams_received,
                c.bytes_received,
                c.datagrams_spooled,
                c.bytes_spooled,
                c.socket_drops,
                c.errors,
            )


def run_collector(settings: CollectorSettings) -> Collector:
    """Open, serve with SIGTERM/SIGINT handled as a clean stop, close. Returns the stopped collector."""
    collector = Collector(settings)
    collector.open()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        collector.request_stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        reason = collector.run()
        log.info("stopping: %s", reason)
    finally:
        collector.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    collector.log_counters()
    return collector
