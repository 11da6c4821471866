"""Import counter reads exported by other monitoring systems (CSV, JSON array, JSON lines).

Rows land in ``port_counters`` with ``source = "import"``, beside the SNMP polls. The
accepted columns and their aliases are listed in ``docs/counters.md`` (:data:`ALIASES`).
A file is checked completely before anything is stored: one bad row and the file stores
nothing, and the error lists every problem found (file, line, column, what to do), up to
:data:`MAX_REPORTED`, with the total count. Re-importing a file (same name) replaces what
it stored before, so nothing is counted twice.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ingest.counters.reads import safe_key, stamp, write_reads_by_day
from peerpool.config.model import Exchange
from peerpool.errors import InputError
from peerpool.lake import PORT_COUNTERS

MAX_REPORTED = 20
SUFFIXES = (".csv", ".json", ".jsonl", ".ndjson")

# canonical column -> accepted spellings, compared after lower-casing and dropping everything
# but letters and digits ("ifHCInOctets", "if_hc_in_octets" and "IF-HC-IN-OCTETS" are one name)
ALIASES: dict[str, tuple[str, ...]] = {
    "polled_at": ("polled_at", "timestamp", "time", "ts", "datetime", "poll_time", "sampled_at"),
    "device_id": ("device_id", "device", "host", "hostname", "switch", "router", "sysname", "node"),
    "device_address": ("device_address", "address", "agent", "agent_address", "ip", "device_ip", "mgmt_ip"),
    "ifindex": ("ifindex", "if_index", "interface_index"),
    "port_id": ("port_id", "port"),
    "ok": ("ok", "success", "valid"),
    "error": ("error", "error_message", "err"),
    "sys_uptime_cs": ("sys_uptime_cs", "sysuptime", "uptime", "uptime_cs"),
    "counter_bits": ("counter_bits", "bits"),
    "in_octets": ("in_octets", "ifhcinoctets", "ifinoctets"),
    "out_octets": ("out_octets", "ifhcoutoctets", "ifoutoctets"),
    "in_ucast_pkts": ("in_ucast_pkts", "ifhcinucastpkts", "ifinucastpkts"),
    "out_ucast_pkts": ("out_ucast_pkts", "ifhcoutucastpkts", "ifoutucastpkts"),
    "if_high_speed_mbps": ("if_high_speed_mbps", "ifhighspeed", "high_speed", "speed_mbps"),
    "if_oper_status": ("if_oper_status", "ifoperstatus", "oper_status"),
    "if_name": ("if_name", "ifname", "interface", "ifdescr"),
    "if_alias": ("if_alias", "ifalias", "alias", "description"),
}
# spellings that name the 32-bit ifTable counters: they imply counter_bits = 32
THIRTY_TWO = {"ifinoctets", "ifoutoctets", "ifinucastpkts", "ifoutucastpkts"}
COUNTER_FIELDS = ("in_octets", "out_octets", "in_ucast_pkts", "out_ucast_pkts")
OPER_WORDS = {
    "up": 1,
    "down": 2,
    "testing": 3,
    "unknown": 4,
    "dormant": 5,
    "notpresent": 6,
    "lowerlayerdown": 7,
}
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})$")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_LOOKUP = {_norm(alias): canonical for canonical, names in ALIASES.items() for alias in names}


class ImportProblems(InputError):
    """A file that cannot be imported; ``problems`` has one line per bad cell or row."""

    def __init__(self, path: Path, problems: list[str], total: int) -> None:
        shown = problems[:MAX_REPORTED]
        more = f"\n... and {total - len(shown)} more" if total > len(shown) else ""
        head = f"{path}: {total} problem{'s' if total != 1 else ''}; nothing from this file was stored"
        super().__init__(head + "\n" + "\n".join(shown) + more)
        self.path = path
        self.problems = problems
        self.total = total


@dataclass
class ImportResult:
    """What one file contributed."""

    path: Path
    rows: int = 0
    ok: int = 0
    failed: int = 0
    outside_window: int = 0  # rows skipped by --from/--to
    counters_dropped: int = 0  # failed rows that carried counters: stored without them
    unresolved_ports: int = 0  # rows whose port could not be found in the configuration
    ignored_columns: list[str] = field(default_factory=list)
    parts: list[Path] = field(default_factory=list)


@dataclass
class _Frame:
    """A file read as strings, with a label per row for messages (``line 7`` / ``record 3``)."""

    data: pl.DataFrame
    labels: list[str]
    headers: dict[str, str]  # canonical -> header as written in the file


def _read_csv(path: Path) -> tuple[pl.DataFrame, list[str]]:
    try:
        data = pl.read_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImportProblems(
            path,
            [f"{path}: not readable as CSV with a header row ({message}); check quoting and delimiters"],
            1,
        ) from None
    # line numbers assume no quoted line breaks (the header is line 1)
    return data, [f"line {i + 2}" for i in range(data.height)]


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise TypeError(type(value).__name__)


def _read_json(path: Path, text: str) -> tuple[pl.DataFrame, list[str]]:
    records: list[tuple[str, object]] = []
    if text.lstrip().startswith("["):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportProblems(
                path, [f"{path}: line {exc.lineno}: invalid JSON ({exc.msg}); fix the syntax there"], 1
            ) from None
        records = [(f"record {i + 1}", item) for i, item in enumerate(loaded)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ImportProblems(
                    path, [f"{path}: line {number}: invalid JSON ({exc.msg}); one JSON object per line"], 1
                ) from None
    problems: list[str] = []
    rows: list[dict[str, str | None]] = []
    for label, item in records:
        if not isinstance(item, dict):
            problems.append(f"{path}: {label}: is not a JSON object; write one object per read")
            continue
        row: dict[str, str | None] = {}
        for key, value in item.items():
            try:
                row[str(key)] = _cell(value)
            except TypeError as exc:
                problems.append(
                    f"{path}: {label}, field '{key}': a {exc} is not a value; give a number or text"
                )
        rows.append(row)
    if problems:
        raise ImportProblems(path, problems, len(problems))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    data = pl.DataFrame(
        {c: [row.get(c) for row in rows] for c in columns}, schema={c: pl.String for c in columns}
    )
    return data, [label for label, _ in records]


def _read(path: Path) -> tuple[pl.DataFrame, list[str]]:
    if not path.is_file():
        raise InputError(f"{path}: file not found; check the path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ImportProblems(
            path, [f"{path}: byte {exc.start} is not utf-8; save the file as utf-8"], 1
        ) from None
    if suffix in (".json", ".jsonl", ".ndjson") or text.lstrip()[:1] in ("[", "{"):
        return _read_json(path, text)
    return _read_csv(path)


def _columns(path: Path, data: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, str], list[str], set[str]]:
    """Rename known headers to canonical names; return (data, canonical->header, ignored, 32-bit hints)."""
    headers: dict[str, str] = {}
    ignored: list[str] = []
    implied_32: set[str] = set()
    problems = []
    for header in data.columns:
        canonical = _LOOKUP.get(_norm(header))
        if canonical is None:
            ignored.append(header)
            continue
        if canonical in headers:
            problems.append(
                f"{path}: columns '{headers[canonical]}' and '{header}' both mean {canonical}; keep one"
            )
            continue
        headers[canonical] = header
        if _norm(header) in THIRTY_TWO:
            implied_32.add(canonical)
    for needed in ("polled_at", "ifindex"):
        if needed not in headers:
            names = ", ".join(ALIASES[needed])
            problems.append(f"{path}: no {needed} column; add one (accepted names: {names})")
    if "device_id" not in headers and "device_address" not in headers:
        problems.append(f"{path}: no device_id or device_address column; add one so reads can be told apart")
    if problems:
        raise ImportProblems(path, problems, len(problems))
    renamed = data.select([pl.col(h).alias(c) for c, h in headers.items()])
    for canonical in ALIASES:
        if canonical not in renamed.columns:
            renamed = renamed.with_columns(pl.lit(None, pl.String).alias(canonical))
    renamed = renamed.with_columns(pl.col(c).str.strip_chars() for c in ALIASES).with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in ALIASES
    )
    return renamed, headers, ignored, implied_32


class _Checker:
    """Collects (row, column, message) problems while values are parsed column by column."""

    def __init__(self, path: Path, labels: list[str], headers: Mapping[str, str]) -> None:
        self.path = path
        self.labels = labels
        self.headers = headers
        self.problems: list[tuple[int, str]] = []
        self.total = 0

    def flag(self, bad: pl.Series, column: str, values: pl.Series, message: str) -> None:
        rows = bad.fill_null(False).arg_true().to_list()
        self.total += len(rows)
        header = self.headers.get(column, column)
        for row in rows[:MAX_REPORTED]:
            shown = values[row]
            self.problems.append(
                (row, f"{self.path}: {self.labels[row]}, column '{header}': {message} (got {shown!r})")
            )

    def raise_if_any(self) -> None:
        if self.total:
            ordered = [text for _, text in sorted(self.problems, key=lambda p: p[0])]
            raise ImportProblems(self.path, ordered, self.total)


def _timestamps(raw: pl.Series, check: _Checker) -> pl.Series:
    iso = raw.str.contains(_ISO.pattern)
    epoch = raw.str.contains(r"^\d{9,11}(\.\d{1,6})?$")
    no_zone = raw.str.contains(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$")
    check.flag(raw.is_null(), "polled_at", raw, "empty time; every read needs its poll time")
    check.flag(no_zone, "polled_at", raw, "time without a time zone; add Z for UTC or an offset like +02:00")
    check.flag(
        raw.is_not_null() & ~iso & ~epoch & ~no_zone,
        "polled_at",
        raw,
        "not an ISO 8601 time (2026-10-01T00:05:02.123Z) or epoch seconds",
    )
    normal = (
        pl.DataFrame({"v": raw})
        .select(
            pl.col("v")
            .str.replace(" ", "T")
            .str.replace(r"[Zz]$", "+00:00")
            .str.replace(r"([+-]\d{2})(\d{2})$", "$1:$2")
            .str.replace(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})([+-])", "$1:00$2")
        )
        .to_series()
    )
    parsed = normal.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False, time_unit="us")
    seconds = raw.cast(pl.Float64, strict=False)
    from_epoch = (seconds * 1_000_000).round().cast(pl.Int64, strict=False).cast(pl.Datetime("us", "UTC"))
    result = pl.select(pl.when(epoch).then(from_epoch).otherwise(parsed)).to_series()
    check.flag(iso & result.is_null(), "polled_at", raw, "not a valid date or time")
    return result


def _integers(
    raw: pl.Series, column: str, check: _Checker, dtype: type[pl.DataType], low: int, high: int, what: str
) -> pl.Series:
    value = raw.cast(dtype, strict=False)
    wrong = raw.is_not_null() & (value.is_null() | (value < low) | (value > high))
    check.flag(wrong, column, raw, what)
    return value


def _booleans(raw: pl.Series, check: _Checker) -> pl.Series:
    low = raw.str.to_lowercase()
    check.flag(
        raw.is_not_null() & ~low.is_in(TRUE_WORDS + FALSE_WORDS),
        "ok",
        raw,
        "not true or false",
    )
    return pl.select(
        pl.when(low.is_in(TRUE_WORDS)).then(True).when(low.is_in(FALSE_WORDS)).then(False)
    ).to_series()


def _device_by_address(exchange: Exchange | None) -> dict[str, str]:
    """management address -> device id, only for addresses used by exactly one device."""
    if exchange is None:
        return {}
    seen: dict[str, list[str]] = {}
    for sw in exchange.switches:
        seen.setdefault(sw.management_address, []).append(sw.id)
    for br in exchange.border_routers:
        seen.setdefault(br.management_address, []).append(br.id)
    return {address: ids[0] for address, ids in seen.items() if len(ids) == 1}


def _port_lookup(exchange: Exchange | None) -> tuple[pl.DataFrame, dict[str, int]]:
    rows: list[tuple[str, int, str, int]] = []
    if exchange is not None:
        rows += [(p.switch, p.ifindex, p.id, p.counter_bits) for p in exchange.ports]
        rows += [(br.id, bp.ifindex, bp.id, 64) for br in exchange.border_routers for bp in br.ports]
    frame = pl.DataFrame(
        rows,
        schema={"device_id": pl.String, "ifindex": pl.Int64, "_port": pl.String, "_bits": pl.Int64},
        orient="row",
    )
    return frame, {port: bits for _, _, port, bits in rows}


def parse(
    path: Path,
    exchange: Exchange | None = None,
    window: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
) -> tuple[pl.DataFrame, ImportResult]:
    """Read and check one file; return the ``port_counters`` rows and the counts. Raises ImportProblems."""
    data, labels = _read(path)
    result = ImportResult(path=path)
    frame, headers, ignored, implied_32 = _columns(path, data)
    result.ignored_columns = ignored
    check = _Checker(path, labels, headers)
    polled_at = _timestamps(frame["polled_at"], check)
    ifindex = _integers(
        frame["ifindex"], "ifindex", check, pl.Int64, 1, 2**31 - 1, "not an ifIndex (1 or more)"
    )
    check.flag(frame["ifindex"].is_null(), "ifindex", frame["ifindex"], "empty ifIndex; every read needs one")
    bits = frame["counter_bits"].cast(pl.Int64, strict=False)
    check.flag(
        frame["counter_bits"].is_not_null() & ~bits.is_in([32, 64]).fill_null(False),
        "counter_bits",
        frame["counter_bits"],
        "not 32 or 64",
    )
    uptime = _integers(
        frame["sys_uptime_cs"],
        "sys_uptime_cs",
        check,
        pl.Int64,
        0,
        2**32 - 1,
        "not a sysUpTime in hundredths",
    )
    speed = _integers(
        frame["if_high_speed_mbps"],
        "if_high_speed_mbps",
        check,
        pl.Int64,
        0,
        2**32 - 1,
        "not a speed in Mbit/s",
    )
    oper_raw = frame["if_oper_status"]
    oper_word = (
        oper_raw.str.to_lowercase().str.replace_all(r"[^a-z]", "").replace_strict(OPER_WORDS, default=None)
    )
    oper_num = oper_raw.cast(pl.Int64, strict=False)
    oper = pl.select(pl.coalesce(oper_num, oper_word)).to_series()
    check.flag(
        oper_raw.is_not_null() & (oper.is_null() | (oper < 1) | (oper > 7)),
        "if_oper_status",
        oper_raw,
        "not an ifOperStatus (1 up, 2 down ... 7, or the word)",
    )
    counters = {
        c: _integers(
            frame[c], c, check, pl.UInt64, 0, 2**64 - 1, "not a counter value (whole number, 0 or more)"
        )
        for c in COUNTER_FIELDS
    }
    ok_given = _booleans(frame["ok"], check)

    # device and port resolution
    by_address = _device_by_address(exchange)
    address_device = frame["device_address"].replace_strict(by_address, default=None, return_dtype=pl.String)
    device = pl.select(pl.coalesce(frame["device_id"], address_device, frame["device_address"])).to_series()
    lookup, bits_of_port = _port_lookup(exchange)
    keyed = pl.DataFrame({"device_id": device, "ifindex": ifindex, "port_id": frame["port_id"]}).join(
        lookup, on=["device_id", "ifindex"], how="left", maintain_order="left"
    )
    port = pl.select(pl.coalesce(keyed["port_id"], keyed["_port"])).to_series()
    config_bits = port.replace_strict(bits_of_port, default=None, return_dtype=pl.Int64)
    implied = 32 if implied_32 & {"in_octets", "out_octets"} else None
    bits = pl.select(
        pl.coalesce(bits, config_bits, pl.lit(implied, pl.Int64), pl.lit(64, pl.Int64))
    ).to_series()
    for c in COUNTER_FIELDS:
        check.flag(
            (bits == 32) & (counters[c] >= 2**32),
            c,
            frame[c],
            "above 2^32 - 1 on a 32-bit counter; set counter_bits to 64 if it is an ifHC counter",
        )
    has_octets = counters["in_octets"].is_not_null() & counters["out_octets"].is_not_null()
    ok = pl.select(pl.coalesce(ok_given, has_octets)).to_series()
    for c in ("in_octets", "out_octets"):
        check.flag(
            ok & frame[c].is_null(),
            c,
            frame[c],
            "empty on a read marked ok; fill it, or set ok to false if the read failed",
        )
    check.raise_if_any()

    carried = (
        ~ok & pl.select(pl.any_horizontal(*[counters[c].is_not_null() for c in COUNTER_FIELDS])).to_series()
    )
    result.counters_dropped = int(carried.sum())
    error = pl.select(
        pl.when(~ok & frame["error"].is_null())
        .then(pl.lit("failed read (no reason given)"))
        .otherwise(frame["error"])
    ).to_series()
    rows = pl.DataFrame(
        {
            "polled_at": polled_at,
            "source": pl.repeat("import", len(polled_at), eager=True, dtype=pl.String),
            "device_id": device,
            "device_address": frame["device_address"],
            "ifindex": ifindex,
            "port_id": port,
            "ok": ok,
            "error": error,
            "sys_uptime_cs": uptime,
            "counter_bits": bits.cast(pl.Int8),
            **{c: pl.select(pl.when(ok).then(counters[c])).to_series().alias(c) for c in COUNTER_FIELDS},
            "if_high_speed_mbps": speed,
            "if_oper_status": oper.cast(pl.Int8),
            "if_name": frame["if_name"],
            "if_alias": frame["if_alias"],
            "source_file": pl.repeat(str(path), len(polled_at), eager=True, dtype=pl.String),
        }
    )
    lo, hi = window
    if lo is not None or hi is not None:
        keep = pl.lit(True)
        if lo is not None:
            keep = keep & (pl.col("polled_at") >= lo)
        if hi is not None:
            keep = keep & (pl.col("polled_at") < hi)
        before = rows.height
        rows = rows.filter(keep)
        result.outside_window = before - rows.height
    result.rows = rows.height
    result.ok = int(rows["ok"].sum())
    result.failed = rows.height - result.ok
    result.unresolved_ports = int(rows["port_id"].is_null().sum())
    return rows.select(PORT_COUNTERS.names), result


def part_key(path: Path, window: tuple[dt.datetime | None, dt.datetime | None] = (None, None)) -> str:
    """``import-<file name>[-<from>_<to>]``: the same file (and window) always replaces its own parts."""
    key = f"import-{safe_key(path.name)}"
    lo, hi = window
    if lo is not None or hi is not None:
        key += f"-{stamp(lo) if lo else 'start'}_{stamp(hi) if hi else 'end'}"
    return key


def files_in(directory: Path) -> list[Path]:
    """The importable files of a directory (not recursive), in name order."""
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory; give the folder holding the exported files")
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def import_files(
    paths: Iterable[Path],
    lake: Path,
    exchange: Exchange | None = None,
    window: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
) -> tuple[list[ImportResult], list[ImportProblems]]:
    """Import every file on its own: good files are stored, bad files store nothing and are returned."""
    done: list[ImportResult] = []
    bad: list[ImportProblems] = []
    for path in paths:
        try:
            rows, result = parse(path, exchange, window)
        except ImportProblems as problems:
            bad.append(problems)
            continue
        if rows.height:
            result.parts = write_reads_by_day(lake, rows.to_arrow(), part_key(path, window))
        done.append(result)
    return done, bad
