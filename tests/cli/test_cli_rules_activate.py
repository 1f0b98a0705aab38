"""`rules activate` shows its blast radius first, as a diff against the active rules on today's facts: what the
next evaluation would open or resolve that it would not (+), what it would no longer do (-), and the open
escalations of rules the new file removes (!); `--resolve-orphans` resolves those as the acting user, through the
permission table, with an audited reason. On a terminal it asks first; `--yes` does not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from pulsecheck.demo import examples_dir
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import AuditEntry, Escalation, EscalationEvent, Ruleset
from tests.conftest import Run, Templates, as_json, error, ok, scored_sample

RULES = examples_dir() / "rules.yaml"


@pytest.fixture
def evaluated(run: Run, database: Database, templates: Templates) -> Run:
    """The scored sample portfolio with the example rules active and evaluated once."""
    templates.load(database, templates.seeded("scored_sample", scored_sample))
    ok(run("--as", "olga", "rules", "activate", str(RULES)))
    ok(run("evaluate"))
    return run


def changed_rules(tmp_path: Path) -> Path:
    """The sample rules without drop-with-complaints, plus a rule on ACME's 2 open complaints (review it)."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    document["rules"] = [rule for rule in document["rules"] if rule["id"] != "drop-with-complaints"]
    document["rules"].append(
        {"id": "two-complaints", "description": "Two or more open complaints",
         "when": {"open_complaints": {"gte": 2}}, "then": {"notify": {"roles": ["owner"]}}}
    )  # fmt: skip
    path = tmp_path / "rules-v2.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def open_escalations(database: Database) -> set[tuple[str, str]]:
    with database.transaction() as session:
        rows = session.scalars(select(Escalation).where(Escalation.status != "resolved"))
        return {(e.account.external_id, e.rule_id) for e in rows}


def active_name(database: Database) -> str:
    with database.transaction() as session:
        return session.scalars(select(Ruleset.name).where(Ruleset.active.is_(True))).one()


def test_the_blast_radius_lists_new_actions_and_orphans(evaluated: Run, database: Database, tmp_path: Path) -> None:
    path = changed_rules(tmp_path)
    before = open_escalations(database)
    assert ("ACME", "drop-with-complaints") in before
    lines = ok(evaluated("--as", "olga", "rules", "activate", str(path))).splitlines()
    assert lines[0] == (
        f"blast radius of {path} against the active ruleset rules.yaml, on the facts as of 2026-11-24 09:00 UTC:"
    )
    # ACME has complaints CS-1042 and CS-1077 open (issues.csv): the new rule notifies its owner
    assert [line.split() for line in lines if line.startswith("  + ")] == [
        ["+", "ACME", "two-complaints", "notify", "owner:", "Two", "or", "more", "open", "complaints"]
    ]
    assert [line for line in lines if line.startswith("  - ")] == []  # the open escalations dedupe both plans
    (orphan,) = [line for line in lines if line.startswith("  ! ")]
    assert orphan.split()[1:4] == ["ACME", "drop-with-complaints", "orphaned"]
    assert orphan.endswith(f"its rule is not in {path}; left open, nothing will resolve it (--resolve-orphans)")
    assert lines[-2].startswith("  0 escalation(s) and 0 review(s) to open, 0 to resolve, 1 other action(s), "
                                "0 no longer taken, 1 orphaned escalation(s), ")
    assert lines[-1].startswith("ruleset rules-v2.yaml active")
    assert open_escalations(database) == before  # left open, as it said
    # what it said is what evaluation then does: the new action, and those that stay the same
    unchanged = int(lines[-2].rsplit(", ", 1)[1].split()[0])
    actions = as_json(evaluated("evaluate", "--json"))["actions"]
    assert ("ACME", "two-complaints", "notify") in [(a["account"], a["rule"], a["action"]) for a in actions]
    assert len(actions) == 1 + unchanged


def test_resolve_orphans_is_permitted_audited_and_explained(
    evaluated: Run, database: Database, tmp_path: Path
) -> None:
    path = changed_rules(tmp_path)
    assert error(evaluated("--as", "bob", "rules", "activate", str(path), "--resolve-orphans"), 1) == (
        "error: only an ops, a manager or an admin may activate, not bob")
    assert active_name(database) == "rules.yaml"
    said = ok(evaluated("--as", "maria", "rules", "activate", str(path), "--resolve-orphans",
                        "--reason", "superseded by two-complaints")).splitlines()
    assert "resolved now (--resolve-orphans)" in [line for line in said if line.startswith("  ! ")][0]
    with database.transaction() as session:
        acme = session.scalars(select(Escalation).where(Escalation.rule_id == "drop-with-complaints")).one()
        event = session.scalars(select(EscalationEvent)).one()
        entry = session.scalars(select(AuditEntry).where(AuditEntry.kind == "escalation_event")).one()
        status = acme.status
        record = (event.escalation_id, event.event, event.actor, event.reason)
        chained = (entry.record_id, entry.actor)
    assert said[-1] == f"resolved escalation {acme.id} (ACME, rule drop-with-complaints): its rule was removed"
    assert status == "resolved"
    assert record == (acme.id, "resolve", "maria", "rule drop-with-complaints removed: superseded by two-complaints")
    assert chained[0] == event_id(database)
    assert ("ACME", "drop-with-complaints") not in open_escalations(database)
    assert "audit chain ok" in ok(evaluated("audit", "verify"))


def event_id(database: Database) -> int:
    with database.transaction() as session:
        return session.scalars(select(EscalationEvent.id)).one()


@pytest.mark.parametrize(("answer", "activated"), [("n\n", False), ("y\n", True)])
def test_on_a_terminal_it_asks_first(
    evaluated: Run, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, activated: bool
) -> None:
    import pulsecheck.commands.rules as commands

    monkeypatch.setattr(commands, "_on_terminal", lambda: True)
    path = changed_rules(tmp_path)
    result = evaluated("--as", "olga", "rules", "activate", str(path), input=answer)
    assert f"Activate {path}? [y/N]: " in result.stdout
    if activated:
        assert result.exit_code == 0 and active_name(database) == "rules-v2.yaml"
    else:
        assert (result.exit_code, result.stderr) == (1, f"error: {path} not activated\n")
        assert active_name(database) == "rules.yaml"
        assert "  ! " in result.stdout  # it showed what it would have done
    yes = evaluated("--as", "olga", "rules", "activate", str(RULES if activated else path), "--yes")
    assert "? [y/N]" not in yes.stdout and yes.exit_code == 0
