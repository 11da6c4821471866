"""The configured ports as a table: what hygiene, outages and quality are computed for.

One row per member port and border-router port: ``port_id``, ``device_id``, ``ifindex``,
``speed_mbps`` and the time span (µs since the epoch, UTC) in which the port exists.
Member ports exist from their ``connected`` date (00:00 UTC) until their ``disconnected``
date (00:00 UTC, excluded); border-router ports always.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from peerpool.config.model import Exchange

INTERVAL_US = 300_000_000  # one 5-minute interval in microseconds
NEVER_US = 2**62  # "no end" as a µs timestamp (year ~148,000)
SOURCE_PRIORITY = {"snmp": 0, "import": 1, "sflow": 2}  # lower wins; unknown sources last


def day_us(day: dt.date) -> int:
    """Midnight UTC of ``day`` in µs since the epoch."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1_000_000


def to_us(moment: dt.datetime) -> int:
    """An aware datetime as µs since the epoch (naive datetimes are refused: they would be ambiguous)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; give times in UTC")
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def port_catalog(exchange: Exchange) -> pl.DataFrame:
    """Every configured port with its device, ifIndex, speed and active span, sorted by port id."""
    rows: list[dict[str, object]] = []
    for p in exchange.ports:
        rows.append(
            {
                "port_id": p.id,
                "device_id": p.switch,
                "ifindex": p.ifindex,
                "speed_mbps": p.speed_mbps,
                "active_from_us": day_us(p.connected),
                "active_until_us": day_us(p.disconnected) if p.disconnected else NEVER_US,
            }
        )
    for router in exchange.border_routers:
        for bp in router.ports:
            rows.append(
                {
                    "port_id": bp.id,
                    "device_id": router.id,
                    "ifindex": bp.ifindex,
                    "speed_mbps": bp.speed_mbps,
                    "active_from_us": 0,
                    "active_until_us": NEVER_US,
                }
            )
    schema = {
        "port_id": pl.String,
        "device_id": pl.String,
        "ifindex": pl.Int64,
        "speed_mbps": pl.Int64,
        "active_from_us": pl.Int64,
        "active_until_us": pl.Int64,
    }
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.sort("port_id")


def resolve_ports(reads: pl.DataFrame, catalog: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Attach the configured port (and its speed) to each read; return (known, unknown) reads.

    A read's own ``port_id`` is used when it names a configured port; otherwise the port is
    looked up by (device_id, ifindex).
    """
    by_key = catalog.select(
        "device_id", "ifindex", pl.col("port_id").alias("_cfg_port"), pl.col("speed_mbps").alias("_cfg_speed")
    )
    by_id = catalog.select(pl.col("port_id").alias("_id_port"), pl.col("speed_mbps").alias("_id_speed"))
    joined = (
        reads.join(by_key, on=["device_id", "ifindex"], how="left")
        .join(by_id, left_on="port_id", right_on="_id_port", how="left", coalesce=False)
        .with_columns(
            port_id=pl.coalesce(pl.col("_id_port"), pl.col("_cfg_port")),
            speed_mbps=pl.coalesce(pl.col("_id_speed"), pl.col("_cfg_speed")),
        )
        .drop("_cfg_port", "_cfg_speed", "_id_port", "_id_speed")
    )
    return joined.filter(pl.col("port_id").is_not_null()), joined.filter(pl.col("port_id").is_null())


def grid(
    catalog: pl.DataFrame, k_lo: int, k_hi: int, interval_us: int = INTERVAL_US, extra: tuple[str, ...] = ()
) -> pl.DataFrame:
    """Every (port, interval k) of [k_lo, k_hi) in which the port exists."""
    return (
        catalog.with_columns(
            _lo=pl.max_horizontal(pl.lit(k_lo), -(-pl.col("active_from_us") // interval_us)),
            _hi=pl.min_horizontal(pl.lit(k_hi), -(-pl.col("active_until_us") // interval_us)),
        )
        .filter(pl.col("_hi") > pl.col("_lo"))
        .with_columns(k=pl.int_ranges(pl.col("_lo"), pl.col("_hi")))
        .explode("k")
        .select(*extra, "port_id", "device_id", "ifindex", "speed_mbps", "k")
    )
