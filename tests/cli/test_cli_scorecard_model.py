"""The README's scorecard worked example, through the CLI on the sample files: ACME's npv, ltv, group subscore,
ratings and score as computed by hand in the README."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from pulsecheck.cli import cli
from pulsecheck.demo import examples_dir


def test_readme_worked_example(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    env = {"PULSECHECK_DATABASE_URL": f"sqlite:///{db}", "PULSECHECK_NOW": "2026-11-24T18:00:00+00:00",
           "PULSECHECK_USER": None, "PULSECHECK_CONFIG": None}  # fmt: skip
    samples = examples_dir()
    for args in (
        ["init"],
        ["users", "import", str(samples / "users.csv")],
        ["accounts", "import", str(samples / "accounts.csv")],
        ["readings", "import", str(samples / "readings.csv")],
        ["surveys", "import", str(samples / "surveys.csv")],
        ["cashflows", "import", str(samples / "cashflows.csv")],
        ["financials", "import", str(samples / "financials.csv")],
        ["model", "approve", str(samples / "scorecard.yaml")],
        ["score"],
    ):
        result = CliRunner(env=env).invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
    with sqlite3.connect(db) as conn:
        score, groups, components = conn.execute(
            "SELECT score, groups, components FROM score_snapshots s JOIN accounts a ON a.id = s.account_id "
            "WHERE a.external_id = 'ACME'"
        ).fetchone()
    parts = {c["kpi"]: c for c in json.loads(components)}
    assert parts["npv"]["raw"] == pytest.approx(2223.89, abs=0.005)
    assert (parts["npv"]["rating"], parts["ltv"]["raw"], parts["ltv"]["rating"]) == ("concern", 614000, "neutral")
    assert parts["usage"]["rating"] == "concern"
    # logins: tracked (weight 0), its newest reading (readings.csv: ACME 205 on 2026-11-24) stored, not scored
    assert (parts["logins"]["raw"], parts["logins"]["weight"], parts["logins"]["contribution"]) == (205, 0, 0)
    assert json.loads(groups)["business_value"] == 7.41
    assert score == 57.05
