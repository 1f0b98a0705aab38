"""Backtests: replay a rules file over score history to see the alert volume before switching it on."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.rules.evaluator import evaluate_plain
from pulsecheck.rules.language import RulesFile
from pulsecheck.storage.models import Account, ScoreSnapshot
from pulsecheck.workflow.evaluation import account_facts


def snapshot_dates(session: Session, start: datetime, end: datetime) -> list[datetime]:
    """Distinct snapshot moments in [start, end]."""
    query = select(ScoreSnapshot.as_of).where(ScoreSnapshot.as_of >= start, ScoreSnapshot.as_of <= end).distinct()
    return sorted(session.scalars(query))


def backtest(session: Session, rules: RulesFile, start: datetime, end: datetime) -> dict[str, Any]:
    """Per rule: escalations it would have opened (a new one each time it starts matching an account)."""
    names = {pk: ext for pk, ext in session.execute(select(Account.id, Account.external_id))}
    dates = snapshot_dates(session, start, end)
    opened: dict[str, list[tuple[str, str]]] = defaultdict(list)
    previous: set[tuple[int, str]] = set()
    for when in dates:
        current = set(evaluate_plain(rules.rules, account_facts(session, rules, when).items()))
        for account, rule in sorted(current - previous):
            opened[rule].append((names[account], when.date().isoformat()))
        previous = current
    return {"dates": len(dates), "rules": {rule.id: opened.get(rule.id, []) for rule in rules.rules}}
