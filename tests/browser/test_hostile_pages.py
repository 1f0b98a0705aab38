"""Generated pages built from hostile data, opened in a real headless Chromium: no script runs (no dialog, the
`window.__pwned` flag stays undefined), no request leaves the file, and the data shows as the text it is.

The hostile values are written straight into the database (as a bad import, a careless admin or an attacker with
SQL access would leave them), so what is tested is the renderer, not the input checks in front of it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select, update

from pulsecheck.demo import examples_dir
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, CycleStep, ScoringModelVersion
from tests.cli.test_cli_cycle import seed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)"
)

Run = Callable[..., Result]
SCRIPT_NAME = "<script>window.__pwned = 'name'; alert('name')</script>"
IMG_NAME = "<img src=x onerror=\"window.__pwned = 'img'; alert('img')\">"
NOTE = "<img src=x onerror=\"window.__pwned = 'note'\"><script>window.__pwned = 'note'</script>"
REASON = "</td></tr></table><script>window.__pwned = 'reason'</script>"
EVIDENCE = [
    "javascript://%0aalert(document.domain)",
    "javascript:window.__pwned='evidence'",
    "data:text/html,<script>window.__pwned='data'</script>",
    "https://wiki.example.com/ok",
]
COLOR = "orange;background-image:url(http://127.0.0.1:9/beacon.png)"


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


@pytest.fixture
def hostile_cycle(run: Run, database: Database, now: datetime, tmp_path: Path) -> Run:
    """The sample portfolio with two accounts renamed to markup, then a cycle run to its last step with markup in
    notes and reasons; `cli` runs commands with the cycle's config."""
    seed(database, now)
    config = tmp_path / "pulsecheck.toml"
    config.write_text(f'[scoring]\nmodel = "{examples_dir() / "scoring.yaml"}"\n')
    with database.transaction() as session:
        for external_id, name in (("SOYLENT", SCRIPT_NAME), ("CYBERDYNE", IMG_NAME)):  # both at risk
            session.scalars(select(Account).where(Account.external_id == external_id)).one().name = name

    def cli(*args: str) -> Result:
        return run("--config", str(config), *args)

    ok(cli("--as", "bob", "cycle", "start", "--period", "2026-11"))
    for step in ("scope", "data", "model", "trends", "classify"):
        ok(cli("--as", "bob", "cycle", "step", "1", step, "--note", NOTE))
    shown = json.loads(ok(cli("cycle", "show", "1", "--json")).stdout)
    for item in shown["steps"][4]["result"]["at_risk"]:
        account = item["account"]
        ok(cli("--as", "bob", "cycle", "decide", "1", account, "monitor", "--owner", "alice", "--reason", REASON))
    ok(cli("--as", "bob", "cycle", "step", "1", "escalate", "--note", NOTE))
    ok(cli("--as", "bob", "cycle", "step", "1", "document", "--evidence", "https://wiki.example.com/ok"))
    with database.transaction() as session:
        session.execute(update(CycleStep).where(CycleStep.step == "document").values(evidence=EVIDENCE))
    return cli


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Visit:
    """A page opened with every request routed (only the file itself is let through) and every dialog, console
    error and page error recorded."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.url = path.as_uri()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context()
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_timeout(200)  # let any onerror handler or timer fire

    def _route(self, route: Any) -> None:
        self.requests.append(route.request.url)
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()

    def pwned(self) -> Any:
        return self.page.evaluate("typeof window.__pwned === 'undefined' ? null : window.__pwned")

    def policy(self) -> str:
        return str(self.page.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content"))

    def assert_inert(self) -> None:
        assert self.pwned() is None
        assert self.dialogs == []
        assert self.requests == [self.url]  # nothing but the file itself
        assert self.policy().startswith("default-src 'none'; style-src 'unsafe-inline'; img-src data:")
        assert "'unsafe-inline'" not in self.policy().split("script-src")[-1] or "script-src" not in self.policy()


def test_a_cycle_archive_of_hostile_data_is_inert(browser: Any, hostile_cycle: Run, tmp_path: Path) -> None:
    out = tmp_path / "cycle.html"
    ok(hostile_cycle("cycle", "export", "1", "--format", "html", "-o", str(out)))
    visit = Visit(browser, out)
    visit.assert_inert()
    assert visit.errors == []
    text = visit.page.locator("body").inner_text()
    for value in (SCRIPT_NAME, IMG_NAME, "window.__pwned = 'reason'", *EVIDENCE):
        assert value in text  # shown as the text it is
    hrefs = [a.get_attribute("href") for a in visit.page.locator("a").all()]
    assert hrefs and all(href == "https://wiki.example.com/ok" for href in hrefs), hrefs
    visit.page.get_by_text(EVIDENCE[0]).first.click()  # text, not a link: a click runs nothing
    assert visit.pwned() is None and visit.dialogs == [] and visit.page.url == visit.url
    assert visit.page.locator("script, img, iframe, object, embed").count() == 0


def test_the_policy_stops_markup_that_slipped_past_escaping(browser: Any, hostile_cycle: Run, tmp_path: Path) -> None:
    out = tmp_path / "cycle.html"
    ok(hostile_cycle("cycle", "export", "1", "--format", "html", "-o", str(out)))
    smuggled = (
        "<script>window.__pwned = 'inline'</script>"
        "<img src='http://127.0.0.1:9/pixel.png' onerror=\"window.__pwned = 'onerror'\">"
        "<link rel=stylesheet href='http://127.0.0.1:9/style.css'>"
        "<div style=\"background-image: url('http://127.0.0.1:9/bg.png'); width: 9px; height: 9px\"></div>"
    )
    out.write_text(out.read_text().replace("</body>", smuggled + "</body>"))  # as if a template forgot to escape
    visit = Visit(browser, out)
    assert visit.pwned() is None and visit.dialogs == []
    assert visit.requests == [visit.url]  # the policy blocks each fetch before it is even attempted
    assert any("Content Security Policy" in error for error in visit.errors)


def test_a_stored_model_with_a_css_url_colour_is_refused_by_the_report(
    hostile_cycle: Run, database: Database, tmp_path: Path
) -> None:
    with database.transaction() as session:
        row = session.scalars(select(ScoringModelVersion).where(ScoringModelVersion.status == "approved")).one()
        row.content = row.content.replace("color: orange}", f'color: "{COLOR}"}}')
        version = row.version
        line = next(n for n, text in enumerate(row.content.splitlines(), 1) if COLOR in text)
    out = tmp_path / "portfolio.html"
    result = hostile_cycle("report", "portfolio", "--html", str(out))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    where = f"approved model {version}:{line}"  # the line of the stored model that holds the colour
    assert result.stderr.startswith(f"error: {where}: bucket 'unhealthy': color '{COLOR}' must be")
    assert not out.exists()


def test_a_portfolio_report_of_hostile_data_is_inert(
    browser: Any, hostile_cycle: Run, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database.transaction() as session:
        row = session.scalars(select(ScoringModelVersion).where(ScoringModelVersion.status == "approved")).one()
        row.content = row.content.replace("color: orange}", f'color: "{COLOR}"}}')
    # Defence in depth: the model check is switched off, so the colour reaches the renderer, which must drop it.
    monkeypatch.setattr("pulsecheck.scoring.schema.is_color", lambda value: True)
    out = tmp_path / "portfolio.html"
    ok(hostile_cycle("report", "portfolio", "--html", str(out)))
    assert COLOR not in out.read_text()
    visit = Visit(browser, out)
    visit.assert_inert()
    assert visit.errors == []
    assert "script-src 'sha256-" in visit.policy()
    swatch = visit.page.locator('#bucket-table tr[data-bucket="unhealthy"] .swatch')
    assert swatch.evaluate("e => getComputedStyle(e).backgroundImage") == "none"
    at_risk = visit.page.locator("#at-risk-table").inner_text()
    assert SCRIPT_NAME in at_risk and IMG_NAME in at_risk  # the names, as text
    visit.page.locator("#at-risk-table th", has_text="name").click()  # the hashed sort script still runs
    assert visit.page.locator("#at-risk-table th", has_text="name").get_attribute("aria-sort") == "ascending"
    assert visit.pwned() is None and visit.dialogs == [] and visit.requests == [visit.url]
