"""Real exporters end to end: synth.pcap -> pmacct sfprobe / nfprobe, softflowd -> peerpool -> lake.

The truth is the synthetic capture itself, parsed here frame by frame:

* sFlow ``frame_length`` is the frame's length on the wire *including the 4-byte FCS*
  (sflow_version_5.txt, sampled_header: "total number of octets of data received on the
  network (excluding framing bits but including FCS octets)"); pcap lengths exclude the FCS.
* IPFIX / NetFlow v9 octet counts are IP bytes (RFC 7012 octetDeltaCount): frame length - 14.
* pmacct's sfprobe does not send its last, partly filled datagram when pmacctd reaches the end
  of the capture, so the last few packets are never exported. How many packets the probe
  accounted is the highest ``sample_pool`` tshark reads in the exporter's datagrams; the truth
  is taken over that many leading frames of the capture (at rate 1, sample k is packet k).

At sampling rate 1 (regenerated here with ``realdata/recipe/make_flows.sh OUT 3000 7 1``, ~60 s,
all on 127.0.0.1) the member matrix must equal the truth exactly. At rate 4 (the committed
``realdata/generated`` run, same synth.pcap) every pair must be within 4 standard deviations of
the sampling estimate: var = (rate - 1) * sum(frame_length^2) for bytes, (rate - 1) * frames for
packets (each packet sampled with probability 1/rate).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import math
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest import spool as sp
from ingest.pipeline import process_files
from peerpool.config.model import Exchange, Member, MemberPort, Site, SnmpSettings, Switch
from tests.conftest import require_tool

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
GENERATED = REALDATA / "generated"
RECIPE = REALDATA / "recipe" / "make_flows.sh"
MACS = [f"02:00:5e:10:00:{i:02x}" for i in range(1, 7)]  # gen_synth_pcap.py's six routers
AGENT = "192.0.2.10"  # sfprobe_agentip in the recipe


# --- the truth: synth.pcap parsed here ----------------------------------------------------------


def synth_frames(path: Path) -> list[dict[str, Any]]:
    """Every frame of a little-endian microsecond pcap (what scapy's PcapWriter writes)."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1" and struct.unpack_from("<I", data, 20)[0] == 1
    frames, pos = [], 24
    while pos < len(data):
        _s, _us, incl, orig = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == 0x0800:
            src = ipaddress.ip_address(frame[26:30])
            dst = ipaddress.ip_address(frame[30:34])
        else:
            assert ethertype == 0x86DD
            src = ipaddress.ip_address(frame[22:38])
            dst = ipaddress.ip_address(frame[38:54])
        frames.append({"src_mac": frame[6:12].hex(":"), "dst_mac": frame[0:6].hex(":"), "length": orig,
                       "src_ip": str(src), "dst_ip": str(dst)})  # fmt: skip
    return frames


def max_sample_pool(pcap: Path) -> int:
    """The highest sample_pool in an sFlow capture, read by tshark (the exporter's own count)."""
    tshark = require_tool("tshark")
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-d", "udp.port==16343,sflow", "-T", "fields",
         "-e", "sflow.flow_sample.sample_pool"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return max(int(v) for line in out.split() for v in line.split(",") if v)


def six_member_exchange() -> Exchange:
    """One member and one port per synth MAC, so member pairs are MAC pairs."""
    members = tuple(
        Member(
            id=f"AS6450{i}",
            asn=64500 + i,
            name=f"r{i}",
            billing_entity=f"r{i}",
            joined=datetime.date(2023, 1, 1),
        )
        for i in range(1, 7)
    )
    ports = tuple(
        MemberPort(id=f"sw1:p{i}", switch="sw1", interface=f"p{i}", ifindex=i, speed_mbps=10000, vlan=100,
                   member=f"AS6450{i}", macs=(MACS[i - 1],))
        for i in range(1, 7)
    )  # fmt: skip
    sw = Switch(
        id="sw1", site="KTW", management_address="127.0.0.1", snmp=SnmpSettings(), sflow_agent_address=AGENT
    )
    return Exchange(
        name="synth ix", sites=(Site("KTW", "Katowice"),), switches=(sw,), members=members, ports=ports,
        border_routers=(), transit_contracts=(), port_fees=(),
    )  # fmt: skip


def matrix_by_mac_pair(lake: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    rows = duckdb.sql(
        f"select src_port_id, dst_port_id, sum(estimated_bytes), sum(estimated_packets), sum(sample_count) "
        f"from read_parquet('{lake}/member_matrix/**/*.parquet') group by all"
    ).fetchall()  # type: ignore[union-attr]
    out = {}
    for src_port, dst_port, est_bytes, est_packets, count in rows:
        assert src_port is not None and dst_port is not None  # every synth MAC is configured
        src = MACS[int(src_port.removeprefix("sw1:p")) - 1]
        dst = MACS[int(dst_port.removeprefix("sw1:p")) - 1]
        out[(src, dst)] = (int(est_bytes), int(est_packets), int(count))
    return out


def truth_by_mac_pair(frames: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    truth: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"bytes": 0, "frames": 0, "sq": 0})
    for f in frames:
        wire = f["length"] + 4  # sFlow frame_length includes the FCS
        t = truth[(f["src_mac"], f["dst_mac"])]
        t["bytes"] += wire
        t["frames"] += 1
        t["sq"] += wire * wire
    return dict(truth)


# --- the rate-1 run of the recipe ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rate1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the recipe at sampling rate 1 in a temporary folder (third-party exporters on 127.0.0.1)."""
    for tool in ("pmacctd", "softflowd", "tcpdump", "tshark"):
        require_tool(tool)
    scapy = subprocess.run(["/usr/bin/python3", "-c", "import scapy"], capture_output=True, timeout=60)
    if scapy.returncode != 0:
        pytest.fail("the recipe needs Debian's python3-scapy: apt-get install python3-scapy (envs/setup.sh)")
    out = tmp_path_factory.mktemp("flows") / "out"
    run = subprocess.run(
        ["bash", str(RECIPE), str(out), "3000", "7", "1"], capture_output=True, text=True, timeout=600,
        cwd=out.parent,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    for name in ("synth.pcap", "pmacct-sfprobe.datagrams.bin", "pmacct-sfprobe.pcap", "softflowd-v10.pcap"):
        assert (out / name).stat().st_size > 0, name
    return out


def read_datagrams(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("!I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def collect(datagrams: list[bytes], spool: Path) -> None:
    """Send datagrams to a real ``peerpool collect`` on 127.0.0.1 and stop it (SIGTERM)."""
    cmd = [sys.executable, "-m", "peerpool.cli", "collect", "--spool", str(spool), "--sflow", "127.0.0.1:0",
           "--ipfix", "off", "--netflow", "off", "--max-seconds", "60", "--stats-seconds", "0.3"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        stats_path = spool / "_stats.json"
        deadline = time.monotonic() + 20
        while not stats_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port = json.loads(stats_path.read_text())["listeners"][0]["port"]
        for i, d in enumerate(datagrams):
            sender.sendto(d, ("127.0.0.1", port))
            if i % 50 == 49:
                time.sleep(0.002)
        while time.monotonic() < deadline:
            if json.loads(stats_path.read_text())["listeners"][0]["datagrams_spooled"] >= len(datagrams):
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        sender.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_sfprobe_rate_1_matrix_equals_the_capture(rate1: Path, tmp_path: Path) -> None:
    datagrams = read_datagrams(rate1 / "pmacct-sfprobe.datagrams.bin")
    spool = tmp_path / "spool"
    collect(datagrams, spool)
    lake = tmp_path / "lake"
    result = process_files([spool], lake, exchange=six_member_exchange())
    assert sum(f.datagrams for f in result.files) == len(datagrams)
    accounted = max_sample_pool(rate1 / "pmacct-sfprobe.pcap")
    frames = synth_frames(rate1 / "synth.pcap")
    assert len(frames) == 3000 and 2990 <= accounted <= 3000
    truth = truth_by_mac_pair(frames[:accounted])
    got = matrix_by_mac_pair(lake)
    assert {k: (v["bytes"], v["frames"], v["frames"]) for k, v in truth.items()} == got
    assert sum(f.samples_missing + f.datagrams_missing for f in result.files) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "exporter", ["softflowd-v10", "softflowd-v9", "pmacct-nfprobe-v10", "pmacct-nfprobe-v9"]
)
@pytest.mark.parametrize("run", ["rate1", "committed"])
def test_ipfix_and_v9_exporters_equal_the_capture(
    rate1: Path, tmp_path: Path, exporter: str, run: str
) -> None:
    folder = rate1 if run == "rate1" else GENERATED
    lake = tmp_path / "lake"
    result = process_files([folder / f"{exporter}.pcap"], lake)
    assert result.files[0].quarantined == 0
    frames = synth_frames(folder / "synth.pcap")
    by_ip: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    by_mac: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for f in frames:
        ip_bytes = f["length"] - 14  # octetDeltaCount counts the IP packet
        by_ip[(f["src_ip"], f["dst_ip"])][0] += ip_bytes
        by_ip[(f["src_ip"], f["dst_ip"])][1] += 1
        by_mac[(f["src_mac"], f["dst_mac"])][0] += ip_bytes
        by_mac[(f["src_mac"], f["dst_mac"])][1] += 1
    flows = f"read_parquet('{lake}/flows/**/*.parquet')"
    rows = duckdb.sql(f"select src_ip, dst_ip, sum(bytes), sum(packets) from {flows} group by all").fetchall()  # type: ignore[union-attr]
    assert {(r[0], r[1]): [int(r[2]), int(r[3])] for r in rows} == dict(by_ip)
    if exporter.startswith("pmacct"):  # nfprobe exports MACs (aggregate src_mac, dst_mac); softflowd does not
        rows = duckdb.sql(
            f"select src_mac, dst_mac, sum(bytes), sum(packets) from {flows} group by all"
        ).fetchall()  # type: ignore[union-attr]
        assert {(r[0], r[1]): [int(r[2]), int(r[3])] for r in rows} == dict(by_mac)


def test_sfprobe_rate_4_within_sampling_error(tmp_path: Path) -> None:
    """The committed run (sampling 1:4): estimates within 4 standard deviations, per MAC pair and in total."""
    datagrams = read_datagrams(GENERATED / "pmacct-sfprobe.datagrams.bin")
    spool_file = tmp_path / "spool" / "20231114T2213-synth-1-000001.spool"
    spool_file.parent.mkdir(parents=True)
    af, raw = sp.pack_address("127.0.0.1")
    data = bytearray(sp.MAGIC)
    for i, d in enumerate(datagrams):
        data += sp.encode_record(d, 1_700_000_000 * 10**9 + i * 10**7, af, raw, 40000, sp.PROTO_SFLOW5)
    spool_file.write_bytes(bytes(data))
    lake = tmp_path / "lake"
    process_files([spool_file], lake, exchange=six_member_exchange())
    accounted = max_sample_pool(GENERATED / "pmacct-sfprobe.pcap")
    frames = synth_frames(GENERATED / "synth.pcap")
    assert 2950 <= accounted <= 3000
    truth = truth_by_mac_pair(frames[:accounted])
    got = matrix_by_mac_pair(lake)
    rate = 4
    assert set(got) <= set(truth) and len(got) >= 25
    z_bytes, z_packets = [], []
    for pair, t in truth.items():
        est_bytes, est_packets, _count = got.get(pair, (0, 0, 0))
        z_bytes.append((est_bytes - t["bytes"]) / math.sqrt((rate - 1) * t["sq"]))
        z_packets.append((est_packets - t["frames"]) / math.sqrt((rate - 1) * t["frames"]))
    assert max(abs(z) for z in z_bytes) < 4, z_bytes
    assert max(abs(z) for z in z_packets) < 4, z_packets
    total_true = sum(t["bytes"] for t in truth.values())
    total_est = sum(v[0] for v in got.values())
    total_sigma = math.sqrt((rate - 1) * sum(t["sq"] for t in truth.values()))
    assert abs(total_est - total_true) < 4 * total_sigma
    # the domain rule of thumb (1.96 / sqrt(n) relative error at 95%) holds for the total
    n = sum(v[2] for v in got.values())
    assert abs(total_est - total_true) / total_true < 1.96 / math.sqrt(n)
