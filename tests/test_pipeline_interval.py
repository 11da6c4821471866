"""peerpool decode --spool DIR --from --to: a scheduled run takes exactly the files of its interval."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from ingest.spool import files_in_interval, spool_time
from peerpool.cli import cli

UTC = dt.UTC


def make(root: Path, name: str) -> Path:
    path = root / "sflow5" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PPSPOOL1")  # a valid, empty spool file
    return path


def test_spool_time_reads_the_name() -> None:
    assert spool_time(Path("20261001T1003-ktw_sw1-12-000004.spool")) == dt.datetime(
        2026, 10, 1, 10, 3, tzinfo=UTC
    )
    assert spool_time(Path("notes.txt")) is None


def test_interval_takes_start_inclusive_end_exclusive(tmp_path: Path) -> None:
    names = ["20261001T0959-a-1-1.spool", "20261001T1000-a-1-2.spool", "20261001T1004-a-1-3.spool",
             "20261001T1005-a-1-4.spool"]  # fmt: skip
    for name in names:
        make(tmp_path, name)
    closed, still_open = files_in_interval(
        tmp_path, dt.datetime(2026, 10, 1, 10, 0, tzinfo=UTC), dt.datetime(2026, 10, 1, 10, 5, tzinfo=UTC)
    )
    assert [p.name for p in closed] == names[1:3]
    assert still_open == []


def test_an_open_file_in_the_interval_fails_the_run_with_a_retry_hint(tmp_path: Path) -> None:
    make(tmp_path, "20261001T1000-a-1-2.spool")
    make(tmp_path, "20261001T1004-a-1-3.open")
    result = CliRunner().invoke(
        cli,
        ["decode", "--spool", str(tmp_path), "--from", "2026-10-01T10:00:00Z", "--to", "2026-10-01T10:05:00Z",
         "--lake", str(tmp_path / "lake")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "still open" in str(result.exception) and "retry" in str(result.exception)
    assert not (tmp_path / "lake" / "flows").exists()


def test_an_empty_interval_is_not_an_error(tmp_path: Path) -> None:
    make(tmp_path, "20261001T0900-a-1-1.spool")
    result = CliRunner().invoke(
        cli,
        ["decode", "--spool", str(tmp_path), "--from", "2026-10-01T10:00:00Z", "--to", "2026-10-01T10:05:00Z",
         "--lake", str(tmp_path / "lake")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
