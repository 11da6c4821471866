"""Sums of sFlow estimates that must fit the lake's int64 columns, however many samples they add up.

The decoders bound every field of one sample (``ingest.sflow.constants``, ``MAX_*``): a sample's
estimated bytes, frame length x sampling rate, is below 2**56. The member matrix and the unknown-MAC
counts add samples up per 5-minute cell, exactly (Python integers, 128-bit integers in the C batch),
and 129 samples at the bounds already pass 2**63 - 1. Real traffic stays far below (the arithmetic
is in ``constants``), but a crafted or broken exporter must not make the lake write fail for a whole
input file on every retry. So a row whose sum passes int64 is written as several rows of the same key
whose sums add up to the exact total: the matrix is additive already, since each input file writes
its own rows for a 5-minute cell it shares with the files around it, and every reader sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

INT64_MAX: Final = (1 << 63) - 1
# the summed columns of member_matrix and unknown_macs (peerpool/lake.py)
SUM_COLUMNS: Final = ("estimated_bytes", "estimated_packets", "sample_count")


def split_int64_sums(
    rows: list[dict[str, Any]], columns: Sequence[str] = SUM_COLUMNS
) -> list[dict[str, Any]]:
    """``rows`` with every row whose ``columns`` hold a value above ``INT64_MAX`` replaced by
    ``k`` copies, the smallest number that brings each part within int64: each summed column is
    divided as evenly as whole numbers allow (the first ``value % k`` parts get one more), so the
    parts add up to the value exactly and none exceeds ``ceil(value / k) <= INT64_MAX``. Rows within
    range come back as they are (the same objects, in the same order)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        values = [(name, row[name]) for name in columns if row.get(name) is not None]
        parts = max((-(-value // INT64_MAX) for _, value in values), default=1)
        if parts <= 1:
            out.append(row)
            continue
        for i in range(parts):
            part = dict(row)
            for name, value in values:
                quotient, remainder = divmod(value, parts)
                part[name] = quotient + (1 if i < remainder else 0)
            out.append(part)
    return out
