"""The portfolio report's HTML in a real headless Chromium (Playwright): it loads with no console error and no
request leaving the file, renders something (the screenshot is not blank), shows the database's bucket counts,
and sorts a table when a header is clicked."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, ScoreSnapshot
from tests.conftest import Templates, ok, scored_sample

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)"
)

Run = Callable[..., Result]


@pytest.fixture
def report_file(run: Run, database: Database, templates: Templates, tmp_path: Path) -> Path:
    """The sample portfolio imported and scored at three month ends through the CLI, then `report portfolio --html`."""
    templates.load(database, templates.seeded("scored_sample", scored_sample))
    out = tmp_path / "portfolio.html"
    ok(run("report", "portfolio", "--html", str(out)))
    return out


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def database_buckets(database: Database) -> dict[str, int]:
    counts = dict.fromkeys(("unhealthy", "neutral", "healthy"), 0)
    with database.transaction() as session:
        for account_id in session.scalars(select(Account.id)):
            bucket = session.scalar(
                select(ScoreSnapshot.bucket)
                .where(ScoreSnapshot.account_id == account_id)
                .order_by(ScoreSnapshot.as_of.desc())
                .limit(1)
            )
            if bucket:
                counts[bucket] += 1
    return counts


def distinct_colours(browser: Any, png: bytes) -> int:
    """How many different colours a PNG has: Pillow when installed, else decoded by the browser on a canvas."""
    try:
        from io import BytesIO

        from PIL import Image

        image = Image.open(BytesIO(png)).convert("RGB")
        return len(set(image.getdata()))
    except ImportError:
        page = browser.new_page()  # a page of its own, so the report page's request log stays clean
        data_url = "data:image/png;base64," + base64.b64encode(png).decode()
        count = page.evaluate(
            """async (url) => {
                const img = new Image(); img.src = url; await img.decode();
                const canvas = document.createElement("canvas");
                canvas.width = img.width; canvas.height = img.height;
                const ctx = canvas.getContext("2d"); ctx.drawImage(img, 0, 0);
                const pixels = ctx.getImageData(0, 0, img.width, img.height).data;
                const seen = new Set();
                for (let i = 0; i < pixels.length; i += 4) {
                    seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
                }
                return seen.size;
            }""",
            data_url,
        )
        page.close()
        return int(count)


def test_report_opens_offline_and_shows_the_database_counts(
    browser: Any, report_file: Path, database: Database
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    url = report_file.as_uri()
    page.goto(url, wait_until="load")
    assert errors == []
    assert requests == [url]  # nothing but the file itself: no CDN, no font, no script from elsewhere

    shown = {
        row.get_attribute("data-bucket"): int(row.locator("td.count").inner_text().replace(",", ""))
        for row in page.locator("#bucket-table tbody tr").all()
    }
    assert shown == database_buckets(database)
    assert page.locator("#total-accounts").inner_text() == "12"
    assert page.locator("#model-version").inner_text() == "2026.11"
    assert page.locator("figure svg").count() == 4  # the pygal charts, inline

    screenshot = page.screenshot(full_page=True)
    blank = browser.new_page(viewport={"width": 1280, "height": 1000})
    blank.set_content("<html><body></body></html>")
    assert screenshot != blank.screenshot(full_page=True)
    assert distinct_colours(browser, screenshot) > 50  # text, charts, bucket colours; a blank page has 1
    assert requests == [url]


def test_clicking_a_header_sorts_the_rows(browser: Any, report_file: Path) -> None:
    page = browser.new_page()
    page.goto(report_file.as_uri())
    table = page.locator("#at-risk-table")

    def column(index: int) -> list[str]:
        return [cell.inner_text() for cell in table.locator(f"tbody tr td:nth-child({index})").all()]

    accounts = column(2)
    assert len(accounts) >= 2
    table.locator("th", has_text="account").first.click()
    assert column(2) == sorted(accounts)
    table.locator("th", has_text="account").first.click()
    assert column(2) == sorted(accounts, reverse=True)
    assert table.locator("th", has_text="account").first.get_attribute("aria-sort") == "descending"

    table.locator("th", has_text="score").click()
    scores = [float(s) for s in column(6)]
    assert scores == sorted(scores)


def test_an_at_risk_account_links_to_its_scorecard_page(browser: Any, report_file: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(report_file.as_uri())
    link = page.locator("#at-risk-table tbody tr td:nth-child(2) a").first
    account, anchor = link.inner_text(), link.get_attribute("href")
    assert anchor is not None and anchor.startswith("#scorecard-")
    link.click()
    assert page.evaluate("location.hash") == anchor
    target = page.locator(anchor)
    assert target.get_attribute("data-account") == account
    assert target.locator("h2").first.inner_text().startswith(f"Scorecard: {account}")
    box = target.bounding_box()
    assert box is not None and 0 <= box["y"] < 800  # scrolled to it
    assert page.locator("#heat-table tbody tr").count() == page.locator("section.scorecard-page").count() > 0
