"""Portfolio inputs: KPI readings, survey responses and issues, imported all-or-nothing from CSV/JSON.

Files are streamed in chunks (memory is bounded by a chunk, not by the file): each chunk is checked, then
written in the command's one transaction; every bad row is reported (up to MAX_PROBLEMS) and any of them
aborts the whole import, so the transaction rolls back. KPI readings, the largest files, have their own module
(`readings.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Float, Integer, String, func, insert, literal, select, update
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError
from pulsecheck.storage.models import Account, Issue
from pulsecheck.storage.more_tables import ISSUES, SURVEY_RESPONSES
from pulsecheck.storage.types import UTCDateTime
from pulsecheck.vocab import ISSUE_KINDS, SEVERITIES, SURVEY_KINDS
from pulsecheck.workflow.imports import FileFormat, InputImport, Problems, Row, chunks, iter_rows
from pulsecheck.workflow.readings import import_readings as import_readings  # its own module, one import path
from pulsecheck.workflow.staging import BulkStatement, SeenKeys, bulk_insert, drop, temporary_table

ISSUE_STATUSES = ("open", "closed")
_COUNTED = {"preserve_rowcount": True}  # psycopg forgets the count of an INSERT once SQLAlchemy closes its cursor
MAX_CACHED_ACCOUNTS = 100_000  # account ids kept between chunks: a few MB, and one query per chunk saved
# The tables, not the mapped classes: a list of parameters then means executemany, not an ORM bulk insert.
ISSUE_COLUMNS = ("external_id", "account_id", "kind", "severity", "status", "title", "opened_at", "closed_at")


def checked_chunks(
    session: Session,
    path: str | Path,
    required: tuple[str, ...],
    fmt: FileFormat,
    problems: Problems,
    parse: Callable[[Row], dict[str, Any]],
) -> Iterator[list[tuple[Row, dict[str, Any]]]]:
    """The file's rows in chunks, each row parsed by `parse` and its `account` column resolved to
    `account_id`; bad rows go to `problems` (and are left out)."""
    accounts: dict[str, int] = {}  # external id -> id, for the accounts of recent chunks
    for chunk in chunks(iter_rows(path, required, fmt, problems)):
        if problems.full:
            return
        parsed = []
        for row in chunk:
            try:
                parsed.append((row, parse(row)))
            except InputError as exc:
                problems.add(str(exc), row.number)
        refs = {values["account"] for _, values in parsed} - accounts.keys()
        if len(accounts) + len(refs) > MAX_CACHED_ACCOUNTS:
            accounts.clear()
            refs = {values["account"] for _, values in parsed}
        if refs:
            lookup = select(Account.external_id, Account.id).where(Account.external_id.in_(refs))
            accounts.update(session.execute(lookup).all())
        good = []
        for row, values in parsed:
            account_id = accounts.get(values["account"])
            if account_id is None:
                problems.add(f"{row.where('account')}: unknown account {values['account']!r}", row.number)
            else:
                values["account_id"] = account_id
                good.append((row, values))
        yield good


def _survey(tz: tzinfo) -> Callable[[Row], dict[str, Any]]:
    def parse(row: Row) -> dict[str, Any]:
        kind = row.choice("kind", SURVEY_KINDS, required=True)
        score = row.decimal("score", required=True)
        max_score = row.decimal("max_score")
        if max_score is None and kind != "nps":
            raise InputError(f"{row.where('max_score')}: value is required for {kind} responses")
        max_score = 10.0 if max_score is None else max_score
        assert score is not None
        if max_score <= 0:
            raise InputError(f"{row.where('max_score')}: must be above 0")
        if not 0 <= score <= max_score:
            raise InputError(f"{row.where('score')}: {score:g} is not within 0..{max_score:g}")
        return {
            "account": row.text("account", required=True),
            "kind": kind,
            "score": score,
            "max_score": max_score,
            "responded_at": row.moment("responded_at", tz, required=True),
        }

    return parse


def import_surveys(
    session: Session, path: str | Path, tz: tzinfo, now: datetime, fmt: FileFormat = FileFormat()
) -> InputImport:
    """Append survey responses (kind nps|csat|ces, score on 0..max_score) beyond the identical ones stored.

    Responses have no id, and two respondents may give the same score on the same day, so identical rows within
    a file all count; re-importing a file, or a longer export of the same surveys, adds only what is new. The
    rows are staged in a temporary table, then one statement inserts, per distinct response, the copies the
    file has beyond those stored.
    """
    problems = Problems(str(path), fmt.limits.max_problems)
    staged = temporary_table(
        session,
        "pulsecheck_import_surveys",
        Column("seq", Integer, primary_key=True),
        Column("account_id", Integer),
        Column("kind", String),
        Column("score", Float),
        Column("max_score", Float),
        Column("responded_at", UTCDateTime),
    )
    staging = bulk_insert(session, staged, [column.name for column in staged.columns])
    total = 0
    required = ("account", "kind", "score", "responded_at")
    for good in checked_chunks(session, path, required, fmt, problems, _survey(tz)):
        rows = [{**values, "seq": total + index} for index, (_, values) in enumerate(good)]
        total += len(good)
        if not problems:
            staging.execute(rows)
    created = 0
    if not problems:
        inserted = session.execute(_insert_beyond_stored(staged, now), execution_options=_COUNTED)
        created = inserted.rowcount  # type: ignore[attr-defined]
    drop(session, staged)
    problems.raise_if_any()
    return InputImport(created=created, skipped=total - created)


def _insert_beyond_stored(staged: Any, now: datetime) -> Any:
    """INSERT the staged responses numbered (among identical ones, in file order) beyond the stored count."""
    key = ("account_id", "kind", "score", "max_score", "responded_at")
    numbered = select(
        *(staged.c[name] for name in ("seq", *key)),
        func.row_number().over(partition_by=[staged.c[name] for name in key], order_by=staged.c.seq).label("n"),
    ).subquery()
    responses = SURVEY_RESPONSES.c
    stored = select(func.count()).where(*(responses[name] == numbered.c[name] for name in key)).scalar_subquery()
    return insert(SURVEY_RESPONSES).from_select(
        [*key, "imported_at"],
        select(*(numbered.c[name] for name in key), literal(now, UTCDateTime))
        .where(numbered.c.n > stored)
        .order_by(numbered.c.seq),
    )


def _issue(tz: tzinfo) -> Callable[[Row], dict[str, Any]]:
    def parse(row: Row) -> dict[str, Any]:
        status = row.choice("status", ISSUE_STATUSES) or "open"
        opened = row.moment("opened_at", tz, required=True)
        closed = row.moment("closed_at", tz)
        assert opened is not None
        if status == "closed" and closed is None:
            raise InputError(f"{row.where('closed_at')}: a closed issue needs closed_at")
        if closed is not None and closed < opened:
            raise InputError(f"{row.where('closed_at')}: before opened_at")
        return {
            "external_id": row.text("external_id", required=True),
            "account": row.text("account", required=True),
            "kind": row.choice("kind", ISSUE_KINDS, required=True),
            "severity": row.choice("severity", SEVERITIES) or "medium",
            "status": status,
            "title": row.text("title"),
            "opened_at": opened,
            "closed_at": closed if status == "closed" else None,
        }

    return parse


def import_issues(session: Session, path: str | Path, tz: tzinfo, fmt: FileFormat = FileFormat()) -> InputImport:
    """Create or update issues (complaints, billing, blockers, tickets) by external_id."""
    problems = Problems(str(path), fmt.limits.max_problems)
    seen = SeenKeys(session)
    adding = bulk_insert(session, ISSUES, ISSUE_COLUMNS)
    created = updated = 0
    required = ("external_id", "account", "kind", "opened_at")
    for good in checked_chunks(session, path, required, fmt, problems, _issue(tz)):
        again = seen.repeated([(values["external_id"], row.number) for row, values in good])
        for row, values in good:
            if row.number in again:
                twice = f"{values['external_id']!r} appears twice in the file"
                problems.add(f"{row.where('external_id')}: {twice}", row.number)
        if not problems and good:
            new, changed = _store_issues(session, [values for _, values in good], adding)
            created, updated = created + new, updated + changed
    seen.close()
    problems.raise_if_any()
    return InputImport(created=created, updated=updated)


def _store_issues(session: Session, records: list[dict[str, Any]], adding: BulkStatement) -> tuple[int, int]:
    """Insert the new issues of a chunk, replace the stored ones; (created, updated)."""
    ids = [values["external_id"] for values in records]
    stored = dict(session.execute(select(Issue.external_id, Issue.id).where(Issue.external_id.in_(ids))).all())
    new = [values for values in records if values["external_id"] not in stored]
    changes = [
        {"id": stored[values["external_id"]], **{column: values[column] for column in ISSUE_COLUMNS}}
        for values in records
        if values["external_id"] in stored
    ]
    adding.execute(new)
    if changes:
        session.execute(update(Issue), changes)  # by primary key
    return len(new), len(changes)
