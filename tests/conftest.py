"""Shared test fixtures. Real data is read from ../shared/realdata (never copied into the repo)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real captures, decodes and reference data (see its MANIFEST.md)."""
    if not (REALDATA / "MANIFEST.md").is_file():
        pytest.fail(f"{REALDATA} is missing: the tests need ../shared/realdata beside the repository")
    return REALDATA


def require_tool(name: str) -> str:
    """Path of a Debian tool the tests use; fail (not skip) when the test setup did not install it."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        pytest.fail(f"{name} is not installed: run the README's test command (it installs the Debian tools)")
    return path
