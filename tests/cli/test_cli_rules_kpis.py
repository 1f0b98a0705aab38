"""A rule naming a KPI the approved model does not have is a `rules validate` / `rules activate` error with its
line and a suggestion (it used to validate and be silently false); without an approved model, validate says the
names went unchecked."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulsecheck.errors import ValidationFailed
from pulsecheck.rules.kpis import KpiNames
from pulsecheck.rules.language import load_rules
from pulsecheck.storage.db import Database
from tests.conftest import Run, Templates, error, ok, sample_via_cli

SAMPLE_KPIS = KpiNames(
    frozenset({"usage", "nps", "csat", "open_tickets", "on_time_delivery", "logins"}),
    frozenset({"usage", "open_tickets", "on_time_delivery", "logins"}),
    "the approved model 2026.11",
)
KNOWN = "its KPIs: csat, logins, nps, on_time_delivery, open_tickets, usage"


def one_rule(fact: str) -> str:
    return f"version: 1\nrules:\n  - id: r\n    when:\n      {fact}: {{lt: 5}}\n    then: {{notify: [owner]}}\n"


@pytest.mark.parametrize(
    ("fact", "problem"),
    [
        (
            "kpi.logns",
            f"kpi.logns: the approved model 2026.11 has no KPI 'logns' (did you mean 'kpi.logins'?); {KNOWN}",
        ),
        (
            "kpi_avg.logns_30d",
            "kpi_avg.logns_30d: the approved model 2026.11 has no KPI 'logns' "
            f"(did you mean 'kpi_avg.logins_30d'?); {KNOWN}",
        ),
        ("kpi_min.zzz_7d", f"kpi_min.zzz_7d: the approved model 2026.11 has no KPI 'zzz'; {KNOWN}"),
        (
            "kpi_change_pct.nps_30d",
            "kpi_change_pct.nps_30d: KPI windows are computed over imported readings, and "
            "the approved model 2026.11 computes 'nps' from surveys or a formula: compare "
            "kpi.nps instead",
        ),
    ],
)
def test_a_kpi_outside_the_model_is_an_error_with_line_and_suggestion(fact: str, problem: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_rules(one_rule(fact), "r.yaml", kpis=SAMPLE_KPIS)
    assert caught.value.problems == [f"r.yaml:5: rule r: {problem}"]


@pytest.mark.parametrize("fact", ["kpi.logins", "kpi.nps", "kpi_change_pct.logins_30d", "kpi_avg.usage_90d", "score"])
def test_kpis_of_the_model_and_other_facts_pass(fact: str) -> None:
    assert load_rules(one_rule(fact), "r.yaml", kpis=SAMPLE_KPIS).rules[0].id == "r"
    assert load_rules(one_rule("kpi.anything"), "r.yaml").rules  # no model given: not checked (library use)


@pytest.fixture
def sample(run: Run, database: Database, templates: Templates) -> Run:
    templates.load(database, templates.seeded("sample", sample_via_cli))
    return run


def test_validate_and_activate_refuse_a_misspelled_kpi(sample: Run, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(one_rule("kpi.nsp"))
    for args in (("rules", "validate"), ("--as", "olga", "rules", "activate")):
        result = sample(*args, str(path))
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.splitlines() == [
            f"{path}:5: rule r: kpi.nsp: the approved model 2026.11 has no KPI 'nsp' (did you mean 'kpi.nps'?); "
            "its KPIs: csat, logins, nps, on_time_delivery, open_tickets, usage",
            f"error: {path}: 1 problem(s)",
        ]
    path.write_text(one_rule("kpi.nps"))
    assert ok(sample("rules", "validate", str(path))).startswith(f"{path}: ok (1 rules")


def test_without_an_approved_model_validate_says_kpis_went_unchecked(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(one_rule("kpi.whatever"))
    result = run("rules", "validate", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"note: {path}: KPI names are not checked: no approved scoring model (run `pulsecheck model approve FILE`); "
        "until then every kpi fact is missing and its conditions are false\n"
    )
    path.write_text(one_rule("score"))
    assert run("rules", "validate", str(path)).stderr == ""  # no KPI named: nothing to say
    assert error(run("rules", "validate", str(tmp_path / "none.yaml")), 2).startswith("error: ")
