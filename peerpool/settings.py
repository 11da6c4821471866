"""Where peerpool reads and writes: the lake, the warehouse and the exchange configuration.

Precedence is flag, then environment, then default: an explicit ``--lake`` wins, otherwise
``PEERPOOL_LAKE`` is used, otherwise the built-in default. The Airflow DAGs and the dashboards
set the environment once; a person at a shell can still point one command elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LAKE = Path("var/lake")
DEFAULT_WAREHOUSE = Path("var")
DEFAULT_CONFIG = Path("exchange.toml")

ENV_LAKE = "PEERPOOL_LAKE"
ENV_WAREHOUSE = "PEERPOOL_WAREHOUSE"
ENV_CONFIG = "PEERPOOL_CONFIG"

BUILD_DB = "build.duckdb"
SERVING_DB = "serving.duckdb"


@dataclass(frozen=True)
class Settings:
    """Resolved, absolute paths for one command."""

    lake: Path
    warehouse: Path
    config: Path

    @property
    def build_db(self) -> Path:
        """The file dbt writes (single writer; nobody else opens it)."""
        return self.warehouse / BUILD_DB

    @property
    def serving_db(self) -> Path:
        """The published copy readers open read-only."""
        return self.warehouse / SERVING_DB

    @property
    def reference_dir(self) -> Path:
        return self.lake / "reference"


def _pick(flag: str | os.PathLike[str] | None, env: str, default: Path) -> Path:
    if flag is not None and str(flag) != "":
        return Path(flag).expanduser().resolve()
    value = os.environ.get(env, "")
    if value:
        return Path(value).expanduser().resolve()
    return default.resolve()


def resolve(
    lake: str | os.PathLike[str] | None = None,
    warehouse: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> Settings:
    """Settings from flags (None = not given), then ``PEERPOOL_*`` variables, then defaults."""
    return Settings(
        lake=_pick(lake, ENV_LAKE, DEFAULT_LAKE),
        warehouse=_pick(warehouse, ENV_WAREHOUSE, DEFAULT_WAREHOUSE),
        config=_pick(config, ENV_CONFIG, DEFAULT_CONFIG),
    )
