"""A real Superset on 127.0.0.1 for the dashboard tests, and a small REST client for it.

One server per test session (the first test that needs it builds a serving DuckDB file through the
real pipeline, runs ``peerpool dashboards setup`` and ``peerpool dashboards serve`` on a free port);
every wait is bounded; the server's process group is killed when the session ends. The client speaks
Superset's REST API with urllib only: JWT login through ``/api/v1/security/login``, the session
cookie and the CSRF token from ``/api/v1/security/csrf_token/`` for writes.
"""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run as a script (python tests/superset_server.py DIR): the repository on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.tender_history import TIERS, write_transit_history

REPO = Path(__file__).resolve().parents[1]
PEERPOOL = REPO / ".venvs" / "core" / "bin" / "peerpool"
SUPERSET_PYTHON = REPO / ".venvs" / "superset" / "bin" / "python"
ARTIFACTS = REPO / "var" / "test-artifacts"
START_TIMEOUT_S = 240
STEP_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=STEP_TIMEOUT_S
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-30:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def build_serving(root: Path, members: int = 5, days: int = 2) -> tuple[Path, Path]:
    """Simulate an exchange and run it through the real pipeline; returns (exchange.toml, serving.duckdb)."""
    sim, lake, warehouse, asn = root / "sim", root / "lake", root / "warehouse", root / "ipasn.dat"
    peerpool = str(PEERPOOL)
    # recent days: the 5-minute charts show the last week (Superset's relative ranges count from now)
    start = (dt.date.today() - dt.timedelta(days=days + 1)).isoformat()
    run(
        [
            peerpool,
            "simulate",
            "--members",
            str(members),
            "--days",
            str(days),
            "--start",
            start,
            "--out",
            str(sim),
        ],
        "simulate",
    )
    run([peerpool, "asn", "build", str(sim / "rib.mrt"), "--out", str(asn)], "asn build")
    config = sim / "exchange.toml"
    run(
        [peerpool, "decode", str(sim / "spool"), "--lake", str(lake), "--config", str(config),
         "--asn-db", str(asn), "--quiet"],
        "decode",
    )  # fmt: skip
    counters = sorted(str(p) for p in (sim / "counters").glob("*.csv"))
    run([peerpool, "counters", "import", *counters, "--lake", str(lake), "--config", str(config)], "counters")
    run(
        [peerpool, "build", "--lake", str(lake), "--config", str(config), "--warehouse", str(warehouse)],
        "build",
    )
    # the bill and the tender report are sources of the models (peerpool/export_sources.py): preview
    # bills of the simulated month(s), a tender report on a few months of transit history (the
    # simulated days are too few for scenarios), then the build that reads them
    serving = warehouse / "serving.duckdb"
    exports = root / "exports"
    local_days = [dt.date.fromisoformat(start) + dt.timedelta(days=i) for i in range(days)]
    for month in sorted({day.strftime("%Y-%m") for day in local_days}):
        run([peerpool, "bill", "--month", month, "--out", str(exports), "--serving", str(serving),
             "--config", str(config)], f"bill {month}")  # fmt: skip
    history, tiers = root / "tender-history.duckdb", root / "tender-tiers.toml"
    write_transit_history(history)
    tiers.write_text(TIERS)
    run([peerpool, "tender", "run", "--serving", str(history), "--tiers", str(tiers), "--months", "12",
         "--out", str(exports / "tender" / "test-run")], "tender run")  # fmt: skip
    run(
        [peerpool, "build", "--lake", str(lake), "--config", str(config), "--warehouse", str(warehouse),
         "--exports", str(exports)],
        "build with the exports",
    )  # fmt: skip
    return config, serving


class ApiError(AssertionError):
    def __init__(self, status: int, body: str, url: str) -> None:
        super().__init__(f"{url}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass
class Client:
    """One logged-in (or anonymous) user of the REST API."""

    base: str
    token: str | None = None
    csrf: str | None = None
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def _opener(self) -> urllib.request.OpenerDirector:
        return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bool = False,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None and not raw else body
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if body is not None and not raw:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if self.csrf and method != "GET":
            req.add_header("X-CSRFToken", self.csrf)
            req.add_header("Referer", self.base + "/")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with self._opener().open(req, timeout=120) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def json(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = 200) -> Any:
        status, payload, _ = self.request(method, path, body)
        wanted = (expect,) if isinstance(expect, int) else expect
        if status not in wanted:
            raise ApiError(status, payload.decode(errors="replace"), path)
        return json.loads(payload) if payload else None

    def login(self, username: str, password: str) -> Client:
        result = self.json(
            "POST", "/api/v1/security/login",
            {"username": username, "password": password, "provider": "db", "refresh": False},
        )  # fmt: skip
        self.token = result["access_token"]
        self.csrf = self.json("GET", "/api/v1/security/csrf_token/")["result"]
        return self

    def login_session(self, username: str, password: str) -> Client:
        """Log in through the web form (a session cookie, as a browser has), not a JWT."""
        status, body, _ = self.request("GET", "/login/")
        found = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body)
        if status != 200 or found is None:
            raise ApiError(status, body.decode(errors="replace"), "/login/")
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrf_token": found.group(1).decode()}
        ).encode()
        status, body, headers = self.request(
            "POST", "/login/", form, raw=True, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 302 or "login" in headers.get("Location", "login"):
            raise ApiError(status, body.decode(errors="replace"), "/login/ (wrong password?)")
        self.csrf = self.json("GET", "/api/v1/security/csrf_token/")["result"]
        return self

    def session_cookie(self) -> dict[str, str]:
        cookie = next(c for c in self.jar if c.name == "session")
        return {"name": cookie.name, "value": cookie.value or "", "path": "/"}

    # ---- helpers over the API ----

    def dataset_ids(self) -> dict[str, int]:
        query = "(page_size:100,columns:!(id,table_name))"
        result = self.json("GET", f"/api/v1/dataset/?q={query}")["result"]
        return {row["table_name"]: row["id"] for row in result}

    def chart_data(self, dataset_id: int, query: dict[str, Any], **extra: Any) -> tuple[int, Any]:
        body = {
            "datasource": {"id": dataset_id, "type": "table"},
            # no "metrics" key: raw rows; "metrics": [...] (even empty): grouped
            "queries": [{"row_limit": 100000, "filters": [], **query}],
            "result_format": extra.pop("result_format", "json"),
            "result_type": extra.pop("result_type", "full"),
            **extra,
        }
        status, payload, _ = self.request("POST", "/api/v1/chart/data", body)
        if body["result_format"] == "json":
            try:
                return status, json.loads(payload)
            except ValueError:
                return status, payload.decode(errors="replace")
        return status, payload.decode(errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Keep 302s visible: an anonymous request must not silently land on the login page."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class SupersetSite:
    base: str
    port: int
    var: Path
    config: Path
    serving: Path
    env: dict[str, str]
    admin_password: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def passwords(self) -> dict[str, str]:
        data: dict[str, str] = json.loads((self.var / "credentials.json").read_text())["member_passwords"]
        return data

    def client(self, username: str | None = None) -> Client:
        client = Client(self.base)
        if username is None:
            return client
        password = self.admin_password if username == "admin" else self.passwords()[username]
        return client.login(username, password)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None


def start_site(root: Path, data: tuple[Path, Path] | None = None) -> SupersetSite:
    """Set Superset up with ``peerpool dashboards setup`` and serve it on a free port.

    ``data`` is (exchange.toml, serving.duckdb); without it, both are built through the pipeline.
    """
    config, serving = data or build_serving(root / "data")
    var = root / "var"
    admin_password = secrets.token_urlsafe(16)
    env = {
        "SUPERSET_SECRET_KEY": secrets.token_urlsafe(48),
        "SUPERSET_ADMIN_PASSWORD": admin_password,
        "PEERPOOL_CONFIG": str(config),
        "PEERPOOL_SERVING": str(serving),
    }
    run([str(PEERPOOL), "dashboards", "setup", "--var", str(var)], "peerpool dashboards setup", env)
    port = free_port()
    log = root / "superset.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(PEERPOOL), "dashboards", "serve", "--var", str(var), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True,
        )  # fmt: skip
    site = SupersetSite(
        f"http://127.0.0.1:{port}", port, var, config, serving, env, admin_password, proc, log
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"superset exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(site.base + "/health", timeout=5) as resp:
                if resp.status == 200:
                    return site
        except OSError:
            pass
        time.sleep(1)
    site.stop()
    raise RuntimeError(
        f"superset did not answer /health within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
    )


_SITE: SupersetSite | None = None


def shared_site(root: Path) -> SupersetSite:
    """The session's one server (test modules share it; each module's fixture finalizer stops it)."""
    global _SITE
    if _SITE is None:
        _SITE = start_site(root)
    return _SITE


def stop_shared_site() -> None:
    if _SITE is not None:
        _SITE.stop()


if __name__ == "__main__":  # manual use: python tests/superset_server.py DIR  (Ctrl-C stops)
    site = start_site(Path(sys.argv[1]))
    print(site.base, "admin", site.admin_password)
    try:
        site.proc.wait() if site.proc else None
    finally:
        site.stop()
