"""The C sFlow decoder (ingest/sflow/_fastsflow.c) against the pure-Python reference decoder.

The reference, ``ingest.sflow.decode.decode_datagram``, is itself checked against tshark
(tests/test_sflow_tshark.py, which now runs on the C decoder too, since ``ingest.sflow.decode_datagram``
is the C one when it is built). Here the two decoders must agree on every field of every sample,
on the error message and offset and on the partial result of every input (tests/sflow_fast_fuzz.py):

* every sFlow datagram of the real captures (pcaps/**, generated/, the bench corpus);
* mutations of them: truncation at every offset, bit flips, random overwrites;
* hypothesis-generated datagrams: random bytes, random bytes behind a valid header, structurally
  plausible datagrams with random formats, lengths and counts;
* counts and lengths of 2**32 - 1;
* every bounded field (protocol, ports, EtherType, frame lengths) around its bound, and datagrams
  without samples;
* spool files with damaged records, read by ``FlowBatch.add_spool`` against ingest.spool's reader.

The fuzzing runs in a subprocess, so a crash in C fails the test with its signal instead of killing
pytest, and with each datagram against a PROT_NONE guard page on either side, so a read past the
datagram's bytes faults. (By hand, ``PYTHONMALLOC=malloc valgrind --error-exitcode=99 .venvs/core/bin/python
-m tests.sflow_fast_fuzz mutations --scale 0.05`` runs the same under memcheck; see bench/RESULTS.md.)

IPv6 text comes from the module's own formatter (inet_ntop is its slowest step); it is checked here
against ``socket.inet_ntop``, which is what the reference uses.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ingest.sflow import fast
from ingest.sflow.decode import decode_datagram as decode_py
from tests.test_sflow_decode import datagram, flow_sample, sampled_ipv6

REPO = Path(__file__).resolve().parents[1]


def run_fuzz(routine: str, scale: float, timeout: int) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.sflow_fast_fuzz", routine, "--scale", str(scale)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        pytest.fail(f"the C decoder crashed ({name}) during '{routine}':\n{done.stdout}\n{done.stderr}")
    assert done.returncode == 0, f"'{routine}' found disagreements:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_extension_is_built() -> None:
    assert fast.AVAILABLE, "the C decoder is not built: install the package (uv pip install --no-deps -e .)"
    assert fast.enabled() or os.environ.get(fast.PURE_ENV)


@pytest.mark.timeout(300)
def test_every_real_datagram_agrees() -> None:
    out = run_fuzz("real", 1.0, 280)
    assert int(out.split()[0]) > 4_600  # bench corpus 4,529 + generated 113 + the pcaps


@pytest.mark.timeout(300)
def test_mutated_real_datagrams_agree() -> None:
    out = run_fuzz("mutations", 0.5, 280)
    assert int(out.split()[0]) > 30_000


@pytest.mark.timeout(300)
def test_hypothesis_datagrams_agree() -> None:
    out = run_fuzz("hypothesis", 0.4, 280)
    assert int(out.split()[0]) >= 1_500


@pytest.mark.timeout(300)
def test_spool_files_with_damage_agree() -> None:
    """FlowBatch.add_spool on spool files with flipped bits, bad lengths, garbage and torn records:
    every record once and in order, the clean sFlow ones decoded as the reference decodes them, the
    rest handed to the spool reader, and the same damage list as the reader's."""
    out = run_fuzz("spool", 1.0, 280)
    assert int(out.split()[0]) >= 400


@pytest.mark.timeout(120)
def test_huge_claims_agree() -> None:
    run_fuzz("huge", 1.0, 110)


@pytest.mark.timeout(120)
def test_values_at_and_past_the_bounds_agree() -> None:
    """Every bounded field at values around its bound and the lake column's limits, and datagrams
    without samples: the same samples, errors (message, offset, partial) and flows columns."""
    out = run_fuzz("limits", 1.0, 110)
    # empty datagrams of 28 and 40 bytes, each also with trailing bytes and cut at every length;
    # 13 values x 11 fields x 2 rates x 2 placements
    assert int(out.split()[0]) == (2 + 28) + (2 + 40) + 13 * 11 * 2 * 2


def test_spool_checksum_is_zlib_crc32() -> None:
    """add_spool checks spool records with its own CRC-32; it must be zlib's (what the writer uses)."""
    from ingest.sflow import _fastsflow

    rng = random.Random(32)
    for size in [*range(0, 40), *(rng.randrange(40, 70_000) for _ in range(300))]:
        data = rng.randbytes(size)
        offset = rng.randrange(0, 8)
        assert _fastsflow.crc32(data) == zlib.crc32(data), size
        assert _fastsflow.crc32(memoryview(data)[offset:]) == zlib.crc32(data[offset:]), size


def _addresses() -> list[bytes]:
    """IPv6 addresses with every kind of zero run, the IPv4-embedding forms, and random ones."""
    rng = random.Random(5952)
    words_sets = [
        [0] * 8, [0] * 7 + [1], [0] * 7 + [2], [1] + [0] * 7, [0] * 5 + [0xFFFF, 0x0A00, 1],
        [0] * 6 + [0x0A00, 1], [0] * 6 + [0xFFFF, 1], [0] * 4 + [1, 0xFFFF, 0x0A00, 1],
        [0x2001, 0xDB8, 0, 1, 0, 0, 0, 1], [0x2001, 0xDB8, 0, 0, 1, 0, 0, 1], [1, 0, 1, 0, 1, 0, 1, 0],
        [0x2001, 0xDB8] + [0] * 6, [0, 0, 1, 0, 0, 0, 0, 0], [0xFE80, 0, 0, 0, 0x1234, 0, 0, 0xABCD],
    ]  # fmt: skip
    for pattern in range(256):
        words_sets.append(
            [(0 if pattern >> i & 1 else rng.choice([1, 0xF, 0xFF, 0xFFF, 0xFFFF])) for i in range(8)]
        )
    for _ in range(2000):
        words_sets.append([rng.choice([0, 0, 0, rng.randrange(1 << 16)]) for _ in range(8)])
    return [b"".join(w.to_bytes(2, "big") for w in words) for words in words_sets]


def test_ipv6_text_is_what_socket_inet_ntop_gives() -> None:
    addresses = _addresses()
    decode_c = fast.decode_datagram_c
    assert decode_c is not None
    checked = 0
    for k in range(0, len(addresses) - 1, 2):
        src, dst = (socket.inet_ntop(socket.AF_INET6, a) for a in addresses[k : k + 2])
        data = datagram([flow_sample([sampled_ipv6(1500, 6, src, dst, 1, 2, 0)])])
        (sample,) = decode_c(data).flow_samples
        assert (sample.src_ip, sample.dst_ip) == (src, dst)
        assert decode_py(data).flow_samples == [sample]
        checked += 2
    assert checked > 2000


def test_without_the_extension_the_pure_decoder_runs(tmp_path: Path) -> None:
    """With the C module missing (as after a build without a compiler), importing warns once and
    everything decodes with the reference; the lake is the same as the C path's."""
    pcap = REPO.parent / "shared" / "realdata" / "generated" / "pmacct-sfprobe.pcap"
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "ingest.sflow._fastsflow":
            raise ImportError("blocked by the test: no C extension")
        return None
sys.meta_path.insert(0, Block())
import ingest.sflow as s, ingest.sflow.decode as d, ingest.sflow.fast as f
from ingest.pipeline import process_files
r = process_files([{str(pcap)!r}], {str(tmp_path / "pure")!r})
print(f.AVAILABLE, f.enabled(), s.decode_datagram is d.decode_datagram, r.files[0].flow_samples)
"""
    env = {k: v for k, v in os.environ.items() if k != fast.PURE_ENV}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    available, enabled, is_pure, samples = done.stdout.split()
    assert (available, enabled, is_pure) == ("False", "False", "True")
    assert "the C decoder is not built" in done.stderr
    from ingest.pipeline import process_files
    from tests.test_pipeline_fast import lake_tables

    result = process_files([pcap], tmp_path / "fast")
    assert int(samples) == result.files[0].flow_samples > 600
    pure, fast_lake = lake_tables(tmp_path / "pure"), lake_tables(tmp_path / "fast")
    assert sorted(pure) == sorted(fast_lake)
    assert all(fast_lake[name].equals(table) for name, table in pure.items())
