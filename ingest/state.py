"""What the decode pipeline remembers between runs, in ``LAKE/_state/``.

* ``ledger.sqlite3``: one row per processed input (part key, path, sha256, the part files it
  wrote, the loss-tracker state it started from). Re-processing an unchanged input is a no-op;
  a changed input replaces its parts and removes the ones it no longer produces.
* ``templates.json``: the IPFIX / NetFlow v9 template cache (written by ``TemplateCache.save``).
* in the ledger's ``kv`` table, written in the same transaction as the input's row: the
  sequence-number state per exporter stream (so a gap across two files is seen) and the newest
  data time processed (for retention relative to the data, never the clock).
* ``lock``: an exclusive ``flock`` so two decode runs never write the same lake at once.

The ledger is SQLite with one transaction per input, committed only after that input's parts
are on disk, so a crash leaves at worst an input that is processed again from the same state
(replacing its parts, never adding to them).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerpool.errors import LakeError

STATE_DIR = "_state"
LEDGER = "ledger.sqlite3"
TEMPLATES = "templates.json"

_SCHEMA = """
create table if not exists inputs (
    part_key text primary key,
    path text not null,
    sha256 text not null,
    size integer not null,
    processed_at_ns integer not null,
    parts text not null,          -- json list of part files, relative to the lake
    loss_before text not null,    -- json: loss-tracker state of this input's streams before it
    summary text not null         -- json: counts of this input
);
create table if not exists kv (key text primary key, value text not null)
"""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, separators=(",", ":"), sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path, default: Any) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default
    except ValueError as exc:
        raise LakeError(
            f"{path}: state file is not valid json ({exc}); restore it from a backup or move it away "
            "(moving loss.json away only restarts gap detection)"
        ) from None


@dataclass(frozen=True)
class LedgerEntry:
    part_key: str
    path: str
    sha256: str
    size: int
    processed_at_ns: int
    parts: tuple[str, ...]
    loss_before: dict[str, Any]
    summary: dict[str, Any]


class LakeState:
    """The ``_state`` folder of one lake, held under an exclusive lock while open."""

    def __init__(self, lake: Path) -> None:
        self.lake = lake
        self.dir = lake / STATE_DIR
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> LakeState:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LakeError(
                f"{self.lake}: cannot create the lake folder ({exc.strerror}); check the path"
            ) from None
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LakeError(
                f"{self.lake}: another 'peerpool decode' is writing this lake; wait for it to finish"
            ) from None
        self._lock_fd = fd
        try:
            self._db = sqlite3.connect(self.dir / LEDGER)
            self._db.executescript(_SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise LakeError(
                f"{self.dir / LEDGER}: the ledger is damaged ({exc}); restore it from a backup"
            ) from None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("LakeState is not open")
        return self._db

    # --- ledger ---------------------------------------------------------------------------

    def entry(self, part_key: str) -> LedgerEntry | None:
        row = self.db.execute(
            "select part_key, path, sha256, size, processed_at_ns, parts, loss_before, summary "
            "from inputs where part_key = ?",
            (part_key,),
        ).fetchone()
        if row is None:
            return None
        return LedgerEntry(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            tuple(json.loads(row[5])),
            json.loads(row[6]),
            json.loads(row[7]),
        )

    def record(self, entry: LedgerEntry, *, loss_state: dict[str, Any], newest_ns: int) -> None:
        """Record a processed input together with the carried state, in one transaction."""
        with self.db:
            self.db.execute(
                "insert or replace into inputs values (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.part_key,
                    entry.path,
                    entry.sha256,
                    entry.size,
                    entry.processed_at_ns,
                    json.dumps(list(entry.parts)),
                    json.dumps(entry.loss_before, sort_keys=True),
                    json.dumps(entry.summary, sort_keys=True),
                ),
            )
            self._put("loss", loss_state)
            self._put("newest_ns", newest_ns)

    def _put(self, key: str, value: Any) -> None:
        self.db.execute(
            "insert or replace into kv values (?, ?)",
            (key, json.dumps(value, separators=(",", ":"), sort_keys=True)),
        )

    def _get(self, key: str, default: Any) -> Any:
        row = self.db.execute("select value from kv where key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else default

    def entries(self) -> list[LedgerEntry]:
        keys = [r[0] for r in self.db.execute("select part_key from inputs order by part_key")]
        return [e for k in keys if (e := self.entry(k)) is not None]

    # --- json state -----------------------------------------------------------------------

    @property
    def templates_path(self) -> Path:
        return self.dir / TEMPLATES

    def load_loss(self) -> dict[str, Any]:
        value = self._get("loss", {})
        return value if isinstance(value, dict) else {}

    def newest_ns(self) -> int:
        return int(self._get("newest_ns", 0))

    def save_newest_ns(self, newest_ns: int) -> None:
        with self.db:
            self._put("newest_ns", newest_ns)
