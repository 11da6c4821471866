"""Every dashboard in Debian's headless Chromium, as admin and as a member, with no chart in error.

The browser is driven through chromedriver's plain W3C WebDriver HTTP API (urllib, no selenium).
A script injected before any page script records each ``/api/v1/chart/data`` response the
dashboard's own front end receives; a dashboard passes when every chart's request came back 200
with status "success", no chart shows an error alert (``.ant-alert-error``), and, for a member, no
response carries a member column holding anyone else. A deliberately broken chart, made through the
API and deleted afterwards, proves the detector sees an error when there is one. Screenshots of
each dashboard are kept under ``var/test-artifacts/superset/``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.superset_server import ARTIFACTS, Client, SupersetSite, free_port, shared_site, stop_shared_site

pytestmark = [pytest.mark.superset, pytest.mark.slow]

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1600,4000",
]  # fmt: skip
DASHBOARD_TIMEOUT_S = 120
SHOTS = ARTIFACTS / "superset"
MEMBER_COLUMNS = ("member_id", "src_member_id", "dst_member_id")

# Wraps window.fetch before the page's scripts run; keeps status and body of each chart-data call.
RECORDER = """
window.__chartData = [];
const originalFetch = window.fetch;
window.fetch = async function (input, init) {
  const url = typeof input === 'string' ? input : (input && input.url) || '';
  const response = await originalFetch.apply(this, arguments);
  if (url.includes('/api/v1/chart/data')) {
    const entry = {url: url, status: response.status, body: null};
    window.__chartData.push(entry);
    response.clone().text().then(text => { entry.body = text; }, () => { entry.body = ''; });
  }
  return response;
};
"""

STATE = """
const holders = document.querySelectorAll(
  '[data-test="dashboard-component-chart-holder"] .chart-container').length;
const loading = document.querySelectorAll(
  '.chart-container .loading, [data-test="loading-indicator"]').length;
const errors = Array.from(document.querySelectorAll('.ant-alert-error, [data-test="error-tooltip"]'))
  .map(e => e.innerText.slice(0, 300));
const calls = (window.__chartData || []).map(e => ({status: e.status, done: e.body !== null,
                                                    body: e.body}));
return {holders: holders, loading: loading, errors: errors, calls: calls, url: location.href};
"""


class WebDriver:
    """The few W3C WebDriver commands the test needs, over HTTP to a local chromedriver."""

    def __init__(self, workdir: Path) -> None:
        driver = shutil.which("chromedriver")
        browser = shutil.which("chromium")
        if driver is None or browser is None:
            pytest.fail("chromium and chromium-driver are not installed: run the README's test command")
        self.port = free_port()
        self.log = (workdir / "chromedriver.log").open("wb")
        self.proc = subprocess.Popen(
            [driver, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                pytest.fail("chromedriver did not start within 30 s")
            time.sleep(0.2)
        options = {"binary": browser, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'profile'}"]}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        self.session = self._call("POST", "/session", {"capabilities": capabilities})["sessionId"]
        self.prefix = f"/session/{self.session}"
        self._call("POST", self.prefix + "/timeouts", {"pageLoad": 60000, "script": 30000})

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=90) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as err:
            raise AssertionError(f"webdriver {method} {path}: {err.read()[:500]!r}") from err

    def cdp(self, command: str, params: dict[str, Any]) -> Any:
        return self._call("POST", self.prefix + "/goog/cdp/execute", {"cmd": command, "params": params})

    def go(self, url: str) -> None:
        self._call("POST", self.prefix + "/url", {"url": url})

    def script(self, source: str, *args: Any) -> Any:
        return self._call("POST", self.prefix + "/execute/sync", {"script": source, "args": list(args)})

    def type_into(self, css: str, text: str) -> None:
        element = self._call("POST", self.prefix + "/element", {"using": "css selector", "value": css})[
            ELEMENT
        ]
        self._call("POST", self.prefix + f"/element/{element}/value", {"text": text})

    def click(self, css: str) -> None:
        element = self._call("POST", self.prefix + "/element", {"using": "css selector", "value": css})[
            ELEMENT
        ]
        self._call("POST", self.prefix + f"/element/{element}/click", {})

    def url(self) -> str:
        url: str = self._call("GET", self.prefix + "/url")
        return url

    def screenshot(self, path: Path) -> None:
        """The viewport (tall enough for a whole dashboard; capturing beyond it re-lays the page out)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", self.prefix + "/screenshot")))

    def delete_cookies(self) -> None:
        self._call("DELETE", self.prefix + "/cookie")

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", self.prefix)
        except (AssertionError, OSError):
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupersetSite]:
    yield shared_site(tmp_path_factory.mktemp("superset"))
    stop_shared_site()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with tempfile.TemporaryDirectory(prefix="peerpool-chromium-") as workdir:
        driver = WebDriver(Path(workdir))
        try:
            driver.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
            yield driver
        finally:
            driver.close()


def login(browser: WebDriver, site: SupersetSite, username: str, password: str) -> None:
    browser.delete_cookies()
    browser.go(site.base + "/login/")
    browser.type_into("#username", username)
    browser.type_into("#password", password)
    browser.click('[data-test="login-button"]')
    deadline = time.monotonic() + 30
    while "/login" in browser.url():
        if time.monotonic() > deadline:
            pytest.fail(f"{username} could not log in through the form")
        time.sleep(0.3)


def wait_for_charts(browser: WebDriver, expected: int, what: str, holders: int = 0) -> dict[str, Any]:
    """Bounded wait until ``expected`` chart-data calls have answered, ``holders`` dashboard chart
    slots are on the page and nothing is loading (or an error shows)."""
    deadline = time.monotonic() + DASHBOARD_TIMEOUT_S
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = browser.script(STATE)
        finished = [c for c in state["calls"] if c["done"]]
        if len(finished) >= expected and state["loading"] == 0 and state["holders"] >= holders:
            time.sleep(1.0)  # let the last chart paint before the screenshot
            return dict(browser.script(STATE))
        if state["errors"]:
            return state
        time.sleep(0.5)
    pytest.fail(
        f"{what}: charts still loading after {DASHBOARD_TIMEOUT_S} s ({len(state.get('calls', []))} calls)"
    )


def chart_results(state: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for call in state["calls"]:
        assert call["status"] == 200, call["body"][:500]
        for result in json.loads(call["body"])["result"]:
            results.append(result)
    return results


def open_dashboard(
    browser: WebDriver, site: SupersetSite, client: Client, slug: str, who: str
) -> dict[str, Any]:
    charts = client.json("GET", f"/api/v1/dashboard/{slug}/charts")["result"]
    assert charts, slug
    browser.go(site.base + f"/superset/dashboard/{slug}/")
    state = wait_for_charts(browser, len(charts), f"{who} on {slug}", holders=len(charts))
    browser.screenshot(SHOTS / f"{slug}-{who}.png")
    assert state["errors"] == [], f"{who} on {slug}: {state['errors']}"
    results = chart_results(state)
    assert len(results) >= len(charts)
    for result in results:
        assert result["status"] == "success" and not result["error"], (slug, result.get("error"))
    return state


@pytest.mark.parametrize("slug", ["member", "economics", "purchasing", "operations", "exchange"])
def test_every_dashboard_renders_for_admin(browser: WebDriver, site: SupersetSite, slug: str) -> None:
    admin = site.client("admin")
    login(browser, site, "admin", site.admin_password)
    state = open_dashboard(browser, site, admin, slug, "admin")
    rows = sum(len(r["data"]) for r in chart_results(state))
    assert rows > 0, f"{slug}: every chart came back empty"


def test_member_dashboard_renders_for_a_member_with_only_its_rows(
    browser: WebDriver, site: SupersetSite
) -> None:
    member = sorted(site.passwords())[0]
    assert member.startswith("as")
    member_id = member.upper()
    login(browser, site, member, site.passwords()[member])
    client = site.client(member)
    state = open_dashboard(browser, site, client, "member", member)
    seen_columns = set()
    for result in chart_results(state):
        for row in result["data"]:
            present = [c for c in MEMBER_COLUMNS if c in row]
            seen_columns.update(present)
            if "member_id" in row:
                assert row["member_id"] == member_id, row
            if "src_member_id" in row:
                assert member_id in (row["src_member_id"], row["dst_member_id"]), row
    assert {"member_id", "src_member_id", "dst_member_id"} <= seen_columns, "the check saw no member column"
    browser.go(site.base + "/superset/dashboard/operations/")
    time.sleep(3)
    text = browser.script("return document.body.innerText")
    assert "Member matrix" not in text and "Exporters: last data" not in text


def test_totals_dashboard_renders_for_a_member_without_member_rows(
    browser: WebDriver, site: SupersetSite
) -> None:
    """The site's exchange.toml says member_visibility = "totals": a member opens the cooperative totals."""
    member = sorted(site.passwords())[0]
    login(browser, site, member, site.passwords()[member])
    state = open_dashboard(browser, site, site.client(member), "exchange", member)
    rows = [row for result in chart_results(state) for row in result["data"]]
    assert rows, "every totals chart came back empty"
    assert not any(column in row for row in rows for column in MEMBER_COLUMNS)


def test_the_error_detector_sees_a_broken_chart(browser: WebDriver, site: SupersetSite) -> None:
    """Negative control: a chart whose metric names a missing column must be reported as an error."""
    admin = site.client("admin")
    login(browser, site, "admin", site.admin_password)
    dataset = admin.dataset_ids()["dim_members"]
    broken = {"expressionType": "SQL", "sqlExpression": "SUM(no_such_column)", "label": "broken"}
    params = {
        "viz_type": "table",
        "datasource": f"{dataset}__table",
        "query_mode": "aggregate",
        "groupby": ["member_id"],
        "metrics": [broken],
        "row_limit": 10,
        "adhoc_filters": [],
    }
    chart = {
        "slice_name": "broken probe",
        "viz_type": "table",
        "datasource_id": dataset,
        "datasource_type": "table",
        "params": json.dumps(params),
    }
    created = admin.json("POST", "/api/v1/chart/", chart, expect=201)
    try:
        browser.go(site.base + f"/explore/?slice_id={created['id']}&standalone=1")
        state = wait_for_charts(browser, 1, "broken probe")
        assert any("no_such_column" in error for error in state["errors"]), state["errors"]
    finally:
        admin.json("DELETE", f"/api/v1/chart/{created['id']}")
