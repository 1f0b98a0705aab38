"""`rules activate`, `rules show` and `escalations ack / resolve` as a user runs them on the sample portfolio:
output, --json shapes, who may, exit codes, one-line errors, and nothing changed by a refusal."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulsecheck.demo import examples_dir
from pulsecheck.storage.db import Database
from tests.conftest import NOW, Run, Templates, as_json, error, ok, page_items, sample_via_cli, scored_sample

RULES = examples_dir() / "rules.yaml"
NO_RULESET = "error: no active ruleset: run `pulsecheck rules activate FILE` first"


def expected_rules(path: Path) -> list[dict[str, Any]]:
    """What `rules show --json` lists, read straight from the YAML: id, description, action names in order."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        {"id": rule["id"], "description": rule.get("description"), "actions": list(rule["then"])}
        for rule in document["rules"]
    ]


@pytest.fixture
def sample(run: Run, database: Database, templates: Templates) -> Run:
    """The sample team and portfolio with the example model approved (no scores, no ruleset yet)."""
    templates.load(database, templates.seeded("sample", sample_via_cli))
    return run


def test_rules_activate_then_show(sample: Run, tmp_path: Path) -> None:
    assert error(sample("rules", "show"), 1) == NO_RULESET
    sha = hashlib.sha256(RULES.read_bytes()).hexdigest()
    said = ok(sample("--as", "olga", "rules", "activate", str(RULES))).splitlines()
    assert said[0].startswith(f"blast radius of {RULES} against no active ruleset, on the facts as of ")
    assert said[-1] == f"ruleset rules.yaml active (sha256 {sha[:12]}, by olga)"
    shown = as_json(sample("rules", "show", "--json"))
    assert shown == {"name": "rules.yaml", "sha256": sha, "activated_by": "olga", "activated_at": NOW.isoformat(),
                     "rules": expected_rules(RULES)}
    text = ok(sample("rules", "show"))
    assert text.splitlines()[0] == f"rules.yaml (sha256 {sha[:12]}), activated by olga at {NOW.isoformat()}"
    for rule in expected_rules(RULES):
        assert rule["id"] in text

    # a new version replaces the active one; the old content is no longer what `show` reports
    smaller = tmp_path / "rules-v2.yaml"
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    document["rules"] = document["rules"][:2]
    smaller.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    ok(sample("--as", "maria", "rules", "activate", str(smaller)))
    shown = as_json(sample("rules", "show", "--json"))
    assert (shown["name"], shown["activated_by"]) == ("rules-v2.yaml", "maria")
    assert shown["rules"] == expected_rules(smaller) and len(shown["rules"]) == 2


def test_rules_activate_refusals_and_bad_files_change_nothing(sample: Run, tmp_path: Path) -> None:
    assert error(sample("--as", "bob", "rules", "activate", str(RULES)), 1) == (
        "error: only an ops, a manager or an admin may activate, not bob")
    assert error(sample("rules", "show"), 1) == NO_RULESET
    ok(sample("--as", "olga", "rules", "activate", str(RULES)))
    before = as_json(sample("rules", "show", "--json"))
    sha = before["sha256"]
    assert error(sample("--as", "olga", "rules", "activate", str(RULES)), 1) == (
        f"error: {RULES} is already the active ruleset (sha256 {sha[:12]})")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    when: {scroe: {gt: 1}}\n    then: {notify: [owner]}\n")
    result = sample("--as", "olga", "rules", "activate", str(bad))
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{bad}:4: unknown fact 'scroe' (did you mean 'score'?)" in result.stderr
    missing = tmp_path / "missing.yaml"
    assert error(sample("--as", "olga", "rules", "activate", str(missing)), 2).startswith(
        f"error: {missing}: cannot read")
    assert as_json(sample("rules", "show", "--json")) == before


@pytest.fixture
def escalated(run: Run, database: Database, templates: Templates) -> Run:
    """The scored sample portfolio, the example rules activated and evaluated through the CLI."""
    templates.load(database, templates.seeded("scored_sample", scored_sample))
    ok(run("--as", "olga", "rules", "activate", str(RULES)))
    ok(run("evaluate"))
    return run


def acme_drop(run: Run) -> dict[str, Any]:
    """ACME's drop-with-complaints escalation, as `escalations list --json` shows it."""
    (found,) = [e for e in page_items(run("escalations", "list", "--json"))
                if (e["account"], e["rule"]) == ("ACME", "drop-with-complaints")]
    return dict(found)


def test_escalations_ack_then_resolve(escalated: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    run = escalated
    opened = acme_drop(run)
    ident = str(opened["id"])
    assert (opened["status"], opened["owner"]) == ("open", "bob")

    assert error(run("--as", "alice", "escalations", "ack", ident), 1) == (
        "error: only the owner (bob), the owner's manager, a manager, a head_of_cs, an ops or an admin "
        "may ack, not alice")
    assert acme_drop(run) == opened
    assert ok(run("--as", "bob", "escalations", "ack", ident)) == f"escalation {ident} acknowledged\n"
    assert acme_drop(run)["status"] == "acknowledged"
    assert error(run("--as", "bob", "escalations", "ack", ident), 1) == (
        f"error: escalation {ident} is acknowledged, not open")
    assert ident in [str(e["id"]) for e in page_items(run("escalations", "list", "--open", "--json"))]

    assert error(run("--as", "alice", "escalations", "resolve", ident), 1) == (
        "error: only the owner (bob), the owner's manager, a manager, a head_of_cs, an ops or an admin "
        "may resolve, not alice")
    assert ok(run("--as", "maria", "escalations", "resolve", ident)) == f"escalation {ident} resolved\n"
    assert acme_drop(run)["status"] == "resolved"
    assert ident not in [str(e["id"]) for e in page_items(run("escalations", "list", "--open", "--json"))]
    assert error(run("--as", "bob", "escalations", "resolve", ident), 1) == (
        f"error: escalation {ident} is already resolved")

    # drop-with-complaints has `cooldown: 14d`: still matching, it opens again only once that is over
    as_of = NOW.date().isoformat()
    ok(run("evaluate", "--as-of", as_of))
    assert acme_drop(run)["status"] == "resolved"
    monkeypatch.setenv("PULSECHECK_NOW", (NOW + timedelta(days=14)).isoformat())
    ok(run("evaluate", "--as-of", as_of))
    statuses = sorted(e["status"] for e in page_items(run("escalations", "list", "--json"))
                      if (e["account"], e["rule"]) == ("ACME", "drop-with-complaints"))
    assert statuses == ["open", "resolved"]


@pytest.mark.parametrize("command", ["ack", "resolve"])
def test_an_unknown_escalation_is_bad_input(escalated: Run, command: str) -> None:
    assert error(escalated("--as", "maria", "escalations", command, "999"), 2) == "error: unknown escalation 999"
    assert error(escalated("--as", "maria", "escalations", command, "first"), 2).startswith(
        "error: Invalid value for '[ID]...': 'first' is not a valid integer")
