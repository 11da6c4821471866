"""Which days of the lake changed since the last build: what an incremental build must recompute.

The incremental models recompute from the newest day they already hold minus ``lookback_days``
(``dbt/macros/incremental.sql``): right for data that arrives in time order, wrong for a day
older than that arriving later (a backfill of last month after today's data, a replay run the
scheduler made for yesterday before the backfill of the days before it, a late spool file). The
build therefore remembers, in ``WAREHOUSE/build-state.json``, when it last read the lake and the
newest day the lake then held; the next build looks for partitions of the raw tables (those the
pipeline and the counter import write; derived ones like ``port_rates_5min`` are recomputed by
every build) changed after that time. When the oldest changed day is older than what the models
would recompute anyway, the build recomputes from the day before it (``--since``), so local-time
daily marts that straddle UTC midnight are recomputed whole.

A part file is written by rename into its partition directory (``peerpool.lake.write_part``) and
removed by unlink, both of which update the directory's modification time, so reading directory
times (not every file's) is enough and stays cheap with ~10^5 part files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

# tables written by ingest (decode, counter import, SNMP poll): everything the models derive from
RAW_TABLES = ("member_matrix", "flows", "flow_loss", "unknown_macs", "quarantine", "port_counters")
STATE_FILE = "build-state.json"


@dataclass(frozen=True)
class BuildState:
    lake_read_ns: int  # when the build that wrote this state started reading the lake
    newest_day: dt.date | None  # the newest raw partition day the lake held then


def _days(lake: Path) -> list[tuple[dt.date, Path]]:
    found = []
    for table in RAW_TABLES:
        root = lake / table
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            if entry.is_dir() and entry.name.startswith("date="):
                try:
                    found.append((dt.date.fromisoformat(entry.name.removeprefix("date=")), entry))
                except ValueError:
                    continue  # not a partition peerpool wrote; the models do not read it either
    return found


def _changed_after(directory: Path, ns: int) -> bool:
    """The directory or one of its sub-directories (hour partitions) changed after ``ns``."""
    if directory.stat().st_mtime_ns > ns:
        return True
    with os.scandir(directory) as entries:
        return any(e.is_dir() and e.stat().st_mtime_ns > ns for e in entries)


def newest_day(lake: Path) -> dt.date | None:
    return max((day for day, _ in _days(lake)), default=None)


def oldest_changed_day(lake: Path, since_ns: int) -> dt.date | None:
    """The oldest raw partition day changed after ``since_ns`` (None: nothing changed)."""
    for day, directory in sorted(_days(lake)):
        if _changed_after(directory, since_ns):
            return day
    return None


def recompute_since(lake: Path, state: BuildState | None, lookback_days: int) -> dt.date | None:
    """The first UTC day the build must recompute, when the models' own rule would start later.

    None: no state (first build, or a warehouse from before this file existed: the models' rule
    applies), nothing changed, or every change is within the days the models recompute anyway.
    """
    if state is None or state.newest_day is None:
        return None
    changed = oldest_changed_day(lake, state.lake_read_ns)
    if changed is None or changed >= state.newest_day - dt.timedelta(days=lookback_days):
        return None
    return changed - dt.timedelta(days=1)


def read_state(warehouse: Path) -> BuildState | None:
    path = warehouse / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        day = data.get("newest_day")
        return BuildState(int(data["lake_read_ns"]), dt.date.fromisoformat(day) if day else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: the models' own rule, as before the first state


def write_state(warehouse: Path, state: BuildState) -> None:
    """Atomically (temp file and rename), after the serving file was published."""
    path = warehouse / STATE_FILE
    tmp = path.with_suffix(".tmp")
    payload = {
        "lake_read_ns": state.lake_read_ns,
        "newest_day": state.newest_day.isoformat() if state.newest_day else None,
    }
    tmp.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    os.replace(tmp, path)
