"""`rules lint` findings, table-driven: contradictory leaves of an `all`, thresholds outside a fact's range, and
rules shadowed by another with the same actions; and what is fine stays silent."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pulsecheck.demo import examples_dir
from pulsecheck.rules.language import load_rules, load_rules_file
from pulsecheck.rules.lint import lint

NOTIFY = {"notify": ["owner"]}


def findings(*rules: dict[str, Any]) -> list[str]:
    """The findings as text, with each rule's line written `{rN}` (the line of its `- id: rN`)."""
    document = {"version": 1, "rules": [{"id": f"r{i}", "then": NOTIFY, **rule} for i, rule in enumerate(rules)]}
    text = yaml.safe_dump(document, sort_keys=False)
    lines = {line.split("id: ")[1]: str(n) for n, line in enumerate(text.splitlines(), 1) if "- id: " in line}
    found = [finding.text("r.yaml") for finding in lint(load_rules(text, "r.yaml"))]
    for rule_id, number in lines.items():
        found = [f.replace(f":{number}: ", f":{{{rule_id}}}: ").replace(f"line {number})", f"line {{{rule_id}}})")
                 for f in found]
    return found


CONDITIONS: list[tuple[Any, list[str]]] = [
    # contradictions in one `all`
    ({"all": [{"score": {"lt": 30}}, {"score": {"gt": 50}}]},
     ["contradictory conditions in one `all`: score lt 30 and score gt 50 can never hold together"]),
    ({"score": {"lt": 30, "gt": 50}},
     ["contradictory conditions in one `all`: score lt 30 and score gt 50 can never hold together"]),
    ({"all": [{"bucket": {"eq": "healthy"}}, {"bucket": {"in": ["unhealthy", "neutral"]}}]},
     ["contradictory conditions in one `all`: bucket eq healthy and bucket in [unhealthy, neutral] can never "
      "hold together"]),
    ({"all": [{"kpi.nps": {"missing": True}}, {"kpi.nps": {"lt": 0}}]},
     ["contradictory conditions in one `all`: kpi.nps missing and kpi.nps lt 0 can never hold together"]),
    ({"all": [{"arr": {"gte": 10}}, {"arr": {"lt": 10}}]},
     ["contradictory conditions in one `all`: arr gte 10 and arr lt 10 can never hold together"]),
    ({"all": [{"has_open_review": {"ne": True}}, {"has_open_review": {"ne": False}}]},
     ["contradictory conditions in one `all`: has_open_review ne True and has_open_review ne False can never "
      "hold together"]),
    ({"not": {"any": [{"score": {"gte": 30}}, {"score": {"lte": 50}}]}},  # De Morgan: lt 30 and gt 50
     ["contradictory conditions in one `all`: score lt 30 and score gt 50 can never hold together"]),
    ({"any": [{"all": [{"score": {"lt": 10}}, {"score": {"gt": 20}}]}, {"bucket": {"eq": "x"}}]},
     ["contradictory conditions in one `all`: score lt 10 and score gt 20 can never hold together"]),
    # thresholds outside the known range
    ({"score": {"gt": 100}}, ["score gt 100 can never hold: score is a score (0 to 100)"]),
    ({"open_complaints": {"lt": 0}},
     ["open_complaints lt 0 can never hold: open_complaints is a count (a whole number, 0 or more)"]),
    ({"tickets_high_60d": {"eq": 2.5}},
     ["tickets_high_60d eq 2.5 can never hold: tickets_high_60d is a count (a whole number, 0 or more)"]),
    ({"score_drop_30d": {"between": [120, 150]}},
     ["score_drop_30d between [120, 150] can never hold: score_drop_30d is a fall in score points (0 to 100)"]),
    ({"any": [{"score": {"lt": -1}}, {"bucket": {"eq": "x"}}]},
     ["score lt -1 can never hold: score is a score (0 to 100)"]),
    ({"open_blockers": {"gt": 2, "lt": 3}},  # whole numbers: nothing between 2 and 3
     ["open_blockers gt 2 and open_blockers lt 3 can never hold together: open_blockers is a count (a whole "
      "number, 0 or more)"]),
    # fine
    ({"score": {"gte": 30, "lt": 50}}, []),
    ({"score": {"lte": 100}}, []),
    ({"days_to_renewal": {"lte": 60, "gte": -30}}, []),
    ({"any": [{"score": {"lt": 30}}, {"score": {"gt": 50}}]}, []),
    ({"all": [{"kpi.nps": {"missing": True}}, {"score": {"lt": 10}}]}, []),
    ({"kpi_change_pct.logins_30d": {"lte": -400}}, []),  # a KPI can be negative: no known range
    ({"all": [{"open_blockers": {"gte": 2}}, {"open_blockers": {"lte": 2}}, {"open_blockers": {"ne": 3}}]}, []),
]


@pytest.mark.parametrize(("when", "expected"), CONDITIONS)
def test_conditions(when: Any, expected: list[str]) -> None:
    assert findings({"when": when}) == [f"r.yaml:{{r0}}: rule r0: {message}" for message in expected]


ESCALATE = {"escalate": {"severity": "high"}}
SHADOWS: list[tuple[list[dict[str, Any]], list[str]]] = [
    # a narrower rule with the same actions fires only together with the broader one
    ([{"when": {"score": {"lt": 40}}}, {"when": {"all": [{"score": {"lt": 30}}, {"open_complaints": {"gt": 0}}]}}],
     ["r.yaml:{r1}: rule r1: shadowed by rule r0 (line {r0}): the same actions, and its conditions hold whenever this "
      "rule's do"]),
    ([{"when": {"bucket": {"in": ["unhealthy", "neutral"]}}}, {"when": {"bucket": {"eq": "unhealthy"}}}],
     ["r.yaml:{r1}: rule r1: shadowed by rule r0 (line {r0}): the same actions, and its conditions hold whenever this "
      "rule's do"]),
    # the same conditions: the later one is reported
    ([{"when": {"score": {"lt": 40}}}, {"when": {"score": {"lt": 40}}, "description": "copy"}],
     ["r.yaml:{r1}: rule r1: duplicates rule r0 (line {r0}): the same conditions and actions"]),
    ([{"when": {"any": [{"score": {"lt": 9}}, {"arr": {"gt": 5}}]}},
      {"when": {"all": [{"any": [{"score": {"lt": 9}}, {"arr": {"gt": 5}}]}, {"segment": {"eq": "smb"}}]}}],
     ["r.yaml:{r1}: rule r1: shadowed by rule r0 (line {r0}): the same actions, and its conditions hold whenever this "
      "rule's do"]),
    # a rule that can never fire is reported for that, not as shadowed
    ([{"when": {"score": {"lt": 40}}}, {"when": {"score": {"lt": 30, "gt": 50}}}],
     ["r.yaml:{r1}: rule r1: contradictory conditions in one `all`: score lt 30 and score gt 50 can never hold "
      "together"]),
    # not shadowed: other actions, or conditions that do not follow
    ([{"when": {"score": {"lt": 40}}}, {"when": {"score": {"lt": 30}}, "then": ESCALATE}], []),
    ([{"when": {"score": {"lt": 30}}}, {"when": {"score": {"lt": 40}}}],  # the first is the narrower one
     ["r.yaml:{r0}: rule r0: shadowed by rule r1 (line {r1}): the same actions, and its conditions hold whenever "
      "this rule's do"]),
    ([{"when": {"score": {"lt": 40}}}, {"when": {"bucket": {"eq": "unhealthy"}}}], []),
    ([{"when": {"open_complaints": {"gte": 0}}}, {"when": {"score": {"lt": 40}}}], []),  # complaints may be missing
    ([{"when": {"score": {"lt": 40}}, "then": {"notify": ["owner", "manager"]}}, {"when": {"score": {"lt": 30}}}], []),
]


@pytest.mark.parametrize(("rules", "expected"), SHADOWS)
def test_shadowed_rules(rules: list[dict[str, Any]], expected: list[str]) -> None:
    assert findings(*rules) == expected


def test_the_sample_rules_are_clean() -> None:
    assert lint(load_rules_file(examples_dir() / "rules.yaml")) == []
