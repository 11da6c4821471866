"""``peerpool collect`` as a real process on 127.0.0.1, fed real exporter datagrams.

Every collector here listens on 127.0.0.1 with kernel-chosen ports, is bounded by
``--max-seconds`` and is stopped by the test (SIGTERM, or SIGKILL for the crash test).
The expected spool content is what the test itself sent, byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from ingest import spool as sp
from ingest.collector.listener import parse_listen
from ingest.pipeline import process_files

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
GENERATED = REALDATA / "generated"


def read_datagrams(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("!I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def start_collector(spool: Path, *args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "peerpool.cli", "collect", "--spool", str(spool), *args]
    log = open(spool.parent / f"collector-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_for_stats(spool: Path, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> dict[str, Any]:
    """The collector writes _stats.json once its sockets are bound; return it (with the ports)."""
    deadline = time.monotonic() + timeout
    path = spool / "_stats.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"collector exited early with {proc.returncode}")
        if path.exists():
            stats: dict[str, Any] = json.loads(path.read_text())
            if stats["pid"] == proc.pid:
                return stats
        time.sleep(0.05)
    raise AssertionError("collector did not start within the time limit")


def ports(stats: dict[str, Any]) -> dict[str, int]:
    return {entry["protocol"]: entry["port"] for entry in stats["listeners"]}


def spooled(spool: Path) -> dict[str, list[sp.SpoolRecord]]:
    """protocol folder -> records of its .spool files, in file-name order."""
    out: dict[str, list[sp.SpoolRecord]] = {}
    for folder in sorted(p for p in spool.iterdir() if p.is_dir()):
        records: list[sp.SpoolRecord] = []
        for f in sorted(folder.glob("*.spool")):
            stats = sp.SpoolReadStats()
            records.extend(sp.read_spool(f, stats))
            assert not stats.damaged and stats.torn_tail is None, f
        out[folder.name] = records
    return out


def sflow_sample_count(datagram: bytes) -> int:
    """num_samples of an sFlow v5 header with an IPv4 agent (sflow_version_5.txt)."""
    assert struct.unpack_from("!II", datagram, 0) == (5, 1)
    return int(struct.unpack_from("!I", datagram, 24)[0])


def test_parse_listen_defaults_to_loopback() -> None:
    assert parse_listen("sflow5", "").label == "sflow5@127.0.0.1:6343"
    assert parse_listen("ipfix", "4740").label == "ipfix@127.0.0.1:4740"
    assert parse_listen("netflow9", "[::1]:2056").label == "netflow9@[::1]:2056"
    assert parse_listen("sflow5", "127.0.0.2").label == "sflow5@127.0.0.2:6343"


def test_bounded_replay_is_spooled_byte_for_byte(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    proc = start_collector(
        spool, "--sflow", "127.0.0.1:0", "--ipfix", "127.0.0.1:0", "--netflow", "127.0.0.1:0",
        "--max-seconds", "60", "--stats-seconds", "0.5",
    )  # fmt: skip
    try:
        stats = wait_for_stats(spool, proc)
        port = ports(stats)
        plan = {
            "sflow5": read_datagrams(GENERATED / "pmacct-sfprobe.datagrams.bin"),
            "ipfix": read_datagrams(GENERATED / "softflowd-v10.datagrams.bin")
            + read_datagrams(GENERATED / "pmacct-nfprobe-v10.datagrams.bin"),
            "netflow9": read_datagrams(GENERATED / "pmacct-nfprobe-v9.datagrams.bin"),
        }
        senders = {}
        for protocol, datagrams in plan.items():
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.bind(("127.0.0.1", 0))
            senders[protocol] = sender
            for i, d in enumerate(datagrams):
                sender.sendto(d, ("127.0.0.1", port[protocol]))
                if i % 50 == 49:
                    time.sleep(0.002)
        expected_total = sum(len(v) for v in plan.values())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until the collector counted everything
            counts = json.loads((spool / "_stats.json").read_text())["listeners"]
            if sum(c["datagrams_spooled"] for c in counts) >= expected_total:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list(spool.rglob("*.open"))
    got = spooled(spool)
    for protocol, datagrams in plan.items():
        records = got[protocol]
        assert [r.datagram for r in records] == datagrams, protocol
        source_port = senders[protocol].getsockname()[1]
        assert {(r.source_ip, r.source_port, r.protocol) for r in records} == {
            ("127.0.0.1", source_port, sp.PROTOCOL_IDS[protocol])
        }
        arrivals = [r.arrival_ns for r in records]
        assert arrivals == sorted(arrivals) and abs(arrivals[0] - time.time_ns()) < 120 * 10**9
    final = json.loads((spool / "_stats.json").read_text())
    assert final["stop_reason"] == "SIGTERM"
    for entry in final["listeners"]:
        datagrams = plan[entry["protocol"]]
        assert entry["datagrams_received"] == entry["datagrams_spooled"] == len(datagrams)
        assert entry["bytes_spooled"] == sum(len(d) for d in datagrams)
        assert entry["socket_drops"] == 0 and entry["errors"] == 0
        assert entry["host"] == "127.0.0.1"
    for s in senders.values():
        s.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kill_9_loses_nothing_closed_and_never_double_counts(tmp_path: Path) -> None:
    """SIGKILL during a replay; restart; closed files unchanged; decoding twice counts once."""
    spool = tmp_path / "spool"
    lake = tmp_path / "lake"
    corpus = read_datagrams(REALDATA / "bench" / "corpus-pmacct-sfprobe-4529dgrams.datagrams.bin.gz")[:2400]
    assert len(set(corpus)) == len(corpus)  # every datagram is distinct: each can be found once
    only_sflow = ("--sflow", "127.0.0.1:0", "--ipfix", "off", "--netflow", "off")
    proc = start_collector(
        spool, *only_sflow, "--rotate-seconds", "1", "--max-seconds", "60", "--stats-seconds", "0.5"
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        port = ports(wait_for_stats(spool, proc))["sflow5"]
        closed_before: dict[str, str] = {}
        sent = 0
        start = time.monotonic()
        for d in corpus:  # ~800 datagrams/s for ~3 s
            sender.sendto(d, ("127.0.0.1", port))
            sent += 1
            if sent % 40 == 0:
                time.sleep(max(0.0, start + sent / 800 - time.monotonic()))
            if sent == 2000:
                # some files are closed by now; remember them, then kill the collector mid-stream
                closed_before = {p.name: sha(p) for p in (spool / "sflow5").glob("*.spool")}
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sender.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(closed_before) >= 1
    left_open = list((spool / "sflow5").glob("*.open"))
    assert len(left_open) == 1  # the file being written when the collector died

    # decode what is closed now (as the pipeline would, while the collector is down)
    first = process_files([spool], lake)
    assert {Path(f.path).name for f in first.files} == set(closed_before)
    assert first.still_open == [str(left_open[0])]

    # restart: the leftover .open file is cut to its last whole record and closed
    proc2 = start_collector(spool, *only_sflow, "--max-seconds", "1")
    try:
        assert proc2.wait(timeout=30) == 0
    finally:
        if proc2.poll() is None:
            proc2.kill()
            proc2.wait()
    stats = json.loads((spool / "_stats.json").read_text())
    assert [r["open_path"] for r in stats["recovered"]] == [str(left_open[0])]
    assert not list(spool.rglob("*.open"))
    for name, digest in closed_before.items():
        assert sha(spool / "sflow5" / name) == digest  # nothing that reached a closed file changed

    records = spooled(spool)["sflow5"]
    datagrams = [r.datagram for r in records]
    assert len(set(datagrams)) == len(datagrams)  # nothing spooled twice
    # what was spooled is what was sent, in order, up to where the kill cut it
    assert datagrams == corpus[: len(datagrams)]
    assert len(datagrams) > 0.5 * sent

    second = process_files([spool], lake)
    statuses = {Path(f.path).name: f.status for f in second.files}
    assert all(statuses[name] == "unchanged" for name in closed_before)
    assert list(statuses.values()).count("processed") == 1  # only the recovered file is new
    third = process_files([spool], lake)
    assert {f.status for f in third.files} == {"unchanged"}
    expected_samples = sum(sflow_sample_count(d) for d in datagrams)
    relation = duckdb.sql(f"select count(*) from read_parquet('{lake}/flows/**/*.parquet')")
    assert relation is not None
    assert relation.fetchall()[0][0] == expected_samples
    relation = duckdb.sql(f"select sum(sample_count) from read_parquet('{lake}/member_matrix/**/*.parquet')")
    assert relation is not None
    assert relation.fetchall()[0][0] == expected_samples


def test_max_datagrams_bound_stops_after_exactly_that_many(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    only_sflow = ("--sflow", "127.0.0.1:0", "--ipfix", "off", "--netflow", "off")
    proc = start_collector(spool, *only_sflow, "--max-datagrams", "10", "--max-seconds", "30")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    datagrams = read_datagrams(GENERATED / "pmacct-sfprobe.datagrams.bin")[:30]
    try:
        port = ports(wait_for_stats(spool, proc))["sflow5"]
        for d in datagrams:
            sender.sendto(d, ("127.0.0.1", port))
        assert proc.wait(timeout=30) == 0
    finally:
        sender.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = spooled(spool)["sflow5"]
    assert [r.datagram for r in records] == datagrams[:10]
    assert "--max-datagrams" in json.loads((spool / "_stats.json").read_text())["stop_reason"]
