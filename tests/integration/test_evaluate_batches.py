"""`evaluate` in batches: one transaction per batch, the run row's life (running → done | failed), idempotent
re-runs, a crashing engine writing nothing, the notification matrix, progress, and the CLI (in-process and as a
subprocess)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pulsecheck.config import load_settings
from pulsecheck.demo.story import DEMO_NOW
from pulsecheck.errors import InputError
from pulsecheck.rules.durable import EngineCrashed
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Escalation, EvaluationRun, Notification, RuleFiring
from pulsecheck.workflow import escalations as escalation
from pulsecheck.workflow.evaluation import EvaluationSettings, evaluate
from tests.conftest import activate_rules, as_json, installed
from tests.integration.conftest import SAMPLE_ESCALATIONS, escalated
from tests.integration.engine_crash import crashing_workers

SMALL_BATCHES = EvaluationSettings(batch_size=2)  # the sample portfolio's 12 accounts in 6 transactions


def _count(database: Database, model: Any, *where: Any) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _runs(database: Database) -> list[tuple[str, str | None]]:
    with database.transaction() as session:
        return [(r.status, r.error) for r in session.scalars(select(EvaluationRun).order_by(EvaluationRun.id))]


def test_a_batched_rerun_opens_nothing_new(rules_portfolio: Database) -> None:
    first = evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert escalated(rules_portfolio) == SAMPLE_ESCALATIONS
    opened = _count(rules_portfolio, Escalation)
    assert opened == len(SAMPLE_ESCALATIONS)
    assert {(p.account, p.rule) for p in first.actions if p.action == "escalate"} == SAMPLE_ESCALATIONS
    notified = _count(rules_portfolio, Notification)
    again = evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert again.firings == first.firings
    assert not [p for p in again.actions if p.action in ("escalate", "open_review")]
    assert _count(rules_portfolio, Escalation) == opened
    assert _count(rules_portfolio, Notification) == notified
    assert _runs(rules_portfolio) == [("done", None), ("done", None)]
    assert _count(rules_portfolio, RuleFiring, RuleFiring.run_id == again.run_id) == len(again.firings)


def test_a_failure_while_applying_marks_the_run_failed_and_a_rerun_finishes_the_job(
    rules_portfolio: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create, calls = escalation.create_many, []

    def failing_create(session: Any, rows: list[Any], now: Any) -> list[Escalation]:
        if rows:
            calls.append(len(rows))
        if len(calls) == 2 and rows:  # the second batch that opens escalations
            raise RuntimeError("disk full")
        return real_create(session, rows, now)

    monkeypatch.setattr(escalation, "create_many", failing_create)
    with pytest.raises(RuntimeError, match="disk full"):
        evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert _runs(rules_portfolio) == [("failed", "RuntimeError: disk full")]
    # the first batch stays committed; the failing batch left nothing behind (its reviews neither)
    assert _count(rules_portfolio, Escalation) == calls[0] < len(SAMPLE_ESCALATIONS)
    monkeypatch.setattr(escalation, "create_many", real_create)
    evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert escalated(rules_portfolio) == SAMPLE_ESCALATIONS  # each once: the kept ones were not opened again
    assert _count(rules_portfolio, Escalation) == len(SAMPLE_ESCALATIONS)
    assert [status for status, _ in _runs(rules_portfolio)] == ["failed", "done"]


def test_an_engine_crash_writes_nothing(
    rules_portfolio: Database, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    with crashing_workers(monkeypatch, capfd), pytest.raises(EngineCrashed, match="nothing was written"):
        evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW)
    assert _count(rules_portfolio, EvaluationRun) == 0
    assert _count(rules_portfolio, Escalation) == 0


def test_progress_reports_every_stage_to_the_end(rules_portfolio: Database) -> None:
    seen: list[tuple[str, int, int]] = []
    evaluate(rules_portfolio, SMALL_BATCHES, DEMO_NOW, DEMO_NOW, dry_run=True, progress=lambda *a: seen.append(a))
    assert [s for s in dict.fromkeys(stage for stage, _, _ in seen)] == ["facts", "engine", "apply"]
    assert ("engine", 12, 12) in seen and seen[-1] == ("apply", 12, 12)
    assert [done for stage, done, _ in seen if stage == "apply"] == [2, 4, 6, 8, 10, 12]


def _team_with_one_rule(factory: Any, database: Database, tmp_path: Path, severity: str, notify: str = "") -> None:
    factory.team()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - id: big\n    when: {arr: {gte: 1000}}\n"
        f"    then: {{escalate: {{severity: {severity}{notify}}}}}\n"
    )
    activate_rules(database, rules, "olga", DEMO_NOW)


def _recipients(database: Database) -> list[str]:
    with database.transaction() as session:
        return sorted(n.recipient for n in session.scalars(select(Notification)))


def test_the_matrix_chooses_who_hears_of_an_escalation(factory: Any, database: Database, tmp_path: Path) -> None:
    config_file = tmp_path / "pulsecheck.toml"
    config_file.write_text('[notifications.matrix]\nhigh = ["owner", "manager"]\nlow = ["owner"]\n')
    config = EvaluationSettings.from_settings(load_settings(config=str(config_file), env={}))
    assert config.matrix == {"high": ["owner", "manager"], "low": ["owner"]}
    _team_with_one_rule(factory, database, tmp_path, "high")
    evaluate(database, config, DEMO_NOW, DEMO_NOW)
    assert _recipients(database) == ["bob", "maria"]


def test_without_a_matrix_entry_the_owner_hears_and_the_rule_s_notify_wins(
    factory: Any, database: Database, tmp_path: Path
) -> None:
    _team_with_one_rule(factory, database, tmp_path, "medium")
    evaluate(database, EvaluationSettings(matrix={"high": ["manager"]}), DEMO_NOW, DEMO_NOW)
    assert _recipients(database) == ["bob"]


def test_a_rule_s_own_notify_beats_the_matrix(factory: Any, database: Database, tmp_path: Path) -> None:
    _team_with_one_rule(factory, database, tmp_path, "high", ", notify: [manager]")
    evaluate(database, EvaluationSettings(matrix={"high": ["owner"]}), DEMO_NOW, DEMO_NOW)
    assert _recipients(database) == ["maria"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'high = ["owner", "managr"]',
            r"pulsecheck.toml: \[notifications.matrix\] high: unknown role 'managr' "
            r"\(did you mean 'manager'\?\)",
        ),  # fmt: skip
        ('hihg = ["owner"]', r"\[notifications.matrix\] hihg: expected .*, got 'hihg' \(did you mean 'high'\?\)"),
        ("high = []", r"\[notifications.matrix\] high: must not be empty"),
    ],
)
def test_a_bad_matrix_is_a_config_error(tmp_path: Path, table: str, message: str) -> None:
    config_file = tmp_path / "pulsecheck.toml"
    config_file.write_text(f"[notifications.matrix]\n{table}\n")
    with pytest.raises(InputError, match=message):
        EvaluationSettings.from_settings(load_settings(config=str(config_file), env={}))


def test_evaluate_json_round_trip_in_process(rules_portfolio: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from pulsecheck.cli import cli

    monkeypatch.setenv("PULSECHECK_DATABASE_URL", str(rules_portfolio.engine.url))
    monkeypatch.setenv("PULSECHECK_NOW", DEMO_NOW.isoformat())
    monkeypatch.delenv("PULSECHECK_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["evaluate", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"as_of", "dry_run", "run", "accounts", "firings", "actions", "resolved", "recovered"}
    assert data["accounts"] == 12 and data["dry_run"] is False and data["run"] == 1
    assert {"account": "ACME", "rule": "drop-with-complaints"} in data["firings"]
    escalations = [a for a in data["actions"] if a["action"] == "escalate"]
    assert {(a["account"], a["rule"]) for a in escalations} == SAMPLE_ESCALATIONS == escalated(rules_portfolio)
    assert set(escalations[0]) == {"account", "rule", "action", "detail"}
    again = json.loads(CliRunner().invoke(cli, ["evaluate", "--json", "--account", "ACME"]).stdout)
    assert again["accounts"] == 1 and again["run"] == 2 and again["actions"] == []
    result = CliRunner().invoke(cli, ["evaluate", "--account", "NOPE"])
    assert result.exit_code != 0 and "NOPE" in result.stderr


def test_evaluate_json_as_a_subprocess_prints_clean_json_and_no_progress(
    rules_portfolio: Database, tmp_path: Path
) -> None:
    env = {"PULSECHECK_DATABASE_URL": rules_portfolio.url, "PULSECHECK_NOW": DEMO_NOW.isoformat()}
    done = installed("evaluate", "--dry-run", "--json", cwd=tmp_path, env=env)
    data = as_json(done)
    assert done.stderr == ""  # not a terminal: no progress bar
    assert data["dry_run"] is True and data["run"] is None and data["firings"]
    assert _count(rules_portfolio, EvaluationRun) == 0 and _count(rules_portfolio, Escalation) == 0


def test_the_next_evaluate_marks_failed_the_runs_whose_process_is_gone(
    rules_portfolio: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from click.testing import CliRunner

    from pulsecheck.cli import cli
    from pulsecheck.workflow.leases import host_key, pid_alive, wall_clock

    dead = next(pid for pid in range(4_000_000, 4_100_000) if not pid_alive(pid))
    soon, past = wall_clock() + timedelta(minutes=1), wall_clock() - timedelta(minutes=1)
    left = {  # (holder, lease_until) of runs left `running`
        "dead here": (f"{dead}@{host_key()}#a", soon),
        "silent elsewhere": ("77@other-host/b00t/1#b", past),
        "alive elsewhere": ("78@other-host/b00t/1#c", soon),
        "alive here": (f"{os.getpid()}@{host_key()}#d", soon),
    }
    with rules_portfolio.transaction() as session:
        for holder, until in left.values():
            session.add(
                EvaluationRun(started_at=DEMO_NOW, as_of=DEMO_NOW, accounts=0, firings=0, actions=0,
                              status="running", holder=holder, lease_until=until)
            )  # fmt: skip
    monkeypatch.setenv("PULSECHECK_DATABASE_URL", str(rules_portfolio.engine.url))
    monkeypatch.setenv("PULSECHECK_NOW", DEMO_NOW.isoformat())
    monkeypatch.delenv("PULSECHECK_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["evaluate"])
    assert result.exit_code == 0, result.output
    assert f"run 1 (started {DEMO_NOW.isoformat()}) was interrupted: process {dead} on " in result.stderr
    assert "run 2 (started" in result.stderr and "process 77 on other-host has not renewed its lease" in result.stderr
    expired = past.isoformat(timespec="seconds")
    assert _runs(rules_portfolio)[:4] == [
        ("failed", f"interrupted: process {dead} on {os.uname().nodename} is gone"),
        ("failed", f"interrupted: process 77 on other-host has not renewed its lease (it ran out at {expired})"),
        ("running", None),
        ("running", None),
    ]
    assert _runs(rules_portfolio)[4] == ("done", None)
