"""The account and cycle pages in a real headless Chromium under the app's Content-Security-Policy: the score
history chart (inline SVG) is drawn with its three points, KPI rows take their rating's colours from the style
sheet and the model's swatches show, nothing is refused by the policy; on the cycle page the owner adds a finding
and closes it through the forms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulsecheck.storage.db import Database
from tests.browser.test_report_html import CHROMIUM, browser, distinct_colours  # noqa: F401 - the fixture
from tests.browser.test_web_app import Person, served  # noqa: F401 - the fixture
from tests.conftest import invoke, ok
from tests.web.test_account_page import DAYS, MODEL, READINGS

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)")


@pytest.fixture
def scored(served: str, database: Database, os_login_admin: str, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    (tmp_path / "model.yaml").write_text(MODEL)
    (tmp_path / "readings.csv").write_text(READINGS)
    ok(invoke(database.url, "readings", "import", str(tmp_path / "readings.csv")))
    ok(invoke(database.url, "--as", "olga", "model", "approve", str(tmp_path / "model.yaml")))
    for day in DAYS:
        ok(invoke(database.url, "score", "--as-of", day))
    yield served


def test_the_account_chart_and_kpi_colours_render_under_the_csp(browser: Any, scored: str,  # noqa: F811
                                                                tmp_path: Path) -> None:
    bob = Person(browser, scored, "bob")
    refused: list[str] = []
    bob.page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
    bob.page.goto(f"{scored}/accounts/ACME")
    chart = bob.page.locator("svg.chart")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert bob.page.locator('g[data-series="score"] circle').count() == 3
    colour = "el => getComputedStyle(el).backgroundColor"
    assert bob.page.locator('tr[data-kpi="tickets"]').evaluate(colour) == "rgb(255, 244, 230)"  # kpi-concern
    assert bob.page.locator('tr[data-kpi="usage"]').evaluate(colour) == "rgb(235, 251, 238)"  # kpi-strength
    swatch = bob.page.locator('tr[data-kpi="tickets"] svg.swatch rect')
    assert swatch.evaluate("el => getComputedStyle(el).fill") == "rgb(255, 136, 0)"  # the model's #ff8800
    stroke = bob.page.locator('g[data-series="score"] polyline').evaluate("el => getComputedStyle(el).stroke")
    assert stroke == "rgb(20, 50, 79)"  # from style.css, not an inline style
    assert distinct_colours(browser, bob.shot(tmp_path, "account")) > 20
    assert refused == []  # the Content-Security-Policy refused nothing the page uses
    assert all(url.startswith(scored + "/") for url in bob.requests)


def test_the_owner_adds_and_closes_a_finding(browser: Any, served: str, database: Database,  # noqa: F811
                                             now: Any) -> None:
    from sqlalchemy import select

    from pulsecheck.storage.models import User
    from pulsecheck.workflow.cycles import start

    with database.transaction() as session:
        owner = session.scalars(select(User).where(User.name == "bob")).one()
        cycle = start(session, "2026-Q4", [], "bob", owner, now).id
    bob = Person(browser, served, "bob")
    bob.page.goto(f"{served}/cycles/{cycle}")
    add = bob.page.locator("form", has=bob.page.get_by_role("heading", name="Add a finding"))
    add.get_by_label("What was found").fill("<b>CRM</b> export missed two accounts")
    add.get_by_label("Corrective action", exact=True).fill("Re-run the export")
    add.get_by_role("button", name="Add finding").click()
    row = bob.page.locator("#findings tr", has_text="export missed two accounts")
    assert "<b>CRM</b> export missed two accounts" in row.inner_text()  # shown as text, not markup
    row.get_by_label("How it was resolved").fill("Export re-run on 24 Nov")
    row.get_by_role("button", name="Close").click()
    closed = bob.page.locator("#findings tr", has_text="export missed two accounts")
    assert "closed: Export re-run on 24 Nov" in closed.inner_text()
