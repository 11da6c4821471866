"""``peerpool asn build``: MRT dumps to a pyasn database.

Independent references: the ``.ipasn.dat`` files pyasn 1.6.2's own converter made from the
same dumps (realdata/asn/derived), pyasn's lookups, the hex of the 3-record RIPE sample
decoded by hand, and MRT records assembled here byte by byte from RFC 6396 / RFC 4271.
"""

from __future__ import annotations

import bz2
import gzip
import ipaddress
import struct
from pathlib import Path

import pyasn
import pytest
from click.testing import CliRunner

from ingest import asn
from peerpool.errors import InputError

DUMPS = ["rib.20140523.0600_firstMB", "rib6.20151101.0600_firstMB", "rib.20080501.0644_firstMB"]


def reference_lines(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(";"):
            prefix, origin = line.split("\t")
            out[prefix] = int(origin)
    return out


def assert_same_lookups(ours: Path, reference: Path) -> int:
    """Every prefix of the reference: its first and last address look up the same in both."""
    ref_db, our_db = pyasn.pyasn(str(reference)), pyasn.pyasn(str(ours))
    checked = 0
    for prefix in reference_lines(reference):
        net = ipaddress.ip_network(prefix)
        for address in (net.network_address, net.broadcast_address):
            assert our_db.lookup(str(address)) == ref_db.lookup(str(address)), (prefix, address)
            checked += 1
    return checked


@pytest.mark.parametrize("name", DUMPS)
def test_complete_dumps_give_the_reference_lookups(realdata: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / f"{name}.dat"
    result = asn.build_database([realdata / "asn" / "derived" / f"{name}.complete.bz2"], out)
    reference = realdata / "asn" / "derived" / f"{name}.ipasn.dat"
    ref = reference_lines(reference)
    assert reference_lines(out) == ref
    assert result.v4 + result.v6 == len(ref) > 3000
    assert assert_same_lookups(out, reference) == 2 * len(ref)
    assert not result.reports[0].truncated


def test_truncated_dump_is_refused_by_default(realdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.dat"
    with pytest.raises(InputError) as info:
        asn.build_database([realdata / "asn" / "rib.20140523.0600_firstMB.bz2"], out)
    message = str(info.value)
    assert "rib.20140523.0600_firstMB.bz2: the dump is truncated" in message
    assert "--allow-truncated" in message and "nothing was written" in message
    assert not out.exists()


@pytest.mark.parametrize("name", DUMPS)
def test_truncated_dump_converts_its_complete_records_when_allowed(
    realdata: Path, tmp_path: Path, name: str
) -> None:
    """The upstream file cut at 1 MiB holds the same whole records as the derived .complete.bz2."""
    out = tmp_path / f"{name}.dat"
    result = asn.build_database([realdata / "asn" / f"{name}.bz2"], out, allow_truncated=True)
    assert "ends before its end-of-stream marker" in result.reports[0].truncated
    assert "last record is cut off" in result.reports[0].truncated
    reference = realdata / "asn" / "derived" / f"{name}.ipasn.dat"
    assert reference_lines(out) == reference_lines(reference)


def test_cli_reports_truncation_and_exit_code(realdata: Path, tmp_path: Path) -> None:
    from peerpool.cli import cli

    runner = CliRunner()
    rib = str(realdata / "asn" / "rib6.20151101.0600_firstMB.bz2")
    refused = runner.invoke(cli, ["asn", "build", rib, "--out", str(tmp_path / "a.dat")])
    assert refused.exit_code != 0 and isinstance(refused.exception, InputError)
    allowed = runner.invoke(cli, ["asn", "build", rib, "--out", str(tmp_path / "a.dat"), "--allow-truncated"])
    assert allowed.exit_code == 0, allowed.output
    assert "warning: truncated dump" in allowed.output
    assert "6,870 ipv6 prefixes" in allowed.output


def test_ripe_sample_with_empty_as_path(realdata: Path, tmp_path: Path) -> None:
    """bview.20140112.1600_3samples.bz2 (pyasn's converter stops on it with IndexError).

    Decoded by hand from ``bzcat | xxd``: three RIB_IPV4_UNICAST records, no PEER_INDEX_TABLE.
    1.0.0.0/24: AS_PATH 02 02 00006240 00003b41 = sequence [25152, 15169] -> 15169.
    84.205.86.0/24: AS_PATH attribute 50 02 0000 (extended length, zero bytes) -> empty path.
    1.0.20.0/23: AS_PATH 02 03 00006240 000009d4 000009d7 = [25152, 2516, 2519] -> 2519.
    """
    out = tmp_path / "bview.dat"
    result = asn.build_database([realdata / "asn" / "bview.20140112.1600_3samples.bz2"], out)
    assert reference_lines(out) == {"1.0.0.0/24": 15169, "1.0.20.0/23": 2519}
    report = result.reports[0]
    assert report.skipped == {asn.EMPTY_AS_PATH: 1}
    assert report.examples[asn.EMPTY_AS_PATH] == ["84.205.86.0/24"]
    db = pyasn.pyasn(str(out))
    assert db.lookup("1.0.0.77") == (15169, "1.0.0.0/24")
    assert db.lookup("84.205.86.1") == (None, None)


# --- hand-made MRT records (RFC 6396 section 4.2 and 4.3, RFC 4271 section 4.3) -------------


def attr(attr_type: int, value: bytes, flags: int = 0x40) -> bytes:
    if len(value) > 255:
        return struct.pack(">BBH", flags | 0x10, attr_type, len(value)) + value
    return struct.pack(">BBB", flags, attr_type, len(value)) + value


def path4(*segments: tuple[int, list[int]]) -> bytes:
    return b"".join(struct.pack(">BB", t, len(a)) + struct.pack(f">{len(a)}I", *a) for t, a in segments)


def path2(*segments: tuple[int, list[int]]) -> bytes:
    return b"".join(struct.pack(">BB", t, len(a)) + struct.pack(f">{len(a)}H", *a) for t, a in segments)


def mrt(mrt_type: int, subtype: int, body: bytes) -> bytes:
    return struct.pack(">IHHI", 1_400_000_000, mrt_type, subtype, len(body)) + body


def td2_rib(subtype: int, prefix: str, entries: list[bytes], addpath: bool = False) -> bytes:
    net = ipaddress.ip_network(prefix)
    octets = (net.prefixlen + 7) // 8
    body = struct.pack(">IB", 7, net.prefixlen) + net.network_address.packed[:octets]
    body += struct.pack(">H", len(entries))
    for attrs in entries:
        body += struct.pack(">HI", 0, 1_400_000_000)
        if addpath:
            body += struct.pack(">I", 42)
        body += struct.pack(">H", len(attrs)) + attrs
    return mrt(13, subtype, body)


def td1(prefix: str, attrs: bytes) -> bytes:
    net = ipaddress.ip_network(prefix)
    body = struct.pack(">HH", 0, 1) + net.network_address.packed + struct.pack(">BBI", net.prefixlen, 1, 0)
    body += bytes(4) + struct.pack(">HH", 65000, len(attrs)) + attrs
    return mrt(12, 1, body)


ORIGIN_IGP = attr(1, b"\x00")
NEXT_HOP = attr(3, bytes([192, 0, 2, 1]))
SEQ, SET = 2, 1


def handmade_dump() -> bytes:
    peer_index = mrt(13, 1, struct.pack(">IH", 0x0A000001, 0) + struct.pack(">H", 0))
    return b"".join(
        [
            peer_index,
            # plain sequence: origin is the last AS
            td2_rib(
                2,
                "203.0.113.0/24",
                [ORIGIN_IGP + attr(2, path4((SEQ, [174, 3356, 64500 - 1000]))) + NEXT_HOP],
            ),
            # private tail: the last public AS (174) is the origin
            td2_rib(2, "198.51.100.0/24", [ORIGIN_IGP + attr(2, path4((SEQ, [3356, 174, 64512, 65001])))]),
            # only private ASes: skipped and counted (pyasn: assert origin)
            td2_rib(2, "192.0.2.0/24", [ORIGIN_IGP + attr(2, path4((SEQ, [64512, 4200000001])))]),
            # first entry empty (iBGP), second entry has a path: the second entry's origin
            td2_rib(
                2,
                "100.64.0.0/10",
                [ORIGIN_IGP + attr(2, b""), ORIGIN_IGP + attr(2, path4((SEQ, [6939, 13335])))],
            ),
            # every entry empty: skipped and counted (pyasn: IndexError)
            td2_rib(2, "100.128.0.0/9", [ORIGIN_IGP + attr(2, b"")]),
            # origin in an AS_SET with one public member
            td2_rib(2, "10.0.0.0/8", [attr(2, path4((SEQ, [1299]), (SET, [64999, 8075])))]),
            # IPv6 with ADD-PATH (RFC 8050 subtype 10)
            td2_rib(10, "2001:db8:1000::/36", [attr(2, path4((SEQ, [6939, 3333])))], addpath=True),
            # multicast RIB: not used for origin lookups
            td2_rib(3, "172.16.0.0/12", [attr(2, path4((SEQ, [1])))]),
            # TABLE_DUMP v1 with AS_TRANS in AS_PATH and the real 4-byte origin in AS4_PATH (RFC 6793)
            td1(
                "185.1.0.0/24",
                ORIGIN_IGP + attr(2, path2((SEQ, [701, 23456]))) + attr(17, path4((SEQ, [196615])), 0xC0),
            ),
            # TABLE_DUMP v1 repeats: the first peer's origin wins
            td1("185.1.0.0/24", ORIGIN_IGP + attr(2, path2((SEQ, [701, 9999])))),
            # default route: dropped
            td2_rib(2, "0.0.0.0/0", [attr(2, path4((SEQ, [3356])))]),
        ]
    )


EXPECTED = {
    "203.0.113.0/24": 63500,
    "198.51.100.0/24": 174,
    "100.64.0.0/10": 13335,
    "10.0.0.0/8": 8075,
    "2001:db8:1000::/36": 3333,
    "185.1.0.0/24": 196615,
}


@pytest.mark.parametrize("compression", ["plain", "gzip", "bz2"])
def test_handmade_dump_every_case(tmp_path: Path, compression: str) -> None:
    data = handmade_dump()
    rib = tmp_path / f"rib.{compression}"
    rib.write_bytes({"plain": data, "gzip": gzip.compress(data), "bz2": bz2.compress(data)}[compression])
    out = tmp_path / "out.dat"
    result = asn.build_database([rib], out)
    assert reference_lines(out) == EXPECTED
    report = result.reports[0]
    assert report.records == 12 and not report.truncated
    assert report.skipped == {
        asn.PRIVATE_ONLY_ORIGIN: 1,
        asn.EMPTY_AS_PATH: 1,
        asn.MULTICAST: 1,
        asn.DEFAULT_ROUTE: 1,
    }
    assert report.examples[asn.PRIVATE_ONLY_ORIGIN] == ["192.0.2.0/24"]
    assert report.examples[asn.EMPTY_AS_PATH] == ["100.128.0.0/9"]
    db = pyasn.pyasn(str(out))
    assert db.lookup("2001:db8:1abc::1") == (3333, "2001:db8:1000::/36")
    assert db.lookup("198.51.100.200") == (174, "198.51.100.0/24")


def test_handmade_dump_cut_in_a_record(tmp_path: Path) -> None:
    data = handmade_dump()
    rib = tmp_path / "cut.mrt"
    rib.write_bytes(data[: len(data) - 5])
    with pytest.raises(InputError, match="last record is cut off"):
        asn.build_database([rib], tmp_path / "o.dat")
    result = asn.build_database([rib], tmp_path / "o.dat", allow_truncated=True)
    # the default route record lost its end; everything before it is kept
    assert reference_lines(tmp_path / "o.dat") == EXPECTED
    assert result.reports[0].records == 11


def test_several_dumps_make_one_database(realdata: Path, tmp_path: Path) -> None:
    derived = realdata / "asn" / "derived"
    out = tmp_path / "both.dat"
    result = asn.build_database(
        [
            derived / "rib.20140523.0600_firstMB.complete.bz2",
            derived / "rib6.20151101.0600_firstMB.complete.bz2",
        ],
        out,
    )
    assert (result.v4, result.v6) == (9071, 6870)
    assert_same_lookups(out, derived / "rib6.20151101.0600_firstMB.ipasn.dat")
    assert_same_lookups(out, derived / "rib.20140523.0600_firstMB.ipasn.dat")


def test_not_a_dump(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mrt"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="holds no mrt record"):
        asn.build_database([empty], tmp_path / "o.dat")
    with pytest.raises(InputError, match="no such mrt dump"):
        asn.build_database([tmp_path / "missing.bz2"], tmp_path / "o.dat")


def test_merge_as4_path_rfc6793_example() -> None:
    """RFC 6793 4.2.3: AS_PATH longer than AS4_PATH keeps the leading 2-byte part."""
    as_path = [(SEQ, (3356, 23456, 23456))]
    as4_path = [(SEQ, (196608, 196609))]
    assert asn.merge_as4_path(as_path, as4_path) == [(SEQ, (3356,)), (SEQ, (196608, 196609))]
    # AS4_PATH longer than AS_PATH: ignored
    assert asn.merge_as4_path([(SEQ, (1,))], [(SEQ, (2, 3))]) == [(SEQ, (1,))]
