"""What a sealed cycle stores: the archive it was approved on (accounts with score, bucket and at-risk reason, step
results, evidence digests) survives a re-score; evidence files are stored in the database and sealed by sha256;
tampering with the archive or the stored bytes by SQL is detected and named."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pulsecheck.demo import examples_dir
from pulsecheck.errors import InputError
from pulsecheck.storage.db import Database
from pulsecheck.workflow import cycles
from pulsecheck.workflow.cycles.seal import account_list
from tests.integration.test_cycle import Cycle, seed, user

EVIDENCE = b"account,score\nACME,41.5\n\x00\xff binary tail"


@pytest.fixture
def portfolio(database: Database, now: datetime) -> Database:
    seed(database, now)
    return database


def sealed_cycle(database: Database, now: datetime, evidence: Path) -> Cycle:
    """A complete cycle whose classify step has a file and a link as evidence, submitted and approved."""
    cycle = Cycle(database, now).start()
    cycle.steps("scope", "data", "model", "trends")
    cycle.step("classify", evidence=[str(evidence), "https://wiki.example.com/c1"])
    for item in cycle.data()["steps"][4]["result"]["at_risk"]:
        cycle.decide(item["account"], owner=item["owner"] or "bob", reason="renewal call booked")
    cycle.steps("escalate", "document")
    cycle.fire("submit", "bob")
    assert cycle.fire("approve", "maria", "ok") == "approved"
    return cycle


def other_model(tmp_path: Path) -> Path:
    """The sample model with another version and other weights: it scores every account differently."""
    changed = (examples_dir() / "scoring.yaml").read_text().replace('version: "2026.11"', 'version: "2026.12"')
    changed = changed.replace("name: usage, weight: 30", "name: usage, weight: 60")
    changed = changed.replace("name: nps, weight: 20", "name: nps, weight: 5")
    changed = changed.replace("name: csat, weight: 20", "name: csat, weight: 5")
    path = tmp_path / "scoring-2026.12.yaml"
    path.write_text(changed)
    return path


def test_a_re_score_with_another_model_changes_nothing_a_sealed_archive_shows(
    portfolio: Database, now: datetime, tmp_path: Path
) -> None:
    from pulsecheck.workflow import models, scoring

    evidence = tmp_path / "scorecard.csv"
    evidence.write_bytes(EVIDENCE)
    cycle = sealed_cycle(portfolio, now, evidence)
    before = cycle.data(full=True)
    assert before["verification"] == {"problems": [], "ok": True}
    at_risk = {a["account"]: a for a in before["steps"][4]["result"]["at_risk"]}
    archived = {a["account"]: a for a in before["accounts_list"]}
    assert at_risk and all(archived[name]["at_risk"] and archived[name]["reasons"] == a["reasons"]
                           for name, a in at_risk.items())
    assert all(archived[name]["reasons"] == [] for name in archived if name not in at_risk)

    with portfolio.transaction() as session:
        found = cycles.get_cycle(session, cycle.id)
        models.approve_model(session, other_model(tmp_path), user(session, "olga"), now)
        as_of = found.as_of
    with portfolio.transaction() as session:
        scoring.score_portfolio(session, as_of, now)
    with portfolio.transaction() as session:
        live = {a["account"]: a["score"] for a in account_list(session, cycles.get_cycle(session, cycle.id))}
    changed = [name for name in live if live[name] != archived[name]["score"]]
    assert len(changed) >= len(live) - 1  # the re-score really moved the live scores

    after = cycle.data(full=True)
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    assert cycle.verify() == []


def test_evidence_files_are_stored_and_sealed_by_their_bytes(portfolio: Database, now: datetime,
                                                             tmp_path: Path) -> None:
    evidence = tmp_path / "scorecard.csv"
    evidence.write_bytes(EVIDENCE)
    cycle = sealed_cycle(portfolio, now, evidence)
    sha = hashlib.sha256(EVIDENCE).hexdigest()
    evidence.write_bytes(b"rewritten after the seal")  # the file on disk is no longer what was sealed
    data = cycle.data(full=True)
    assert data["evidence"] == [
        {"step": "classify", "link": "https://wiki.example.com/c1", "file": None, "sha256": None},
        {"step": "classify", "link": None, "file": "scorecard.csv", "sha256": sha},
    ]
    assert data["verification"]["ok"] is True
    with portfolio.engine.connect() as conn:
        stored = conn.execute(text("SELECT content FROM attachments WHERE sha256 = :s"), {"s": sha}).scalar_one()
    assert bytes(stored) == EVIDENCE


TAMPERINGS = [
    ("UPDATE attachments SET content = :bytes", {"bytes": b"forged scorecard"},
     "attachment 1 (scorecard.csv) of step classify: stored bytes changed"),
    ("UPDATE attachment_links SET filename = 'other.csv'", {},
     "content changed after approval: steps differ from the sealed archive"),
    ("UPDATE review_cycles SET sealed = :forged", {},  # a sealed score changed in the stored archive
     "sealed archive changed after approval"),
    ("DELETE FROM attachment_links", {}, "content changed after approval: steps differ from the sealed archive"),
]


@pytest.mark.parametrize(("statement", "params", "named"), TAMPERINGS, ids=["bytes", "name", "archive", "unlink"])
def test_tampering_with_the_archive_or_the_evidence_is_detected(
    portfolio: Database, now: datetime, tmp_path: Path, statement: str, params: dict[str, Any], named: str
) -> None:
    evidence = tmp_path / "scorecard.csv"
    evidence.write_bytes(EVIDENCE)
    cycle = sealed_cycle(portfolio, now, evidence)
    assert cycle.verify() == []
    if ":forged" in statement:
        with portfolio.transaction() as session:
            forged = dict(cycles.get_cycle(session, cycle.id).sealed or {})
        forged["accounts"] = [a | {"score": 99.0, "bucket": "healthy"} for a in forged["accounts"]]
        params = {"forged": json.dumps(forged)}
    with portfolio.engine.begin() as conn:
        conn.execute(text(statement), params)
    problems = cycle.verify()
    assert len(problems) == 1 and problems[0].startswith(named), problems
    assert cycle.data(full=True)["verification"]["ok"] is False


def test_a_step_that_runs_again_drops_its_evidence(portfolio: Database, now: datetime, tmp_path: Path) -> None:
    evidence = tmp_path / "notes.txt"
    evidence.write_bytes(b"checked")
    cycle = Cycle(portfolio, now).start()
    cycle.step("scope", evidence=[str(evidence)])
    assert [a["filename"] for a in cycle.data()["steps"][0]["attachments"]] == ["notes.txt"]
    cycle.step("scope")
    assert cycle.data()["steps"][0]["attachments"] == []
    with portfolio.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM attachment_links")).scalar_one() == 0


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("javascript://%0aalert(document.domain)", "only http and https links are allowed, not javascript:"),
        ("javascript:alert(1)", "only http and https links are allowed, not javascript:"),
        ("file:///etc/passwd", "only http and https links are allowed, not file:"),
        ("data:text/html,<script>alert(1)</script>", "only http and https links are allowed, not data:"),
        ("https://", "not a valid https URL"),
    ],
)
def test_only_http_links_are_evidence(portfolio: Database, now: datetime, item: str, message: str) -> None:
    cycle = Cycle(portfolio, now).start()
    with pytest.raises(InputError) as raised:
        cycle.step("scope", evidence=[item])
    assert str(raised.value) == f"--evidence {item}: {message}"
    assert cycle.data()["steps_done"] == 0


def test_evidence_over_the_size_limit_is_refused(portfolio: Database, now: datetime, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1025)
    cycle = Cycle(portfolio, now).start()
    with portfolio.transaction() as session, pytest.raises(InputError, match="1025 bytes, over the attachment limit"):
        cycles.run_step(session, cycle.id, "scope", user(session, "bob"), now, cycle.settings,
                        evidence=[str(big)], max_size=1024)
    big.write_bytes(b"x" * 1024)
    with portfolio.transaction() as session:
        cycles.run_step(session, cycle.id, "scope", user(session, "bob"), now, cycle.settings,
                        evidence=[str(big)], max_size=1024)
    assert cycle.data()["steps"][0]["attachments"][0]["sha256"] == hashlib.sha256(b"x" * 1024).hexdigest()


def test_the_archive_and_evidence_on_postgres(pg_database: Database, now: datetime, tmp_path: Path) -> None:
    seed(pg_database, now)
    evidence = tmp_path / "scorecard.csv"
    evidence.write_bytes(EVIDENCE)
    cycle = sealed_cycle(pg_database, now, evidence)
    assert cycle.verify() == []  # the archive reads back from a PostgreSQL JSON column with the sealed digest
    assert cycle.data(full=True)["evidence"][1]["sha256"] == hashlib.sha256(EVIDENCE).hexdigest()
    with pg_database.engine.begin() as conn:
        conn.execute(text("UPDATE attachments SET content = :b"), {"b": b"forged"})
    assert cycle.verify() == [
        f"attachment 1 (scorecard.csv) of step classify: stored bytes changed (filed as sha256 "
        f"{hashlib.sha256(EVIDENCE).hexdigest()[:16]}…)"]
