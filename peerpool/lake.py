"""The Parquet lake: layout, table schemas and the one way to write a part file.

This is the data contract between ingest (writers) and the dbt models (readers).
Every table lives in ``LAKE/<table>/date=YYYY-MM-DD/[hour=HH/]part-<key>.parquet``.
``<key>`` is deterministic for the input it came from (for example the spool file's
name), so processing the same input again replaces the same part file instead of
adding a second one: re-processing never counts twice.

Timestamps are UTC, microsecond precision, as ``timestamp[us, tz=UTC]``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from peerpool.errors import LakeError

TS = pa.timestamp("us", tz="UTC")

# One row per sFlow flow sample or IPFIX / NetFlow v9 flow record.
FLOWS = pa.schema(
    [
        ("received_at", TS),  # arrival at the collector (spool) or pcap timestamp
        ("flow_protocol", pa.string()),  # sflow5 | ipfix | netflow9
        ("exporter_address", pa.string()),  # sFlow agent address / IPFIX exporter (datagram source)
        ("observation_domain", pa.int64()),  # sFlow sub-agent id / IPFIX domain / v9 source id
        ("sequence_number", pa.int64()),  # sample sequence (sFlow) / datagram sequence (IPFIX, v9)
        ("sampling_rate", pa.int64()),
        ("sample_pool", pa.int64()),  # sFlow only
        ("drops", pa.int64()),  # sFlow only
        ("input_ifindex", pa.int64()),
        ("output_ifindex", pa.int64()),
        ("src_mac", pa.string()),  # aa:bb:cc:dd:ee:ff
        ("dst_mac", pa.string()),
        ("vlan", pa.int32()),  # outer 802.1Q id, or extended-switch src vlan
        ("ethertype", pa.int32()),
        ("ip_version", pa.int8()),  # 4, 6 or null
        ("src_ip", pa.string()),
        ("dst_ip", pa.string()),
        ("ip_protocol", pa.int16()),
        ("src_port", pa.int32()),
        ("dst_port", pa.int32()),
        ("bytes", pa.int64()),  # sFlow: sampled frame length; IPFIX/v9: record's octet delta
        ("packets", pa.int64()),  # sFlow: 1
        ("estimated_bytes", pa.int64()),  # bytes x sampling rate
        ("estimated_packets", pa.int64()),
        ("flow_start", TS),  # IPFIX/v9 when present
        ("flow_end", TS),
        ("src_member_id", pa.string()),  # enrichment (null = unknown)
        ("dst_member_id", pa.string()),
        ("src_port_id", pa.string()),
        ("dst_port_id", pa.string()),
        ("src_asn", pa.int64()),
        ("dst_asn", pa.int64()),
        ("source_file", pa.string()),  # spool or pcap file the row came from
    ]
)
# The FLOWS columns the pipeline adds after decoding (enrichment and the source file) ...
FLOWS_ENRICHMENT = ("src_member_id", "dst_member_id", "src_port_id", "dst_port_id", "src_asn", "dst_asn",
                    "source_file")  # fmt: skip
# ... and FLOWS as the decoders hand their records over: the rest, times as int64 nanoseconds.
FLOWS_DECODED = pa.schema(
    [(f.name, pa.int64() if f.type == TS else f.type) for f in FLOWS if f.name not in FLOWS_ENRICHMENT]
)

# Pre-aggregated member-to-member matrix, written as data arrives (the models' main input).
MEMBER_MATRIX = pa.schema(
    [
        ("interval_start", TS),  # 5-minute bin (UTC) of received_at
        ("site", pa.string()),
        ("exporter_address", pa.string()),
        ("vlan", pa.int32()),
        ("ip_version", pa.int8()),
        ("src_member_id", pa.string()),  # null when the MAC is unknown
        ("dst_member_id", pa.string()),
        ("src_port_id", pa.string()),
        ("dst_port_id", pa.string()),
        ("estimated_bytes", pa.int64()),
        ("estimated_packets", pa.int64()),
        ("sample_count", pa.int64()),
        ("source_file", pa.string()),
    ]
)

# Raw counter reads: SNMP polls, imported CSV/JSON, sFlow counter samples. A failed read is a row
# with ok = false and null counters (never a zero).
PORT_COUNTERS = pa.schema(
    [
        ("polled_at", TS),
        ("source", pa.string()),  # snmp | import | sflow
        ("device_id", pa.string()),  # switch / router id (config), or the agent address if unknown
        ("device_address", pa.string()),
        ("ifindex", pa.int64()),
        ("port_id", pa.string()),  # config port id when known
        ("ok", pa.bool_()),
        ("error", pa.string()),  # why the read failed (timeout, no such instance, ...)
        ("sys_uptime_cs", pa.int64()),  # sysUpTime in hundredths of a second
        ("counter_bits", pa.int8()),  # 64 (ifHC*) or 32 (ifIn/OutOctets)
        ("in_octets", pa.uint64()),
        ("out_octets", pa.uint64()),
        ("in_ucast_pkts", pa.uint64()),
        ("out_ucast_pkts", pa.uint64()),
        ("if_high_speed_mbps", pa.int64()),
        ("if_oper_status", pa.int8()),  # 1 up, 2 down, ... (IF-MIB)
        ("if_name", pa.string()),
        ("if_alias", pa.string()),
        ("source_file", pa.string()),
    ]
)

# Loss accounting per agent and 5-minute interval, from sequence numbers.
FLOW_LOSS = pa.schema(
    [
        ("interval_start", TS),
        ("flow_protocol", pa.string()),
        ("exporter_address", pa.string()),
        ("observation_domain", pa.int64()),
        ("datagrams_received", pa.int64()),
        ("datagrams_missing", pa.int64()),
        ("samples_received", pa.int64()),
        ("samples_missing", pa.int64()),
        ("source_file", pa.string()),
    ]
)

# Datagrams that could not be decoded, kept whole with the reason.
QUARANTINE = pa.schema(
    [
        ("received_at", TS),
        ("flow_protocol", pa.string()),
        ("exporter_address", pa.string()),
        ("reason", pa.string()),
        ("offset", pa.int64()),
        ("datagram", pa.binary()),
        ("source_file", pa.string()),
    ]
)

# Flow samples whose MAC (with VLAN) is not on any configured port, counted per interval.
UNKNOWN_MACS = pa.schema(
    [
        ("interval_start", TS),
        ("exporter_address", pa.string()),
        ("vlan", pa.int32()),
        ("mac", pa.string()),
        ("direction", pa.string()),  # src | dst
        ("sample_count", pa.int64()),
        ("estimated_bytes", pa.int64()),
        ("source_file", pa.string()),
    ]
)

# Counter hygiene output (ingest/counters/hygiene.py): one row per port and 5-minute interval,
# every interval of the period present (gaps explicit). Bytes are whole numbers: a delta spanning
# several intervals is split by time overlap with largest-remainder rounding, so sums are exact.
PORT_RATES_5MIN = pa.schema(
    [
        ("interval_start", TS),
        ("port_id", pa.string()),  # member port or border-router port id from the configuration
        ("device_id", pa.string()),
        ("ifindex", pa.int64()),
        ("speed_mbps", pa.int64()),
        ("in_bytes", pa.int64()),  # null when the interval has no trustworthy rate
        ("out_bytes", pa.int64()),
        ("in_packets", pa.int64()),
        ("out_packets", pa.int64()),
        ("in_bps", pa.float64()),  # in_bytes * 8 / 300
        ("out_bps", pa.float64()),
        ("is_trusted", pa.bool_()),  # a rate fit for billing
        ("is_gap", pa.bool_()),  # no usable delta covers this interval
        ("is_failed_read", pa.bool_()),  # a failed poll bounds this interval
        ("is_reset", pa.bool_()),  # counter reset / reboot: delta discarded
        ("is_wrap", pa.bool_()),  # 32-bit wrap corrected
        ("is_over_speed", pa.bool_()),  # rate above port speed: excluded
        ("source", pa.string()),  # which raw source the rate came from (snmp | import | sflow)
    ]
)

# Outages from the same polls: oper status down and device unreachable are kept apart.
PORT_OUTAGES = pa.schema(
    [
        ("port_id", pa.string()),
        ("device_id", pa.string()),
        ("cause", pa.string()),  # oper_down | unreachable
        ("start_at", TS),
        ("end_at", TS),  # null while ongoing
        ("duration_s", pa.int64()),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "flows": FLOWS,
    "member_matrix": MEMBER_MATRIX,
    "port_counters": PORT_COUNTERS,
    "flow_loss": FLOW_LOSS,
    "quarantine": QUARANTINE,
    "unknown_macs": UNKNOWN_MACS,
    "port_rates_5min": PORT_RATES_5MIN,
    "port_outages": PORT_OUTAGES,
}

_KEY_RE = re.compile(r"^[A-Za-z0-9._=-]+$")


def partition_dir(lake: Path, table: str, day: dt.date, hour: int | None = None) -> Path:
    path = lake / table / f"date={day.isoformat()}"
    if hour is not None:
        path = path / f"hour={hour:02d}"
    return path


def write_part(
    lake: Path, table: str, batch: pa.Table, day: dt.date, key: str, hour: int | None = None
) -> Path:
    """Write one part file atomically (temp file, fsync, rename) and return its path.

    The same (table, day, hour, key) always maps to the same file, so a re-run replaces it.
    """
    schema = TABLES[table]
    if not _KEY_RE.match(key):
        raise LakeError(f"part key {key!r} for table {table} has characters outside [A-Za-z0-9._=-]")
    if batch.schema != schema:
        batch = batch.select(schema.names).cast(schema)
    directory = partition_dir(lake, table, day, hour)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"part-{key}.parquet"
    tmp = directory / f".part-{key}.parquet.tmp-{os.getpid()}"
    pq.write_table(batch, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def glob(lake: Path, table: str) -> str:
    """The glob dbt and DuckDB use to read a table (hive partitioning)."""
    return str(lake / table / "**" / "*.parquet")
