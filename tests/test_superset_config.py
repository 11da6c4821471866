"""dashboards/superset_config.py's two speed-ups change no figure.

Both run inside Superset's own environment (a subprocess of ``.venvs/superset``): the pivot patch is
compared with Superset's unpatched ``pivot`` on frames shaped like our charts' query results (one row
per x and series, NULL metrics, series missing at some x), and the SQLite pragmas are read back from a
metadata database opened through an app the config created.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUPERSET_PYTHON = REPO / ".venvs" / "superset" / "bin" / "python"
CONFIG = REPO / "dashboards" / "superset_config.py"


def run_in_superset(code: str, tmp_path: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "SUPERSET_SECRET_KEY": secrets.token_urlsafe(48),
        "SUPERSET_CONFIG_PATH": str(CONFIG),
        "PEERPOOL_SUPERSET_HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [str(SUPERSET_PYTHON), "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_pivot_with_compiled_mean_equals_superset_pivot(tmp_path: Path) -> None:
    result = run_in_superset(
        f"""
        import importlib.util, json
        import numpy as np, pandas as pd
        from superset.utils.pandas_postprocessing import pivot

        spec = importlib.util.spec_from_file_location("peerpool_superset_config", {str(CONFIG)!r})
        config = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(config)

        rng = np.random.default_rng(3)
        x = pd.date_range("2026-11-01", periods=300, freq="5min", tz="UTC")
        rows = []
        for t in x:
            for series in ("a", "b", "c"):
                if series == "c" and rng.random() < 0.3:
                    continue  # a series missing at some x
                value = rng.gamma(2.0, 1e9)
                rows.append((t, series, None if rng.random() < 0.05 else value, value / 3))
        grouped = pd.DataFrame(rows, columns=["interval_start", "contract_id", "in_bps", "out_bps"])
        single = grouped[grouped.contract_id == "a"].drop(columns="contract_id")
        cases = [
            (grouped, dict(index=["interval_start"], columns=["contract_id"], drop_missing_columns=False)),
            (grouped, dict(index=["interval_start"], columns=["contract_id"], drop_missing_columns=True)),
            (single, dict(index=["interval_start"], columns=[], drop_missing_columns=False)),
        ]
        aggregates = {{"in_bps": {{"operator": "mean"}}, "out_bps": {{"operator": "mean"}}}}
        before = [pivot(df.copy(), aggregates=aggregates, **kw) for df, kw in cases]
        config._compiled_mean_in_pivot()
        config._compiled_mean_in_pivot()  # idempotent
        after = [pivot(df.copy(), aggregates=aggregates, **kw) for df, kw in cases]
        module = importlib.import_module("superset.utils.pandas_postprocessing.pivot")
        funcs = module._get_aggregate_funcs(grouped, aggregates)
        summed = module._get_aggregate_funcs(grouped, {{"in_bps": {{"operator": "sum"}}}})
        for b, a in zip(before, after):
            pd.testing.assert_frame_equal(b, a)
        print(json.dumps({{
            "cases": len(after),
            "nulls_kept": int(after[0].isna().sum().sum()),
            "nulls_before": int(before[0].isna().sum().sum()),
            "mean_is": str(funcs["in_bps"].aggfunc),
            "sum_is": type(summed["in_bps"].aggfunc).__name__,
            "shape": list(after[0].shape),
        }}))
        """,
        tmp_path,
    )
    assert result["cases"] == 3
    assert result["mean_is"] == "mean", "the patch is not active"
    assert result["sum_is"] == "partial", "only a bare mean may be replaced"
    assert result["nulls_kept"] == result["nulls_before"] and int(str(result["nulls_kept"])) > 0
    assert result["shape"] == [300, 6]


def test_app_sets_wal_on_the_metadata_database(tmp_path: Path) -> None:
    result = run_in_superset(
        """
        import json
        from superset.app import create_app
        from superset.extensions import db

        app = create_app()
        with app.app_context():
            with db.engine.connect() as conn:
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        print(json.dumps({"journal_mode": mode, "synchronous": sync}))
        """,
        tmp_path,
    )
    assert result == {"journal_mode": "wal", "synchronous": 1}  # 1 = NORMAL
