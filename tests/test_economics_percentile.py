"""The billing percentile: nearest rank k = ceil(0.95 n), checked by hand and against DuckDB."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from peerpool.economics.errors import EconomicsError
from peerpool.economics.percentile import (
    billed_interval,
    free_intervals,
    nearest_rank,
    nearest_rank_k,
    nearest_rank_rows,
)


def test_thirty_day_month_bills_sample_8208() -> None:
    # domain.md section 3: 30 days x 288 intervals = 8640; ceil(0.95 * 8640) = 8208, 432 free
    assert nearest_rank_k(8640) == 8208
    assert free_intervals(8640) == 432
    # 31 days: 8928 intervals, 0.95 * 8928 = 8481.6 -> 8482
    assert nearest_rank_k(8928) == 8482


def test_small_series_by_hand() -> None:
    # 20 samples 1..20 shuffled: k = ceil(19) = 19 -> the value 19 (the top one, 20, is free)
    values = [7, 20, 3, 19, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    assert nearest_rank(values) == 19
    # 21 samples: k = ceil(19.95) = 20 -> the 20th smallest of 1..21 is 20
    assert nearest_rank(list(range(21, 0, -1))) == 20
    # a single sample is its own percentile; pct 100 is the maximum
    assert nearest_rank([42.0]) == 42.0
    assert nearest_rank([3, 9, 1], 100) == 9
    # pct 50 of 4 samples: k = 2 -> second smallest
    assert nearest_rank([40, 10, 30, 20], 50) == 20


def test_matches_duckdb_quantile_disc_for_every_n() -> None:
    """DuckDB's quantile_disc(x, 0.95) follows the billing rule (domain.md); compare for n = 1..600."""
    rng = np.random.default_rng(7)
    series = {n: rng.lognormal(5, 1, n).round(3) for n in range(1, 601)}
    groups = [n for n, values in series.items() for _ in values]
    flat = [float(v) for values in series.values() for v in values]
    con = duckdb.connect()
    rows = con.execute(
        "select g, quantile_disc(v, 0.95) from (select unnest(?) as g, unnest(?) as v) group by g",
        [groups, flat],
    ).fetchall()
    assert len(rows) == 600
    for n, expected in rows:
        assert nearest_rank(series[n]) == expected, n


def test_rows_and_billed_interval() -> None:
    m = np.array([[5.0, 1.0, 9.0, 3.0], [0.0, 0.0, 0.0, 1.0]])
    # n = 4, k = ceil(3.8) = 4: the maximum of each row
    assert nearest_rank_rows(m).tolist() == [9.0, 1.0]
    assert billed_interval([5.0, 1.0, 9.0, 3.0], 50) in (0, 3)  # k = 2 -> value 3 at index 3
    assert billed_interval([5.0, 1.0, 9.0, 3.0], 50) == 3


def test_errors_name_the_problem() -> None:
    with pytest.raises(EconomicsError, match="n = 0"):
        nearest_rank([])
    with pytest.raises(EconomicsError, match="outside"):
        nearest_rank([1.0], 0)
    with pytest.raises(EconomicsError, match="gap policy"):
        nearest_rank([1.0, float("nan")])
