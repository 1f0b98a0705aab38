"""The web app in a real headless Chromium, two browser contexts: a reviewer fills and submits a review, the
assigned manager rejects it with a comment from the inbox, the reviewer fixes and resubmits, the manager approves;
both see the same history, `review verify` says ok, each page's screenshot has content, and no request leaves the
app."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from tests.browser.test_report_html import CHROMIUM, browser, distinct_colours  # noqa: F401 - the fixture
from tests.conftest import NOW, Factory, ok
from tests.web.conftest import PASSWORD, give_passwords

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(factory: Factory, database: Database, db_url: str, now: Any) -> Iterator[str]:
    """The app on a loopback port (uvicorn in a thread), over a team with passwords and bob's draft review."""
    import uvicorn

    from pulsecheck.web.app import create_app

    factory.team()
    give_passwords(database, now, "maria", "bob")
    factory.review()
    settings = load_settings(env={"PULSECHECK_DATABASE_URL": db_url})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, database, lambda: NOW), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):  # bounded: the server starts in well under the 20 s this allows
        if server.started:
            break
        time.sleep(0.1)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


class Person:
    """One browser context signed in as one user, recording every request it makes."""

    def __init__(self, chromium: Any, base: str, name: str) -> None:
        self.context = chromium.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(f"{base}/signin")
        self.page.get_by_label("User name").fill(name)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{base}/")

    def shot(self, directory: Path, name: str) -> bytes:
        png: bytes = self.page.screenshot(path=str(directory / f"{name}.png"), full_page=True)
        return png


def history(page: Any) -> list[str]:
    return [row.inner_text() for row in page.locator("#history tbody tr").all()]


def test_reviewer_and_manager_take_a_review_to_approval(
    browser: Any, served: str, run: Any, tmp_path: Path  # noqa: F811 - the browser fixture
) -> None:
    bob = Person(browser, served, "bob")
    bob.page.get_by_role("link", name="Review 1").first.click()
    page = bob.page
    assert page.locator(".guards li").count() >= 5  # every reason at once
    page.get_by_label("Account goals").fill("Expand to 500 seats")
    page.get_by_label("Goal summary").fill("320 seats, on track")
    page.get_by_label("Overall assessment").fill("Healthy but exposed to a champion change")
    page.get_by_label("Next review date").fill("2027-02-20")
    page.get_by_label("new risk description").fill("Champion leaving")
    page.get_by_label("new risk severity").select_option("high")
    page.get_by_role("button", name="Save").click()
    page.get_by_label("new action description").fill("Build a second champion")
    page.get_by_label("new action owner").fill("bob")
    page.get_by_label("new action due date").fill("2026-12-20")
    page.get_by_role("button", name="Save").click()
    assert page.locator(".guards").count() == 0
    page.get_by_role("button", name="Submit and sign").click()
    assert "submitted" in page.locator("h1").inner_text()
    shots = {"review-submitted": bob.shot(tmp_path, "review-submitted")}

    maria = Person(browser, served, "maria")
    assert "Waiting for my approval (1)" in maria.page.content()
    shots["inbox"] = maria.shot(tmp_path, "inbox")
    maria.page.locator("#approvals").get_by_role("link", name="Review 1").click()
    maria.page.get_by_label("Decision comment").fill("Please move the action into Q1")
    maria.page.get_by_role("button", name="Reject").click()
    assert "draft" in maria.page.locator("h1").inner_text()

    page.reload()
    assert "Please move the action into Q1" in page.locator("#history").inner_text()
    page.get_by_label("action 1 due date").fill("2027-01-15")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Submit and sign").click()

    maria.page.reload()
    maria.page.get_by_label("Decision comment").fill("Agreed")
    maria.page.get_by_role("button", name="Approve and sign").click()
    assert "approved" in maria.page.locator("h1").inner_text()
    shots["review-approved"] = maria.shot(tmp_path, "review-approved")
    page.reload()
    assert history(page) == history(maria.page)
    assert [row.split("\t")[1] for row in history(page)] == ["open", "submit", "reject", "submit", "approve"]
    maria.page.goto(f"{served}/accounts/ACME")
    assert "$120,000" in maria.page.content()
    shots["account"] = maria.shot(tmp_path, "account")

    said = ok(run("review", "verify", "1"))
    assert said.startswith("ok: review 1: employee, manager signature(s) match")
    blank = browser.new_page()
    blank.set_content("<html><body></body></html>")
    assert distinct_colours(browser, blank.screenshot()) <= 2
    for name, png in shots.items():
        assert distinct_colours(browser, png) > 20, name  # text, buttons, tables: not a blank page
    for url in bob.requests + maria.requests:
        assert url.startswith(served + "/"), url  # every asset comes from the app
