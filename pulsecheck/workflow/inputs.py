"""Portfolio inputs: KPI readings, survey responses and issues, imported all-or-nothing from CSV/JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError
from pulsecheck.storage.models import Account, Issue, KpiReading, SurveyResponse
from pulsecheck.timeutil import parse_datetime
from pulsecheck.vocab import ISSUE_KINDS, SEVERITIES, SURVEY_KINDS
from pulsecheck.workflow.imports import Row, parse_number, read_rows

ISSUE_STATUSES = ("open", "closed")


@dataclass(frozen=True)
class InputImport:
    created: int
    updated: int = 0
    skipped: int = 0


def _accounts(session: Session) -> dict[str, int]:
    return {ext: pk for ext, pk in session.execute(select(Account.external_id, Account.id))}


def _account_id(row: Row, accounts: dict[str, int], column: str = "account") -> int:
    ref = row.text(column, required=True)
    assert ref is not None
    if ref not in accounts:
        raise InputError(f"{row.where(column)}: unknown account {ref!r}")
    return accounts[ref]


def _when(tz: tzinfo) -> Callable[[str], datetime]:
    return lambda text: parse_datetime(text, tz)


def import_readings(session: Session, path: str | Path, tz: tzinfo, now: datetime) -> InputImport:
    """Append KPI readings; rows identical to a stored reading are skipped (raw inputs are never rewritten)."""
    accounts = _accounts(session)
    rows = read_rows(path, required_columns=("account", "kpi", "value", "observed_at"))
    records = []
    for row in rows:
        kpi = row.text("kpi", required=True)
        assert kpi is not None
        if not kpi.replace("_", "").isalnum():
            raise InputError(f"{row.where('kpi')}: {kpi!r} is not a KPI name (letters, digits, _)")
        records.append(
            {
                "account_id": _account_id(row, accounts),
                "kpi": kpi,
                "value": row.get("value", parse_number, required=True),
                "observed_at": row.get("observed_at", _when(tz), required=True),
                "source": row.text("source"),
                "imported_at": now,
            }
        )
    fresh = _without_stored(session, records)
    if fresh:
        session.execute(insert(KpiReading), fresh)
    return InputImport(created=len(fresh), skipped=len(records) - len(fresh))


def _without_stored(session: Session, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = {(r["account_id"], r["kpi"], r["observed_at"]) for r in records}
    stored: set[tuple[Any, ...]] = set()
    key_list = list(keys)
    for start in range(0, len(key_list), 500):
        chunk = key_list[start : start + 500]
        query = select(
            KpiReading.account_id, KpiReading.kpi, KpiReading.observed_at, KpiReading.value, KpiReading.source
        ).where(tuple_(KpiReading.account_id, KpiReading.kpi, KpiReading.observed_at).in_(chunk))
        stored.update(tuple(row) for row in session.execute(query))
    fresh, seen = [], set()
    for r in records:
        key = (r["account_id"], r["kpi"], r["observed_at"], r["value"], r["source"])
        if key not in stored and key not in seen:
            seen.add(key)
            fresh.append(r)
    return fresh


def import_surveys(session: Session, path: str | Path, tz: tzinfo, now: datetime) -> InputImport:
    """Append survey responses (kind nps|csat|ces, score on 0..max_score)."""
    accounts = _accounts(session)
    rows = read_rows(path, required_columns=("account", "kind", "score", "responded_at"))
    records = []
    for row in rows:
        kind = row.choice("kind", SURVEY_KINDS, required=True)
        score = row.get("score", parse_number, required=True)
        default_max = 10.0 if kind == "nps" else None
        max_score = row.get("max_score", parse_number)
        if max_score is None:
            max_score = default_max
        if max_score is None:
            raise InputError(f"{row.where('max_score')}: value is required for {kind} responses")
        assert score is not None
        if max_score <= 0:
            raise InputError(f"{row.where('max_score')}: must be above 0")
        if not 0 <= score <= max_score:
            raise InputError(f"{row.where('score')}: {score:g} is not within 0..{max_score:g}")
        records.append(
            {
                "account_id": _account_id(row, accounts),
                "kind": kind,
                "score": score,
                "max_score": max_score,
                "responded_at": row.get("responded_at", _when(tz), required=True),
                "imported_at": now,
            }
        )
    fresh = _beyond_stored_surveys(session, records)
    if fresh:
        session.execute(insert(SurveyResponse), fresh)
    return InputImport(created=len(fresh), skipped=len(records) - len(fresh))


def _beyond_stored_surveys(session: Session, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a file beyond the identical responses already stored (a multiset difference).

    Responses have no id, and two respondents may give the same score on the same day, so identical rows within
    a file all count; re-importing a file, or a longer export of the same surveys, adds only what is new.
    """
    from collections import Counter

    accounts = sorted({r["account_id"] for r in records})
    stored: Counter[tuple[Any, ...]] = Counter()
    for start in range(0, len(accounts), 500):
        query = select(
            SurveyResponse.account_id,
            SurveyResponse.kind,
            SurveyResponse.score,
            SurveyResponse.max_score,
            SurveyResponse.responded_at,
        ).where(SurveyResponse.account_id.in_(accounts[start : start + 500]))
        stored.update(tuple(row) for row in session.execute(query))
    fresh = []
    for r in records:
        k = (r["account_id"], r["kind"], r["score"], r["max_score"], r["responded_at"])
        if stored[k] > 0:
            stored[k] -= 1
        else:
            fresh.append(r)
    return fresh


def import_issues(session: Session, path: str | Path, tz: tzinfo) -> InputImport:
    """Create or update issues (complaints, billing, blockers, tickets) by external_id."""
    accounts = _accounts(session)
    rows = read_rows(path, required_columns=("external_id", "account", "kind", "opened_at"))
    parsed: dict[str, dict[str, Any]] = {}
    for row in rows:
        external_id = row.text("external_id", required=True)
        assert external_id is not None
        if external_id in parsed:
            raise InputError(f"{row.where('external_id')}: {external_id!r} appears twice in the file")
        status = row.choice("status", ISSUE_STATUSES) or "open"
        opened = row.get("opened_at", _when(tz), required=True)
        closed = row.get("closed_at", _when(tz))
        assert opened is not None
        if status == "closed" and closed is None:
            raise InputError(f"{row.where('closed_at')}: a closed issue needs closed_at")
        if closed is not None and closed < opened:
            raise InputError(f"{row.where('closed_at')}: before opened_at")
        parsed[external_id] = {
            "account_id": _account_id(row, accounts),
            "kind": row.choice("kind", ISSUE_KINDS, required=True),
            "severity": row.choice("severity", SEVERITIES) or "medium",
            "status": status,
            "title": row.text("title"),
            "opened_at": opened,
            "closed_at": closed if status == "closed" else None,
        }
    existing = {i.external_id: i for i in session.scalars(select(Issue).where(Issue.external_id.in_(list(parsed))))}
    for external_id, values in parsed.items():
        issue = existing.get(external_id)
        if issue is None:
            session.add(Issue(external_id=external_id, **values))
        else:
            for key, value in values.items():
                setattr(issue, key, value)
    session.flush()
    return InputImport(created=len(parsed) - len(existing), updated=len(existing))
