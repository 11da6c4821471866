"""The ground truth: Parquet tables under ``DIR/truth/`` (schemas in this package's README.md).

Large tables are partitioned by the UTC date of ``interval_start``
(``truth/<table>/date=YYYY-MM-DD/part-0.parquet``) and written a row group at a time, so a
month at 500 members never sits in memory.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("us", tz="UTC")

PORT_TRAFFIC = pa.schema(
    [
        ("interval_start", TS),
        ("port_id", pa.string()),
        ("device_id", pa.string()),
        ("ifindex", pa.int64()),
        ("member_id", pa.string()),  # null for border-router transit ports
        ("is_transit", pa.bool_()),
        ("oper_status", pa.int8()),  # 1 up, 2 down (outage)
        ("in_bytes", pa.int64()),  # frames into the device from the far end, FCS included
        ("out_bytes", pa.int64()),
        ("in_packets", pa.int64()),
        ("out_packets", pa.int64()),
        ("poll_start_at", TS),  # the poll in this interval ...
        ("poll_end_at", TS),  # ... and the next one: what the counters see between them
        ("poll_in_bytes", pa.int64()),
        ("poll_out_bytes", pa.int64()),
        ("poll_in_packets", pa.int64()),
        ("poll_out_packets", pa.int64()),
    ]
)
MEMBER_PAIRS = pa.schema(
    [
        ("interval_start", TS),
        ("src_member_id", pa.string()),
        ("dst_member_id", pa.string()),
        ("ip_version", pa.int8()),
        ("bytes", pa.int64()),  # frames on the exchange LAN (802.1Q tag and FCS included)
        ("packets", pa.int64()),
    ]
)
TRANSIT = pa.schema(
    [
        ("interval_start", TS),
        ("port_id", pa.string()),
        ("router_id", pa.string()),
        ("contract_id", pa.string()),
        ("member_id", pa.string()),
        ("in_bytes", pa.int64()),  # IP bytes from the provider to the member (what flow records count)
        ("out_bytes", pa.int64()),  # IP bytes from the member to the provider
        ("in_packets", pa.int64()),
        ("out_packets", pa.int64()),
    ]
)
FAULTS = pa.schema(
    [
        ("kind", pa.string()),  # counter_32bit | counter_wrap | device_reboot | missed_poll | port_outage
        ("device_id", pa.string()),
        ("port_id", pa.string()),  # null when the whole device is concerned
        ("start_at", TS),
        ("end_at", TS),
        ("detail", pa.string()),
    ]
)
ROW_GROUP = 500_000


class DatePartitioned:
    """Appends rows of one table, one file per UTC date, in row groups of up to ``ROW_GROUP`` rows."""

    def __init__(self, root: Path, table: str, schema: pa.Schema) -> None:
        self.directory = root / table
        self.schema = schema
        self.rows = 0
        self.files: list[Path] = []
        self._day: dt.date | None = None
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def add(self, day: dt.date, columns: dict[str, pa.Array]) -> None:
        batch = pa.record_batch([columns[name] for name in self.schema.names], schema=self.schema)
        if batch.num_rows == 0:
            return
        if self._day != day:
            self._close_file()
            self._day = day
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._pending or self._day is None:
            return
        if self._writer is None:
            path = self.directory / f"date={self._day.isoformat()}" / "part-0.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
            self.files.append(path)
        self._writer.write_table(pa.Table.from_batches(self._pending, schema=self.schema))
        self.rows += self._pending_rows
        self._pending = []
        self._pending_rows = 0

    def _close_file(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        self._close_file()


def write_faults(path: Path, rows: list[dict[str, object]]) -> None:
    table = pa.Table.from_pylist(rows, schema=FAULTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
