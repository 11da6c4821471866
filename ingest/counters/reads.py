"""Raw counter reads as ``port_counters`` rows, and the one way they are stored.

A read is a plain dict with the keys of :data:`peerpool.lake.PORT_COUNTERS` (missing keys are
null). A failed read keeps ``ok = False``, null counters and the reason in ``error``: a
zero would look like a quiet port and a delta across it would be wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from peerpool.lake import PORT_COUNTERS, write_part

TABLE = "port_counters"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")


def safe_key(text: str) -> str:
    """A part-key fragment from any text: unsafe characters become '_' plus a short hash (no collisions)."""
    cleaned = _UNSAFE.sub("_", text)
    if cleaned == text:
        return text
    return f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def stamp(moment: dt.datetime) -> str:
    """``20261001T000500Z``: a UTC timestamp for part keys (whole seconds)."""
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def reads_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts) to an Arrow table with exactly the ``port_counters`` schema."""
    names = PORT_COUNTERS.names
    return pa.Table.from_pylist(
        [{name: row.get(name) for name in names} for row in rows], schema=PORT_COUNTERS
    )


def write_reads_by_day(lake: Path, table: pa.Table, key: str) -> list[Path]:
    """Store ``table`` as one part per UTC day of ``polled_at``, all under the same key.

    Parts of the same key on other days are removed, so storing a corrected input again
    replaces everything the earlier version stored.
    """
    days = pc.cast(pc.cast(table.column("polled_at"), pa.timestamp("us")), pa.date32())
    written = []
    for day in sorted(pc.unique(days).to_pylist()):
        written.append(
            write_part(lake, TABLE, table.filter(pc.equal(days, pa.scalar(day, pa.date32()))), day, key)
        )
    keep = {path.resolve() for path in written}
    base = lake / TABLE
    if base.is_dir():
        for stale in base.glob(f"date=*/part-{key}.parquet"):
            if stale.resolve() not in keep:
                stale.unlink()
    return written


def write_poll(lake: Path, table: pa.Table, poll_time: dt.datetime, device_id: str) -> Path:
    """Store one device's reads of one poll; the key (poll time + device) makes a re-run replace them."""
    key = f"snmp-{stamp(poll_time)}-{safe_key(device_id)}"
    day = poll_time.astimezone(dt.UTC).date()
    return write_part(lake, TABLE, table, day, key)
